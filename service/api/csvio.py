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
from service.api.schemas import COVARIATE_KINDS

COLUMNS = ("unique_id", "ds", "y")
MAX_ERRORS = 20  # a bad file could name every line; the first few say what is wrong
# (timestamp, ds as written, y, line, the covariate columns' cells: a dynamic one's number or
# None, a static one's text)
Point = tuple[Any, str, "float | None", int, tuple[Any, ...]]
DECLARE = "declare it with covariates=name:kind (kind: static, historical or future)"


def parse_long_csv(text: str, *, freq: Any = None, max_points: int | None = None,
                   covariates: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Series from `unique_id,ds,y` rows: grouped by id (first-seen order), placed on their
    grid.

    ds is an integer or an ISO 8601 date or time (YYYY-MM too); an empty y is a gap, and so is
    a missing ds between two rows; a ds between grid points is an error naming its line. The
    grid's frequency is `freq` (the request's, for dates) or inferred from the spacing of all
    series together. The series come out as JSON requests give them: [{"id", "values",
    "start", "freq"}]. `max_points`: the most values all series may hold, gaps included.

    `covariates` ({name: kind}, the request's declaration; {} for a request that could have
    declared some) admits more columns, one per covariate, whose values each item then
    carries in its "covariates" as a JSON request does: a historical or future column's
    numbers (an empty cell or a missing ds is a gap), a static column's one value per series
    (a number if every series' is one, else a category). Other extra columns are refused.
    """
    unknown = "unknown column" if covariates is None else f"unknown column: a covariate? {DECLARE}"
    covariates = covariates or {}
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    errors = header_errors(header, covariates=covariates, unknown=unknown)
    if errors:
        raise ValidationProblem(errors)
    where = {name: header.index(name) for name in COLUMNS}
    extra = {name: (header.index(name), kind) for name, kind in covariates.items()}
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
        cells = tuple(_covariate_cell(row[at].strip(), kind, name, line, errors)
                      for name, (at, kind) in extra.items())
        if len(errors) >= MAX_ERRORS:
            break
        if not errors:
            rows.setdefault(uid, []).append((key, ds, value, line, cells))
    if not errors and not rows:
        errors.append({"loc": ["body"], "msg": "has no data rows after the header"})
    if errors:
        raise ValidationProblem(errors)
    for uid, points in rows.items():
        _sort(uid, points)
    series = _on_grid(rows, _given_freq(freq), max_points, list(covariates.values()))
    _type_static_columns(series, covariates)
    return series


def declared_columns(raw: Any) -> dict[str, str]:
    """The query's `covariates=promo:future,temp:historical,store_type:static` (repeatable) as
    {name: kind}, in the order given; 422 naming it for an item that is not name:kind. The
    names and kinds are checked with the rest of the request (validation)."""
    texts = raw if isinstance(raw, list) else [raw]
    kinds: dict[str, str] = {}
    for text in texts:
        for item in str(text).split(","):
            name, colon, kind = item.strip().partition(":")
            if not colon or not name.strip():
                raise ValidationProblem([{"loc": ["query", "covariates"], "msg": (
                    f"{item.strip()!r} is not name:kind; write e.g. covariates=promo:future,"
                    "temp:historical,store_type:static")}])
            if name.strip() in COLUMNS:
                raise ValidationProblem([{"loc": ["query", "covariates", name.strip()],
                                          "msg": "unique_id, ds and y are the series' own "
                                                 "columns, not covariates"}])
            kinds[name.strip()] = kind.strip()
    return kinds


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


def header_errors(header: list[str], *, covariates: dict[str, str] | None = None,
                  unknown: str = "unknown column") -> list[dict[str, Any]]:
    """Missing, unknown or repeated columns of the header line (uploads read it too, with
    their own word for an `unknown` column). A column `covariates` declares is known, and
    required."""
    if not any(header):
        return [{"loc": ["body"], "msg": "is empty; the first line must be unique_id,ds,y"}]
    known = (*COLUMNS, *(covariates or {}))
    errors = [{"loc": ["body", "header", name], "msg": "column required"}
              for name in COLUMNS if name not in header]
    errors += [{"loc": ["body", "header", name],
                "msg": "column required: the query's covariates= declares it"}
               for name in covariates or {} if name not in header and name not in COLUMNS]
    errors += [{"loc": ["body", "header", name], "msg": unknown}
               for name in header if name not in known]
    errors += [{"loc": ["body", "header", name], "msg": "repeated column"}
               for name in known if header.count(name) > 1]
    return errors


def _covariate_cell(text: str, kind: str, column: str, line: int,
                    errors: list[dict[str, Any]]) -> Any:
    """A covariate cell: a static one's text (typed per column once all are read), a dynamic
    one's number, or None for a gap (an empty cell)."""
    if kind not in COVARIATE_KINDS or kind == "static":
        return text  # (an unknown kind is refused with the rest of the request)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        _add(errors, line, column, "must be a finite number (leave it empty for a gap)")
        return None
    return value


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


def _on_grid(rows: dict[str, list[Point]], given: Freq | None, max_points: int | None,
             kinds: list[str]) -> list[dict[str, Any]]:
    """Every series on the grid of its first point: integers by their common step, dates by
    the given or inferred frequency; missing points become gaps (None), in the dynamic
    covariates' columns too (`kinds`: each covariate column's, in order)."""
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
            _, ds, _, line, _ = points[exc.index]
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
        if kinds:
            item["cells"] = [_column_on_grid(points, positions, j, kind, len(values))
                             for j, kind in enumerate(kinds)]
        series.append(item)
    if errors:
        raise ValidationProblem(errors)
    return series


def _column_on_grid(points: list[Point], positions: list[int], column: int, kind: str,
                    length: int) -> Any:
    """One covariate column of a series: a dynamic one's values on the grid (None where a ds
    is missing), a static one's cells as written (one per row, checked to agree later)."""
    if kind == "static":
        return [point[4][column] for point in points]
    values: list[float | None] = [None] * length
    for position, point in zip(positions, points, strict=True):
        values[position] = point[4][column]
    return values


def _type_static_columns(series: list[dict[str, Any]], kinds: dict[str, str]) -> None:
    """Each item's covariates from its columns' cells ("cells" becomes "covariates"), a
    static column's made one value per series; 422 for a series whose rows disagree."""
    if not kinds:
        return
    errors: list[dict[str, Any]] = []
    for column, (name, kind) in enumerate(kinds.items()):
        if kind == "static":
            errors += _static_column(series, column, name)
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])
    for item in series:
        item["covariates"] = dict(zip(kinds, item.pop("cells"), strict=True))


def _static_column(series: list[dict[str, Any]], column: int, name: str
                   ) -> list[dict[str, Any]]:
    """Put a static column's one value per series in its items' cells: numbers if every
    series' reads as one, else categories (the text). An error for each series whose rows
    hold more than one value, or leave it empty."""
    errors = []
    for item in series:
        found = sorted(set(item["cells"][column]))
        if len(found) != 1 or not found[0]:
            has = ("an empty cell" if "" in found
                   else f"{len(found)} values ({', '.join(map(repr, found[:3]))})")
            errors.append({"loc": ["body", name], "msg": (
                f"series {item['id']!r} has {has}: a static covariate holds one value per "
                "series, on every row")})
        item["cells"][column] = found[0] if found else ""
    typed = typed_static([item["cells"][column] for item in series])
    for item, value in zip(series, typed, strict=True):
        item["cells"][column] = value
    return errors


def typed_static(cells: list[str]) -> list[float | str]:
    """A static covariate's values, one per series: numbers if every one reads as a number,
    else categories (the texts). (A static table's columns are typed the same way.)"""
    numbers = [finite_number(cell) for cell in cells]
    if all(number is not None for number in numbers):
        return numbers  # type: ignore[return-value]
    return list(cells)


def finite_number(text: str) -> float | None:
    """A cell as a finite number, or None when it is not one (a category, a word, nan)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


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
