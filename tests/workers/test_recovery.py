"""Recovery paths with real worker processes: a cancelled job or sweep trial whose worker died,
a job that runs its worker out of memory, a forecast batch whose worker stalled, retries capped,
leases on the database's clock, reapers racing, and connections the database drops.

Names that older code lacks are imported where they are used: run against it, each test fails
on what it checks, not on an import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import sessionmaker

from service.api.extensions import services
from service.app import create_app
from service.store import repository
from service.store.db import make_engine
from service.store.tables import ForecastBatch, Job, Sweep, utcnow
from workers import claims, reaper
from workers.attempts import run_training

from .conftest import add_job, job_row, metric_epochs, series, training_spec, wait_for
from .oom_killer import OomKiller

GB = 1 << 30


@pytest.fixture
def api(settings, sessions):
    """(test client, auth headers) of the real app on the workers' database."""
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="recovery")
        token = repository.create_token(session, tenant=tenant).token
    app = create_app(settings)
    yield app.test_client(), {"Authorization": f"Bearer {token}"}
    services(app).engine.dispose()


def _request(epochs: int) -> dict:
    spec = training_spec(epochs=epochs)
    spec["quantiles"] = None
    return {"series": series(), **spec}


def _outcomes(sessions, job_id: str) -> list[str | None]:
    """How each attempt of the job ended, from the attempts audit."""
    from service.store.tables import JobAttempt

    with sessions() as session:
        return list(session.scalars(select(JobAttempt.outcome).where(JobAttempt.job_id == job_id)
                                    .order_by(JobAttempt.attempt)))


def _kill(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool child, no clean-up
    worker.wait(timeout=30)


def test_a_cancelled_job_whose_worker_died_ends_cancelled(sessions, settings, api,
                                                          start_worker):
    client, headers = api
    answer = client.post("/v1/jobs", headers=headers, json=_request(epochs=400))
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["id"]
    first = start_worker("w1")
    wait_for(lambda: job_row(sessions, job_id).epochs_done >= 2, "training to be under way")
    _kill(first)
    # Asked while the job still reads running: the flag is all a cancel can do, and the only
    # process that would have read it is gone.
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=headers).status_code == 202
    start_worker("w2")  # its reaper finds the lease expired
    wait_for(lambda: job_row(sessions, job_id).status == "cancelled", "the job to end cancelled")
    job = job_row(sessions, job_id)
    assert job.error == "cancelled on request" and job.attempts == 1
    assert job.lease_owner is None and job.finished_at is not None
    assert _outcomes(sessions, job_id) == ["lost"]
    with sessions() as session:
        assert reaper.sweep(session, settings) == []  # not sent again, ever


def test_a_cancelled_sweep_whose_running_trial_lost_its_worker_settles(sessions, settings, api,
                                                                       start_worker):
    client, headers = api
    answer = client.post("/v1/sweeps", headers=headers, json={
        "job": _request(epochs=400), "strategy": "grid",
        "space": {"training.learning_rate": [0.001, 0.003]}})
    assert answer.status_code == 202, answer.get_json()
    sweep_id = answer.get_json()["id"]

    def trials() -> list[Job]:
        with sessions() as session:
            return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)))

    first = start_worker("w1")  # one job at a time: one trial runs, the other waits
    wait_for(lambda: any(t.epochs_done >= 2 for t in trials()), "a trial to be under way")
    _kill(first)
    assert client.post(f"/v1/sweeps/{sweep_id}/cancel", headers=headers).status_code == 202
    start_worker("w2")

    def settled() -> bool:
        with sessions() as session:
            return session.get(Sweep, sweep_id).finished_at is not None

    wait_for(settled, "the sweep to settle")
    with sessions() as session:
        assert session.get(Sweep, sweep_id).status == "cancelled"
    assert sorted(t.status for t in trials()) == ["cancelled", "cancelled"]


def test_a_job_that_runs_its_worker_out_of_memory_fails_after_max_attempts(
        sessions, settings, start_worker):
    """Acceptance 3: a poison job ends failed with "worker lost 3 times", and the other worker
    processes go on training other jobs meanwhile."""
    killer = OomKiller(limit_bytes=int(0.7 * GB))  # a worker holds ~0.25 GB with its kernels
    killer.start()
    try:
        for name in ("w1", "w2"):  # RLIMIT_AS bounds what a missed kill could take
            killer.watch(start_worker(name, address_space=8 * GB).pid)
        rng = np.random.default_rng(0)
        values = np.sin(np.arange(100_000) / 7) + rng.normal(0, 0.1, 100_000)
        poison_spec = training_spec(epochs=2)
        # batches of 4,096 windows of 1,500 steps: one update's caches (gates and states of
        # every step, 1,500 x 4,096 x 8 x 6 floats) take ~1.2 GB
        poison_spec["window"]["input_size"] = 1500
        poison_spec["training"]["batch_size"] = 4096
        poison = add_job(sessions, spec=poison_spec,
                         data=[{"id": "long", "values": [round(float(v), 3) for v in values]}])
        wait_for(lambda: killer.kills, "the first attempt to run out of memory")
        others = [add_job(sessions, spec=training_spec(epochs=30)) for _ in range(3)]
        wait_for(lambda: job_row(sessions, poison).status == "failed", "the poison job to end")
        wait_for(lambda: all(job_row(sessions, j).status == "succeeded" for j in others),
                 "the other jobs to succeed")
    finally:
        killer.stop()
    job = job_row(sessions, poison)
    assert job.attempts == settings.max_attempts == 3
    assert job.error.startswith("worker lost 3 times"), job.error
    assert _outcomes(sessions, poison) == ["lost"] * 3
    assert len(killer.kills) == 3 and all(k.rss_bytes > 0.7 * GB for k in killer.kills)
    # Trained while the poison job still cycled through the workers, each epoch once.
    assert min(job_row(sessions, j).finished_at for j in others) < job.finished_at
    for other in others:
        assert metric_epochs(sessions, other) == list(range(1, 31))


def test_a_forecast_batch_whose_worker_stalled_is_taken_over_and_its_answer_fenced(
        sessions, settings, start_worker):
    job_id = add_job(sessions)
    assert run_training(sessions, settings, job_id, "trainer") == "succeeded"
    with sessions() as session:
        tenant_id = session.get(Job, job_id).tenant_id
        batch_id = repository.create_forecast_batch(session, tenant_id=tenant_id, job_id=job_id,
                                                    request={"series": series(count=50),
                                                             "horizon": None,
                                                             "quantiles": None}).id
        session.commit()
    env = {**os.environ, "BPTT_DATA_DIR": str(settings.data_dir), "BPTT_LEASE_SECONDS": "2"}
    # It claims the batch, then hangs past its lease (a stall, a partition): see stalled_batch.
    stalled = subprocess.Popen([sys.executable, "-m", "tests.workers.stalled_batch", batch_id],
                               env=env, stdout=subprocess.PIPE, text=True)
    try:
        def status() -> str:
            with sessions() as session:
                return session.get(ForecastBatch, batch_id).status

        wait_for(lambda: _stopped(stalled) or stalled.poll() is not None,
                 "the stalled worker to claim the batch and stop")
        assert stalled.poll() is None and status() == "running"
        start_worker("w1")  # its reaper re-sends the batch once the lease has expired
        wait_for(lambda: status() == "succeeded", "another worker to answer the batch")
        with sessions() as session:
            answered = session.get(ForecastBatch, batch_id)
        assert answered.attempts == 2 and answered.lease_owner is None
        stalled.send_signal(signal.SIGCONT)
        out, _ = stalled.communicate(timeout=120)
    finally:
        if stalled.poll() is None:
            stalled.kill()
            stalled.wait()
    assert out.strip().splitlines()[-1] == "lease lost"  # it finished, and wrote nothing
    with sessions() as session:
        after = session.get(ForecastBatch, batch_id)
        assert (after.status, after.finished_at, after.attempts) == (
            "succeeded", answered.finished_at, 2)
        assert after.result_zlib == answered.result_zlib


def _stopped(process: subprocess.Popen) -> bool:
    """Whether the process is stopped by a signal (state T in /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


def test_retries_after_lost_workers_are_capped(any_sessions, any_settings):
    """The issue's reproduction: claims whose lease expires. Six cycles used to leave
    attempts=6, status=running; the claim now counts attempts and the third loss ends it."""
    job_id = add_job(any_sessions)
    for attempt in (1, 2, 3):  # each worker dies at once: a lease of 0 s expires immediately
        with any_sessions() as session:
            claim = claims.claim_job(session, job_id=job_id, owner=f"w{attempt}",
                                     lease_seconds=0, max_attempts=3)
        assert claim is not None and claim.attempt == attempt
        time.sleep(0.01)
    with any_sessions() as session:
        assert reaper.sweep(session, any_settings) == []  # ended, not re-sent
        assert claims.claim_job(session, job_id=job_id, owner="w4", lease_seconds=0,
                                max_attempts=3) is None
    job = job_row(any_sessions, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("failed", 3, None)
    assert job.error.startswith("worker lost 3 times")
    assert _outcomes(any_sessions, job_id) == ["lost"] * 3


def test_a_forecast_batch_whose_workers_keep_dying_fails(any_sessions, any_settings):
    from service.store.forecast_batches import claim_batch

    job_id = add_job(any_sessions)
    with any_sessions() as session:
        tenant_id = session.get(Job, job_id).tenant_id
        batch_id = repository.create_forecast_batch(session, tenant_id=tenant_id, job_id=job_id,
                                                    request={"series": None}).id
        session.commit()
        for attempt in (1, 2, 3):
            claim = claim_batch(session, batch_id=batch_id, owner=f"w{attempt}",
                                lease_seconds=0, max_attempts=3)
            assert claim is not None and claim.attempt == attempt
            time.sleep(0.01)
        assert reaper.stale_batches(session, any_settings) == []
        batch = session.get(ForecastBatch, batch_id)
        assert (batch.status, batch.attempts) == ("failed", 3)
        assert batch.error.startswith("worker lost 3 times")


@pytest.fixture
def host_clock(monkeypatch):
    """Sets this process's clock (what utcnow() answers) off by a timedelta, as a worker or
    reaper host whose clock drifted would be."""
    import service.store.repository
    import service.store.tables

    real = service.store.tables.utcnow

    def skew(offset: timedelta) -> None:
        def skewed():
            return real() + offset
        for module in (service.store.tables, service.store.repository, claims, reaper):
            monkeypatch.setattr(module, "utcnow", skewed, raising=False)

    return skew


def test_leases_run_on_the_database_clock(any_sessions, any_settings, host_clock):
    job_id = add_job(any_sessions)
    host_clock(timedelta(minutes=-10))  # the worker's host runs ten minutes slow
    with any_sessions() as session:
        held = claims.claim_job(session, job_id=job_id, owner="slow", lease_seconds=60,
                                max_attempts=3)
    assert held is not None
    host_clock(timedelta(minutes=10))  # a reaper and a worker on hosts ten minutes fast
    with any_sessions() as session:
        assert reaper.sweep(session, any_settings) == []  # the lease is live by the database
        assert claims.claim_job(session, job_id=job_id, owner="fast", lease_seconds=60,
                                max_attempts=3) is None
        claims.renew_lease(session, held, lease_seconds=60)  # still the slow host's job
        from service.store.dbclock import db_now

        left = session.scalar(select(Job.lease_expires_at).where(Job.id == job_id))
        now = session.scalar(select(db_now()))
    assert timedelta(seconds=50) < left - now <= timedelta(seconds=60)
    assert job_row(any_sessions, job_id).lease_owner == "slow"


def test_two_reapers_never_send_the_same_job(any_sessions, any_settings):
    with any_sessions() as session:
        tenant = repository.create_tenant(session, name="many")
        session.commit()
        session.execute(insert(Job), [{"id": f"00000000-0000-4000-8000-{i:012d}",
                                       "tenant_id": tenant.id, "spec": {}, "status": "queued",
                                       "created_at": utcnow(), "attempts": 0}
                                      for i in range(300)])
        session.commit()
    duplicates, missed = [], []
    for _ in range(5):  # each round: every job stale again, two reapers at the same moment
        with any_sessions() as session:
            session.execute(update(Job).values(enqueued_at=None))
            session.commit()
        start = threading.Barrier(2)
        found: list[list[str]] = []
        threads = [threading.Thread(target=_reap_at_once, args=(any_settings, start, found))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        first, second = found
        duplicates += sorted(set(first) & set(second))
        missed.append(300 - len(set(first) | set(second)))
    assert duplicates == [] and missed == [0] * 5


def _reap_at_once(settings, start: threading.Barrier, found: list[list[str]]) -> None:
    """One reaper with its own connections, sweeping once the other one is ready too."""
    sessions = sessionmaker(bind=_engine(settings))
    with sessions() as session:
        session.connection()  # connected before the race starts
        start.wait(timeout=30)
        found.append(reaper.sweep(session, settings))
    sessions.kw["bind"].dispose()


def _engine(settings):
    return make_engine(settings.database_url)


def test_a_training_attempt_rides_out_dropped_database_connections(any_sessions, any_settings):
    if not any_settings.database_url.startswith("postgresql"):
        pytest.skip("connections dropped by the server: PostgreSQL's pg_terminate_backend")
    job_id = add_job(any_sessions, spec=training_spec(epochs=80))
    stop, first_round, terminated = threading.Event(), threading.Event(), []

    def terminate_backends() -> None:  # as an operator or a failover would, again and again
        engine = _engine(any_settings)
        with engine.connect() as connection:
            while True:
                terminated.append(connection.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar())
                connection.commit()
                first_round.set()
                if stop.wait(0.2):
                    break
        engine.dispose()

    chaos = threading.Thread(target=terminate_backends)
    chaos.start()
    # The first round kills the connection add_job left in the pool, which the attempt then
    # checks out first; with warm kernels 80 epochs take less than a second, so without this
    # wait the attempt could end before any connection was dropped.
    assert first_round.wait(30)
    try:
        outcome = run_training(any_sessions, any_settings, job_id, "w1")
    finally:
        stop.set()
        chaos.join(timeout=30)
    job = job_row(any_sessions, job_id)
    assert sum(terminated) > 0
    assert (outcome, job.status, job.attempts) == ("succeeded", "succeeded", 1), job.error
    assert metric_epochs(any_sessions, job_id) == list(range(1, 81))
