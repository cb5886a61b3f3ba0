"""CSV in the long format of the forecasting ecosystem (`unique_id,ds,y`), in and out."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any

from bptt import (
    CalendarError,
    Freq,
    OffGrid,
    format_timestamp,
    grid_positions,
    infer_freq,
    parse_freq,
    parse_timestamp,
)
from service.api.problems import ValidationProblem

COLUMNS = ("unique_id", "ds", "y")
MAX_ERRORS = 20  # a bad file could name every line; the first few say what is wrong
Point = tuple[Any, str, "float | None", int]  # (timestamp, ds as written, y, line)


def parse_long_csv(text: str, *, freq: Any = None, max_points: int | None = None
                   ) -> list[dict[str, Any]]:
    """Series from `unique_id,ds,y` rows: grouped by id (first-seen order), placed on their
    grid.

    ds is an integer or an ISO 8601 date or time (YYYY-MM too); an empty y is a gap, and so is
    a missing ds between two rows; a ds between grid points is an error naming its line. The
    grid's frequency is `freq` (the request's, for dates) or inferred from the spacing of all
    series together. The series come out as JSON requests give them: [{"id", "values",
    "start", "freq"}]. `max_points`: the most values all series may hold, gaps included.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    errors = header_errors(header)
    if errors:
        raise ValidationProblem(errors)
    where = {name: header.index(name) for name in COLUMNS}
    rows: dict[str, list[Point]] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines (a trailing newline) carry nothing
        if len(row) != len(header):
            _add(errors, line, None, f"has {len(row)} fields; the header has {len(header)}")
            continue
        uid, ds, y = (row[where[name]].strip() for name in COLUMNS)
        if not uid:
            _add(errors, line, "unique_id", "must not be empty")
        try:
            key = parse_timestamp(ds)
        except CalendarError as exc:
            _add(errors, line, "ds", str(exc))
        value = _y_value(y, line, errors)
        if len(errors) >= MAX_ERRORS:
            break
        if not errors:
            rows.setdefault(uid, []).append((key, ds, value, line))
    if not errors and not rows:
        errors.append({"loc": ["body"], "msg": "has no data rows after the header"})
    if errors:
        raise ValidationProblem(errors)
    for uid, points in rows.items():
        _sort(uid, points)
    return _on_grid(rows, _given_freq(freq), max_points)


def forecasts_to_csv(forecasts: Iterable[dict[str, Any]], quantiles: list[str]) -> str:
    """Forecast documents as `unique_id,ds,step,mean,q<q>...` rows (steps start at 1; ds is
    empty where a document has none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["unique_id", "ds", "step", "mean", *(f"q{q}" for q in quantiles)])
    for item in forecasts:
        ds = item.get("ds") or [""] * len(item["mean"])
        for step, mean in enumerate(item["mean"]):
            paths = [item["quantiles"][q][step] for q in quantiles]
            writer.writerow([item["id"], ds[step], step + 1,
                             *(_cell(v) for v in (mean, *paths))])
    return out.getvalue()


def header_errors(header: list[str]) -> list[dict[str, Any]]:
    """Missing, unknown or repeated columns of the header line (uploads read it too)."""
    if not any(header):
        return [{"loc": ["body"], "msg": "is empty; the first line must be unique_id,ds,y"}]
    errors = [{"loc": ["body", "header", name], "msg": "column required"}
              for name in COLUMNS if name not in header]
    errors += [{"loc": ["body", "header", name], "msg": "unknown column"}
               for name in header if name not in COLUMNS]
    errors += [{"loc": ["body", "header", name], "msg": "repeated column"}
               for name in COLUMNS if header.count(name) > 1]
    return errors


def _sort(uid: str, points: list[Point]) -> None:
    """Sort one series' rows by time; a repeated or mixed ds is an error."""
    if len({isinstance(point[0], int) for point in points}) > 1:
        raise ValidationProblem([{"loc": ["body", "ds"],
                                  "msg": f"series {uid!r} mixes integer and date ds values"}])
    points.sort(key=lambda point: point[0])
    for before, after in zip(points, points[1:], strict=False):
        if before[0] == after[0]:
            raise ValidationProblem([{"loc": ["body", f"line {after[3]}", "ds"],
                                      "msg": f"series {uid!r} has ds {before[1]!r} twice"}])


def _given_freq(freq: Any) -> Freq | None:
    """The request's frequency when it reads as a calendar one (else the spec's checks name
    it; integer ds always take their own common step)."""
    try:
        found = parse_freq(freq) if isinstance(freq, str) else None
    except CalendarError:
        return None
    return found if found is not None and found.unit != "step" else None


def _on_grid(rows: dict[str, list[Point]], given: Freq | None, max_points: int | None
             ) -> list[dict[str, Any]]:
    """Every series on the grid of its first point: integers by their common step, dates by
    the given or inferred frequency; missing points become gaps (None)."""
    stamps = {uid: [point[0] for point in points] for uid, points in rows.items()}
    integers = [s for s in stamps.values() if isinstance(s[0], int)]
    dates = [s for s in stamps.values() if not isinstance(s[0], int)]
    step, calendar = infer_freq(integers), given or infer_freq(dates)
    errors: list[dict[str, Any]] = []
    series, total = [], 0
    for uid, points in rows.items():
        freq = step if isinstance(points[0][0], int) else calendar
        try:
            positions = grid_positions(stamps[uid], freq) if freq else [0]
        except OffGrid as exc:
            _, ds, _, line = points[exc.index]
            _add(errors, line, "ds", f"series {uid!r}: {ds!r} {exc.msg}" if exc.index else
                 f"series {uid!r} starts at {ds!r}, but {exc.msg}")
            if len(errors) >= MAX_ERRORS:
                break
            continue
        total += positions[-1] + 1
        if max_points is not None and total > max_points:
            raise ValidationProblem([{"loc": ["body"], "msg": (
                f"the series hold more than {max_points} values with their gaps (series "
                f"{uid!r} alone spans {positions[-1] + 1} steps of {freq.name if freq else 1})")}])
        values: list[float | None] = [None] * (positions[-1] + 1)
        for position, point in zip(positions, points, strict=True):
            values[position] = point[2]
        item = {"id": uid, "values": values, "start": str(format_timestamp(points[0][0]))}
        if freq is not None:
            item["freq"] = freq.name
        series.append(item)
    if errors:
        raise ValidationProblem(errors)
    return series


def _y_value(text: str, line: int, errors: list[dict[str, Any]]) -> float | None:
    """A y cell as a number, or None for a gap (empty cell)."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        _add(errors, line, "y", "must be a number (leave it empty for a gap)")
        return None
    if not math.isfinite(value):
        _add(errors, line, "y", "must be finite (leave it empty for a gap)")
        return None
    return value


def _add(errors: list[dict[str, Any]], line: int, column: str | None, msg: str) -> None:
    """Record an error at `line` (and `column`) of the body."""
    loc: list[str | int] = ["body", f"line {line}"]
    if column:
        loc.append(column)
    errors.append({"loc": loc, "msg": msg})


def _cell(value: float | None) -> str:
    """A number as CSV text; an empty cell for a missing value."""
    return "" if value is None else repr(float(value))
