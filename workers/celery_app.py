"""The Celery app, configured in one place: JSON only, ids as arguments, the database in charge.

Run a worker with `bptt worker` (or `celery -A workers.celery_app worker`). Settings come from
the same BPTT_* variables as the API.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings

from celery import Celery, signals
from celery.exceptions import SecurityWarning
from kombu.transport import sqlalchemy as sqla_transport
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.logs import configure_logging
from service.settings import Settings
from service.store import worker_speed
from service.store.db import session_factory
from service.store.forecast_batches import answer_batch
from service.store.queue import FORECAST_TASK, TRAIN_TASK, prepare_broker
from workers import READY_FILE_ENV
from workers.attempts import run_training
from workers.reaper import Reaper

SQLA_POLL_SECONDS = 0.1
WARM_UP_LIMIT_SECONDS = 600.0  # a cold compile of every kernel, at a load of several per core

log = logging.getLogger(__name__)
settings = Settings.from_env()
app = Celery("bptt", broker=settings.broker_url, set_as_current=True)
app.conf.update(
    # JSON only: a message is an id, and nothing from the broker is ever unpickled.
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,  # outcomes live in the database
    # Acknowledge when the task ends, not when it starts: a worker killed mid-job leaves its
    # message to be delivered again rather than lost...
    task_acks_late=True,
    # ...and when a prefork child dies (SIGKILL, OOM) the message goes back to the queue at once
    # instead of waiting for the visibility timeout.
    task_reject_on_worker_lost=True,
    # Take one message at a time: a long training job must not hold others hostage behind it
    # while another worker sits idle.
    worker_prefetch_multiplier=1,
    # Redis redelivers a message unacknowledged for visibility_timeout, even to a second worker
    # while the first still trains it: harmless, as its claim fails while the lease is renewed.
    # Redis only: kombu's SQLAlchemy transport hands its options to create_engine, which
    # refuses unknown ones (and that transport has no visibility timeout to set).
    broker_transport_options=(
        {"visibility_timeout": settings.visibility_timeout_seconds,
         # kombu looks for overdue messages only every interval × throttle seconds (100 s by
         # default); look every few seconds so the visibility timeout means what it says.
         "unacked_restore_interval": min(10, max(1, settings.visibility_timeout_seconds // 2)),
         "unacked_restore_throttle": 1}
        if settings.broker_url.startswith(("redis", "rediss")) else {}),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Celery's prefork pool, mended for a pool process killed while idle (workers/pool.py
    # says how): `bptt worker` asks for prefork, and Celery then takes the pool set here.
    worker_pool="workers.pool:TaskPool",
    # A pool process must say it is up within this many seconds of its fork or it is killed
    # (Celery's default is 4). Its start-up loads or compiles the kernels (_warm_kernels):
    # under load, or after a Numba upgrade empties the cache, that takes longer, and a process
    # killed for it is replaced by one that takes as long, again and again, while the worker
    # holds its prefetched message. The main process loads them before it forks (_warm_parent),
    # so a replacement usually is up in well under a second.
    worker_proc_alive_timeout=WARM_UP_LIMIT_SECONDS,
)

# Celery warns on every start as root (or in group sudo/wheel) and refuses to start only when
# it accepts pickle: C_FORCE_ROOT lifts that refusal and nothing else (check_privileges in
# celery/platforms.py), so it would not silence this. We drop the warning under `bptt up` only
# (which names a ready file), and only while the worker accepts JSON alone: a message is then a
# task name and an id, never code, and what a task reads was parsed and checked first by the
# API, which `bptt up` runs as the same user. Privileges are whoever ran `bptt up` (often root
# in a container); dropping them would need a user that owns the data dir. The production image
# runs `bptt worker` as its own user, and there the warning stays.
if os.environ.get(READY_FILE_ENV) and app.conf.accept_content == ["json"]:
    warnings.filterwarnings("ignore", category=SecurityWarning,
                            message="You're running the worker with superuser privileges")

if settings.broker_url.startswith("sqla+"):
    # kombu's SQLAlchemy transport polls its table once a second and cannot take the usual
    # polling_interval option (it hands every option on to create_engine), so set the class
    # default: a job then starts within a tenth of a second of its submission, not a second.
    sqla_transport.Transport.polling_interval = SQLA_POLL_SECONDS

_sessions: dict[int, sessionmaker[Session]] = {}  # per process: engines do not survive a fork


def sessions() -> sessionmaker[Session]:
    """This process's session factory (a forked child builds its own engine)."""
    pid = os.getpid()
    if pid not in _sessions:
        _sessions[pid] = session_factory(settings)
    return _sessions[pid]


@app.task(name=TRAIN_TASK)
def train_job(job_id: str) -> str:
    """Claim and train one job (a duplicate or stale delivery does nothing)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{train_job.request.id}"
    outcome = run_training(sessions(), settings, job_id, owner)
    log.info("job %s: %s", job_id, outcome, extra={"job_id": job_id, "outcome": outcome})
    return outcome


@signals.setup_logging.connect
def _json_logs(**_) -> None:
    """The API's JSON log lines for the workers too (Celery's own records included)."""
    configure_logging(settings.log_level)


@app.task(name=FORECAST_TASK)
def forecast_batch(batch_id: str) -> str:
    """Answer one asynchronous forecast batch, with the same code as the API's own forecasts."""
    return answer_batch(sessions(), settings, batch_id)


@signals.worker_init.connect
def _prepare_broker(**_) -> None:
    """Create the SQLite broker's queue before this worker's consumer does, for workers started
    without `bptt up` (which creates it once first): two consumers creating it at once kill one
    of them (queue.prepare_broker says how)."""
    if settings.broker_url.startswith("sqla+"):
        try:
            prepare_broker(settings.broker_url)
        except Exception as exc:  # the consumer then tries, and reports, as it always did
            log.warning("could not prepare the broker's queue: %s", exc)


@signals.worker_init.connect
def _warm_parent(**_) -> None:
    """Load (or compile) the kernels in the main process before it forks its pool: each pool
    process, and each one started to replace a killed one, then inherits them."""
    seconds = bptt.warm_kernels()
    log.info("kernels loaded before the pool starts, in %.2f s", seconds)


@signals.worker_process_init.connect
def _warm_kernels(**_) -> None:
    """Compile or load every kernel when a worker process starts, not on its first job; then
    time them, for the API's expected durations."""
    seconds = bptt.warm_kernels()
    log.info("kernels ready in %.2f s", seconds)
    _measure_speed()
    _tell_bptt_up("kernels")


def _measure_speed() -> None:
    """Time a few training steps (about 0.3 s) and record this worker's kernel speed: at
    submit the API turns each job's estimated work into seconds with the latest records
    (service.store.worker_speed). A failure only leaves the estimates on older records."""
    try:
        speed = bptt.measure_kernel_speed(threads=settings.train_threads)
        with sessions()() as session:
            worker_speed.record(session, worker=f"{socket.gethostname()}:{os.getpid()}",
                                threads=settings.train_threads, speed=speed)
            session.commit()
    except Exception as exc:
        log.warning("could not record this worker's kernel speed: %s", exc)
        return
    log.info("kernel speed: %.1f GFLOP/s, %.2f G gate elements/s, %.0f us a pass",
             speed.gflops, speed.gelements, speed.pass_seconds * 1e6)


@signals.worker_ready.connect
def _consuming(**_) -> None:
    _tell_bptt_up("consuming")


def _tell_bptt_up(what: str) -> None:
    """Append `what` to the ready file `bptt up` named, if it started this worker: it prints its
    URL only once every worker is consuming and has its kernels loaded."""
    path = os.environ.get(READY_FILE_ENV)
    if path:
        with open(path, "a") as ready:  # one short append per line: writers never interleave
            ready.write(what + "\n")


_reaper: list[Reaper] = []


@signals.worker_ready.connect
def _start_reaper(**_) -> None:
    """Sweep for lost and orphaned jobs from the worker's main process."""
    reaper = Reaper(sessions(), settings)
    reaper.start()
    _reaper.append(reaper)


@signals.worker_shutdown.connect
def _stop_reaper(**_) -> None:
    for reaper in _reaper:
        reaper.stop()
