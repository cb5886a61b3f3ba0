"""CSV in the long format of the forecasting ecosystem (`unique_id,ds,y`), in and out."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from service.api.problems import ValidationProblem

COLUMNS = ("unique_id", "ds", "y")
MAX_ERRORS = 20  # a bad file could name every line; the first few say what is wrong
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_long_csv(text: str) -> list[dict[str, Any]]:
    """Series from `unique_id,ds,y` rows: grouped by id (first-seen order), sorted by ds.

    ds is an integer or an ISO 8601 date or time (YYYY-MM too); an empty y is a gap. The
    series come out as JSON requests give them: [{"id", "values", "start"}].
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    errors = header_errors(header)
    if errors:
        raise ValidationProblem(errors)
    where = {name: header.index(name) for name in COLUMNS}
    rows: dict[str, list[tuple[tuple[int, Any], str, float | None]]] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines (a trailing newline) carry nothing
        if len(row) != len(header):
            _add(errors, line, None, f"has {len(row)} fields; the header has {len(header)}")
            continue
        uid, ds, y = (row[where[name]].strip() for name in COLUMNS)
        if not uid:
            _add(errors, line, "unique_id", "must not be empty")
        key = ds_key(ds)
        if key is None:
            _add(errors, line, "ds", "must be an integer or an ISO 8601 date or time")
        value = _y_value(y, line, errors)
        if len(errors) >= MAX_ERRORS:
            break
        if not errors:
            rows.setdefault(uid, []).append((key, ds, value))  # type: ignore[arg-type]
    if not errors and not rows:
        errors.append({"loc": ["body"], "msg": "has no data rows after the header"})
    if errors:
        raise ValidationProblem(errors)
    return [_series(uid, points) for uid, points in rows.items()]


def forecasts_to_csv(forecasts: Iterable[dict[str, Any]], quantiles: list[str]) -> str:
    """Forecast documents as `unique_id,step,mean,q<q>...` rows (steps start at 1)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["unique_id", "step", "mean", *(f"q{q}" for q in quantiles)])
    for item in forecasts:
        for step, mean in enumerate(item["mean"]):
            paths = [item["quantiles"][q][step] for q in quantiles]
            writer.writerow([item["id"], step + 1, *(_cell(v) for v in (mean, *paths))])
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


def _series(uid: str, points: list[tuple[tuple[int, Any], str, float | None]]
            ) -> dict[str, Any]:
    """One series from its rows, in time order; a repeated or mixed ds is an error."""
    kinds = {key[0] for key, _, _ in points}
    if len(kinds) > 1:
        raise ValidationProblem([{"loc": ["body", "ds"],
                                  "msg": f"series {uid!r} mixes integer and date ds values"}])
    points.sort(key=lambda point: point[0])
    for (before, ds, _), (after, _, _) in zip(points, points[1:], strict=False):
        if before == after:
            raise ValidationProblem([{"loc": ["body", "ds"],
                                      "msg": f"series {uid!r} has ds {ds!r} twice"}])
    return {"id": uid, "values": [value for _, _, value in points], "start": points[0][1]}


def ds_key(text: str) -> tuple[int, Any] | None:
    """A sort key for a ds value: (0, int) or (1, naive datetime in UTC); integers and times
    never compare. None if unreadable."""
    try:
        return (0, int(text))
    except ValueError:
        pass
    match = _YEAR_MONTH.fullmatch(text)
    if match:
        month = int(match[2])
        return (1, datetime(int(match[1]), month, 1)) if 1 <= month <= 12 else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:  # aware and naive times cannot be compared
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (1, moment)


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
