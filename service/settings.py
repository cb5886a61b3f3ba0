"""Settings: one frozen object read from `BPTT_*` environment variables, with safe defaults.

The defaults describe the embedded deployment: everything lives in one data directory, the
database is a SQLite file and the Celery broker is kombu's SQLAlchemy transport on another SQLite
file, so nothing needs installing. Production overrides the URLs (PostgreSQL, Redis).

| variable | default |
|---|---|
| BPTT_DATA_DIR | ./data (resolved against the working directory at start-up) |
| BPTT_DATABASE_URL | sqlite:///<data_dir>/bptt.db |
| BPTT_BROKER_URL | sqla+sqlite:///<data_dir>/broker.db |
| BPTT_LOG_LEVEL | INFO |
| BPTT_MAX_BODY_BYTES | 33554432 (32 MiB) |
| BPTT_MAX_SERIES | 10000 |
| BPTT_MAX_POINTS | 1000000 |
| BPTT_MAX_HIDDEN_SIZE | 256 |
| BPTT_MAX_EPOCHS | 1000 |
| BPTT_MAX_HORIZON | 512 |
| BPTT_MAX_INPUT_SIZE | 1024 |
| BPTT_MAX_BATCH_SIZE | 4096 |
| BPTT_MAX_ENSEMBLE | 20 |
| BPTT_MAX_CV_WINDOWS | 20 |
| BPTT_MAX_JOB_FLOPS | 1000000000000000 (1e15: about 1.5 h of one worker's GEMMs here) |
| BPTT_MAX_JOB_MEMORY | 2147483648 (2 GiB a job may add to its worker) |
| BPTT_MAX_QUEUED_JOBS_PER_TENANT | 20 |
| BPTT_MAX_SWEEP_TRIALS | 64 |
| BPTT_MAX_RUNNING_SWEEPS_PER_TENANT | 2 |
| BPTT_SYNC_FORECAST_MAX_SERIES | 100 |
| BPTT_MAX_DATASET_BYTES | 2147483648 (2 GiB; the body as sent, and its text once unzipped) |
| BPTT_MAX_DATASET_SERIES | 1000000 |
| BPTT_MAX_DATASET_POINTS | 250000000 |
| BPTT_MAX_DATASET_SERIES_LENGTH | 10000000 |
| BPTT_MAX_DATASETS_PER_TENANT | 100 |
| BPTT_LEASE_SECONDS | 60 |
| BPTT_REAPER_INTERVAL_SECONDS | 10 |
| BPTT_REQUEUE_AFTER_SECONDS | 30 |
| BPTT_MAX_ATTEMPTS | 3 |
| BPTT_JOB_TIME_LIMIT_SECONDS | 14400 (4 h of training per attempt) |
| BPTT_JOB_MEMORY_CEILING | 4294967296 (4 GiB a job may allocate in its worker) |
| BPTT_TRAIN_THREADS | 1 |
| BPTT_FORECAST_THREADS | 2 |
| BPTT_VISIBILITY_TIMEOUT_SECONDS | 3600 |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PREFIX = "BPTT_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    """Everything the API, the workers and the CLI are configured with.

    Empty URLs are derived from data_dir when the object is created; dataclasses.replace() with
    another data_dir keeps URLs already derived, so build a new object for another data dir.
    """

    data_dir: Path = Path("data")  # made absolute (against the working directory) at creation
    # Empty means "derive from data_dir"; always a full URL once the object exists.
    database_url: str = ""
    # The broker is only a wake-up call (the database is the source of truth), so a server-less
    # SQLite transport is enough for one machine.
    broker_url: str = ""
    log_level: str = "INFO"

    # Request limits: bad input is refused at the door, before any row or message exists.
    max_body_bytes: int = 32 * 1024 * 1024  # larger bodies answer 413 without being read
    max_series: int = 10_000  # series in one training or forecast request
    max_points: int = 1_000_000  # values summed over all series of one request
    max_hidden_size: int = 256  # per layer; compute grows with its square
    max_epochs: int = 1_000
    max_horizon: int = 512  # steps forecast at once (the dense head's width)
    # Each of these multiplies a job's compute or memory; the job's total is bounded below.
    max_input_size: int = 1024  # window.input_size: steps read (the default rule stops at 256)
    max_batch_size: int = 4096  # training.batch_size: the per-step caches grow with it
    max_ensemble: int = 20  # training.ensemble: four times the default of 5 members
    max_cv_windows: int = 20  # cross_validation.windows (the engine's own bound)
    # Admission control: a job whose estimate (bptt.estimate_cost, from its data and spec at
    # submit) is over either is refused with 422 naming what drives it. Chosen for one worker
    # of the 2-core, 24 GB machine the project is tested on: 1e15 FLOPs are about 1.5 hours of
    # its measured 190 GFLOP/s, and 2 GiB per job leave room for four workers and the ceiling
    # below. A default job on the largest inline request (1M points) is within both (1.9e13
    # FLOPs, 0.53 GiB: 15,000 updates a member). A job whose duration if every planned epoch
    # runs (at the workers' measured speed) is over job_time_limit_seconds is refused too: it
    # might not finish.
    max_job_flops: int = 1_000_000_000_000_000
    max_job_memory: int = 2 * 1024**3  # bytes a job adds to its worker's memory at its peak
    # Jobs a tenant may have queued at once; one more answers 429 so nobody floods the workers.
    max_queued_jobs_per_tenant: int = 20
    # A sweep's trials are jobs but count against these instead of the queued-jobs quota (a
    # sweep queues all its trials at once by design).
    max_sweep_trials: int = 64
    max_running_sweeps_per_tenant: int = 2
    # Forecast requests up to this many series are answered in the request; larger ones become an
    # asynchronous forecast batch (202) so a request never holds a web worker for long.
    sync_forecast_max_series: int = 100
    # Uploaded datasets (POST /v1/datasets): streamed, parsed a block at a time and stored as
    # compressed arrays, so their limits are far above the inline ones. A job on a dataset
    # holds its series in one worker's memory (8 bytes a point): max_dataset_points bounds that.
    max_dataset_bytes: int = 2 * 1024**3  # the body as sent; and its text after gunzip
    max_dataset_series: int = 1_000_000
    max_dataset_points: int = 250_000_000  # 2 GB as float64 in a worker
    # One series is sorted in memory on its own when it is longer than a sorting block.
    max_dataset_series_length: int = 10_000_000
    max_datasets_per_tenant: int = 100  # stored at once; one more answers 429

    # Workers. A claim holds a job for lease_seconds; the worker renews it every third of that
    # while it trains, so a dead worker's job is free again within one lease.
    lease_seconds: int = 60
    # The reaper's sweep: every reaper_interval_seconds it re-sends jobs queued for longer than
    # requeue_after_seconds (their message was lost) and jobs whose lease expired (their worker
    # died). Duplicate messages are harmless: the claim lets only one worker through.
    reaper_interval_seconds: int = 10
    requeue_after_seconds: int = 30
    # Attempts a job or forecast batch gets: one that failed (not by diverging) or lost its
    # worker (killed, out of memory) this many times stays failed.
    max_attempts: int = 3
    # Limits a worker enforces on each attempt whatever the estimate said: past either, the job
    # fails with the limit named and the worker goes on to the next job. The time limit is
    # checked between batches (a running kernel is never interrupted); it is set well above
    # the longest job admission lets through. The ceiling is on what the attempt allocates
    # beyond the worker's own memory, twice max_job_memory: estimates are within 2x of
    # measured (benchmarks/cost.py), and four workers at the ceiling still fit in 24 GB.
    job_time_limit_seconds: int = 4 * 3600
    job_memory_ceiling: int = 4 * 1024**3
    # Threads per training job: a job's ensemble members train side by side, one per thread,
    # with the same weights as on one (bptt.members). One job per core suits 1; `bptt up` sets
    # the machine's cores divided among its workers when this is not set.
    train_threads: int = 1
    # Engine threads per forecast (the API's answers and the workers' batches): thousands of
    # series are split across them; fewer than 16 series always run on one.
    forecast_threads: int = 2
    # Redis redelivers an unacknowledged message after this long, even while its job still
    # trains; the claim turns such a duplicate into a no-op, so this only bounds how long the
    # message of a vanished worker waits.
    visibility_timeout_seconds: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: os.environ); raise ValueError naming bad ones."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        errors: list[str] = []
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            try:
                values[f.name] = _parse(f.name, f.type, raw)
            except ValueError as exc:
                errors.append(f"{name}={raw!r}: {exc}")
        if errors:
            raise ValueError("invalid settings: " + "; ".join(errors))
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        """Resolve the data dir and derive the URLs left empty from it."""
        # object.__setattr__: the dataclass is frozen, and this is still its construction.
        data_dir = Path(self.data_dir).expanduser().resolve()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'bptt.db'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", f"sqla+sqlite:///{data_dir / 'broker.db'}")

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (the embedded deployment)."""
        return self.database_url.startswith("sqlite")


def _parse(name: str, type_name: object, raw: str) -> object:
    """One environment value converted to its field's type (annotations are strings here)."""
    if type_name in ("int", int):
        try:
            value = _integer(raw.replace("_", ""))
        except ValueError:
            raise ValueError("not an integer") from None
        if value < 1:
            raise ValueError("must be at least 1")
        return value
    if type_name in ("Path", Path):
        return Path(raw)
    if name == "log_level":
        level = raw.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level
    return raw


def _integer(text: str) -> int:
    """An integer, also written with an exponent (2e14, for FLOPs and bytes)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)  # ValueError for what is no number at all
        if not number.is_integer():
            raise ValueError(text) from None
        return int(number)
