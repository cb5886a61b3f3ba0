"""Running the pieces: the API under gunicorn, Celery workers, and `bptt up`, which runs both.

`bptt up` is the embedded deployment: it migrates the database, issues a token, starts the API
and N worker processes on the same settings (SQLite and the SQLite broker by default), prints
where to find them, and stops them all on Ctrl-C. The same commands run each piece alone in
production (`bptt api`, `bptt worker`).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

STARTUP_TIMEOUT_S = 120  # first start compiles the kernels into Numba's cache
STOP_TIMEOUT_S = 20  # a worker finishing its current batch, then a hard kill
# Two processes (Python code runs on one core per process) with two threads each, so that a
# status poll need not wait behind a forecast. More threads per process only add waits for the
# GIL: with 32 clients polling on 2 cores, 4 threads per process gave a server-side p99 of
# 12-30 ms against 4-5 ms with 2, at the same throughput (benchmarks/api.py).
API_PROCESSES, API_THREADS = 2, 2
BROKER_PREPARE_ATTEMPTS = 3


def api_command(host: str, port: int, processes: int = API_PROCESSES,
                threads: int = API_THREADS) -> list[str]:
    """gunicorn serving api_app(), gthread workers. No gunicorn access log: the service writes
    its own JSON line per request (service.logs), and a second line cost ~5% of a poll's CPU."""
    return [sys.executable, "-m", "gunicorn", "service.serve:api_app()", "--bind",
            f"{host}:{port}", "--workers", str(processes), "--threads", str(threads),
            "--worker-class", "gthread", "--graceful-timeout", "10"]


def api_app() -> Flask:
    """create_app() as each gunicorn worker process serves it, with what it loaded frozen."""
    from .app import create_app  # here, not at the top: the CLI imports this module too

    app = create_app()
    # Everything loaded so far (Flask, SQLAlchemy, pydantic, NumPy, Numba: a few hundred
    # thousand objects) lives as long as the process. Frozen, the garbage collector no longer
    # walks it on every full collection: those cost ~0.2 s each, and a 10,000-series forecast
    # request allocates enough objects to trigger two of them (and a status poll may be the one
    # that stalls behind a collection).
    gc.collect()
    gc.freeze()
    return app


def worker_command(name: str, concurrency: int = 1) -> list[str]:
    """A Celery worker; one training job per process (concurrency) at a time."""
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--pool", "prefork",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle"]


def prepare_broker(broker_url: str) -> None:
    """Create the broker's tables and the workers' queue, so that no two processes race to.

    kombu's SQLAlchemy transport creates both on first use, unguarded across processes: two
    workers starting at once on a fresh broker both find no `celery` row and insert one, and the
    loser dies of `UNIQUE constraint failed: kombu_queue.name` (or of "table already exists").
    Once they exist every process only reads them. A loser of the race here (two `bptt worker`
    starting at once) retries and then finds them. On Redis the declaration adds a binding to a
    set, which nothing can race on.
    """
    from kombu import Connection, Exchange, Queue  # here: other commands need no kombu

    # Celery's default queue, as its workers declare it (no routes send tasks elsewhere).
    queue = Queue("celery", Exchange("celery", "direct"), routing_key="celery")
    for attempt in range(1, BROKER_PREPARE_ATTEMPTS + 1):
        try:
            with Connection(broker_url) as connection:
                queue.bind(connection.default_channel).declare()
            return
        except Exception:  # the race's loser: IntegrityError, OperationalError, by transport
            if attempt == BROKER_PREPARE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


def start(command: Sequence[str], env: dict[str, str], quiet: bool = False) -> subprocess.Popen:
    """A child in its own process group, so that stopping it stops its own children too.
    quiet: discard its output (benchmarks and tests) instead of sharing this terminal."""
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(list(command), env=env, start_new_session=True, stdout=output,
                            stderr=output)


def wait_until_healthy(url: str, processes: list[subprocess.Popen]) -> None:
    """Poll GET url until it answers 200; raise if a child dies or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0].args[:4]} exited with status {dead[0].returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {STARTUP_TIMEOUT_S} s")


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each child (gunicorn and Celery then stop their own workers gracefully), then
    SIGKILL the whole process group of any still running after STOP_TIMEOUT_S."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def supervise(processes: list[subprocess.Popen]) -> int:
    """Block until Ctrl-C/SIGTERM (0) or until a child dies (1); then stop everything."""
    stopping = {"requested": False}

    def request_stop(signum, frame) -> None:
        stopping["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        while not stopping["requested"]:
            if any(p.poll() is not None for p in processes):
                status = 1
                break
            time.sleep(0.2)
    finally:
        stop_all(processes)
    return status
