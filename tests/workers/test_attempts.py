"""A training attempt against a real database: claims, fencing, resume, cancel, failures."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import event, func, select, update

import bptt
from bptt import TrainingSpec
from service.store.tables import Checkpoint, EpochMetric, Job, TrainedModel
from workers import claims
from workers.attempts import run_training
from workers.reaper import sweep

from .conftest import add_job, training_spec


def _job(sessions, job_id):
    with sessions() as session:
        return session.get(Job, job_id)


def _metric_epochs(sessions, job_id):
    with sessions() as session:
        return list(session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)
                                    .order_by(EpochMetric.epoch)))


def test_a_job_trains_once_and_a_second_delivery_does_nothing(sessions, settings):
    job_id = add_job(sessions)
    assert run_training(sessions, settings, job_id, "w1") == "succeeded"
    assert run_training(sessions, settings, job_id, "w2") == "not claimed"
    job = _job(sessions, job_id)
    assert job.status == "succeeded" and job.attempts == 1 and job.epochs_done == 6
    assert job.epochs_total == 6 and 1 <= job.best_epoch <= 6
    assert _metric_epochs(sessions, job_id) == [1, 2, 3, 4, 5, 6]
    with sessions() as session:
        model = session.scalar(select(TrainedModel).where(TrainedModel.job_id == job_id))
        assert model.model_card["horizon"] == 4 and len(model.sha256) == 64


def test_an_attempt_builds_its_windows_once(sessions, settings, monkeypatch):
    import bptt.trainer

    built = []
    index_windows = bptt.trainer.index_windows
    monkeypatch.setattr(bptt.trainer, "index_windows",  # counted, not replaced
                        lambda *args, **kwargs: built.append(1) or index_windows(*args, **kwargs))
    job_id = add_job(sessions)
    assert run_training(sessions, settings, job_id, "w1") == "succeeded"
    assert len(built) == 1  # the plan came from the series' lengths, not from windows


def test_a_job_stored_without_a_resolved_spec_gets_the_one_the_worker_trains_with(
        sessions, settings):
    spec = training_spec(epochs=300, ensemble=2, early_stopping_patience=3, learning_rate=0.05)
    spec["model"]["hidden_size"] = None  # left to the data
    job_id = add_job(sessions, spec)  # as jobs from before revision 0003 are stored: no plan
    assert run_training(sessions, settings, job_id, "w1") == "succeeded"
    job = _job(sessions, job_id)
    assert job.resolved_spec == bptt.resolve_spec([90, 90], TrainingSpec.from_dict(spec)).to_dict()
    assert job.resolved_spec["model"]["hidden_size"] == 32
    epochs = _metric_epochs(sessions, job_id)
    assert job.epochs_done == job.epochs_total == len(epochs) < 600
    assert [(m["member"], m["stopped"]) for m in job.members] == [
        (1, "early_stopping"), (2, "early_stopping")]
    assert sum(m["epochs"] for m in job.members) == len(epochs)
    assert all(1 <= m["best_epoch"] <= m["epochs"] for m in job.members)


def test_concurrent_duplicate_deliveries_train_once(sessions, settings):
    job_id = add_job(sessions)
    outcomes = []
    threads = [threading.Thread(target=lambda n=n: outcomes.append(
        run_training(sessions, settings, job_id, f"w{n}"))) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["not claimed", "not claimed", "succeeded"]
    assert _job(sessions, job_id).attempts == 1
    assert _metric_epochs(sessions, job_id) == [1, 2, 3, 4, 5, 6]


def test_a_stale_attempt_writes_nothing_after_a_newer_claim(sessions, settings):
    job_id = add_job(sessions)
    with sessions() as session:
        old = claims.claim_job(session, job_id=job_id, owner="old", lease_seconds=1,
                               max_attempts=3)
    time.sleep(1.1)  # the old worker's lease expires (it hung)
    with sessions() as session:
        new = claims.claim_job(session, job_id=job_id, owner="new", lease_seconds=60,
                               max_attempts=3)
    assert new.attempt == old.attempt + 1
    with sessions() as session:
        try:
            claims.record_epoch(session, old, epoch=1, epochs_total=6,
                              metrics={"train_loss": 1.0, "grad_norm": 1.0, "max_grad_norm": 1.0,
                                       "clip_fraction": 0.0, "learning_rate": 0.1,
                                       "seconds": 0.1}, checkpoint=b"stale")
            raise AssertionError("a stale attempt wrote metrics")
        except claims.LeaseLost:
            pass
    assert _metric_epochs(sessions, job_id) == []


def _kill_mid_training(sessions, settings, job_id, after_epochs):
    """Run an attempt in another process, SIGKILL it once `after_epochs` epochs are recorded,
    and let the reaper see its lease expire; returns the epochs done when it was killed."""
    code = ("import sys; from service.store.db import session_factory; "
            "from service.settings import Settings; from workers.attempts import run_training; "
            "s = Settings.from_env(); run_training(session_factory(s), s, sys.argv[1], 'first')")
    env = {**os.environ, "BPTT_DATA_DIR": str(settings.data_dir),
           "BPTT_LEASE_SECONDS": str(settings.lease_seconds)}
    worker = subprocess.Popen([sys.executable, "-c", code, job_id], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _job(sessions, job_id).epochs_done < after_epochs:
            assert worker.poll() is None, "the worker ended before it could be killed"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # mid-training, with no chance to clean up
    finally:
        worker.wait(timeout=30)
    killed_at = _job(sessions, job_id).epochs_done
    assert _job(sessions, job_id).status == "running"
    time.sleep(settings.lease_seconds + 0.2)
    with sessions() as session:
        assert sweep(session, settings) == [job_id]  # the reaper sees the expired lease
    return killed_at


def test_resume_after_a_sigkilled_worker_keeps_each_epoch_once(sessions, settings):
    job_id = add_job(sessions, spec=training_spec(epochs=150))
    killed_at = _kill_mid_training(sessions, settings, job_id, after_epochs=3)
    assert 3 <= killed_at < 150
    assert run_training(sessions, settings, job_id, "second") == "succeeded"
    job = _job(sessions, job_id)
    assert job.attempts == 2 and job.epochs_done == 150
    assert _metric_epochs(sessions, job_id) == list(range(1, 151))
    with sessions() as session:
        writers = dict(session.execute(select(EpochMetric.epoch, EpochMetric.attempt)
                                       .where(EpochMetric.job_id == job_id)).all())
    resumed_from = min(e for e, attempt in writers.items() if attempt == 2)
    assert resumed_from - 1 <= killed_at  # it went on from the last checkpoint, not from zero
    assert all(writers[e] == 1 for e in range(1, resumed_from))


def _outcome(sessions, job_id):
    """What a finished job reports: its model, best epoch, members, score and epochs' losses."""
    with sessions() as session:
        job = session.get(Job, job_id)
        sha = session.scalar(select(TrainedModel.sha256).where(TrainedModel.job_id == job_id))
        losses = list(session.execute(select(EpochMetric.train_loss, EpochMetric.val_loss)
                                      .where(EpochMetric.job_id == job_id)
                                      .order_by(EpochMetric.epoch)).all())
        return (job.status, sha, job.best_epoch, job.members, job.score, job.epochs_done,
                job.epochs_total, losses)


def test_a_job_resumed_in_its_second_member_ends_as_one_never_interrupted(sessions, settings):
    # The checkpoint holds no metrics: the resumed attempt's score, best epoch and members come
    # from the first attempt's rows (and the checkpoint's account of the finished member).
    spec = training_spec(epochs=60, ensemble=2)
    whole = add_job(sessions, spec=spec)
    assert run_training(sessions, settings, whole, "w") == "succeeded"
    job_id = add_job(sessions, spec=spec)
    killed_at = _kill_mid_training(sessions, settings, job_id, after_epochs=65)
    assert 65 <= killed_at < 120 and len(_job(sessions, job_id).members) == 1
    assert run_training(sessions, settings, job_id, "second") == "succeeded"
    assert _job(sessions, job_id).attempts == 2
    assert _outcome(sessions, job_id) == _outcome(sessions, whole)


def test_a_checkpoint_write_does_not_grow_with_the_epochs(sessions, settings):
    spec = training_spec(epochs=200)
    spec["model"]["hidden_size"] = 16
    job_id = add_job(sessions, spec=spec)
    written = {}  # epoch -> bytes of the checkpoint stored after it

    def record(mapper, connection, row):
        written[row.epoch] = len(row.data)

    event.listen(Checkpoint, "before_insert", record)
    event.listen(Checkpoint, "before_update", record)
    try:
        assert run_training(sessions, settings, job_id, "w") == "succeeded"
    finally:
        event.remove(Checkpoint, "before_insert", record)
        event.remove(Checkpoint, "before_update", record)
    assert sorted(written) == list(range(1, 201))
    # the weights, optimizer state and a few numbers: not the metrics of every epoch so far
    assert written[200] < 1.2 * written[1] and written[50] < 1.2 * written[1]


def test_cancel_stops_a_running_job_within_an_epoch(sessions, settings):
    job_id = add_job(sessions, spec=training_spec(epochs=300))

    def cancel_soon():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _metric_epochs(sessions, job_id):
            time.sleep(0.05)
        with sessions() as session:
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
            session.commit()

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    assert run_training(sessions, settings, job_id, "w") == "cancelled"
    canceller.join()
    job = _job(sessions, job_id)
    assert job.status == "cancelled" and job.epochs_done < 300


def test_a_diverging_job_fails_with_its_reason(sessions, settings):
    spec = training_spec(optimizer="sgd", learning_rate=1e6, clip={"max_norm": None})
    spec["model"].update(cell="rnn", nonlinearity="relu")
    job_id = add_job(sessions, spec=spec)
    assert run_training(sessions, settings, job_id, "w") == "diverged"
    job = _job(sessions, job_id)
    assert job.status == "failed" and "diverged" in job.error and "non-finite" in job.error


def test_a_queued_job_with_a_cancel_request_is_cancelled_not_trained(sessions, settings):
    job_id = add_job(sessions)
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
        session.commit()
    assert run_training(sessions, settings, job_id, "w") == "not claimed"
    assert _job(sessions, job_id).status == "cancelled"


def test_the_reaper_finds_lost_messages_but_not_fresh_ones(sessions, settings):
    fresh = add_job(sessions)
    with sessions() as session:
        assert sweep(session, settings) == []
    time.sleep(settings.requeue_after_seconds + 0.1)
    with sessions() as session:
        assert sweep(session, settings) == [fresh]
        assert sweep(session, settings) == []  # just re-sent: not again at once
        assert session.scalar(select(func.count()).select_from(Checkpoint)) == 0


def test_the_reaper_finds_forecast_batches_whose_message_was_lost(sessions, settings):
    from service.store.repository import create_forecast_batch
    from workers.reaper import stale_batches

    job_id = add_job(sessions)
    with sessions() as session:
        tenant_id = session.get(Job, job_id).tenant_id
        batch = create_forecast_batch(session, tenant_id=tenant_id, job_id=job_id,
                                      request={"series": None})  # as the API stores one
        session.commit()
        batch_id = batch.id
        assert stale_batches(session, settings) == []
    time.sleep(settings.requeue_after_seconds + 0.1)
    with sessions() as session:
        assert stale_batches(session, settings) == [batch_id]
        assert stale_batches(session, settings) == []  # just re-sent: not again at once


def test_a_worker_with_two_threads_trains_the_same_members_and_metrics(sessions, settings):
    """Members side by side (BPTT_TRAIN_THREADS=2) give the job the weights and the metric rows,
    in order, of a worker on one thread."""
    outcomes = {}
    for threads in (1, 2):
        job_id = add_job(sessions, training_spec(ensemble=3))
        worker = dataclasses.replace(settings, train_threads=threads)
        assert run_training(sessions, worker, job_id, f"w{threads}") == "succeeded"
        with sessions() as session:
            weights = session.scalar(select(TrainedModel.weights)
                                     .where(TrainedModel.job_id == job_id))
            rows = session.execute(select(EpochMetric.epoch, EpochMetric.train_loss,
                                          EpochMetric.val_loss)
                                   .where(EpochMetric.job_id == job_id)
                                   .order_by(EpochMetric.epoch)).all()
        job = _job(sessions, job_id)
        outcomes[threads] = (bptt.Model.from_bytes(weights).members, [tuple(r) for r in rows],
                             job.epochs_done, job.best_epoch)
    one, two = outcomes[1], outcomes[2]
    assert len(one[1]) == 18 and one[1] == two[1]  # 3 members x 6 epochs, the same losses
    assert (one[0] == two[0]).all() and one[2:] == two[2:]
