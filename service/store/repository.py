"""Data operations shared by the API, the workers and the CLI.

Each takes a session and keyword-only arguments, and leaves committing to the caller, so that
several operations can share one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.store import dataset_rows
from service.store.codec import compress_json
from service.store.dataset_rows import DatasetGone, DatasetSelection
from service.store.dbclock import db_now
from service.store.tables import (
    FINISHED_STATUSES,
    ApiToken,
    Dataset,
    EpochMetric,
    ForecastBatch,
    Job,
    Tenant,
    TrainedModel,
    new_id,
    utcnow,
)

# Recognizable by secret scanners and by people; the random part carries 256 bits.
TOKEN_PREFIX = "bptt_"
TOKEN_RANDOM_BYTES = 32
DISPLAY_PREFIX_LENGTH = 12  # "bptt_" plus 7 random characters: enough to tell tokens apart

# The columns a metrics upsert replaces: everything but the row's identity.
_METRIC_COLUMNS = frozenset(
    c.name for c in EpochMetric.__table__.columns if c.name not in ("id", "job_id", "epoch")
)


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: `token` is the clear value, available only at this moment."""

    token: str
    record: ApiToken


def hash_token(token: str) -> str:
    """The hex SHA-256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tenant_by_name(session: Session, *, name: str) -> Tenant | None:
    """The tenant called `name`, if any."""
    return session.scalar(select(Tenant).where(Tenant.name == name))


def create_tenant(session: Session, *, name: str) -> Tenant:
    """Add a tenant called `name` (flushed, so its id is set)."""
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def create_token(session: Session, *, tenant: Tenant) -> IssuedToken:
    """Add a new API token for `tenant`; only its hash is stored, the clear token is returned."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
    record = ApiToken(
        tenant_id=tenant.id, token_hash=hash_token(token), prefix=token[:DISPLAY_PREFIX_LENGTH]
    )
    session.add(record)
    session.flush()
    return IssuedToken(token=token, record=record)


def tenant_for_token(session: Session, *, token: str) -> Tenant | None:
    """The tenant a clear bearer token belongs to, or None if unknown or revoked."""
    # Looking up by hash means no comparison ever runs on the secret itself, so there is no
    # timing side channel worth closing with compare_digest.
    return session.scalar(
        select(Tenant)
        .join(ApiToken, ApiToken.tenant_id == Tenant.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )


def upsert_epoch_metrics(session: Session, *, job_id: str, epoch: int, **values: Any) -> None:
    """Write one epoch's metrics, replacing the row a previous attempt wrote for that epoch."""
    unknown = set(values) - _METRIC_COLUMNS
    if unknown:
        raise TypeError(f"unknown epoch metric column(s): {', '.join(sorted(unknown))}")
    # Replace, not merge: columns not given go back to NULL, so nothing of an earlier attempt's
    # row survives. recorded_at is refreshed.
    row = {name: None for name in _METRIC_COLUMNS}
    row.update(values, recorded_at=values.get("recorded_at") or utcnow())
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert(EpochMetric)
    elif dialect == "sqlite":
        insert = sqlite.insert(EpochMetric)
    else:
        raise NotImplementedError(f"upsert_epoch_metrics: no upsert for dialect {dialect!r}")
    statement = insert.values(job_id=job_id, epoch=epoch, **row)
    statement = statement.on_conflict_do_update(
        index_elements=[EpochMetric.job_id, EpochMetric.epoch],
        set_={name: statement.excluded[name] for name in _METRIC_COLUMNS},
    )
    session.execute(statement)


def create_job(
    session: Session,
    *,
    tenant_id: int,
    spec: dict[str, Any],
    series: list[dict[str, Any]],
    num_points: int,
    epochs_total: int | None,
    resolved_spec: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    warm_start_job_id: str | None = None,
    sweep_id: str | None = None,
    trial: int | None = None,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    dataset: DatasetSelection | None = None,
    estimate: dict[str, Any] | None = None,
    covariates: dict[str, str] | None = None,
) -> Job:
    """Add a queued job and its dataset (flushed; the caller commits both at once): `series`,
    or with `dataset` a reference to an uploaded dataset's series, held against deletion
    until the commit (raises DatasetGone if it was deleted meanwhile). `covariates`: the kinds
    the job declared (each series item carries its values)."""
    if dataset is not None and not dataset_rows.lock_for_use(session, dataset.dataset_id):
        raise DatasetGone(dataset.dataset_id)
    now = utcnow()
    job = Job(
        id=new_id(),
        tenant_id=tenant_id,
        spec=spec,
        resolved_spec=resolved_spec,
        status="queued",
        created_at=now,
        # The message goes out right after the commit; the reaper compares this time with the
        # database's clock, so it is written by that clock too.
        enqueued_at=db_now(),
        epochs_total=epochs_total,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        warm_start_job_id=warm_start_job_id,
        sweep_id=sweep_id,
        trial=trial,
        name=name,
        labels=labels or None,
        estimate=estimate,
        covariates=covariates or None,
    )
    session.add(job)
    session.flush()  # the job row first: the dataset refers to it
    if dataset is not None:
        session.add(dataset_rows.job_row(job.id, dataset, now))
    else:
        session.add(
            Dataset(
                job_id=job.id,
                series_zlib=compress_json(series),
                num_series=len(series),
                num_points=num_points,
                created_at=now,
            )
        )
    session.flush()
    return job


def is_item_id(value: str) -> bool:
    """Whether `value` has the form of a job or batch id (a UUID string, as models.new_id makes).

    Anything else is unknown without asking the database, which also keeps strings it cannot
    store (PostgreSQL refuses NUL characters in text) out of queries.
    """
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


# Short ids: the CLI and the dashboard print an id's first 8 characters, and any unique prefix
# of an id is accepted wherever the id is. At least 4 characters (65,536 possible prefixes; git
# asks as many): one to three match up to a sixteenth of all ids, so a slip such as
# `DELETE /v1/jobs/3` would likely act on some job, and the slice of the primary key a prefix
# reads (every tenant's ids share that index) would grow with the whole table.
MIN_SHORT_ID_LENGTH = 4
MAX_ID_CANDIDATES = 10  # named in an ambiguity answer; more are only counted as "more"
_ID_FORM = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"  # what models.new_id makes, x a hex digit
_HEX_DIGITS = "0123456789abcdef"


class AmbiguousIdError(LookupError):
    """A short id that begins several of the tenant's ids.

    `candidates` are their full ids (sorted, at most MAX_ID_CANDIDATES); `more` says whether
    further ids matched too.
    """

    def __init__(self, short_id: str, candidates: list[str], *, more: bool) -> None:
        super().__init__(f"{short_id!r} begins {len(candidates)}{'+' if more else ''} ids")
        self.short_id = short_id
        self.candidates = candidates
        self.more = more


def item_for_tenant(session: Session, model: Any, *, tenant_id: int, item_id: str) -> Any:
    """The tenant's row of `model` (Job, Sweep, ForecastBatch) with id `item_id`, or whose id
    begins with it (a short id); None if there is none. Another tenant's rows are never
    candidates. Raises AmbiguousIdError when a short id begins several of the tenant's ids.
    """
    # UUIDs are case-insensitive (RFC 9562); the ids are stored as models.new_id writes them.
    wanted = item_id.lower()
    if is_item_id(wanted):
        return session.scalar(select(model).where(model.id == wanted,
                                                  model.tenant_id == tenant_id))
    bounds = short_id_range(wanted)
    if bounds is None:
        return None
    low, high = bounds
    # A range on the primary key, not LIKE: an index range scan on SQLite and on PostgreSQL
    # whatever the database's collation (LIKE 'p%' uses a PostgreSQL index only under the C
    # collation or with text_pattern_ops). `tenant_id + 0` keeps the planner off the tenant
    # indexes: SQLite would otherwise read every job of the tenant, where the range reads about
    # one id in 65,536 of the table. Ids only, so that an ambiguous prefix loads no rows.
    query = select(model.id).where(model.id >= low, (model.tenant_id + 0) == tenant_id)
    if high is not None:
        query = query.where(model.id < high)
    ids = list(session.scalars(query.order_by(model.id).limit(MAX_ID_CANDIDATES + 1)))
    if len(ids) > 1:
        raise AmbiguousIdError(item_id, ids[:MAX_ID_CANDIDATES],
                               more=len(ids) > MAX_ID_CANDIDATES)
    if not ids:
        return None
    return session.scalar(select(model).where(model.id == ids[0]))


def short_id_range(short_id: str) -> tuple[str, str | None] | None:
    """[low, high) holding exactly the ids that begin with `short_id` (high None: no bound);
    None when no id can begin with it (too short, too long, or not in the form of an id).

    Exact under any collation that orders digits before a-f: an id and the bounds have their
    hyphens at the same places, so the first difference between them is a hex digit (and a
    collation that skips hyphens compares the same digits).
    """
    if not MIN_SHORT_ID_LENGTH <= len(short_id) < len(_ID_FORM):
        return None
    for char, form in zip(short_id, _ID_FORM, strict=False):
        if char not in ("-" if form == "-" else _HEX_DIGITS):
            return None
    # high: the prefix with its last digit below f raised by one and what follows dropped
    # ("338f" -> "339"); every id beginning with the prefix sorts below it, no other id does.
    digits = list(short_id)
    while digits:
        last = digits.pop()
        if last not in ("-", "f"):
            return short_id, "".join(digits) + _HEX_DIGITS[_HEX_DIGITS.index(last) + 1]
    return short_id, None  # only f: every id from the prefix on begins with it


def job_for_tenant(session: Session, *, tenant_id: int, job_id: str) -> Job | None:
    """The job `job_id` (full or short id) if it belongs to the tenant (another tenant's job is
    None, as unknown); raises AmbiguousIdError for a short id of several jobs."""
    return item_for_tenant(session, Job, tenant_id=tenant_id, item_id=job_id)


def job_by_idempotency_key(session: Session, *, tenant_id: int, key: str) -> Job | None:
    """The tenant's job submitted with Idempotency-Key `key`, if any."""
    return session.scalar(
        select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)
    )


def lock_tenant(session: Session, *, tenant_id: int) -> None:
    """Hold the tenant's submissions until this transaction ends: a no-op UPDATE of its row,
    which locks that row on PostgreSQL and takes SQLite's write lock. What the transaction
    counts next (a quota) then stays true until it commits."""
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(id=Tenant.id)
                    .execution_options(synchronize_session=False))


def count_queued_jobs(session: Session, *, tenant_id: int) -> int:
    """How many of the tenant's jobs wait for a worker (sweep trials have their own limits)."""
    query = select(func.count()).where(Job.tenant_id == tenant_id, Job.status == "queued",
                                       Job.sweep_id.is_(None))
    return session.scalar(query.select_from(Job)) or 0


def dataset_size(session: Session, *, job_id: str) -> tuple[int, int, str | None] | None:
    """(num_series, num_points, uploaded dataset id or None) of a job's dataset, without
    reading the series themselves."""
    row = session.execute(
        select(Dataset.num_series, Dataset.num_points, Dataset.uploaded_dataset_id)
        .where(Dataset.job_id == job_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def best_val_loss(session: Session, *, job_id: str) -> float | None:
    """The lowest validation loss any epoch of the job has reached."""
    return session.scalar(select(func.min(EpochMetric.val_loss))
                          .where(EpochMetric.job_id == job_id))


def latest_epoch_metrics(session: Session, *, job_id: str) -> EpochMetric | None:
    """The metrics row of the job's latest epoch."""
    return session.scalar(
        select(EpochMetric)
        .where(EpochMetric.job_id == job_id)
        .order_by(EpochMetric.epoch.desc())
        .limit(1)
    )


def epoch_metrics_since(
    session: Session, *, job_id: str, since: int, limit: int
) -> list[EpochMetric]:
    """The job's metrics rows with epoch > since, in epoch order, at most `limit`."""
    return list(
        session.scalars(
            select(EpochMetric)
            .where(EpochMetric.job_id == job_id, EpochMetric.epoch > since)
            .order_by(EpochMetric.epoch)
            .limit(limit)
        )
    )


def cancel_job(session: Session, *, job_id: str) -> str:
    """Cancel a job: "cancelled" (was queued), "requested" (running) or "finished" (too late)."""
    # Conditional updates, not read-then-write: a worker may claim the job in between, and
    # then the flag is what stops it.
    now = utcnow()
    cancelled = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if cancelled.rowcount:  # type: ignore[attr-defined]
        return "cancelled"
    requested = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return "requested" if requested.rowcount else "finished"  # type: ignore[attr-defined]


def delete_finished_job(session: Session, *, job_id: str) -> bool:
    """Delete a finished job (its data goes by cascade); False if it is not finished."""
    deleted = session.execute(
        delete(Job)
        .where(Job.id == job_id, Job.status.in_(FINISHED_STATUSES))
        .execution_options(synchronize_session=False)
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]


def model_digest(session: Session, *, job_id: str) -> str | None:
    """The sha256 of a job's trained model, without reading its weights."""
    return session.scalar(select(TrainedModel.sha256).where(TrainedModel.job_id == job_id))


def model_weights(session: Session, *, job_id: str) -> bytes | None:
    """A job's trained model as safetensors bytes."""
    return session.scalar(select(TrainedModel.weights).where(TrainedModel.job_id == job_id))


def create_forecast_batch(
    session: Session, *, tenant_id: int, job_id: str, request: dict[str, Any]
) -> ForecastBatch:
    """Add a queued forecast batch holding the (validated) request, compressed (flushed)."""
    batch = ForecastBatch(
        id=new_id(),
        tenant_id=tenant_id,
        job_id=job_id,
        status="queued",
        request_zlib=compress_json(request),
        enqueued_at=db_now(),  # the message goes out right after the commit
    )
    session.add(batch)
    session.flush()
    return batch



# The status poll (GET /v1/jobs/{id}) is the request clients send most. Building a statement
# and loading ORM objects cost far more than SQLite's own work, so the poll's two queries are
# built once, here, and return plain rows.

_TENANT_ID_BY_TOKEN = (
    select(Tenant.id)
    .join(ApiToken, ApiToken.tenant_id == Tenant.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked.is_(False))
)


def tenant_id_for_token(session: Session, *, token: str) -> int | None:
    """The id of the tenant a clear bearer token belongs to, or None (as tenant_for_token)."""
    # On the session's connection (same transaction): Session.execute's ORM bookkeeping would
    # double the cost of this one-column query.
    found = session.connection().execute(_TENANT_ID_BY_TOKEN, {"token_hash": hash_token(token)})
    return found.scalar()


@dataclass(frozen=True)
class JobStatus:
    """A job with its dataset size, latest epoch metrics and best validation loss, as the
    status poll reads them.

    `job` and `latest` are plain rows whose attributes are named like Job's and EpochMetric's
    (documents.job_document reads them as it reads the ORM objects)."""

    job: Any
    dataset: tuple[int, int, str | None] | None
    latest: Any | None
    best_val_loss: float | None


# Every column of both rows: documents.job_document reads them as it reads the ORM objects.
_LATEST_COLUMNS = tuple(EpochMetric.__table__.columns)
_LATEST_PREFIX = "latest_"


def _job_status_query() -> Any:
    """Job, dataset size and latest metrics in one statement (outer joins: both may be absent)."""
    epochs = EpochMetric.__table__.alias("epochs")  # not the joined table: no correlation
    latest_epoch = (select(func.max(epochs.c.epoch))
                    .where(epochs.c.job_id == bindparam("job_id")).scalar_subquery())
    best = (select(func.min(epochs.c.val_loss))
            .where(epochs.c.job_id == bindparam("job_id")).scalar_subquery())
    return (
        select(*Job.__table__.columns, Dataset.num_series, Dataset.num_points,
               best.label("best_val_loss"), Dataset.uploaded_dataset_id,
               *(c.label(_LATEST_PREFIX + c.name) for c in _LATEST_COLUMNS))
        .outerjoin(Dataset, Dataset.job_id == Job.id)
        .outerjoin(EpochMetric, and_(EpochMetric.job_id == Job.id,
                                     EpochMetric.epoch == latest_epoch))
        .where(Job.id == bindparam("job_id"), Job.tenant_id == bindparam("tenant_id"))
    )


_JOB_STATUS = _job_status_query()


def job_status(session: Session, *, tenant_id: int, job_id: str) -> JobStatus | None:
    """job_for_tenant, dataset_size and latest_epoch_metrics in one query; None if unknown."""
    if not is_item_id(job_id):
        return None
    row = session.connection().execute(
        _JOB_STATUS, {"job_id": job_id, "tenant_id": tenant_id}).first()
    if row is None:
        return None
    dataset = (None if row.num_series is None
               else (row.num_series, row.num_points, row.uploaded_dataset_id))
    latest = None
    if getattr(row, _LATEST_PREFIX + "epoch") is not None:
        latest = SimpleNamespace(**{c.name: getattr(row, _LATEST_PREFIX + c.name)
                                    for c in _LATEST_COLUMNS})
    return JobStatus(job=row, dataset=dataset, latest=latest, best_val_loss=row.best_val_loss)
