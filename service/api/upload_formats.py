"""An uploaded dataset read from the request stream a block of rows at a time: long-format CSV
(`unique_id,ds,y`, as inline CSV: each ds read by bptt.parse_timestamp, then placed on its
series' grid by service.store.dataset_ingest) or JSON lines (one series per line), either one
optionally gzip-compressed. The text is never held whole: rows go to
service.store.dataset_ingest's spool as they are read.

JSON lines: each line is one series as a JSON job request gives it,
`{"id": "s1", "values": [1.5, null, 2.0], "start": "2021-01", "freq": "MS"}` (start and
freq optional, checked as a job request's are): a series per line rather than a point per
line, because that is the shape of the JSON API and of GluonTS-style files, and it is half
the size of a point per line.

Covariate columns: a CSV's columns beyond unique_id,ds,y, and a JSON line's `"covariates":
{"promo": [0, 1, null]}` (a number or null per value; every line names the same ones), are
numbers per point, spooled with each and stored beside the values.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, BinaryIO, TextIO

import numpy as np

from bptt import CalendarError, parse_timestamp, timestamp_key
from service.api.bodies import JsonConstant
from service.api.covariate_checks import covariate_name_errors
from service.api.csvio import COLUMNS, header_errors
from service.api.problems import Problem, ValidationProblem
from service.api.validation import start_and_freq_errors
from service.store.collector import collector_paused
from service.store.dataset_ingest import (
    INTEGER,
    TIME,
    DatasetBuilder,
    Limits,
    SeriesTable,
)

MEDIA_TYPES = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
               "application/x-jsonlines": "jsonl", "application/jsonlines": "jsonl"}
GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 1 << 20  # what each read asks of the stream
CSV_BLOCK_ROWS = 8_192  # CSV rows read at once (a few MB as Python lists of strings)
MAX_ERRORS = 20  # a bad file could name every line; the first few say what is wrong
MAX_ID_LENGTH = 128  # as SeriesIn.id, and series_states.series_id holds
MAX_LABEL_LENGTH = 64  # as SeriesIn.start
MAX_JSON_LINE_CHARS = 64 * 1024 * 1024  # one series of JSON lines; longer ones: use CSV
DS_CACHE_SIZE = 100_000  # ds texts remembered (dates repeat across series)
JSONL_FIELDS = frozenset({"id", "values", "start", "freq", "covariates"})
_NUMBER_TYPES = frozenset({int, float, type(None)})
_INF = math.inf


class CountingReader(io.RawIOBase):
    """A binary stream that counts what passes through it and refuses more than `limit`."""

    def __init__(self, source: Any, limit: int | None, what: str) -> None:
        self.source, self.limit, self.what, self.count = source, limit, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.count += size
        if self.limit is not None and self.count > self.limit:
            raise Problem(f"The dataset's {self.what} is larger than the limit of {self.limit} "
                          "bytes (BPTT_MAX_DATASET_BYTES).", status=413)
        return size


@dataclass
class Upload:
    """The request body as text, with the byte counts of the body and of its text."""

    text: TextIO
    body: CountingReader
    unzipped: CountingReader
    zipped: bool

    def drain(self) -> None:
        """Read what the client still sends (and drop it), so that it reads our answer
        rather than a reset connection; stops at the body limit."""
        try:
            while self.body.read(READ_BYTES):
                pass
        except Exception:  # noqa: BLE001  (a broken or oversized body: nothing left to save)
            pass


def open_upload(stream: BinaryIO, *, gzipped: bool, limit: int) -> Upload:
    """The body as UTF-8 text; gunzipped when `gzipped` (Content-Encoding) or when it starts
    with gzip's magic bytes (a .gz file sent as it is). Its text may be `limit` bytes."""
    body = CountingReader(stream, None, "body")  # the body's own limit: request.max_content_length
    buffered = io.BufferedReader(body, READ_BYTES)
    zipped = gzipped or buffered.peek(2)[:2] == GZIP_MAGIC
    source: Any = gzip.GzipFile(fileobj=buffered, mode="rb") if zipped else buffered
    unzipped = CountingReader(source, limit, "text")
    text = io.TextIOWrapper(io.BufferedReader(unzipped, READ_BYTES), encoding="utf-8-sig",
                            newline="")
    return Upload(text, body, unzipped, zipped)


class _Errors:
    """Errors as [{"loc", "msg"}], the first MAX_ERRORS of them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, line: int | None, msg: str, column: str | None = None) -> None:
        loc: list[str | int] = ["body"] if line is None else ["body", f"line {line}"]
        if column:
            loc.append(column)
        self.items.append({"loc": loc, "msg": msg})

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS


class _Series:
    """The series table as a parser fills it: ids to indices, with the limits checked."""

    def __init__(self, limits: Limits, errors: _Errors) -> None:
        self.limits, self.errors = limits, errors
        self.table = SeriesTable()
        self.index: dict[str, int] = {}

    def new(self, uid: str, line: int, kind: int, start: str | None,
            freq: str | None = None) -> int | None:
        """The index of a series seen for the first time, or None (an error recorded)."""
        if not uid:
            self.errors.add(line, "must not be empty", "unique_id")
            return None
        if len(uid) > MAX_ID_LENGTH:
            self.errors.add(line, f"must be at most {MAX_ID_LENGTH} characters", "unique_id")
            return None
        if len(self.index) >= self.limits.series:
            self.errors.add(line, f"more than {self.limits.series} series "
                                  "(BPTT_MAX_DATASET_SERIES)")
            return None
        table = self.table
        self.index[uid] = len(table.ids)
        table.ids.append(uid)
        table.lines.append(line)
        table.starts.append(start)
        table.freqs.append(freq)
        table.kinds.append(kind)
        return self.index[uid]


def read_csv(text: TextIO, builder: DatasetBuilder, limits: Limits) -> SeriesTable:
    """Spool the rows of a long-format CSV; raises ValidationProblem naming bad lines."""
    reader = csv.reader(text)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise ValidationProblem([{"loc": ["body", "line 1"], "msg": f"is not CSV: {exc}"}]
                                ) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, 1) from None
    covariates = [name for name in header if name not in COLUMNS]
    problems = header_errors(header, covariates=dict.fromkeys(covariates, "historical"))
    problems += covariate_name_errors(dict.fromkeys(covariates), ["body", "header"])
    if problems:
        raise ValidationProblem(problems)
    builder.with_covariates(covariates)
    rows = _CsvRows(header, builder, limits)
    with collector_paused():
        _read_blocks(reader, rows)
    if not rows.errors.items and not rows.series.table.ids:
        rows.errors.add(None, "has no data rows after the header")
    if rows.errors.items:
        raise ValidationProblem(rows.errors.items)
    return rows.series.table


def _read_blocks(reader: Any, rows: _CsvRows) -> int:
    """Read every row into `rows`, a block at a time; the number of the last line read."""
    line = 1
    try:
        while not rows.stopped:
            block = list(itertools.islice(reader, CSV_BLOCK_ROWS))
            if not block:
                break
            # Rows as `unique_id,ds,y` come as lists; a block is read column by column at C
            # speed, and row by row (naming each bad line) only when something is wrong in it.
            if not rows.block(block, line + 1):
                rows.rows(block, line + 1)
            line += len(block)
    except csv.Error as exc:
        rows.errors.add(line + 1, f"is not CSV: {exc}")
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, line + 1) from None
    return line


class _CsvRows:
    """The state of a CSV being read: series, ds cache, points."""

    def __init__(self, header: list[str], builder: DatasetBuilder, limits: Limits) -> None:
        self.builder, self.limits = builder, limits
        self.errors = _Errors()
        self.series = _Series(limits, self.errors)
        self.width = len(header)
        self.columns = itemgetter(*(header.index(name) for name in COLUMNS))
        self.covariates = builder.covariates
        self.covariate_at = [header.index(name) for name in self.covariates]
        self.cache: dict[str, tuple[int, int] | bool] = {}
        self.points = 0
        self.stopped = False  # too many errors, series or points: read no further

    def key(self, ds: str) -> tuple[int, int] | None:
        """(kind, key) of a ds text, or None if unreadable; remembered (dates repeat across
        series: the cache holds False for an unreadable one)."""
        found = self.cache.get(ds)
        if found is None:
            if len(self.cache) >= DS_CACHE_SIZE:
                self.cache.clear()
            found = self.cache[ds] = _ds(ds) or False
        return found or None

    def block(self, block: list[list[str]], first_line: int) -> bool:
        """Read a block of rows at once; False (nothing changed) if any row needs a closer
        look: then `rows` reads it row by row."""
        if len(set(map(len, block))) != 1 or len(block[0]) != self.width:
            return False
        uids, texts, ys = (list(map(str.strip, column))
                           for column in zip(*map(self.columns, block), strict=True))
        keys = list(map(self.cache.get, texts))  # a dict lookup at C speed for known ones
        if None in keys:
            keys = list(map(self.key, texts))
        if None in keys or False in keys:
            return False
        kinds, values_ = zip(*keys, strict=True)
        key_kinds, key_values = np.array(kinds, np.int8), np.array(values_, np.int64)
        try:
            values = np.array([y or "nan" for y in ys], np.float64)
        except ValueError:
            return False
        if not np.isfinite(values[np.fromiter(map(bool, ys), bool, len(ys))]).all():
            return False  # nan or inf written out: named row by row
        covariates = self._covariate_block(block)
        if covariates is False:
            return False
        index = self.series.index
        at = list(map(index.get, uids))
        new: dict[str, int] = {}  # series first seen here -> their first row in the block
        if None in at:
            for row, (uid, known) in enumerate(zip(uids, at, strict=True)):
                if known is None and uid not in new:
                    new[uid] = row
            if (len(index) + len(new) > self.limits.series
                    or any(not uid or len(uid) > MAX_ID_LENGTH for uid in new)):
                return False
        series_kinds = np.array(self.series.table.kinds + [kinds[r] for r in new.values()],
                                np.int8)
        # The new series' indices, for the lookup at C speed; taken back if a check fails.
        base = len(index)
        index.update((uid, base + i) for i, uid in enumerate(new))
        at_array = np.fromiter(map(index.__getitem__, uids), np.int32, len(uids))
        if ((series_kinds[at_array] != key_kinds).any()
                or self.points + len(block) > self.limits.points):
            for uid in new:
                del index[uid]
            return False
        # Everything checked: take the block.
        for uid in new:
            del index[uid]  # series.new adds each again, with the rest of its record
        for uid, row in new.items():
            self.series.new(uid, first_line + row, kinds[row], None)
        self.points += len(block)
        if not self.errors.items:  # once anything is wrong, nothing will be stored
            points = np.empty(len(block), self.builder.dtype)
            points["series"], points["key"], points["value"] = at_array, key_values, values
            points["line"] = np.arange(first_line, first_line + len(block))
            if covariates is not None:
                points["covariates"] = covariates
            self.builder.add(points)
        return True

    def _covariate_block(self, block: list[list[str]]) -> np.ndarray | None | bool:
        """The block's covariate columns as (rows, columns) numbers (NaN for an empty cell);
        None without any; False if a cell is no finite number (named row by row)."""
        if not self.covariate_at:
            return None
        try:
            cells = [[row[at].strip() for row in block] for at in self.covariate_at]
            columns = np.array([[cell or "nan" for cell in column] for column in cells],
                               np.float64)
        except ValueError:
            return False
        written = np.array([[bool(cell) for cell in column] for column in cells])
        if not np.isfinite(columns[written]).all():
            return False
        return columns.T

    def rows(self, block: list[list[str]], first_line: int) -> None:
        """Read a block row by row, naming every bad line (the first MAX_ERRORS)."""
        errors, index, table = self.errors, self.series.index, self.series.table
        for line, row in enumerate(block, start=first_line):
            if len(row) != self.width:
                if any(cell.strip() for cell in row):
                    errors.add(line, f"has {len(row)} fields; the header has {self.width}")
                continue  # blank lines (a trailing newline) carry nothing
            uid, ds, y = (cell.strip() for cell in self.columns(row))
            key = self.key(ds)
            if key is None:
                errors.add(line, _ds_error(ds), "ds")
            else:
                at = index.get(uid)
                if at is None:
                    at = self.series.new(uid, line, key[0], None)
                    if at is None and len(index) >= self.limits.series:
                        self.stopped = True
                elif table.kinds[at] != key[0]:
                    errors.add(line, f"series {uid!r} mixes integer and date ds values", "ds")
                    at = None
                value = self._value(y, line)
                covariates = [self._value(row[at].strip(), line, name)
                              for name, at in zip(self.covariates, self.covariate_at,
                                                  strict=True)]
                self.points += 1
                if self.points > self.limits.points:
                    errors.add(line, f"more than {self.limits.points} points "
                                     "(BPTT_MAX_DATASET_POINTS)")
                    self.stopped = True
                elif at is not None and not errors.items:
                    point = np.zeros(1, self.builder.dtype)
                    point["series"], point["line"], point["key"], point["value"] = (
                        at, line, key[1], value)
                    if covariates:
                        point["covariates"] = covariates
                    self.builder.add(point)
            if errors.full or self.stopped:
                self.stopped = True
                return

    def _value(self, y: str, line: int, column: str = "y") -> float:
        """A y (or covariate) cell as a number (NaN for an empty one); errors recorded."""
        if not y:
            return math.nan
        try:
            value = float(y)
        except ValueError:
            self.errors.add(line, "must be a number (leave it empty for a gap)", column)
            return math.nan
        if not -_INF < value < _INF:
            self.errors.add(line, "must be finite (leave it empty for a gap)", column)
        return value


def read_jsonl(text: TextIO, builder: DatasetBuilder, limits: Limits) -> SeriesTable:
    """Spool JSON lines, one series per line; raises ValidationProblem naming bad lines."""
    errors = _Errors()
    series = _Series(limits, errors)
    series.table.positional = True  # each line's values are already on their grid
    points, line = 0, 0
    try:
        for line, text_line in enumerate(iter(lambda: text.readline(MAX_JSON_LINE_CHARS + 1),
                                              ""), start=1):
            if len(text_line) > MAX_JSON_LINE_CHARS:
                errors.add(line, f"is longer than {MAX_JSON_LINE_CHARS} characters; send long "
                                 "series as CSV")
                break
            if not text_line.strip():
                continue
            item = _json_series(text_line, line, errors)
            if item is None:
                if errors.full:
                    break
                continue
            uid, values, start, freq, covariates = item
            if not series.table.ids and not errors.items:  # the first series names the columns
                problems = covariate_name_errors(covariates, ["body", f"line {line}",
                                                              "covariates"])
                if problems:
                    raise ValidationProblem(problems)
                builder.with_covariates(list(covariates))
            if set(covariates) != set(builder.covariates):
                errors.add(line, f"has the covariates {sorted(covariates)}; the first series "
                                 f"has {sorted(builder.covariates)}: every series carries the "
                                 "same ones", "covariates")
                continue
            if uid in series.index:
                errors.add(line, f"series {uid!r} was already given on line "
                                 f"{series.table.lines[series.index[uid]]}", "id")
                continue
            at = series.new(uid, line, INTEGER, start, freq)
            if at is None:
                if errors.full or len(series.index) >= limits.series:
                    break
                continue
            points += values.size
            if points > limits.points:
                errors.add(line, f"more than {limits.points} points (BPTT_MAX_DATASET_POINTS)")
                break
            if not errors.items:
                block = np.empty(values.size, builder.dtype)
                block["series"], block["line"] = at, line
                block["key"], block["value"] = np.arange(values.size), values
                if covariates:
                    block["covariates"] = np.column_stack([covariates[name]
                                                           for name in builder.covariates])
                builder.add(block)
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, line + 1) from None
    if not errors.items and not series.table.ids:
        errors.add(None, "has no series")
    if errors.items:
        raise ValidationProblem(errors.items)
    return series.table


def reader_for(format: str) -> Callable[[TextIO, DatasetBuilder, Limits], SeriesTable]:
    """The reader of an upload format ("csv" or "jsonl")."""
    return read_csv if format == "csv" else read_jsonl


def _ds(text: str) -> tuple[int, int] | None:
    """(kind, integer key) of a ds value, as bptt.parse_timestamp reads it (inline CSV too): a
    step number, or microseconds since 1970 (UTC); None if it reads as neither."""
    try:
        moment = parse_timestamp(text)
    except CalendarError:
        return None
    return (INTEGER, moment) if isinstance(moment, int) else (TIME, timestamp_key(moment))


def _ds_error(text: str) -> str:
    """Why a ds value reads as no timestamp (bptt.parse_timestamp's words)."""
    try:
        parse_timestamp(text)
    except CalendarError as exc:
        return str(exc)
    return "must be an integer or an ISO 8601 date or time"  # not reached: _ds refused it


def _json_series(text: str, line: int, errors: _Errors
                 ) -> tuple[str, np.ndarray, str | None, str | None, dict[str, np.ndarray]
                            ] | None:
    """(id, values, start, freq, covariates) of one JSON line, or None (errors recorded)."""
    try:
        item = json.loads(text, parse_constant=JsonConstant)
    except (ValueError, RecursionError) as exc:
        errors.add(line, f"is not valid JSON: {exc}")
        return None
    if not isinstance(item, dict):
        errors.add(line, 'must be a JSON object {"id": ..., "values": [...]}')
        return None
    count = len(errors.items)
    for name in item.keys() - JSONL_FIELDS:
        errors.add(line, "unknown field", name)
    for name in ("id", "values"):
        if name not in item:
            errors.add(line, "field required", name)
    uid, raw, start, freq = (item.get(k) for k in ("id", "values", "start", "freq"))
    if "id" in item and (not isinstance(uid, str) or not 1 <= len(uid) <= MAX_ID_LENGTH):
        errors.add(line, f"must be a string of 1 to {MAX_ID_LENGTH} characters", "id")
    calendar_ok = True
    for name, value, size in (("start", start, MAX_LABEL_LENGTH), ("freq", freq, 16)):
        if value is not None and (not isinstance(value, str) or len(value) > size):
            errors.add(line, f"must be a string of at most {size} characters", name)
            calendar_ok = False
    if calendar_ok:  # as a job request's series: a timestamp, a frequency, on its grid
        for name, msg in start_and_freq_errors(start, freq):
            errors.add(line, msg, name)
    values = _json_values(raw, line, errors) if "values" in item else None
    covariates = _json_covariates(item.get("covariates"), values, line, errors)
    if len(errors.items) > count or values is None:
        return None
    return uid, values, start, freq, covariates  # type: ignore[return-value]


def _json_covariates(raw: Any, values: np.ndarray | None, line: int, errors: _Errors
                     ) -> dict[str, np.ndarray]:
    """A JSON line's covariates, {name: a number or null per value}, as float64 arrays as
    long as its values (NaN for null); errors recorded."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(line, "must be an object {name: [a number or null per value]}", "covariates")
        return {}
    found = {}
    for name, column in raw.items():
        where = f"covariates.{name}"
        found[name] = _json_values(column, line, errors, where)
        if found[name] is not None and values is not None and found[name].size != values.size:
            errors.add(line, f"has {found[name].size} values; the series has {values.size}",
                       where)
    return found


def _json_values(raw: Any, line: int, errors: _Errors, field: str = "values"
                 ) -> np.ndarray | None:
    """A JSON line's values (or a covariate's: `field`) as float64 (NaN for null), or None
    (an error recorded)."""
    if not isinstance(raw, list) or not raw:
        errors.add(line, "must be a non-empty list of numbers or null", field)
        return None
    kinds = set(map(type, raw))
    if not kinds <= _NUMBER_TYPES:
        constant = next((v for v in raw if isinstance(v, JsonConstant)), None)
        message = (f"{constant} is not valid JSON (use null for a gap)" if constant is not None
                   else "must be numbers or null")
        errors.add(line, message, field)
        return None
    try:
        values = np.array(raw, dtype=np.float64)
    except OverflowError:
        values = np.array([math.inf])
    if np.isinf(values).any():
        errors.add(line, "must be finite (use null for a gap)", field)
        return None
    return values


def _not_utf8(exc: UnicodeDecodeError, line: int) -> Problem:
    """The 400 for an upload that is not UTF-8 text."""
    return Problem(f"The dataset is not UTF-8 text (near line {line}): {exc.reason}.",
                   status=400)


def gzip_error(exc: Exception) -> Problem:
    """The 400 for a body that says it is gzip but is not (or is cut short)."""
    return Problem(f"The body is not valid gzip: {exc}.", status=400)


GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
