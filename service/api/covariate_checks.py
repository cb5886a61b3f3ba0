"""A job request's covariates: the declaration of their kinds, and every series item's values.

The API's shape is not the engine's: the kinds are declared once (`covariates`: {name: kind})
and each series item carries its own values, so that a series travels whole. These checks
name the API's fields ("series", i, "covariates", name); what passes them is what
bptt.covariates.declare accepts once the job's series are put in its form
(service.store.dataset_rows.library_covariates).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from service.api.bodies import JsonConstant
from service.api.schemas import (
    COVARIATE_KINDS,
    COVARIATE_NAME_MAX_LENGTH,
    COVARIATE_NAME_PATTERN,
    CovariateKinds,
    SeriesIn,
)
from service.store.dataset_ingest import MAX_COVARIATE_COLUMNS

FIELD = "covariates"
DYNAMIC = ("historical", "future")
MAX_CATEGORY_LENGTH = 128  # a static category is a label, as a series id is
_KINDS = TypeAdapter(CovariateKinds)
_NAME_RULE = (f"a covariate name is 1-{COVARIATE_NAME_MAX_LENGTH} letters, digits, '_', '.' "
              "or '-', starting with a letter, a digit or '_'")


def declared_kinds(fields: dict[str, Any], errors: list[dict[str, Any]], *,
                   loc: tuple[str, ...] = ()) -> dict[str, str] | None:
    """Take the declaration (`covariates`) out of a request's fields: {name: kind} in the
    order given, or None when there is none (or it is invalid: errors added, under `loc`)."""
    raw = fields.pop(FIELD, None)
    if raw is None:
        return None
    try:
        kinds = _KINDS.validate_python(raw, strict=True)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = [str(part) for part in error["loc"] if part != "[key]"]
            if error["loc"][-1:] == ("[key]",):
                message = _NAME_RULE
            elif error["type"] == "literal_error":
                message = f"must be one of {list(COVARIATE_KINDS)}"
            else:
                message = error["msg"]
            errors.append({"loc": [*loc, FIELD, *where], "msg": message})
        return None
    return kinds or None


def covariate_name_errors(names: dict[str, Any], loc: list[str | int]
                          ) -> list[dict[str, Any]]:
    """A dataset's covariate columns (`names`, in order): each named by the rule a
    declaration's names follow, and not too many (each widens every point stored)."""
    errors = [{"loc": [*loc, name], "msg": _NAME_RULE} for name in names
              if not re.fullmatch(COVARIATE_NAME_PATTERN, name)]
    if len(names) > MAX_COVARIATE_COLUMNS:
        errors.append({"loc": loc, "msg": f"has {len(names)} covariate columns; at most "
                                          f"{MAX_COVARIATE_COLUMNS}"})
    return errors


def dataset_errors(kinds: dict[str, str] | None, columns: list[str], static: list[str], *,
                   loc: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A job on an uploaded dataset declares some of its covariates: a covariate column
    (a number per point) historical or future, a column of its static table static."""
    errors = []
    for name, kind in (kinds or {}).items():
        if name in columns and kind not in DYNAMIC:
            problem = ("is a covariate column of the dataset, a number per point: declare it "
                       "historical or future")
        elif name in static and kind != "static":
            problem = "is a column of the dataset's static table: declare it static"
        elif name not in columns and name not in static:
            problem = (f"the dataset has no covariate column {name!r} (its columns: "
                       f"{', '.join(map(repr, columns)) or 'none'}; its static table's: "
                       f"{', '.join(map(repr, static)) or 'none'})")
        else:
            continue
        errors.append({"loc": [*loc, FIELD, name], "msg": problem})
    return errors


def values_per_point(kinds: dict[str, str] | None) -> int:
    """What one step of a series weighs in the limits on values and cost: its value and its
    dynamic covariates' (a static one is a single value per series)."""
    return 1 + sum(kind in DYNAMIC for kind in (kinds or {}).values())


def series_errors(series: list[SeriesIn], kinds: dict[str, str] | None
                  ) -> list[dict[str, Any]]:
    """Every item's covariates against the declaration: none undeclared, none missing, each
    of its kind's shape, and a static one of one type (number or category) on every series."""
    kinds = kinds or {}
    errors = []
    for i, item in enumerate(series):
        given = item.covariates or {}
        errors += [{"loc": ["series", i, FIELD, name],
                    "msg": "not declared: declare its kind in the request's `covariates` "
                           "({name: static | historical | future})"}
                   for name in given if name not in kinds]
        for name, kind in kinds.items():
            if name not in given:
                problem = f"missing: every series carries every declared covariate ({kind})"
            elif kind in DYNAMIC:
                problem = dynamic_problem(given[name], len(item.values))
            else:
                problem = static_problem(given[name])
            if problem:
                errors.append({"loc": ["series", i, FIELD, name], "msg": problem})
    if not errors:
        errors += _mixed_static_errors(series, kinds)
    return errors


def static_problem(value: Any) -> str | None:
    """Why a static covariate's value is refused (None: it is a number or a category)."""
    if isinstance(value, str):
        if not 1 <= len(value) <= MAX_CATEGORY_LENGTH:
            return f"a category has 1-{MAX_CATEGORY_LENGTH} characters"
        return None
    if _is_number(value):
        return None
    if isinstance(value, JsonConstant):
        return f"{value} is not valid JSON"
    return "a static covariate is one number, or one category (a string), per series"


def dynamic_problem(values: Any, length: int) -> str | None:
    """Why a historical or future covariate's values are refused (None: a list of `length`
    numbers or nulls, at least one of them a number)."""
    if not isinstance(values, list):
        return (f"a historical or future covariate is a list of {length} numbers (null for a "
                "gap), one for each of the series' values")
    for value in values:
        if isinstance(value, JsonConstant):
            return f"{value} is not valid JSON (use null for a gap)"
        if value is not None and not _is_number(value):
            return f"values must be numbers or null (got {value!r})"
    if len(values) != length:
        return f"has {len(values)} values; the series has {length}"
    if all(value is None for value in values):
        return "has no observed value"
    return None


def _is_number(value: Any) -> bool:
    """A finite JSON number (bools are not numbers here, as nowhere in the API)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _mixed_static_errors(series: list[SeriesIn], kinds: dict[str, str]
                         ) -> list[dict[str, Any]]:
    """A static covariate must be a number on every series or a category on every series:
    the first item of the other type is named."""
    errors = []
    for name, kind in kinds.items():
        if kind != "static":
            continue
        first = isinstance(series[0].covariates[name], str)  # type: ignore[index]
        for i, item in enumerate(series):
            if isinstance(item.covariates[name], str) != first:  # type: ignore[index]
                errors.append({"loc": ["series", i, FIELD, name], "msg": (
                    f"mixes numbers and categories: series {series[0].id!r} has a "
                    f"{'category' if first else 'number'}, this one a "
                    f"{'number' if first else 'category'}")})
                break
    return errors
