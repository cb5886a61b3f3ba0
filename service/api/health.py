"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from sqlalchemy import text

from service.api.extensions import services
from service.api.problems import problem_response
from service.store import queue

BROKER_CHECK_TIMEOUT_S = 2

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers HTTP. Checks nothing else, so a slow database never gets
    a healthy process restarted."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, object] | Response:
    """Readiness: 200 when the database and the broker answer, else 503 naming which failed."""
    checks = {"database": _check(_database), "broker": _check(_broker)}
    if any(result != "ok" for result in checks.values()):
        failed = [name for name, result in checks.items() if result != "ok"]
        return problem_response(503, detail=f"Not ready: {', '.join(failed)} unreachable.",
                                checks=checks)
    return {"status": "ok", "checks": checks}


def _check(probe) -> str:
    """"ok", or "error: <kind>" (the details go to the log, not to the caller)."""
    try:
        probe()
        return "ok"
    except Exception as exc:  # any failure to reach it means "not ready"
        log.warning("readiness: %s failed: %s", probe.__name__.strip("_"), exc)
        return f"error: {type(exc).__name__}"


def _database() -> None:
    with services().engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _broker() -> None:
    # A broker that is down does not stop submissions (the reaper re-sends later), but an
    # instance that cannot reach it should not take traffic while others can.
    with queue.client(services().settings.broker_url).connection_for_write() as connection:
        connection.ensure_connection(max_retries=0, timeout=BROKER_CHECK_TIMEOUT_S)
