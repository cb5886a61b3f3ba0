"""A tenant's jobs as a table of runs: filters, sort orders, and keyset cursors that hold under
each order.

Every sort is a list of keys (SQL expressions) read from the jobs row, its dataset and its
metrics; rows with a missing key (an unnamed job, a running job's score) come last in either
direction, and the job id breaks ties, so the order is total and a cursor (the last row's
keys and id) says exactly where the next page starts. A value that changes while a client
pages (a running job's best loss) can move its job across the cursor; nothing else can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, false, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import JOB_STATUSES, Dataset, EpochMetric, Job

# Lifecycle order, not the alphabet: queued, running, then the ways a job ends.
_STATUS_RANK = {status: rank for rank, status in enumerate(JOB_STATUSES)}


def _spec_text(*path: str) -> ColumnElement[Any]:
    return func.coalesce(Job.resolved_spec[path].as_string(), Job.spec[path].as_string())


def _spec_int(*path: str) -> ColumnElement[Any]:
    return func.coalesce(Job.resolved_spec[path].as_integer(), Job.spec[path].as_integer())


def best_val_loss() -> ColumnElement[Any]:
    """The lowest validation loss any epoch of the job has reached (a correlated subquery)."""
    return (select(func.min(EpochMetric.val_loss)).where(EpochMetric.job_id == Job.id)
            .correlate(Job).scalar_subquery())


def _duration_ms(dialect: str) -> ColumnElement[Any]:
    """Whole milliseconds from start to finish (integers compare exactly in a cursor)."""
    if dialect == "sqlite":  # datetimes are text there; julianday reads them to the millisecond
        seconds = (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0
    else:
        seconds = func.extract("epoch", Job.finished_at - Job.started_at)
    return cast(func.round(seconds * 1000), BigInteger)


@dataclass(frozen=True)
class SortKey:
    """One key of a sort: its SQL expression (given the dialect), how its value travels in a
    cursor, and whether it can be missing."""

    expression: Callable[[str], ColumnElement[Any]]
    kind: type = int  # int, float, str or datetime
    nullable: bool = True


# The sorts GET /v1/jobs offers, by name; "-name" is the same keys descending.
SORTS: dict[str, tuple[SortKey, ...]] = {
    "created": (SortKey(lambda d: Job.created_at, datetime, nullable=False),),
    "name": (SortKey(lambda d: func.lower(Job.name), str),),
    "status": (SortKey(lambda d: case(_STATUS_RANK, value=Job.status), nullable=False),),
    "cell": (SortKey(lambda d: _spec_text("model", "cell"), str),),
    "hidden": (SortKey(lambda d: _spec_int("model", "hidden_size")),
               SortKey(lambda d: _spec_int("model", "num_layers"))),
    "series": (SortKey(lambda d: Dataset.num_series),),
    "horizon": (SortKey(lambda d: _spec_int("horizon")),),
    "val_loss": (SortKey(lambda d: best_val_loss(), float),),
    "cv_mase": (SortKey(lambda d: Job.cross_validation["mase"].as_float(), float),),
    "score": (SortKey(lambda d: Job.score, float),),
    "duration": (SortKey(_duration_ms),),
}
DEFAULT_SORT = "-created"


def sort_names() -> list[str]:
    """Every value `sort` takes: each key ascending, then descending."""
    return [*SORTS, *(f"-{name}" for name in SORTS)]


@dataclass(frozen=True)
class JobFilter:
    """Which of the tenant's jobs a list shows; every condition must hold."""

    statuses: tuple[str, ...] = ()  # any of these (none: any status)
    cells: tuple[str, ...] = ()
    labels: tuple[tuple[str, str | None], ...] = ()  # (key, value), or (key, None): has the key
    sweep_id: str | None = None  # only this sweep's trials
    standalone: bool = False  # only jobs that are no sweep's trial


@dataclass(frozen=True)
class Position:
    """Where a page ends: the sort it was read in, its last row's keys, and that row's id."""

    sort: str
    keys: tuple[Any, ...]
    job_id: str


@dataclass(frozen=True)
class ListedJob:
    """A job as the list reads it, with what the list shows from other tables."""

    job: Job
    num_series: int | None
    best_val_loss: float | None
    position: Position


def list_jobs(session: Session, *, tenant_id: int, filters: JobFilter, sort: str,
              after: Position | None, limit: int) -> list[ListedJob]:
    """The tenant's jobs matching `filters`, in `sort` order, after `after`, at most `limit`:
    one statement, whatever the page holds."""
    descending = sort.startswith("-")
    keys = SORTS[sort.removeprefix("-")]
    dialect = session.get_bind().dialect.name
    expressions = [key.expression(dialect) for key in keys]
    best = best_val_loss()
    query = (select(Job, Dataset.num_series, best.label("best_val_loss"),
                    *(e.label(f"key_{i}") for i, e in enumerate(expressions)))
             .outerjoin(Dataset, Dataset.job_id == Job.id)
             .where(Job.tenant_id == tenant_id, *_conditions(filters)))
    if after is not None:
        query = query.where(_after(expressions, after, descending))
    order: list[Any] = []
    for key, expression in zip(keys, expressions, strict=True):
        if key.nullable:  # missing values last, in either direction
            order.append(expression.is_(None))
        order.append(expression.desc() if descending else expression.asc())
    order.append(Job.id.desc() if descending else Job.id.asc())
    rows = session.execute(query.order_by(*order).limit(limit)).all()
    return [ListedJob(job=row[0], num_series=row[1], best_val_loss=row[2],
                      position=Position(sort, tuple(row[3:]), row[0].id)) for row in rows]


def decode_keys(sort: str, raw: list[Any]) -> tuple[Any, ...]:
    """A cursor's keys as JSON gave them, typed for `sort`; ValueError if they cannot be."""
    keys = SORTS[sort.removeprefix("-")]
    if len(raw) != len(keys):
        raise ValueError("wrong number of keys")
    typed = []
    for key, value in zip(keys, raw, strict=True):
        if value is None:
            if not key.nullable:
                raise ValueError("missing key")
            typed.append(None)
        elif key.kind is datetime:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("naive time")
            # near year 1 or 9999 the conversion overflows: the caller refuses the cursor
            typed.append(moment.astimezone(UTC))
        elif key.kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            typed.append(float(value))
        elif isinstance(value, key.kind) and not isinstance(value, bool):
            typed.append(value)
        else:
            raise ValueError("wrong key type")
    return tuple(typed)


def encode_keys(keys: tuple[Any, ...]) -> list[Any]:
    """A position's keys as JSON values (decode_keys reads them back)."""
    return [k.isoformat() if isinstance(k, datetime) else k for k in keys]


def _conditions(filters: JobFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters`."""
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(Job.status.in_(filters.statuses))
    if filters.cells:
        conditions.append(_spec_text("model", "cell").in_(filters.cells))
    for key, value in filters.labels:
        # Keys are checked against schemas.LABEL_KEY_PATTERN first: safe in a JSON path.
        label = Job.labels[key].as_string()
        conditions.append(label.is_not(None) if value is None else label == value)
    if filters.sweep_id is not None:
        conditions.append(Job.sweep_id == filters.sweep_id)
    if filters.standalone:
        conditions.append(Job.sweep_id.is_(None))
    return conditions


def _after(expressions: list[ColumnElement[Any]], position: Position, descending: bool
           ) -> ColumnElement[bool]:
    """Rows after `position` in the order list_jobs sorts by (keys, missing ones last, then
    the id): the row differs first at key i, and comes after there."""
    keys = [*expressions, Job.id]
    values = [*position.keys, position.job_id]
    alternatives = []
    for i, (expression, value) in enumerate(zip(keys, values, strict=True)):
        equal_before = [e.is_(None) if v is None else e == v
                        for e, v in zip(keys[:i], values[:i], strict=True)]
        if value is None:
            later: ColumnElement[bool] = false()  # only other missing values, by a later key
        else:
            beyond = expression < value if descending else expression > value
            later = or_(beyond, expression.is_(None)) if i < len(expressions) else beyond
        alternatives.append(and_(*equal_before, later))
    return or_(*alternatives)
