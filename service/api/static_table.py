"""A CSV's static covariates as a table of their own, as the forecasting ecosystem keeps them
(neuralforecast's `static_df`): a header `unique_id,<a column per static covariate>`, then one
row per series. It comes as the `static` part of a multipart/form-data body whose `series`
part is the long CSV.

Every row must match a series and every series must have a row: an id in one but not the
other is refused naming it (an unmatched row is most often a typo in an id, which would
otherwise leave a series without its values).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from service.api.csvio import COLUMNS, MAX_ERRORS, typed_static
from service.api.problems import ValidationProblem

PART = "static"  # the multipart part that holds the table, and the loc of its errors
LOC = ["body", PART]


@dataclass(frozen=True)
class StaticTable:
    """A static table as read: its covariate columns, and each row's cells and line."""

    names: list[str]
    rows: dict[str, tuple[list[str], int]]  # unique_id -> (cells in `names`' order, line)

    def columns(self, ids: list[str]) -> dict[str, list[float | str]]:
        """Each column's values for the series `ids` (every one has a row), in their order:
        numbers if every cell of it reads as one, else categories."""
        return {name: typed_static([self.rows[uid][0][j] for uid in ids])
                for j, name in enumerate(self.names)}


def read_static_table(text: str, ids: list[str], declared: dict[str, str]) -> StaticTable:
    """The static table `text` of the series `ids`, checked: a row for every series and a
    series for every row, a column for each static covariate, none named as a column of the
    long CSV (`declared`: its covariate columns). 422 naming the line and column of anything
    wrong."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    errors = _header_errors(header, declared)
    if errors:
        raise ValidationProblem(errors)
    names = [name for name in header if name != "unique_id"]
    table = StaticTable(names, _rows(reader, header, names))
    _check_ids(ids, table.rows)
    return table


def attach_static_table(series: list[dict[str, Any]], text: str, declared: dict[str, str]
                        ) -> dict[str, str]:
    """Give each series item its static covariates from the table `text`: each column beyond
    unique_id becomes one, numbers if every cell of it reads as one, else categories. The
    covariates' kinds, `declared` (the query's, for the long CSV's columns) then the table's.
    422 naming the line and column of anything wrong; nothing changes then."""
    ids = [item["id"] for item in series]
    table = read_static_table(text, ids, declared)
    columns = table.columns(ids)
    for i, item in enumerate(series):
        item.setdefault("covariates", {}).update(
            (name, values[i]) for name, values in columns.items())
    return {**declared, **dict.fromkeys(table.names, "static")}


def _header_errors(header: list[str], declared: dict[str, str]) -> list[dict[str, Any]]:
    """A header needs unique_id and at least one covariate column, each named once, none the
    name of a column of the long CSV."""
    if not any(header):
        return [{"loc": LOC, "msg": "is empty; the first line must be unique_id,<a column per "
                                    "static covariate>"}]
    errors = []
    if "unique_id" not in header:
        errors.append({"loc": [*LOC, "header", "unique_id"], "msg": "column required"})
    elif len(header) == 1:
        errors.append({"loc": [*LOC, "header"],
                       "msg": "has no covariate column: add one per static covariate"})
    for name in dict.fromkeys(header):
        where = [*LOC, "header", name]
        if not name:
            errors.append({"loc": [*LOC, "header"], "msg": "has a column without a name"})
        elif header.count(name) > 1:
            errors.append({"loc": where, "msg": "repeated column"})
        elif name in COLUMNS[1:]:
            errors.append({"loc": where, "msg": "ds and y are the long CSV's columns: the "
                                                "static table holds one value per series"})
        elif name in declared:
            errors.append({"loc": where, "msg": (
                "is also a covariate column of the long CSV: a covariate comes from one "
                "place")})
    return errors


def _rows(reader: Any, header: list[str], names: list[str]
          ) -> dict[str, tuple[list[str], int]]:
    """{unique_id: (its cells in `names`' order, its line)}; 422 naming each bad line."""
    where = [header.index(name) for name in names]
    id_at = header.index("unique_id")
    rows: dict[str, tuple[list[str], int]] = {}
    errors: list[dict[str, Any]] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines (a trailing newline) carry nothing
        cells = [cell.strip() for cell in row]
        if len(cells) != len(header):
            errors.append({"loc": [*LOC, f"line {line}"],
                           "msg": f"has {len(cells)} fields; the header has {len(header)}"})
        elif not cells[id_at]:
            errors.append({"loc": [*LOC, f"line {line}", "unique_id"], "msg": "must not be empty"})
        elif cells[id_at] in rows:
            errors.append({"loc": [*LOC, f"line {line}", "unique_id"], "msg": (
                f"series {cells[id_at]!r} already has a row (line {rows[cells[id_at]][1]}): "
                "one row per series")})
        else:
            errors += [{"loc": [*LOC, f"line {line}", name], "msg": (
                "must not be empty: a static covariate has a value for every series")}
                for name, at in zip(names, where, strict=True) if not cells[at]]
            rows[cells[id_at]] = ([cells[at] for at in where], line)
        if len(errors) >= MAX_ERRORS:
            break
    if not errors and not rows:
        errors.append({"loc": LOC, "msg": "has no rows after the header: one per series"})
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])
    return rows


def _check_ids(ids: list[str], rows: dict[str, tuple[list[str], int]]) -> None:
    """422 for a series without a row, and for a row of no series."""
    errors = [{"loc": LOC, "msg": f"has no row for series {uid!r}: every series needs one"}
              for uid in ids if uid not in rows][:MAX_ERRORS]
    known = set(ids)
    errors += [{"loc": [*LOC, f"line {line}", "unique_id"],
                "msg": f"no series is {uid!r}: every row must be one of the long CSV's series"}
               for uid, (_, line) in rows.items() if uid not in known]
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])
