"""JSON log lines for every process (API, workers, CLI).

No Flask here: the workers log through this module too. Inside a request the API adds the
request id, tenant and job to each line through a context provider (service.api.request_log).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# What json.dumps(entry, default=str) does, without building a new encoder for every line.
_ENCODER = json.JSONEncoder(default=str)


# Each returns what the line's context adds (e.g. the request id of the request that wrote it);
# called for every line, so it must be cheap and must not log.
CONTEXT_PROVIDERS: list[Callable[[], dict[str, object]]] = []


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        for provider in CONTEXT_PROVIDERS:
            for key, value in provider().items():
                entry.setdefault(key, value)  # a value given with `extra=` wins
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    # Replace only our own handler, so calling this again (one app per test) adds no duplicate
    # and handlers that others installed (pytest's capture) stay.
    for handler in [h for h in root.handlers if getattr(h, "_bptt_json", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._bptt_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
