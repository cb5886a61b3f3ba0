"""The workers' fault guarantees hold for a sweep's trials: a SIGKILLed worker's trial resumes
elsewhere, every epoch of every trial is recorded once, and the sweep still settles."""

from __future__ import annotations

import os
import signal

from sqlalchemy import select

from service.api.extensions import services
from service.app import create_app
from service.store import repository
from service.store.tables import Job, Sweep

from .conftest import metric_epochs, series, training_spec, wait_for


def test_a_sweep_survives_a_sigkilled_worker(sessions, settings, start_worker):
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="sweeper")
        token = repository.create_token(session, tenant=tenant).token
    spec = training_spec(epochs=250)
    spec["quantiles"] = None
    app = create_app(settings)
    answer = app.test_client().post(
        "/v1/sweeps", headers={"Authorization": f"Bearer {token}"},
        json={"job": {"series": series(), **spec}, "strategy": "grid",
              "space": {"training.learning_rate": [0.001, 0.003, 0.01]}})
    assert answer.status_code == 202, answer.get_json()
    sweep_id = answer.get_json()["id"]

    def trials() -> list[Job]:
        with sessions() as session:
            return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)
                                        .order_by(Job.trial)))

    first = start_worker("w1")  # the API woke the trials through the broker
    wait_for(lambda: any(t.epochs_done >= 3 for t in trials()), "a trial to be under way")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    start_worker("w2")  # its reaper re-sends the lost trial
    with sessions() as session:
        def settled() -> bool:
            session.expire_all()
            return session.get(Sweep, sweep_id).finished_at is not None
        wait_for(settled, "the sweep to settle")
        sweep = session.get(Sweep, sweep_id)
        assert sweep.status == "succeeded"
    done = trials()
    assert [t.status for t in done] == ["succeeded"] * 3
    assert max(t.attempts for t in done) == 2  # the killed trial ran again, once
    for trial in done:
        assert metric_epochs(sessions, trial.id) == list(range(1, 251))  # each epoch once
    assert sweep.best_job_id == min(done, key=lambda t: (t.score, t.trial)).id
    services(app).engine.dispose()
