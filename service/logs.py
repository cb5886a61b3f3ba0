"""JSON log lines, each carrying the request id of the request that wrote it, and the tenant and
job the request acts on."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed into headers and logs: accept only short, plain ids, else make one.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

access_log = logging.getLogger("service.access")
# What json.dumps(entry, default=str) does, without building a new encoder for every line.
_ENCODER = json.JSONEncoder(default=str)


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
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        for key, value in request_context().items():
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


def current_request_id() -> str | None:
    """The id of the request being handled, if any."""
    return g.get("request_id") if has_request_context() else None


def request_context() -> dict[str, object]:
    """The tenant (once authenticated) and the job (from the URL) of the request being handled."""
    # Read from the request rather than passed by each route: every line a job route writes,
    # the access line included, says whose job it was, without a route having to remember.
    if not has_request_context():
        return {}
    context: dict[str, object] = {}
    tenant_id = g.get("tenant_id")
    if tenant_id is not None:
        context["tenant_id"] = tenant_id
    job_id = (request.view_args or {}).get("job_id")
    if job_id is not None:
        context["job_id"] = job_id
    return context


def init_app(app: Flask) -> None:
    """Give every request an id (the client's X-Request-ID or a new one), echo it, log it."""
    app.before_request(_start_request)
    app.after_request(_finish_request)


def _start_request() -> None:
    """Take the client's request id if it is well-formed, else make one; start the clock."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    """Echo the request id and write one access line."""
    # Errors raised before _start_request ran (none today) would find no id: make one then.
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    # Each read through the `request` proxy costs a lookup; this runs on every request.
    method, path, status = request.method, request.path, response.status_code
    access_log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        },
    )
    return response
