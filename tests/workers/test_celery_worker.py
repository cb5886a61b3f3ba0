"""Real Celery worker processes on the embedded (SQLite) broker: wake-ups, a SIGKILLed worker."""

from __future__ import annotations

import json
import os
import platform
import signal
from pathlib import Path

from service.store import queue

from .conftest import add_job, job_row, metric_epochs, training_spec, wait_for


def test_a_worker_trains_a_job_it_is_woken_for(sessions, settings, start_worker):
    start_worker("w1")
    job_id = add_job(sessions)
    assert queue.wake(settings, queue.TRAIN_TASK, job_id)
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    job = job_row(sessions, job_id)
    assert job.attempts == 1
    # the worker's logs are JSON lines, and its training lines name the job and the tenant;
    # the outcome line is written after the commit the test saw, so wait for it too
    def lines_of_this_job():
        lines = [json.loads(line) for line in
                 (settings.data_dir / "w1.log").read_text().splitlines() if line.startswith("{")]
        return [entry for entry in lines if entry.get("job_id") == job_id]

    wait_for(lambda: any(entry.get("outcome") == "succeeded" for entry in lines_of_this_job()),
             "the worker to log the outcome")
    assert any(entry.get("tenant_id") == job.tenant_id for entry in lines_of_this_job())


def test_a_sigkilled_worker_s_job_is_resumed_by_another(sessions, settings, start_worker):
    first = start_worker("w1")
    job_id = add_job(sessions, spec=training_spec(epochs=300))
    queue.wake(settings, queue.TRAIN_TASK, job_id)
    wait_for(lambda: job_row(sessions, job_id).epochs_done >= 3, "a few epochs")
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker, main process and child, at once
    first.wait(timeout=30)
    killed_at = job_row(sessions, job_id).epochs_done
    start_worker("w2")  # its reaper finds the expired lease and re-sends the lost message
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    job = job_row(sessions, job_id)
    assert job.attempts == 2 and job.epochs_done == 300 and killed_at < 300
    assert metric_epochs(sessions, job_id) == list(range(1, 301))  # each epoch exactly once


def _pool_children(worker_pid: int) -> list[int]:
    """The worker's child processes (a replacement is forked by the pool's supervisor thread,
    so every thread's children are read)."""
    return sorted(int(pid) for task in Path(f"/proc/{worker_pid}/task").iterdir()
                  for pid in (task / "children").read_text().split())


READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())


def _blocked_reading_a_pipe(pid: int) -> bool:
    """Whether the process waits in read(2) on a pipe: an idle pool process does so for its
    next job, holding the job queue's read lock (workers/pool.py). Elsewhere than x86-64 and
    arm64, the kernel's name for where it sleeps says so."""
    if READ_SYSCALL is None:
        return "pipe_read" in Path(f"/proc/{pid}/wchan").read_text()
    fields = Path(f"/proc/{pid}/syscall").read_text().split()
    if not fields or fields[0] != READ_SYSCALL:
        return False
    return os.readlink(f"/proc/{pid}/fd/{int(fields[1], 16)}").startswith("pipe:")


def test_a_pool_process_killed_while_idle_does_not_stall_its_worker(sessions, settings,
                                                                   start_worker):
    # An idle pool process waits for its next job holding the job queue's read lock; killed
    # there, it would leave its replacement waiting for that lock forever (workers/pool.py).
    worker = start_worker("w1")
    first = add_job(sessions)
    queue.wake(settings, queue.TRAIN_TASK, first)
    wait_for(lambda: job_row(sessions, first).status == "succeeded", "the first job")
    wait_for(lambda: len(_pool_children(worker.pid)) == 1, "one pool process")
    (idle,) = _pool_children(worker.pid)
    # The job's row says succeeded before its process sends the result and takes the lock
    # again: on a loaded machine a kill right away could land between the two.
    wait_for(lambda: _blocked_reading_a_pipe(idle), "the pool process to wait for a job")
    os.kill(idle, signal.SIGKILL)
    wait_for(lambda: _pool_children(worker.pid) not in ([], [idle]), "its replacement")

    second = add_job(sessions)
    queue.wake(settings, queue.TRAIN_TASK, second)
    wait_for(lambda: job_row(sessions, second).status == "succeeded", "the second job")
    assert job_row(sessions, second).attempts == 1
    log = (settings.data_dir / "w1.log").read_text()
    assert f"pool process {idle} died holding the job queue's read lock: released" in log
