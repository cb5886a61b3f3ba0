"""Reading request bodies: strict JSON, or long-format CSV with the other fields in the query."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import request
from werkzeug.datastructures import MultiDict

from service.api import csvio, static_table
from service.api.extensions import current_settings
from service.api.problems import Problem, ValidationProblem

COVARIATES = "covariates"  # the query field that declares a CSV's covariate columns
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
# A long CSV with a static table: the parts `series` and `static` (jobs and forecasts)
MULTIPART = "multipart/form-data"
SERIES_PART = "series"


class JsonConstant:
    """NaN, Infinity or -Infinity where JSON has no such thing: invalid wherever it appears."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Body:
    """A parsed request: the fields as JSON would give them, and where they came from."""

    data: Any
    is_csv: bool
    request_hash: str  # identifies the request for Idempotency-Key replays


def read_body(*, query_fields: frozenset[str] | None = None,
              raw_query: frozenset[str] = frozenset(),
              list_query: frozenset[str] = frozenset()) -> Body:
    """The request's fields from a JSON body, or from a CSV body (`series`) plus the query.

    With CSV, `query_fields` (None: any) names the fields accepted as query parameters, those
    in `raw_query` are taken as plain strings rather than parsed, and the dotted names in
    `list_query` are lists even with one value (`quantiles=0.5` is [0.5]).
    """
    mimetype = request.mimetype
    takes_covariates = query_fields is not None and COVARIATES in query_fields
    # (a multipart body is read by its parts: werkzeug spools big ones to files)
    raw = b"" if mimetype == MULTIPART and takes_covariates else request.get_data(cache=True)
    if mimetype in CSV_TYPES:
        data = query_to_fields(request.args, allowed=query_fields, raw=raw_query,
                               lists=list_query)
        # The grid's frequency: the request's `freq` (a spec field), else inferred from the ds.
        data["series"] = csvio.parse_long_csv(_decode(raw), freq=data.get("freq"),
                                              max_points=current_settings().max_points,
                                              covariates=_covariate_columns(data, query_fields))
        return Body(data, True, _hash(mimetype, raw))
    if mimetype == MULTIPART and takes_covariates:
        return _read_multipart(query_fields, raw_query, list_query)
    if mimetype in JSON_TYPES or mimetype.endswith("+json"):
        if request.args:
            raise ValidationProblem([
                {"loc": ["query", name], "msg": "query parameters are read only with a text/csv "
                                                "body; put this field in the JSON body"}
                for name in request.args
            ])
        return Body(parse_json(raw), False, _hash(mimetype, raw))
    also = f", or {MULTIPART} with a static table" if takes_covariates else ""
    raise Problem(
        f"Send the body as application/json or text/csv{also} "
        f"(got {mimetype or 'no Content-Type'}).",
        status=415,
    )


def _read_multipart(query_fields: frozenset[str] | None, raw_query: frozenset[str],
                    list_query: frozenset[str]) -> Body:
    """A long CSV with its static table: the parts `series` and `static` of a
    multipart/form-data body, the other fields in the query as with a text/csv body. The
    table's columns join the covariates the query declares, as static ones."""
    series_raw, static_raw = _parts()
    data = query_to_fields(request.args, allowed=query_fields, raw=raw_query, lists=list_query)
    declared = _covariate_columns(data, query_fields) or {}
    try:
        data["series"] = csvio.parse_long_csv(_decode(series_raw, SERIES_PART),
                                              freq=data.get("freq"),
                                              max_points=current_settings().max_points,
                                              covariates=declared)
    except ValidationProblem as exc:  # its lines are the series part's
        raise ValidationProblem([_in_part(error, SERIES_PART) for error in exc.errors]
                                ) from None
    if static_raw is not None:
        data[COVARIATES] = static_table.attach_static_table(
            data["series"], _decode(static_raw, static_table.PART), declared)
    return Body(data, True, _hash(MULTIPART, series_raw, static_raw or b""))


def _parts() -> tuple[bytes, bytes | None]:
    """The bytes of the `series` part and of the `static` part (None if not sent); 422 naming
    a missing or unknown part."""
    errors = unknown_parts("the long CSV")
    series = _part(SERIES_PART)
    if series is None:
        errors.append({"loc": ["body", SERIES_PART],
                       "msg": "part required: the long CSV, unique_id,ds,y,..."})
    if errors:
        raise ValidationProblem(errors)
    return series, _part(static_table.PART)  # type: ignore[return-value]


def unknown_parts(series: str) -> list[dict[str, Any]]:
    """An error per part of a multipart body other than `series` (holding `series`, say what)
    and `static`, located by its name as sent ('' for a part without one)."""
    given = dict.fromkeys([*request.files, *request.form])
    return [{"loc": ["body", "" if name is None else str(name)],
             "msg": f"unknown part: send {SERIES_PART!r} ({series}) and "
                    f"{static_table.PART!r} (its static table)"}
            for name in given if name not in (SERIES_PART, static_table.PART)]


def _part(name: str) -> bytes | None:
    """A part's bytes, sent as a file or as a plain field."""
    if name in request.files:
        return request.files[name].read()
    text = request.form.get(name)
    return None if text is None else text.encode()


def _in_part(error: dict[str, Any], part: str) -> dict[str, Any]:
    """An error of the body's CSV, located in the multipart `part` that held it."""
    loc = error["loc"]
    return {**error, "loc": ["body", part, *loc[1:]]} if loc[:1] == ["body"] else error


def _covariate_columns(data: dict[str, Any], query_fields: frozenset[str] | None
                       ) -> dict[str, str] | None:
    """The CSV's covariate columns by kind, from the query's `covariates=name:kind,...` (set
    in `data` as the JSON field reads, {name: kind}); {} when none are declared, and None
    when the request takes no covariates at all (its extra columns are then just unknown)."""
    if query_fields is None or COVARIATES not in query_fields:
        return None
    if data.get(COVARIATES) is None:
        return {}
    data[COVARIATES] = csvio.declared_columns(data[COVARIATES])
    return data[COVARIATES]


def parse_json(raw: bytes) -> Any:
    """Strict JSON: NaN and Infinity become JsonConstant, which every field refuses by name."""
    try:
        return json.loads(raw, parse_constant=JsonConstant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(f"The body is not valid JSON: {exc}", status=400) from None
    except RecursionError:  # thousands of nested brackets: refused, not a 500
        raise Problem("The body is nested too deeply.", status=400) from None


def query_to_fields(args: MultiDict[str, str], *, allowed: frozenset[str] | None,
                    raw: frozenset[str] = frozenset(),
                    lists: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Query parameters as nested fields: `model.cell=gru` is {"model": {"cell": "gru"}}.

    Each value is read as JSON when it parses (12, 0.5, null, true, [5, 10]), else as a list
    when it has commas (`quantiles=0.1,0.9`), else as a string (`freq=MS`); a repeated
    parameter is a list. A parameter named in `lists` is a list even with one value, as the
    OpenAPI document's comma-separated arrays read (`quantiles=0.5` is [0.5]); null stays null.
    """
    fields: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name in args:
        path = name.split(".")
        if allowed is not None and path[0] not in allowed:
            errors.append({"loc": ["query", name], "msg": "unknown field"})
            continue
        values = args.getlist(name)
        if path[0] in raw:
            value: Any = values[0] if len(values) == 1 else values
        elif len(values) == 1:
            value = _query_value(values[0])
            if name in lists and value is not None and not isinstance(value, list):
                value = [value]
        else:
            value = [_query_scalar(v) for v in values]
        _put(fields, path, value, name, errors)
    if errors:
        raise ValidationProblem(errors)
    return fields


def _query_value(text: str) -> Any:
    """One parameter's value: JSON, else a comma-separated list, else the text itself."""
    try:
        return json.loads(text, parse_constant=JsonConstant)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [_query_scalar(part.strip()) for part in text.split(",")]
    return text


def _query_scalar(text: str) -> Any:
    """JSON if the text parses as JSON, else the text as a string."""
    try:
        return json.loads(text, parse_constant=JsonConstant)
    except json.JSONDecodeError:
        return text


def _put(fields: dict[str, Any], path: list[str], value: Any, name: str,
         errors: list[dict[str, Any]]) -> None:
    """Set fields[path[0]][path[1]]... = value, refusing a name that is both value and group."""
    node = fields
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            errors.append({"loc": ["query", name], "msg": "given both as a value and as a group"})
            return
    if path[-1] in node:
        errors.append({"loc": ["query", name], "msg": "given both as a value and as a group"})
        return
    node[path[-1]] = value


def _decode(raw: bytes, part: str | None = None) -> str:
    """The body (or its multipart `part`) as text (UTF-8, with or without a byte-order mark)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        what = f"The {part!r} part" if part else "The CSV body"
        raise Problem(f"{what} is not UTF-8: {exc}", status=400) from None


def _hash(mimetype: str, *parts: bytes) -> str:
    """SHA-256 over what makes the request: body (a multipart one's parts: its boundary is
    anything), media type, and (for CSV) the query."""
    # With CSV the spec fields are query parameters, so the same body with another horizon is
    # another request; sorting makes the parameters' order irrelevant.
    query = urlencode(sorted(request.args.items(multi=True)))
    digest = hashlib.sha256()
    for part in (mimetype.encode(), query.encode(), *parts):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
