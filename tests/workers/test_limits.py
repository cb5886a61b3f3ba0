"""A worker's own limits on each job, with real worker processes: a job past the time limit or
the memory ceiling fails with that limit named, and the same worker process trains the next
job. Workers record their kernel speed when they start, and every attempt its measured use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

import bptt
from service.store import queue, worker_speed
from service.store.tables import WorkerCalibration

from .conftest import add_job, job_row, series, training_spec, wait_for

FINISHED = ("succeeded", "failed", "cancelled")


def _pool_children(pid: int) -> set[int]:
    """The prefork pool's child processes of the worker whose main process is `pid`."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(c) for c in (task / "children").read_text().split()}
    return children


def _ends(sessions, job_id: str):
    wait_for(lambda: job_row(sessions, job_id).status in FINISHED, f"job {job_id} to end")
    return job_row(sessions, job_id)


def _then_a_small_job_succeeds_in_the_same_process(sessions, settings, worker) -> None:
    child = _pool_children(worker.pid)
    job_id = add_job(sessions)
    queue.wake(settings, queue.TRAIN_TASK, job_id)
    assert _ends(sessions, job_id).status == "succeeded"
    assert worker.poll() is None and _pool_children(worker.pid) == child  # never restarted


def test_a_job_past_the_time_limit_fails_and_the_worker_trains_the_next(
        sessions, settings, start_worker):
    worker = start_worker("w1", BPTT_JOB_TIME_LIMIT_SECONDS="2")
    wait_for(lambda: len(_pool_children(worker.pid)) == 1, "the pool's child")
    long = add_job(sessions, spec=training_spec(epochs=1000), data=series(4, 300))
    queue.wake(settings, queue.TRAIN_TASK, long)
    job = _ends(sessions, long)
    assert job.status == "failed" and job.attempts == 1  # not retried: it would run as long
    assert job.error == "exceeded the job time limit of 2 s (BPTT_JOB_TIME_LIMIT_SECONDS)"
    assert 0 < job.epochs_done < 1000
    wait_for(lambda: job_row(sessions, long).usage is not None, "the attempt's usage")
    assert 2 <= job_row(sessions, long).usage["seconds"] < 60
    _then_a_small_job_succeeds_in_the_same_process(sessions, settings, worker)


def test_a_job_past_the_memory_ceiling_fails_and_the_worker_trains_the_next(
        sessions, settings, start_worker):
    worker = start_worker("w1", BPTT_JOB_MEMORY_CEILING=str(64 * 2**20))
    wait_for(lambda: len(_pool_children(worker.pid)) == 1, "the pool's child")
    # batches of 4,096 windows of 512 steps: the first update's caches alone (gates and states
    # of every step, 512 x 4,096 x 8 x 6 floats) take some 400 MB, far past a 64 MiB ceiling
    spec = training_spec(epochs=2)
    spec["window"]["input_size"] = 512
    spec["training"]["batch_size"] = 4096
    big = add_job(sessions, spec=spec, data=series(20, 5000))
    queue.wake(settings, queue.TRAIN_TASK, big)
    job = _ends(sessions, big)
    assert job.status == "failed" and job.attempts == 1
    assert job.error == "exceeded the memory ceiling of 64 MiB (BPTT_JOB_MEMORY_CEILING)"
    _then_a_small_job_succeeds_in_the_same_process(sessions, settings, worker)


def test_workers_record_their_kernel_speed_and_each_attempt_its_use(
        sessions, settings, start_worker):
    start_worker("w1")
    wait_for(lambda: _calibrations(sessions), "the worker's kernel speed")
    row = _calibrations(sessions)[0]
    assert row.threads == settings.train_threads and row.worker.split(":")[1].isdigit()
    assert row.gflops > 0 and row.gelements > 0 and row.pass_seconds > 0
    with sessions() as session:
        current = worker_speed.current(session, threads=settings.train_threads)
    assert current.measured == 1 and current.speed == bptt.KernelSpeed(
        row.gflops, row.gelements, row.pass_seconds)

    job_id = add_job(sessions)
    queue.wake(settings, queue.TRAIN_TASK, job_id)
    assert _ends(sessions, job_id).status == "succeeded"
    wait_for(lambda: job_row(sessions, job_id).usage is not None, "the attempt's usage")
    usage = job_row(sessions, job_id).usage
    assert usage["seconds"] > 0 and 0 <= usage["peak_bytes"] < usage["peak_rss_bytes"]


def _calibrations(sessions) -> list[WorkerCalibration]:
    with sessions() as session:
        return list(session.scalars(select(WorkerCalibration)))
