"""The tables (SQLAlchemy models) the API and the workers share.

The schema itself is created only by the Alembic migrations in migrations/; these classes must
match them (tests/service/test_migrations.py compares the two).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
FORECAST_STATUSES = ("queued", "running", "succeeded", "failed")
SWEEP_STATUSES = ("running", "succeeded", "failed", "cancelled")

# Deterministic constraint names, so that later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random id for a job or a forecast batch (a UUID4 string)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite as on PostgreSQL."""

    # SQLite has no time zones and hands back naive values: store UTC, re-attach UTC on read.
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes (their zone is a guess); convert the rest to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value (e.g. utcnow())")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite returns; normalize PostgreSQL's to UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention above."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Tenant(Base):
    """An owner of jobs; every API token belongs to exactly one."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 only: a database leak reveals no usable token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    # Hex SHA-256 of the whole token. A plain hash (no salt, no slow KDF) is enough because the
    # token is 256 random bits, not a guessable password; and it makes lookup an index seek.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, for display
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Job(Base):
    """A training job; the database row is the source of truth, the broker only a wake-up."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        # Idempotency keys are scoped per tenant; NULL keys never collide (NULLs are distinct).
        UniqueConstraint("tenant_id", "idempotency_key"),
        # GET /v1/jobs: a tenant's jobs, filtered by status, newest first.
        Index("ix_jobs_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        # The reaper: queued jobs nobody picked up, running jobs whose lease has expired.
        Index("ix_jobs_status_lease_expires_at", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The TrainingSpec as submitted (null where the engine chooses from the data): what a warm
    # start merges its own request with, so that open choices are made again for new data.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The spec with every choice made (bptt.resolve_spec at submit): what the job trains with
    # and what its document shows. None for jobs from before revision 0003 until a worker
    # resolves them.
    resolved_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When a message was last sent for it: the reaper re-enqueues only jobs queued for long.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Incremented by each claim; a worker writes only while its attempt is still the current one
    # (fencing), so a stale or duplicate delivery cannot overwrite a newer attempt's work.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(255))  # worker host:pid:task id
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A flag, not a signal: a running Numba kernel cannot be interrupted, so the trainer checks
    # this between batches.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the request body: the same key with another body answers 422, not a replay.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # Epochs numbered across ensemble members, as the metrics rows are. The total is what the job
    # will train in all: the finished members' epochs plus the budget of each one still to
    # train, so it shrinks when early stopping ends a member and equals epochs_done once the job
    # has succeeded (never 388/1500 beside a full bar).
    epochs_done: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    epochs_total: Mapped[int | None] = mapped_column(Integer)  # known once the spec is resolved
    # Each ensemble member that has finished, in order: {"member": 1-based, "epochs",
    # "best_epoch" (within the member), "stopped": "completed" or "early_stopping"}. With
    # epochs_done it says which member trains now and its epoch within it.
    members: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # What a running job is doing: "training", then "cross_validation" (a second fit) if asked.
    stage: Mapped[str | None] = mapped_column(String(32))
    # Batches done in the epoch in progress, as of the latest heartbeat (0 again with each
    # epoch): what the time left counts within an epoch, for jobs of few long epochs.
    epoch_batches: Mapped[int | None] = mapped_column(Integer)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    # A sweep's trial is an ordinary job (claims, leases, reaper, fencing all apply) that knows
    # its sweep; the sweep's progress is counted from these rows, never from broker callbacks.
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True
    )
    trial: Mapped[int | None] = mapped_column(Integer)  # 0-based index within its sweep
    # The job whose model this one continued from. No foreign key: deleting that job later
    # must not touch this one's history.
    warm_start_job_id: Mapped[str | None] = mapped_column(String(36))
    # What sweeps rank trials by: the mean CV MASE when cross-validated, else the mean of the
    # members' best validation losses (lower is better).
    score: Mapped[float | None] = mapped_column(Float)
    cross_validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # per-window scores
    # For people and filters, never read by workers (revision 0008): a free-text name and a
    # map of label keys to values (service/api/schemas.py bounds both).
    name: Mapped[str | None] = mapped_column(String(128))
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # What the job was estimated to cost when it was submitted (service.api.admission: FLOPs,
    # peak bytes, updates, expected seconds at the workers' measured speed), and what its
    # latest attempt measured (seconds, peak memory). None for jobs from before revision 0006.
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The covariates the job declared, {name: "static" | "historical" | "future"} in the order
    # declared (revision 0011); their values are on each stored series item. None: none.
    covariates: Mapped[dict[str, str] | None] = mapped_column(JSON)


class WorkerCalibration(Base):
    """One worker process's timing of its kernels at start (bptt.measure_kernel_speed): what
    turns a job's estimated work into expected seconds on this deployment's workers."""

    __tablename__ = "worker_calibrations"
    __table_args__ = (Index("ix_worker_calibrations_measured_at", "measured_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker: Mapped[str] = mapped_column(String(255))  # host:pid
    threads: Mapped[int] = mapped_column(Integer)  # the engine threads each job trains with
    gflops: Mapped[float] = mapped_column(Float)  # GEMM FLOPs, 1e9 per second
    gelements: Mapped[float] = mapped_column(Float)  # gate elements, 1e9 per second
    pass_seconds: Mapped[float] = mapped_column(Float)  # fixed cost of one update or chunk
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dataset(Base):
    """A job's series: submitted with it, as zlib-compressed JSON (never pickle: it is user
    data), or a reference to an uploaded dataset (and the subset of its series it trains on)."""

    __tablename__ = "datasets"
    __table_args__ = (
        # Exactly one source: the series themselves, or the uploaded dataset that holds them.
        CheckConstraint("(series_zlib IS NULL) <> (uploaded_dataset_id IS NULL)",
                        name="one_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    # service.store.codec.compress_json of [{"id", "values", ...}]; None for a dataset's job
    series_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)
    # No foreign key, as for warm_start_job_id: deleting a dataset that only finished jobs used
    # must not touch their history (the job keeps its model and series states). A queued or
    # running job's dataset cannot be deleted (service.store.dataset_rows.delete_unused).
    uploaded_dataset_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # compress_json of the ids of the dataset's series the job trains on; None: all of them
    series_ids_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)
    num_series: Mapped[int] = mapped_column(Integer)
    num_points: Mapped[int] = mapped_column(Integer)  # summed over all series, gaps included
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UploadedDataset(Base):
    """Series uploaded once (POST /v1/datasets) and referenced by jobs, sweeps and forecasts.

    The values live in uploaded_dataset_chunks as compressed float64 arrays; this row holds what
    describing the dataset and checking a request against it need, without reading them."""

    __tablename__ = "uploaded_datasets"
    __table_args__ = (
        Index("ix_uploaded_datasets_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(255))  # the client's label, e.g. a file name
    format: Mapped[str] = mapped_column(String(16))  # "csv" or "jsonl", as uploaded
    num_series: Mapped[int] = mapped_column(Integer)
    num_points: Mapped[int] = mapped_column(BigInteger)  # gaps included
    num_gaps: Mapped[int] = mapped_column(BigInteger)  # empty y / null values
    min_length: Mapped[int] = mapped_column(Integer)
    max_length: Mapped[int] = mapped_column(Integer)
    # A pandas-style alias ("MS", "D", "h") when every series' timestamps follow one; else None
    frequency: Mapped[str | None] = mapped_column(String(16))
    # The date frequency read from the ds of a CSV upload (none was given); None otherwise,
    # and for datasets stored before revision 0010
    freq_inferred: Mapped[str | None] = mapped_column(String(16))
    # Timestamps absent on a series' grid between its first and last ds: each is a gap (NaN),
    # as with inline CSV. (Before revision 0010: rows absent, their neighbours made adjacent.)
    missing_timestamps: Mapped[int | None] = mapped_column(BigInteger)
    # [{"min", "max", "series"}]: series per length bin, up to 10 equal-width bins
    length_histogram: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    # compress_json({"ids": [...], "starts": [...], "freqs": [...]}) in storage order (each
    # series' first timestamp and frequency; "freqs" since revision 0010), and the lengths as
    # zlib-compressed little-endian int64 (service.store.codec.compress_ints): what a request
    # against the dataset is checked with, read without touching the values.
    index_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    lengths_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    upload_bytes: Mapped[int] = mapped_column(BigInteger)  # the body as received
    text_bytes: Mapped[int] = mapped_column(BigInteger)  # after gunzip
    stored_bytes: Mapped[int] = mapped_column(BigInteger)  # chunks and index, compressed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The upload's covariate columns (a CSV's columns beyond unique_id,ds,y, a JSON line's
    # "covariates"), numbers per point, in the order stored in each chunk's covariates_zlib;
    # None for a dataset without any (every one from before revision 0012)
    covariate_columns: Mapped[list[str] | None] = mapped_column(JSON)
    # A static table given at upload: its columns' names, and compress_json({name: [a value
    # per series in storage order]}) (numbers, or categories); None without one
    static_columns: Mapped[list[str] | None] = mapped_column(JSON)
    static_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)


class UploadedDatasetChunk(Base):
    """Consecutive series of an uploaded dataset: their values concatenated (NaN for a gap),
    stored as service.store.codec.compress_floats makes them. Chunks hold about a fixed
    number of points, so reading a few series reads a few small chunks."""

    __tablename__ = "uploaded_dataset_chunks"
    __table_args__ = (UniqueConstraint("dataset_id", "chunk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("uploaded_datasets.id", ondelete="CASCADE"))
    chunk: Mapped[int] = mapped_column(Integer)  # 0-based, in storage order
    first_series: Mapped[int] = mapped_column(Integer)  # index of its first series
    num_series: Mapped[int] = mapped_column(Integer)
    num_points: Mapped[int] = mapped_column(Integer)
    values_zlib: Mapped[bytes] = mapped_column(LargeBinary)
    # The chunk's points' covariate columns (UploadedDataset.covariate_columns), one after the
    # other, each as values_zlib is stored (NaN for a gap): a column is read whole or not at
    # all, and a column of few distinct values compresses on its own. None without any.
    covariates_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)


class EpochMetric(Base):
    """One epoch of one job; a retried epoch replaces its row (see upsert_epoch_metrics)."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (
        UniqueConstraint("job_id", "epoch"),
        # A job's best validation loss (job documents, the list's val_loss sort) in one seek.
        Index("ix_epoch_metrics_job_id_val_loss", "job_id", "val_loss"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(Integer)  # 1-based, as bptt.EpochMetrics
    attempt: Mapped[int | None] = mapped_column(Integer)  # the job attempt that wrote the row
    train_loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)  # None without validation windows
    grad_norm: Mapped[float] = mapped_column(Float)  # mean pre-clip global norm of the epoch
    max_grad_norm: Mapped[float] = mapped_column(Float)
    clip_fraction: Mapped[float] = mapped_column(Float)  # share of updates that were clipped
    learning_rate: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    grad_flow: Mapped[list[float] | None] = mapped_column(JSON)  # mean |dL/dh_t| per time step
    # bptt.insight.epoch_insight: memory horizon, spectral radii, gate saturation, truncation
    # fidelity, suggested clipping threshold
    insight: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Checkpoint(Base):
    """The latest checkpoint of a job (bptt.Checkpoint.to_bytes), replaced after each epoch."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    epoch: Mapped[int] = mapped_column(Integer)  # epochs completed when it was taken
    attempt: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # safetensors: weights + optimizer state
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainedModel(Base):
    """A job's final weights as a safetensors file, with its model card."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True
    )
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))  # hex; served as the download's ETag
    model_card: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Sweep(Base):
    """A search over job specs; its trials are jobs that point back at it."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')",
                        name="status"),
        Index("ix_sweeps_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # base spec, space, strategy, budget
    metric: Mapped[str] = mapped_column(String(16))  # "val_loss" or "cv_mase"
    trials_total: Mapped[int] = mapped_column(Integer)
    # Set by whichever trial finishes last (see workers/sweeps.py); None until then.
    best_job_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # As a job's; its trials take the sweep's labels, and its name with their trial number.
    name: Mapped[str | None] = mapped_column(String(128))
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON)


class SeriesState(Base):
    """What forecasting one training series needs, kept so that clients send only new values:
    its recent raw values and, per ensemble member, the final hidden state after reading them
    (bptt.state.SeriesState.to_bytes). `version` makes concurrent appends fail, not interleave."""

    __tablename__ = "series_states"
    __table_args__ = (UniqueConstraint("job_id", "series_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    series_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    length: Mapped[int] = mapped_column(Integer)  # observations so far, training ones included
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ForecastBatch(Base):
    """A forecast request too large to answer in the request, answered by a worker."""

    __tablename__ = "forecast_batches"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_forecast_batches_tenant_id_created_at", "tenant_id", "created_at"),
        # The reaper: queued batches nobody picked up, running ones whose lease has expired.
        Index("ix_forecast_batches_status_lease_expires_at", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    request_zlib: Mapped[bytes] = mapped_column(LargeBinary)  # service.store.codec.compress_json
    result_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Claimed as jobs are (workers/claims.py): each claim increments attempts and takes a lease
    # the worker renews while it forecasts; the reaper re-sends a batch whose lease expired and
    # ends one whose workers died max_attempts times. Times come from the database's clock.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last message sent


ATTEMPT_OUTCOMES = ("succeeded", "failed", "cancelled", "released", "lost")


class JobAttempt(Base):
    """One claim of a job, kept as an audit: who ran it, from when to its last fenced write.

    Written in the claim's and every fenced write's transaction, with the database's clock, so
    an attempt's last_seen_at is never after the next attempt's claimed_at unless fencing
    failed (benchmarks/chaos.py checks exactly that). An attempt whose worker died ends "lost"
    when the next claim or the reaper finds its lease expired; the lost ones are what a job
    that keeps killing its workers is failed for ("worker lost N times").
    """

    __tablename__ = "job_attempts"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt"),
        CheckConstraint(
            "outcome IN ('succeeded', 'failed', 'cancelled', 'released', 'lost')",
            name="outcome",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)  # Job.attempts as this claim set it
    owner: Mapped[str] = mapped_column(String(255))  # the lease owner: worker host:pid:task id
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last heartbeat or write this attempt made while its claim was current.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # None while it runs
