"""Query parameters: bounded integers, choices, and opaque pagination cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Collection
from datetime import UTC, datetime

from flask import request

from service.api.problems import ValidationProblem


def refuse_unknown(allowed: Collection[str]) -> None:
    """422 naming every query parameter the route does not read (a typo is never ignored)."""
    unknown = [name for name in request.args if name not in allowed]
    if unknown:
        raise ValidationProblem([{"loc": ["query", name], "msg": "unknown parameter"}
                                 for name in unknown])


# The largest value an integer column holds on every database we run on (PostgreSQL's
# INTEGER): a larger bound would reach the database and fail there instead of here.
MAX_INT = 2**31 - 1


def int_arg(name: str, *, default: int | None, minimum: int, maximum: int = MAX_INT
            ) -> int | None:
    """An integer query parameter within [minimum, maximum], or `default` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or value > maximum:
        bounds = f"between {minimum} and {maximum}"
        raise ValidationProblem([{"loc": ["query", name], "msg": f"must be an integer {bounds}"}])
    return value


def float_list_arg(name: str) -> list[float] | None:
    """Comma-separated finite numbers (`?quantiles=0.1,0.9`), or None when absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        values = [float(part) for part in raw.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise ValidationProblem([{"loc": ["query", name],
                                  "msg": "must be finite numbers separated by commas"}])
    return values


def choice_arg(name: str, choices: Collection[str]) -> str | None:
    """A query parameter that must be one of `choices`, or None when absent."""
    raw = request.args.get(name)
    if raw is not None and raw not in choices:
        raise ValidationProblem([{"loc": ["query", name],
                                  "msg": f"must be one of {', '.join(choices)}"}])
    return raw


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """An opaque cursor for the position after (created_at, id) in a newest-first list."""
    raw = json.dumps([created_at.isoformat(), item_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_arg(name: str = "cursor") -> tuple[datetime, str] | None:
    """The (created_at, id) position a cursor query parameter encodes, or None when absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        moment, item_id = json.loads(text)
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None or not isinstance(item_id, str) or "\x00" in item_id:
            raise ValueError("not a cursor")
        created_at = created_at.astimezone(UTC)  # out of range near year 1 or 9999: refused
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError, OverflowError):
        # json.JSONDecodeError is a ValueError; a wrong shape fails the unpacking.
        raise ValidationProblem([{"loc": ["query", name],
                                  "msg": "is not a cursor this API returned"}]) from None
    return created_at, item_id
