"""Building an uploaded dataset from rows that arrive in any order, in bounded memory.

A parser (service.api.upload_formats) hands over blocks of points: (series index, line, ds key,
value, and the upload's covariate columns' numbers if it has any). They are spooled to a
temporary file in arrival order (24 bytes a point, 8 more per covariate column), so the
upload's text is never held. `finish` then reads the spool back a group of series at a time
(about SORT_BLOCK_POINTS points: rows grouped by series are read in place; interleaved ones
are first split into one file per group), sorts each series by ds, refuses a ds given twice
(naming both lines) and gathers the spacing of the ds (bptt.SpacingEvidence), spooling the
sorted groups again if they were not sorted already. With the frequency known (given, or
inferred from every series together, as for inline CSV), a second pass places each series on
its grid (bptt.grid_positions_of_keys: a missing ds is a gap, one between grid points is
refused naming its series and line) and packs the values into chunks of about CHUNK_POINTS
compressed points (their covariate columns beside them, compressed column after column),
spooled again. Only `store` touches the database: every row of the dataset
in one transaction, so a refused upload leaves nothing behind and a stored one is complete.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from bptt import (
    Freq,
    OffGrid,
    SpacingEvidence,
    format_timestamp,
    grid_positions_of_keys,
    key_timestamp,
)
from service.store.codec import compress_floats, compress_ints, compress_json
from service.store.tables import UploadedDataset, UploadedDatasetChunk, new_id, utcnow

# One spooled point: its series (index in first-seen order), its line in the upload, its ds as
# an integer (bptt.timestamp_key: a step number, or microseconds since 1970 for dates and
# times; for JSON lines, its place in the series), its value.
POINT = np.dtype([("series", "<i4"), ("line", "<i4"), ("key", "<i8"), ("value", "<f8")])
MAX_COVARIATE_COLUMNS = 32  # numbers per point beside its value (each widens its spooled point)
# Points sorted in memory at once: 24 bytes each, plus the sort's index and copy (about 56
# bytes a point in all: 7 MB, 15 MB with packing a chunk). A longer series is sorted on its own
# (its length is bounded by Settings.max_dataset_series_length). What a whole upload adds to
# the API process's peak RSS is measured by tests/e2e/test_datasets_e2e.py (200 MB uploaded).
SORT_BLOCK_POINTS = 128 * 1024
MAX_GROUP_FILES = 200  # interleaved uploads larger than 200 blocks sort in larger blocks
CHUNK_POINTS = 128 * 1024  # per stored chunk: reading a few series decompresses ~0.3 MB
HISTOGRAM_BINS = 10
MAX_ERRORS = 20
INTEGER, TIME = 0, 1  # the kinds of ds


def point_dtype(covariates: int) -> np.dtype:
    """A spooled point with `covariates` numbers beside its value (NaN for a gap)."""
    if not covariates:
        return POINT
    return np.dtype([*POINT.descr, ("covariates", "<f8", (covariates,))])


class DatasetError(ValueError):
    """Upload content that cannot be stored; `errors` are [{"loc", "msg"}] to answer with."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Limits:
    """What one dataset may hold (Settings.max_dataset_*)."""

    series: int
    points: int
    series_length: int


@dataclass
class SeriesTable:
    """What the parser learnt about each series, in first-seen order."""

    ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # where each was first seen
    starts: list[str | None] = field(default_factory=list)  # given with it (JSON lines)
    freqs: list[str | None] = field(default_factory=list)  # given with it (JSON lines)
    kinds: list[int] = field(default_factory=list)  # INTEGER or TIME
    # JSON lines: the keys are places in the series (values already on their grid), start and
    # freq as given. CSV: the keys are ds, placed on the grid of `freq` (dates; else inferred).
    positional: bool = False
    freq: Freq | None = None


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk compressed and spooled, waiting for `store`."""

    first_series: int
    num_series: int
    num_points: int
    offset: int  # in the chunk spool
    size: int
    covariates_size: int = 0  # the covariate columns' bytes, after the values' in the spool


@dataclass
class Prepared:
    """A dataset checked and packed, ready to store."""

    ids: list[str]
    starts: list[str | None]  # each series' first timestamp
    freqs: list[str | None]  # each series' frequency (an integer step for integer ds)
    lengths: np.ndarray  # (S,) points per series, gaps included
    num_gaps: int
    frequency: str | None
    freq_inferred: str | None  # the date frequency read from the ds (none was given)
    missing_timestamps: int
    histogram: list[dict[str, int]]
    chunks: list[PreparedChunk]
    covariates: list[str] = field(default_factory=list)  # the covariate columns' names
    # a static table's columns: {name: a value per series in storage order}
    static: dict[str, list[float | str]] = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return int(self.lengths.sum())


class DatasetBuilder:
    """Spools an upload's points, then sorts and packs them (see the module docstring)."""

    def __init__(self, limits: Limits, directory: str | None = None) -> None:
        self.limits = limits
        self._dir = tempfile.TemporaryDirectory(prefix="bptt-upload-", dir=directory)
        self._spool_path = Path(self._dir.name) / "points"
        self._spool: BinaryIO = open(self._spool_path, "wb")  # noqa: SIM115  (closed in close)
        self.points = 0
        self._counts = np.zeros(0, np.int64)
        self._observed = np.zeros(0, np.int64)
        self._grouped = True  # every series' rows are together, series in first-seen order
        self._sorted = True  # and ds increases from row to row within a series (if grouped)
        self._last = (-1, 0)  # (series, key) of the last point spooled
        self._chunk_spool: BinaryIO | None = None
        self.covariates: list[str] = []
        self.dtype = POINT

    def with_covariates(self, names: list[str]) -> None:
        """Spool these covariate columns with every point (before the first is added)."""
        assert self.points == 0, "the points' layout is fixed once one is spooled"
        self.covariates, self.dtype = list(names), point_dtype(len(names))
        self._covariates_observed = np.zeros((0, len(names)), np.int64)

    def __enter__(self) -> DatasetBuilder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove every temporary file."""
        self._spool.close()
        if self._chunk_spool is not None:
            self._chunk_spool.close()
        self._dir.cleanup()

    def add(self, block: np.ndarray) -> None:
        """Spool a block of points (dtype POINT), in arrival order (values NaN for gaps)."""
        if block.size == 0:
            return
        self._track_order(block)
        top = int(block["series"].max()) + 1
        if top > self._counts.size:
            grow = top - self._counts.size
            self._counts = np.concatenate([self._counts, np.zeros(grow, np.int64)])
            self._observed = np.concatenate([self._observed, np.zeros(grow, np.int64)])
        self._counts += np.bincount(block["series"], minlength=self._counts.size)
        self._observed += np.bincount(block["series"], weights=~np.isnan(block["value"]),
                                      minlength=self._counts.size).astype(np.int64)
        if self.covariates:
            self._count_covariates(block)
        self.points += block.size
        block.tofile(self._spool)

    def _count_covariates(self, block: np.ndarray) -> None:
        """Count each series' observed values of each covariate column."""
        seen = self._covariates_observed
        if seen.shape[0] < self._counts.size:
            grow = np.zeros((self._counts.size - seen.shape[0], seen.shape[1]), np.int64)
            seen = self._covariates_observed = np.concatenate([seen, grow])
        observed = ~np.isnan(block["covariates"])
        for column in range(seen.shape[1]):
            seen[:, column] += np.bincount(block["series"], weights=observed[:, column],
                                           minlength=seen.shape[0]).astype(np.int64)

    def _track_order(self, block: np.ndarray) -> None:
        """Whether rows still come grouped by series and sorted by ds within each."""
        series, keys = block["series"], block["key"]
        previous = np.concatenate([[self._last[0]], series[:-1]])
        previous_key = np.concatenate([[self._last[1]], keys[:-1]])
        same = series == previous
        if self._grouped and ((series < previous).any() or not self._new_series_only(block)):
            self._grouped = False
        if self._sorted and (keys[same] <= previous_key[same]).any():
            self._sorted = False
        self._last = (int(series[-1]), int(keys[-1]))

    def _new_series_only(self, block: np.ndarray) -> bool:
        """Whether each series that starts in this block was never seen before (a series that
        comes back after another one means the rows are interleaved)."""
        series = block["series"]
        starts = series[np.concatenate([[series[0] != self._last[0]], series[1:] != series[:-1]])]
        seen = starts[starts < self._counts.size]
        return not (self._counts[seen] > 0).any() and np.unique(starts).size == starts.size

    def finish(self, table: SeriesTable) -> Prepared:
        """Sort, check, place on the grid and pack every series; raises DatasetError naming
        what is wrong."""
        self._spool.close()
        counts = self._counts
        if counts.size != len(table.ids):  # series the parser named but sent no point of
            counts = np.concatenate([counts, np.zeros(len(table.ids) - counts.size, np.int64)])
        self._check(table, counts)
        # a group sorts in about the memory of SORT_BLOCK_POINTS points without covariates
        budget = SORT_BLOCK_POINTS * POINT.itemsize // self.dtype.itemsize
        firsts = _group_starts(counts, max(budget, math.ceil(self.points / MAX_GROUP_FILES)))
        evidence = {INTEGER: SpacingEvidence(integer=True), TIME: SpacingEvidence(integer=False)}
        sorted_spool = self._sort(table, counts, firsts, evidence)
        grids = {INTEGER: evidence[INTEGER].freq(), TIME: table.freq or evidence[TIME].freq()}
        self._chunk_spool = open(Path(self._dir.name) / "chunks", "wb+")  # noqa: SIM115
        placer = _Placer(table, grids, self.limits, _ChunkPacker(self._chunk_spool))
        for first, block in _stretches(sorted_spool, counts, firsts, self.dtype):
            placer.add(first, block, counts)
        prepared = placer.finish()
        if table.freq is None and evidence[TIME].points:
            prepared.freq_inferred = None if grids[TIME] is None else grids[TIME].name
        prepared.missing_timestamps = int(prepared.lengths.sum() - counts.sum())
        prepared.covariates = self.covariates
        return prepared

    def _sort(self, table: SeriesTable, counts: np.ndarray, firsts: list[int],
              evidence: dict[int, SpacingEvidence]) -> Path:
        """The first pass: each group sorted by series and ds, a ds given twice refused, the
        spacing of every series' ds gathered. Returns the spool that holds the points sorted
        (this one, if they came sorted; else a new one, written group after group)."""
        in_order = self._grouped and self._sorted
        sorted_path = self._spool_path if in_order else Path(self._dir.name) / "sorted"
        with contextlib.nullcontext() if in_order else open(sorted_path, "wb") as out:
            for first, block in self._groups(counts, firsts):
                if out is not None:  # rows out of order are sorted, and kept so
                    block = block[np.lexsort((block["key"], block["series"]))]
                    block.tofile(out)
                _refuse_repeated_ds(block, table)
                if not table.positional:
                    _gather_spacing(block, first, counts, table, evidence)
        return sorted_path

    def _check(self, table: SeriesTable, counts: np.ndarray) -> None:
        """The limits, and series without any observed value."""
        errors = []
        if not table.ids:
            errors.append({"loc": ["body"], "msg": "has no data rows"})
        long = np.flatnonzero(counts > self.limits.series_length)
        errors += [{"loc": ["body", f"line {table.lines[i]}"],
                    "msg": f"series {table.ids[i]!r} has {counts[i]} points; at most "
                           f"{self.limits.series_length} per series"} for i in long[:MAX_ERRORS]]
        observed = self._observed
        if observed.size < counts.size:
            observed = np.concatenate([observed, np.zeros(counts.size - observed.size, np.int64)])
        empty = np.flatnonzero(observed == 0)
        errors += [{"loc": ["body", f"line {table.lines[i]}"],
                    "msg": f"series {table.ids[i]!r} has no observed value"}
                   for i in empty[:MAX_ERRORS]]
        if self.covariates:  # a covariate's scaler is fitted on each series' observed values
            seen = self._covariates_observed
            for i, column in zip(*np.nonzero(seen == 0), strict=True):
                errors.append({"loc": ["body", f"line {table.lines[i]}", self.covariates[column]],
                               "msg": f"series {table.ids[i]!r} has no observed value of "
                                      f"{self.covariates[column]!r}"})
                if len(errors) >= MAX_ERRORS:
                    break
        if errors:
            raise DatasetError(errors[:MAX_ERRORS])

    def _groups(self, counts: np.ndarray, firsts: list[int]
                ) -> Iterator[tuple[int, np.ndarray]]:
        """(first series, its points and those of the next series) a sort block at a time."""
        if self._grouped:  # series after series: each group is a stretch of the spool
            yield from _stretches(self._spool_path, counts, firsts, self.dtype)
            return
        paths = self._split(firsts)
        for first, path in zip(firsts, paths, strict=True):
            block = np.fromfile(path, self.dtype)
            os.unlink(path)
            yield first, block

    def _split(self, firsts: list[int]) -> list[Path]:
        """Copy the spool into one file per group of series (interleaved uploads)."""
        paths = [Path(self._dir.name) / f"group{g}" for g in range(len(firsts))]
        edges = np.asarray(firsts[1:], np.int64)
        files = [open(path, "wb") for path in paths]  # noqa: SIM115  (closed below)
        try:
            with open(self._spool_path, "rb") as spool:
                while True:
                    block = np.fromfile(spool, self.dtype, count=SORT_BLOCK_POINTS)
                    if block.size == 0:
                        break
                    group = np.searchsorted(edges, block["series"], side="right")
                    order = np.argsort(group, kind="stable")
                    block, group = block[order], group[order]
                    cuts = np.searchsorted(group, np.arange(len(files) + 1))
                    for g, handle in enumerate(files):
                        if cuts[g + 1] > cuts[g]:
                            block[cuts[g]:cuts[g + 1]].tofile(handle)
        finally:
            for handle in files:
                handle.close()
        os.unlink(self._spool_path)
        return paths

    def chunk_bytes(self, chunk: PreparedChunk) -> tuple[bytes, bytes | None]:
        """A prepared chunk's compressed values and covariate columns (None without any),
        read back from the chunk spool."""
        assert self._chunk_spool is not None
        self._chunk_spool.seek(chunk.offset)
        values = self._chunk_spool.read(chunk.size)
        covariates = self._chunk_spool.read(chunk.covariates_size) if self.covariates else None
        return values, covariates


def store(session: Session, builder: DatasetBuilder, prepared: Prepared, *, tenant_id: int,
          name: str | None, format: str, upload_bytes: int, text_bytes: int) -> UploadedDataset:
    """Insert the dataset and its chunks (flushed; the caller commits them at once)."""
    index = compress_json({"ids": prepared.ids, "starts": prepared.starts,
                           "freqs": prepared.freqs})
    lengths = compress_ints(prepared.lengths)
    static = compress_json(prepared.static) if prepared.static else None
    stored = len(index) + len(lengths) + len(static or b"") + sum(c.size + c.covariates_size
                                                                   for c in prepared.chunks)
    dataset = UploadedDataset(
        id=new_id(), tenant_id=tenant_id, name=name, format=format,
        num_series=len(prepared.ids), num_points=prepared.num_points,
        num_gaps=prepared.num_gaps, min_length=int(prepared.lengths.min()),
        max_length=int(prepared.lengths.max()), frequency=prepared.frequency,
        freq_inferred=prepared.freq_inferred, missing_timestamps=prepared.missing_timestamps,
        length_histogram=prepared.histogram,
        index_zlib=index, lengths_zlib=lengths, upload_bytes=upload_bytes,
        text_bytes=text_bytes, stored_bytes=stored, created_at=utcnow(),
        covariate_columns=prepared.covariates or None,
        static_columns=list(prepared.static) or None, static_zlib=static)
    session.add(dataset)
    session.flush()
    for number, chunk in enumerate(prepared.chunks):
        # Core inserts, one at a time: the session keeps no chunk, so memory holds one.
        values, covariates = builder.chunk_bytes(chunk)
        session.execute(insert(UploadedDatasetChunk).values(
            dataset_id=dataset.id, chunk=number, first_series=chunk.first_series,
            num_series=chunk.num_series, num_points=chunk.num_points,
            values_zlib=values, covariates_zlib=covariates))
    return dataset


def length_histogram(lengths: np.ndarray) -> list[dict[str, int]]:
    """Series per length: up to HISTOGRAM_BINS bins of equal width from the shortest to the
    longest, each [min, max] inclusive."""
    if lengths.size == 0:
        return []
    low, high = int(lengths.min()), int(lengths.max())
    width = max(1, math.ceil((high - low + 1) / HISTOGRAM_BINS))
    bins = (lengths - low) // width
    counts = np.bincount(bins)
    return [{"min": low + b * width, "max": min(high, low + (b + 1) * width - 1),
             "series": int(n)} for b, n in enumerate(counts)]


def key_text(key: int, kind: int) -> str | int:
    """A ds key as the timestamp it stands for (an integer, or an ISO 8601 date or time)."""
    return format_timestamp(key_timestamp(key, integer=kind == INTEGER))


def _stretches(path: Path, counts: np.ndarray, firsts: list[int], dtype: np.dtype
               ) -> Iterator[tuple[int, np.ndarray]]:
    """(first series, its points and the next series') of a spool that holds the points
    series after series: one stretch of it per group."""
    ends = np.cumsum(counts)
    for g, first in enumerate(firsts):
        last = firsts[g + 1] if g + 1 < len(firsts) else counts.size
        begin = int(ends[first - 1]) if first else 0
        size = int(ends[last - 1]) - begin if last else 0
        yield first, np.fromfile(path, dtype, count=size, offset=begin * dtype.itemsize)


def _group_starts(counts: np.ndarray, budget: int) -> list[int]:
    """The first series of each group of consecutive series holding about `budget` points
    (a series longer than the budget is a group of its own)."""
    firsts, total = [0], 0
    for i, n in enumerate(counts.tolist()):
        if total and total + n > budget:
            firsts.append(i)
            total = 0
        total += n
    return firsts


def _count(block: np.ndarray, first: int) -> int:
    """How many series a group's block holds (they are consecutive from `first`)."""
    return int(block["series"].max()) - first + 1 if block.size else 0


def _gather_spacing(block: np.ndarray, first: int, counts: np.ndarray, table: SeriesTable,
                    evidence: dict[int, SpacingEvidence]) -> None:
    """Add a sorted group's ds to the evidence of their kind, all series of a kind at once."""
    sizes = counts[first:first + _count(block, first)]
    kinds = np.asarray(table.kinds[first:first + sizes.size], np.int8)
    for kind, gathered in evidence.items():
        chosen = kinds == kind
        if not chosen.any():
            continue
        keys = block["key"] if chosen.all() else block["key"][np.repeat(chosen, sizes)]
        starts = np.concatenate([[0], np.cumsum(sizes[chosen])[:-1]])
        gathered.add(keys, starts)


def _refuse_repeated_ds(block: np.ndarray, table: SeriesTable) -> None:
    """A ds given twice in one series (the block is sorted by series, then ds)."""
    same = ((block["series"][1:] == block["series"][:-1])
            & (block["key"][1:] == block["key"][:-1]))
    where = np.flatnonzero(same)[:MAX_ERRORS]
    if where.size:
        raise DatasetError([{
            "loc": ["body", f"line {max(block['line'][i], block['line'][i + 1])}", "ds"],
            "msg": f"series {table.ids[block['series'][i]]!r} has ds "
                   f"{_ds_label(int(block['key'][i]), table, int(block['series'][i]))} twice "
                   f"(lines {min(block['line'][i], block['line'][i + 1])} and "
                   f"{max(block['line'][i], block['line'][i + 1])})"} for i in where])


class _ChunkPacker:
    """Concatenates series' values into chunks of about CHUNK_POINTS, compressed and spooled."""

    def __init__(self, spool: BinaryIO) -> None:
        self.spool, self.chunks = spool, []
        self.pieces: list[np.ndarray] = []
        self.covariate_pieces: list[np.ndarray] = []  # (points, columns) of each series
        self.first, self.points = 0, 0

    def add(self, index: int, values: np.ndarray, covariates: np.ndarray | None = None) -> None:
        if not self.pieces:
            self.first = index
        self.pieces.append(values.copy())
        if covariates is not None:
            self.covariate_pieces.append(covariates)
        self.points += values.size
        if self.points >= CHUNK_POINTS:
            self.flush()

    def flush(self) -> None:
        if not self.pieces:
            return
        data = compress_floats(np.concatenate(self.pieces))
        offset = self.spool.seek(0, os.SEEK_END)
        self.spool.write(data)
        extra = 0
        if self.covariate_pieces:  # column after column
            columns = compress_floats(np.concatenate(self.covariate_pieces).T.ravel())
            self.spool.write(columns)
            extra = len(columns)
        self.chunks.append(PreparedChunk(self.first, len(self.pieces), self.points, offset,
                                         len(data), extra))
        self.pieces, self.covariate_pieces, self.points = [], [], 0


class _Placer:
    """The second pass: every series on its grid (gaps where a ds is missing), its start and
    frequency noted, its values packed; errors gathered, and nothing packed once there is
    one."""

    def __init__(self, table: SeriesTable, grids: dict[int, Freq | None], limits: Limits,
                 packer: _ChunkPacker) -> None:
        self.table, self.grids, self.limits, self.packer = table, grids, limits, packer
        size = len(table.ids)
        self.starts: list[str | None] = list(table.starts) if table.positional else [None] * size
        self.freqs: list[str | None] = list(table.freqs) if table.positional else [None] * size
        self.lengths = np.zeros(size, np.int64)
        self.total = self.gaps = 0
        self.errors: list[dict] = []

    def add(self, first: int, block: np.ndarray, counts: np.ndarray) -> None:
        """A group's points, sorted by series and ds."""
        bounds = np.concatenate([[0], np.cumsum(counts[first:first + _count(block, first)])])
        for i in range(bounds.size - 1):
            if len(self.errors) >= MAX_ERRORS:
                return
            points = block[bounds[i]:bounds[i + 1]]
            positions = (np.arange(points.size) if self.table.positional
                         else self._positions(first + i, points))
            if positions is None:
                continue
            values = _on_grid(points["value"], positions)
            covariates = (_on_grid(points["covariates"], positions)
                          if "covariates" in points.dtype.names else None)
            self.lengths[first + i] = values.size
            self.total += values.size
            if self.total > self.limits.points:
                self._error(first + i, f"the series hold more than {self.limits.points} values "
                                       "with their gaps (BPTT_MAX_DATASET_POINTS)")
                return
            if not self.errors:
                self.gaps += int(np.isnan(values).sum())
                self.packer.add(first + i, values, covariates)

    def _positions(self, series: int, points: np.ndarray) -> np.ndarray | None:
        """Where one series' points fall on its grid, its start and frequency noted; None
        with an error recorded if a ds is off the grid or the series too long."""
        table, keys = self.table, points["key"]
        integer = table.kinds[series] == INTEGER
        freq = self.grids[table.kinds[series]]
        uid = table.ids[series]
        if freq is None and keys.size > 1:  # dates under a second apart: no frequency fits
            self._error(series, f"series {uid!r} has ds less than a second apart; the finest "
                                "frequency is s", line=int(points["line"][1]))
            return None
        try:
            positions = (np.zeros(1, np.int64) if freq is None else
                         grid_positions_of_keys(keys, freq, integer=integer))
        except OffGrid as exc:
            ds = key_text(int(keys[exc.index]), table.kinds[series])
            self._error(series, f"series {uid!r}: {str(ds)!r} {exc.msg}" if exc.index else
                        f"series {uid!r} starts at {str(ds)!r}, but {exc.msg}",
                        line=int(points["line"][exc.index]), column="ds")
            return None
        length = int(positions[-1]) + 1
        if length > self.limits.series_length:
            self._error(series, f"series {uid!r} spans {length} steps of "
                                f"{freq.name if freq else 1} with its gaps; at most "
                                f"{self.limits.series_length} per series")
            return None
        self.starts[series] = str(key_text(int(keys[0]), table.kinds[series]))
        self.freqs[series] = None if freq is None else freq.name
        return positions

    def _error(self, series: int, msg: str, *, line: int | None = None,
               column: str | None = None) -> None:
        loc: list[str] = ["body", f"line {self.table.lines[series] if line is None else line}"]
        self.errors.append({"loc": loc + ([column] if column else []), "msg": msg})

    def finish(self) -> Prepared:
        """What was placed and packed; raises DatasetError if anything was refused."""
        if self.errors:
            raise DatasetError(self.errors[:MAX_ERRORS])
        self.packer.flush()
        found = set(self.freqs)
        frequency = found.pop() if len(found) == 1 else None
        return Prepared(ids=self.table.ids, starts=self.starts, freqs=self.freqs,
                        lengths=self.lengths, num_gaps=self.gaps,
                        frequency=None if frequency is None or frequency.isdigit() else frequency,
                        freq_inferred=None, missing_timestamps=0,
                        histogram=length_histogram(self.lengths), chunks=self.packer.chunks)


def _on_grid(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A series' values (or covariate rows) at their places on its grid, NaN between."""
    placed = np.full((int(positions[-1]) + 1, *values.shape[1:]), np.nan)
    placed[positions] = values
    return placed


def _ds_label(key: int, table: SeriesTable, series: int) -> str | int:
    """A point's ds for a message: its place in the series for JSON lines, else its ds."""
    return key if table.positional else key_text(key, table.kinds[series])
