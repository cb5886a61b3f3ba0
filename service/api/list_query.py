"""GET /v1/jobs's query: filters (status, cell, label, sweep), the sort, and its cursor.

A cursor names the sort it was read in with the last row's sort keys and id, so a page asked
for with another sort is refused rather than silently started somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from flask import request

import bptt
from service.api import lookup, params
from service.api.problems import ValidationProblem
from service.api.schemas import LABEL_KEY_PATTERN, LABEL_VALUE_MAX_LENGTH, MAX_LABELS
from service.store.job_listing import (
    DEFAULT_SORT,
    JobFilter,
    Position,
    decode_keys,
    encode_keys,
    sort_names,
)
from service.store.tables import JOB_STATUSES, Sweep

PARAMETERS = ("status", "cell", "label", "sweep_id", "sort", "limit", "cursor")
STANDALONE = "none"  # sweep_id=none: only jobs that are no sweep's trial
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)


def job_filter() -> JobFilter:
    """The filters of the request's query (422 naming the parameter for a bad one)."""
    statuses = _choices("status", JOB_STATUSES)
    cells = _choices("cell", bptt.CELL_NAMES)
    labels = tuple(_label(raw) for raw in request.args.getlist("label"))
    if len(labels) > MAX_LABELS:
        _refuse("label", f"at most {MAX_LABELS} label filters")
    sweep = request.args.get("sweep_id")
    if sweep == STANDALONE:
        return JobFilter(statuses=statuses, cells=cells, labels=labels, standalone=True)
    sweep_id = None
    if sweep is not None:
        sweep_id = lookup.find(Sweep, sweep, kind="sweep", loc=["query", "sweep_id"]).id
    return JobFilter(statuses=statuses, cells=cells, labels=labels, sweep_id=sweep_id)


def sort() -> str:
    """The sort asked for (`-` first: descending), newest first by default."""
    return params.choice_arg("sort", sort_names()) or DEFAULT_SORT


def cursor(sort_name: str) -> Position | None:
    """Where the page starts: after the position the `cursor` parameter encodes."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
        if len(decoded) == 2 and sort_name == DEFAULT_SORT:  # before sorts: [created_at, id]
            decoded = [DEFAULT_SORT, decoded[:1], decoded[1]]
        named, keys, job_id = decoded
        if not isinstance(job_id, str) or "\x00" in job_id or not isinstance(keys, list):
            raise ValueError("not a cursor")
        if named != sort_name:
            _refuse("cursor", f"was returned for sort={named}; ask for that sort, or start "
                              "again without a cursor")
        return Position(sort_name, decode_keys(sort_name, keys), job_id)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, KeyError,
            AttributeError, OverflowError):
        # json.JSONDecodeError is a ValueError; a wrong shape fails the unpacking.
        _refuse("cursor", "is not a cursor this API returned")
    raise AssertionError("unreachable")


def encode_cursor(position: Position) -> str:
    """The opaque cursor of the page after `position`."""
    raw = json.dumps([position.sort, encode_keys(position.keys), position.job_id],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _choices(name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable parameter (`status=queued&status=running`, or `status=queued,running`)
    whose every value is one of `allowed`."""
    values = [part for raw in request.args.getlist(name) for part in raw.split(",")]
    for value in values:
        if value not in allowed:
            _refuse(name, f"{value!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(values))


def _label(raw: str) -> tuple[str, str | None]:
    """`key:value` (the label has this value) or `key` (the job has the label)."""
    key, colon, value = raw.partition(":")
    if not _LABEL_KEY.match(key):
        _refuse("label", f"{raw!r}: give key:value or key, the key of letters, digits, '_', "
                         "'.' or '-'")
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        _refuse("label", f"a label value has at most {LABEL_VALUE_MAX_LENGTH} characters")
    return key, value if colon else None


def _refuse(name: str, message: str) -> Any:
    raise ValidationProblem([{"loc": ["query", name], "msg": message}])
