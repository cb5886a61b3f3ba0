"""Per-request logging for the API: a request id for every answer, one access line each, and
the request's id, tenant and job on every line written while it is handled."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, has_request_context, request

from service import logs

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed into headers and logs: accept only short, plain ids, else make one.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("service.access")


def request_context() -> dict[str, object]:
    """The id, the tenant (once authenticated) and the job (from the URL) of the request being
    handled: what every line written meanwhile carries."""
    # Read from the request rather than passed by each route: every line a job route writes,
    # the access line included, says whose job it was, without a route having to remember.
    if not has_request_context():
        return {}
    context: dict[str, object] = {}
    request_id = g.get("request_id")
    if request_id:
        context["request_id"] = request_id
    tenant_id = g.get("tenant_id")
    if tenant_id is not None:
        context["tenant_id"] = tenant_id
    job_id = (request.view_args or {}).get("job_id")
    if job_id is not None:
        context["job_id"] = job_id
    return context


def init_app(app: Flask) -> None:
    """Give every request an id (the client's X-Request-ID or a new one), echo it, log it."""
    if request_context not in logs.CONTEXT_PROVIDERS:
        logs.CONTEXT_PROVIDERS.append(request_context)
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
