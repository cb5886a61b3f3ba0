"""Uploaded datasets in the database: listing, their index, their series, deleting them, and the
series a job trains on whether it was sent inline or names a dataset.

Workers and the API read datasets through here only, so that no series ever travels through
the broker: a message names a job, the job's row names its dataset, the chunks hold the values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from service.store.codec import (
    compress_json,
    decompress_floats,
    decompress_ints,
    decompress_json,
)
from service.store.tables import (
    Dataset,
    Job,
    UploadedDataset,
    UploadedDatasetChunk,
)

ACTIVE_STATUSES = ("queued", "running")  # a job in these may still read its dataset


class DatasetGone(LookupError):
    """The uploaded dataset a job or batch names was deleted."""


@dataclass(frozen=True)
class DatasetIndex:
    """An uploaded dataset's series ids, starts, frequencies and lengths, in storage order."""

    dataset_id: str
    ids: list[str]
    starts: list[str | None]
    lengths: np.ndarray  # (S,) int64
    frequency: str | None
    # each series' frequency; None for datasets stored before revision 0010, whose series
    # were not placed on a grid (a missing row made its neighbours adjacent)
    freqs: list[str | None] | None = None
    covariates: list[str] = field(default_factory=list)  # its covariate columns, as stored
    static: list[str] = field(default_factory=list)  # its static table's columns

    def calendar(self, position: int) -> tuple[str | None, str | None, int] | None:
        """(start, freq, length) of a series, from which its forecasts' ds follow; None for
        a dataset stored before its series were placed on their grid."""
        if self.freqs is None:
            return None
        return self.starts[position], self.freqs[position], int(self.lengths[position])

    def positions(self) -> dict[str, int]:
        """Series id -> its position in storage order."""
        return {name: i for i, name in enumerate(self.ids)}


@dataclass(frozen=True)
class DatasetSelection:
    """Some or all of an uploaded dataset's series, as a job or forecast request names them."""

    dataset_id: str
    series_ids: list[str] | None  # as requested; None: every series
    ids: list[str]  # the selected series, in storage order for None, else as requested
    lengths: list[int]
    frequency: str | None
    covariates: list[str] = field(default_factory=list)  # the dataset's covariate columns
    static: list[str] = field(default_factory=list)  # the columns of its static table

    @property
    def num_points(self) -> int:
        return sum(self.lengths)


def load_index(session: Session, dataset_id: str) -> DatasetIndex | None:
    """The dataset's index (a few bytes a series), without its values; None if deleted."""
    row = session.execute(
        select(UploadedDataset.index_zlib, UploadedDataset.lengths_zlib,
               UploadedDataset.frequency, UploadedDataset.covariate_columns,
               UploadedDataset.static_columns)
        .where(UploadedDataset.id == dataset_id)).first()
    if row is None:
        return None
    index = decompress_json(row.index_zlib)
    return DatasetIndex(dataset_id, index["ids"], index["starts"],
                        decompress_ints(row.lengths_zlib), row.frequency, index.get("freqs"),
                        row.covariate_columns or [], row.static_columns or [])


def select_series(index: DatasetIndex, series_ids: Sequence[str] | None
                  ) -> tuple[DatasetSelection | None, list[int]]:
    """(selection, positions of requested ids the dataset lacks, by their place in the
    request): None with the missing positions when some are unknown."""
    if series_ids is None:
        return DatasetSelection(index.dataset_id, None, index.ids, index.lengths.tolist(),
                                index.frequency, index.covariates, index.static), []
    where = index.positions()
    missing = [i for i, name in enumerate(series_ids) if name not in where]
    if missing:
        return None, missing
    lengths = [int(index.lengths[where[name]]) for name in series_ids]
    return DatasetSelection(index.dataset_id, list(series_ids), list(series_ids), lengths,
                            index.frequency, index.covariates, index.static), []


def read_series(session: Session, index: DatasetIndex, positions: Sequence[int] | None = None,
                covariates: Sequence[str] = ()) -> list[dict[str, Any]]:
    """[{"id", "values" (float64, NaN for gaps), "start", "freq"}] of the series at these
    positions (all when None), in the order asked; only the chunks that hold them are read.
    With `covariates` (some of the dataset's columns, or of its static table), each item also
    carries "covariates": {name: float64 values, NaN for gaps; or a static one's value}, as a
    job request's item carries them."""
    wanted = np.arange(len(index.ids)) if positions is None else np.asarray(positions, int)
    if wanted.size == 0:
        return []
    static = static_values(session, index.dataset_id, [n for n in covariates
                                                       if n in index.static])
    covariates = [name for name in covariates if name not in static]
    ends = np.cumsum(index.lengths)
    offsets = ends - index.lengths
    chunks = session.execute(
        select(UploadedDatasetChunk.chunk, UploadedDatasetChunk.first_series)
        .where(UploadedDatasetChunk.dataset_id == index.dataset_id)
        .order_by(UploadedDatasetChunk.chunk)).all()
    numbers = [c.chunk for c in chunks]
    firsts = np.array([c.first_series for c in chunks])
    holder = np.searchsorted(firsts, wanted, side="right") - 1  # the chunk of each series
    out: list[dict[str, Any] | None] = [None] * wanted.size
    for chunk in np.unique(holder).tolist():
        first = int(firsts[chunk])
        row = session.execute(
            select(UploadedDatasetChunk.values_zlib, UploadedDatasetChunk.covariates_zlib)
            .where(UploadedDatasetChunk.dataset_id == index.dataset_id,
                   UploadedDatasetChunk.chunk == numbers[chunk])).first()
        if row is None:  # deleted while being read
            raise DatasetGone(index.dataset_id)
        values = decompress_floats(row.values_zlib)
        columns = _covariate_columns(row.covariates_zlib, index.covariates, covariates,
                                     values.size)
        base = offsets[first]
        for slot in np.flatnonzero(holder == chunk).tolist():
            at = int(wanted[slot])
            begin = int(offsets[at] - base)
            end = begin + int(index.lengths[at])
            out[slot] = {"id": index.ids[at], "start": index.starts[at],
                         "freq": index.frequency if index.freqs is None else index.freqs[at],
                         "values": values[begin:end].copy()}
            if covariates or static:
                out[slot]["covariates"] = {  # type: ignore[index]
                    **{name: column[begin:end].copy() for name, column in columns.items()},
                    **{name: values[at] for name, values in static.items()}}
    return out  # type: ignore[return-value]


def static_values(session: Session, dataset_id: str, names: Sequence[str]
                  ) -> dict[str, list[float | str]]:
    """The columns `names` of a dataset's static table: a value per series in storage
    order ({} for none asked)."""
    if not names:
        return {}
    data = session.scalar(select(UploadedDataset.static_zlib)
                          .where(UploadedDataset.id == dataset_id))
    if data is None:
        raise DatasetGone(dataset_id)
    table = decompress_json(data)
    return {name: table[name] for name in names}


def _covariate_columns(data: bytes | None, stored: list[str], wanted: Sequence[str],
                       points: int) -> dict[str, np.ndarray]:
    """The `wanted` covariate columns of a chunk of `points` points (its covariates_zlib holds
    the `stored` columns one after the other)."""
    if not wanted:
        return {}
    if data is None:
        raise LookupError("the dataset has no covariate columns")
    every = decompress_floats(data).reshape(len(stored), points)
    return {name: every[stored.index(name)] for name in wanted}


def read_selection(session: Session, dataset_id: str, series_ids: Sequence[str] | None,
                   covariates: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The series a selection names, read from the dataset, with the `covariates` columns
    named (read_series); raises DatasetGone if deleted, LookupError for an id it no longer
    holds."""
    index = load_index(session, dataset_id)
    if index is None:
        raise DatasetGone(dataset_id)
    if series_ids is None:
        return read_series(session, index, covariates=covariates)
    where = index.positions()
    unknown = [name for name in series_ids if name not in where]
    if unknown:
        raise LookupError(f"dataset {dataset_id} has no series {unknown[0]!r}")
    return read_series(session, index, [where[name] for name in series_ids], covariates)


def series_for_job(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The series a job trains on: those sent with it, or its selection of an uploaded
    dataset (values as float64 arrays); raises DatasetGone if that dataset was deleted."""
    row = session.execute(
        select(Dataset.series_zlib, Dataset.uploaded_dataset_id, Dataset.series_ids_zlib,
               Job.covariates).join(Job, Job.id == Dataset.job_id)
        .where(Dataset.job_id == job_id)).first()
    if row is None:
        raise LookupError(f"job {job_id} has no series")
    if row.series_zlib is not None:
        return decompress_json(row.series_zlib)
    subset = None if row.series_ids_zlib is None else decompress_json(row.series_ids_zlib)
    # the dataset's columns the job declared, each item carrying its values as sent ones do
    return read_selection(session, row.uploaded_dataset_id, subset, list(row.covariates or ()))


def covariates_for_job(session: Session, job_id: str,
                       series: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The job's covariates as bptt.fit, cross_validate and initial_states take them
    ({name: {"kind", "values": {series id: value(s)}}}), None for a job without any. `series`:
    the job's series when the caller has read them already (series_for_job); else read."""
    kinds = session.scalar(select(Job.covariates).where(Job.id == job_id))
    if not kinds:
        return None
    return library_covariates(kinds, series_for_job(session, job_id) if series is None
                              else series)


def library_covariates(kinds: dict[str, str], series: list[dict[str, Any]]
                       ) -> dict[str, Any] | None:
    """The engine's form of covariates declared by `kinds` ({name: kind}) whose values each
    series item carries (its "covariates", as a job request sends them); None without any."""
    if not kinds:
        return None
    return {name: {"kind": kind,
                   "values": {item["id"]: item["covariates"][name] for item in series}}
            for name, kind in kinds.items()}


def selection_calendar(session: Session, dataset_id: str, series_ids: Sequence[str] | None
                       ) -> dict[str, tuple[str | None, str | None, int]]:
    """(start, freq, length) of the series a selection names, by id, read from the dataset's
    index (not its values); empty for a dataset deleted, or stored before its series were
    placed on their grid."""
    index = load_index(session, dataset_id)
    if index is None or index.freqs is None:
        return {}
    where = index.positions()
    wanted = index.ids if series_ids is None else [name for name in series_ids
                                                   if name in where]
    return {name: index.calendar(where[name]) for name in wanted}  # type: ignore[misc]


def job_source(session: Session, job_id: str) -> tuple[str | None, list[str] | None]:
    """(uploaded dataset id, its series ids the job uses or None for all) of a job; (None,
    None) for a job whose series came with it."""
    row = session.execute(select(Dataset.uploaded_dataset_id, Dataset.series_ids_zlib)
                          .where(Dataset.job_id == job_id)).first()
    if row is None or row.uploaded_dataset_id is None:
        return None, None
    return row.uploaded_dataset_id, (None if row.series_ids_zlib is None
                                     else decompress_json(row.series_ids_zlib))


def job_row(job_id: str, selection: DatasetSelection, created_at: datetime) -> Dataset:
    """A job's datasets row referring to a selection (no values copied)."""
    return Dataset(job_id=job_id, series_zlib=None, uploaded_dataset_id=selection.dataset_id,
                   series_ids_zlib=(None if selection.series_ids is None
                                    else compress_json(selection.series_ids)),
                   num_series=len(selection.ids), num_points=selection.num_points,
                   created_at=created_at)


def count_for_tenant(session: Session, *, tenant_id: int) -> int:
    """How many datasets the tenant has stored."""
    return session.scalar(select(func.count()).select_from(UploadedDataset)
                          .where(UploadedDataset.tenant_id == tenant_id)) or 0


def list_for_tenant(session: Session, *, tenant_id: int, limit: int,
                    before: tuple[datetime, str] | None = None) -> list[UploadedDataset]:
    """The tenant's datasets newest first, at most `limit`, after the (created_at, id)
    `before` (keyset pagination, as jobs)."""
    query = select(UploadedDataset).where(UploadedDataset.tenant_id == tenant_id)
    if before is not None:
        created_at, dataset_id = before
        query = query.where(or_(UploadedDataset.created_at < created_at,
                                and_(UploadedDataset.created_at == created_at,
                                     UploadedDataset.id < dataset_id)))
    query = query.order_by(UploadedDataset.created_at.desc(), UploadedDataset.id.desc())
    return list(session.scalars(query.limit(limit)))


def active_jobs(session: Session, dataset_id: str, limit: int = 10) -> list[str]:
    """Ids of queued or running jobs that train on the dataset (at most `limit`)."""
    return list(session.scalars(
        select(Job.id).join(Dataset, Dataset.job_id == Job.id)
        .where(Dataset.uploaded_dataset_id == dataset_id, Job.status.in_(ACTIVE_STATUSES))
        .order_by(Job.id).limit(limit)))


def lock_for_use(session: Session, dataset_id: str) -> bool:
    """Hold the dataset against deletion until this transaction ends (PostgreSQL: FOR SHARE;
    SQLite serializes writers anyway); False if it was deleted meanwhile."""
    query = select(UploadedDataset.id).where(UploadedDataset.id == dataset_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return session.scalar(query) is not None


def delete_unused(session: Session, dataset_id: str) -> list[str]:
    """Delete the dataset unless a queued or running job uses it: [] when deleted, else the
    ids of some of those jobs (nothing deleted). Its chunks go by cascade."""
    # Lock the row first (PostgreSQL): a submit holding it FOR SHARE commits its job before
    # this goes on, and each statement below then sees that job (READ COMMITTED takes a new
    # snapshot per statement).
    query = select(UploadedDataset.id).where(UploadedDataset.id == dataset_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    session.scalar(query)
    using = active_jobs(session, dataset_id)
    if using:
        return using
    in_use = (select(Job.id).join(Dataset, Dataset.job_id == Job.id)
              .where(Dataset.uploaded_dataset_id == dataset_id,
                     Job.status.in_(ACTIVE_STATUSES)))
    # The guard again in the statement itself; the chunks go by cascade.
    deleted = session.execute(delete(UploadedDataset)
                              .where(UploadedDataset.id == dataset_id, ~exists(in_use))
                              .execution_options(synchronize_session=False))
    return [] if deleted.rowcount else active_jobs(session, dataset_id)  # type: ignore[attr-defined]


def _tail_of(item: dict[str, Any], tail: int) -> dict[str, Any]:
    """A stored series item cut to its last `tail` values, its dynamic covariates with it
    (a static one is a single value), with "length" its whole length."""
    cut = {**item, "values": item["values"][-tail:], "length": len(item["values"])}
    if "covariates" in item:
        cut["covariates"] = {name: value[-tail:] if isinstance(value, list) else value
                             for name, value in item["covariates"].items()}
    return cut


def job_series_page(session: Session, job_id: str, *, offset: int, limit: int, tail: int
                    ) -> tuple[list[dict[str, Any]], int]:
    """A page of a job's series, each cut to its last `tail` values (None for a gap), with
    "length" its whole length; and how many series the job has. Of a deleted dataset: none."""
    row = session.execute(
        select(Dataset.series_zlib, Dataset.uploaded_dataset_id, Dataset.series_ids_zlib)
        .where(Dataset.job_id == job_id)).first()
    if row is None:
        return [], 0
    if row.series_zlib is not None:
        series = decompress_json(row.series_zlib)
        return [_tail_of(s, tail) for s in series[offset:offset + limit]], len(series)
    index = load_index(session, row.uploaded_dataset_id)
    if index is None:
        return [], 0
    if row.series_ids_zlib is None:
        positions = list(range(len(index.ids)))
    else:
        where = index.positions()
        positions = [where[name] for name in decompress_json(row.series_ids_zlib)]
    page = read_series(session, index, positions[offset:offset + limit])
    for s in page:
        s["length"] = s["values"].size
        s["values"] = [None if math.isnan(v) else v for v in s["values"][-tail:].tolist()]
    return page, len(positions)
