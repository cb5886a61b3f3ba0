"""Running the pieces: the API under gunicorn, Celery workers, and what `bptt up` prepares for
them.

`bptt up` is the embedded deployment: it migrates the database, creates the broker's queue,
compiles the kernels, starts the API and N worker processes on the same settings (SQLite and
the SQLite broker by default) under service.supervisor, prints where to find them, and stops
them all on Ctrl-C. The same commands run each piece alone in production (`bptt api`,
`bptt worker`).
"""

from __future__ import annotations

import gc
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

STARTUP_TIMEOUT_S = 120  # a process whose kernels are already in Numba's cache starts in seconds
STOP_TIMEOUT_S = 20  # a worker finishing its current batch, then a hard kill
# Two processes (Python code runs on one core per process) with two threads each, so that a
# status poll need not wait behind a forecast. More threads per process only add waits for the
# GIL: with 32 clients polling on 2 cores, 4 threads per process gave a server-side p99 of
# 12-30 ms against 4-5 ms with 2, at the same throughput (benchmarks/api.py).
API_PROCESSES, API_THREADS = 2, 2


def api_command(host: str, port: int, processes: int = API_PROCESSES,
                threads: int = API_THREADS, control_socket: bool = True) -> list[str]:
    """gunicorn serving api_app(), gthread workers. No gunicorn access log: the service writes
    its own JSON line per request (service.logs), and a second line cost ~5% of a poll's CPU.
    control_socket=False turns off gunicorn's control socket (gunicorn >= 25.1), whose default
    path ($XDG_RUNTIME_DIR or ~/.gunicorn, then gunicorn.ctl) every instance of a user shares and
    takes over from the one before."""
    command = [sys.executable, "-m", "gunicorn", "service.serve:api_app()", "--bind",
               f"{host}:{port}", "--workers", str(processes), "--threads", str(threads),
               "--worker-class", "gthread", "--graceful-timeout", "10"]
    if not control_socket and _gunicorn_has_control_socket():
        command.append("--no-control-socket")
    return command


def _gunicorn_has_control_socket() -> bool:
    from gunicorn.config import KNOWN_SETTINGS  # light: gunicorn's option table

    return any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS)


def api_app() -> Flask:
    """create_app() as each gunicorn worker process serves it, with what it loaded frozen."""
    from service.app import create_app  # here, not at the top: the CLI imports this module too

    app = create_app()
    # Everything loaded so far (Flask, SQLAlchemy, pydantic, NumPy, Numba: a few hundred
    # thousand objects) lives as long as the process. Frozen, the garbage collector no longer
    # walks it on every full collection: those cost ~0.2 s each, and a 10,000-series forecast
    # request allocates enough objects to trigger two of them (and a status poll may be the one
    # that stalls behind a collection).
    gc.collect()
    gc.freeze()
    return app


def threads_per_worker(workers: int) -> int:
    """Training threads per worker for `bptt up` when BPTT_TRAIN_THREADS is not set: the cores
    this process may use, shared out among the workers (at least one each). More would only
    make the workers' threads take turns on the same cores."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, workers))


def worker_command(name: str, concurrency: int = 1) -> list[str]:
    """A Celery worker; one training job per process (concurrency) at a time."""
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--pool", "prefork",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle"]


# Compiles in a child, not in `bptt up` itself: the supervisor then never holds Numba and LLVM
# (a few hundred MB) for its lifetime, and the child has exactly the workers' environment, so
# it fills the very cache (NUMBA_CACHE_DIR or Numba's default) that they then load from.
# The float32 kernels (what training runs in), compiled by one process per core at once, a
# default job's first (bptt.warmup says how).
WARM_KERNELS_COMMAND = [
    sys.executable, "-c",
    "import bptt; bptt.warm_kernels(processes=bptt.default_compile_processes(), "
    "progress=lambda done, total: print(done, total, flush=True))",
]


def kernel_cache_env(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    """env with NUMBA_CACHE_DIR set to data_dir/numba-cache when Numba's default is unwritable.

    Numba caches a kernel in __pycache__ beside its source file when it can write there (an
    editable install, as README's): leave that alone, one cache for every data dir. In a
    read-only site-packages Numba would fall back to a per-user directory that may not be
    writable either (a container's home); the data dir always is, as the database lives there.
    """
    if env.get("NUMBA_CACHE_DIR"):
        return env
    spec = importlib.util.find_spec("bptt")
    package = Path(spec.origin).parent if spec and spec.origin else None
    if package is not None and all(_writable(folder / "__pycache__")
                                   for folder in (package, package / "cells")):
        return env
    return {**env, "NUMBA_CACHE_DIR": str(data_dir / "numba-cache")}


def _writable(folder: Path) -> bool:
    """Whether files can be created in folder (made if missing), as Numba itself checks."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether host:port is taken, so `bptt up` can say so instead of restarting gunicorn."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


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
        if answers_ok(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {STARTUP_TIMEOUT_S} s")


def answers_ok(url: str) -> bool:
    """Whether GET url answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


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
            signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send sig to the child's whole process group (its own children too, orphans included)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
