"""`bptt forecast JOB --future-values FILE.csv`: the future covariates' values over a forecast's
steps, read from a long-format CSV (`unique_id,ds,<a column per future covariate>`, a row per
series and step) and checked against the forecast's own dates, into the `future_covariates`
that POST /v1/forecasts takes ({name: {series id: values in step order}})."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from bptt import CalendarError, parse_timestamp
from service.api.csvio import finite_number

KEYS = ("unique_id", "ds")
MAX_PROBLEMS = 10  # a wrong file could name every row; the first few say what is wrong


class FutureValuesError(Exception):
    """The file does not fit the forecast; str() names the lines and series."""


def read_future_values(text: str, dates: dict[str, list[str | int] | None]
                       ) -> dict[str, dict[str, list[float]]]:
    """{covariate: {series id: its values, one per forecast step}} from the CSV `text`, for the
    forecast whose steps' ds are `dates` (by series id). Every series needs a row for each of
    its steps, and a row whose ds is none of them (off the series' grid, or past the horizon)
    is refused, as are unknown series, repeated rows and cells that are no finite number."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    names = _covariate_columns(header)
    undated = [sid for sid, ds in dates.items() if ds is None]
    if undated:
        raise FutureValuesError(f"the forecast's dates of series {undated[0]!r} are unknown "
                                "(a dated series without a frequency): no ds can match them")
    steps = {sid: {_timestamp(d): k for k, d in enumerate(ds or [])} for sid, ds in dates.items()}
    values: dict[str, dict[str, list[Any]]] = {
        name: {sid: [None] * len(ds or []) for sid, ds in dates.items()} for name in names}
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        if any(cell.strip() for cell in row):
            cells = dict(zip(header, row, strict=False))
            problems += _read_row(line, cells, len(row) == len(header), steps, dates, values)
        if len(problems) >= MAX_PROBLEMS:
            break
    problems += _missing(values, dates)
    if problems:
        raise FutureValuesError("; ".join(problems[:MAX_PROBLEMS]))
    return values


def _covariate_columns(header: list[str]) -> list[str]:
    """The header's covariate names (every column but unique_id and ds)."""
    missing = [key for key in KEYS if key not in header]
    names = [name for name in header if name not in KEYS]
    if missing or not names:
        raise FutureValuesError("the header must hold unique_id, ds and a column per future "
                                f"covariate (got {','.join(header) or 'nothing'})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FutureValuesError(f"the header repeats {repeated[0]!r}")
    return names


def _read_row(line: int, cells: dict[str, str], complete: bool,
              steps: dict[str, dict[Any, int]], dates: dict[str, list[str | int] | None],
              values: dict[str, dict[str, list[Any]]]) -> list[str]:
    """Place one row's values at its series' step; the problems it has."""
    if not complete:
        return [f"line {line}: the number of fields differs from the header's"]
    sid, ds = cells["unique_id"].strip(), cells["ds"].strip()
    if sid not in steps:
        return [f"line {line}: {sid!r} is not a series of this forecast"]
    try:
        step = steps[sid].get(_timestamp(ds))
    except CalendarError as exc:
        return [f"line {line}: ds {ds!r}: {exc}"]
    if step is None:
        own = dates[sid] or []
        return [f"line {line}: ds {ds!r} is not a forecast step of {sid!r} (those are "
                f"{own[0]} ... {own[-1]})"]
    problems = []
    for name, by_series in values.items():
        if by_series[sid][step] is not None:
            return [f"line {line}: {sid!r} has ds {ds!r} twice"]
        number = finite_number(cells[name])
        if number is None:
            problems.append(f"line {line}: {name} must be a finite number (got "
                            f"{cells[name].strip()!r})")
        by_series[sid][step] = math.nan if number is None else number  # the row was there
    return problems


def _missing(values: dict[str, dict[str, list[Any]]], dates: dict[str, list[str | int] | None]
             ) -> list[str]:
    """A problem for each series step without a row."""
    problems = []
    for by_series in values.values():
        for sid, row in by_series.items():
            gaps = [(dates[sid] or [])[k] for k, v in enumerate(row) if v is None]
            if gaps:
                problems.append(f"{sid!r} has no row for ds {', '.join(map(str, gaps[:3]))}"
                                f"{' ...' if len(gaps) > 3 else ''}")
        break  # every column of a row is set at once: the first column tells
    return problems


def _timestamp(ds: str | int) -> Any:
    """A ds as a comparable timestamp (2024-03-01 and 2024-03-01T00:00 are one)."""
    return parse_timestamp(str(ds))
