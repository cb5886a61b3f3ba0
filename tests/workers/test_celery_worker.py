"""Real Celery worker processes on the embedded (SQLite) broker: wake-ups, a SIGKILLed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service import queue
from service.models import EpochMetric, Job
from service.settings import Settings

from .conftest import add_job, training_spec

DEADLINE_S = 180


@pytest.fixture
def start_worker(settings: Settings) -> Iterator:
    """Starts `celery worker` processes on the test's database and broker; kills them after."""
    started: list[subprocess.Popen] = []
    env = {**os.environ, "BPTT_DATA_DIR": str(settings.data_dir), "BPTT_LEASE_SECONDS": "2",
           "BPTT_REAPER_INTERVAL_SECONDS": "1", "BPTT_REQUEUE_AFTER_SECONDS": "1"}

    def start(name: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
             "--pool", "prefork", "--concurrency", "1", "--hostname", f"{name}@%h",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            env=env, start_new_session=True,  # its own process group: kill children with it
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _job(sessions, job_id) -> Job:
    with sessions() as session:
        return session.get(Job, job_id)


def test_a_worker_trains_a_job_it_is_woken_for(sessions, settings, start_worker):
    start_worker("w1")
    job_id = add_job(sessions)
    assert queue.wake(settings, queue.TRAIN_TASK, job_id)
    _wait_for(lambda: _job(sessions, job_id).status == "succeeded", "the job to succeed")
    assert _job(sessions, job_id).attempts == 1


def test_a_sigkilled_worker_s_job_is_resumed_by_another(sessions, settings, start_worker):
    first = start_worker("w1")
    job_id = add_job(sessions, spec=training_spec(epochs=300))
    queue.wake(settings, queue.TRAIN_TASK, job_id)
    _wait_for(lambda: _job(sessions, job_id).epochs_done >= 3, "a few epochs")
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker, main process and child, at once
    first.wait(timeout=30)
    killed_at = _job(sessions, job_id).epochs_done
    start_worker("w2")  # its reaper finds the expired lease and re-sends the lost message
    _wait_for(lambda: _job(sessions, job_id).status == "succeeded", "the job to succeed")
    job = _job(sessions, job_id)
    assert job.attempts == 2 and job.epochs_done == 300 and killed_at < 300
    with sessions() as session:
        epochs = list(session.scalars(select(EpochMetric.epoch)
                                      .where(EpochMetric.job_id == job_id)
                                      .order_by(EpochMetric.epoch)))
    assert epochs == list(range(1, 301))  # each epoch exactly once
