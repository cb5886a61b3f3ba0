"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response
from sqlalchemy import text

from .errors import problem_response
from .extensions import services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers HTTP. Checks nothing else, so a slow database never gets
    a healthy process restarted."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, object] | Response:
    """Readiness: 200 when the database answers, else 503 (take the instance out of rotation)."""
    try:
        with services().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness: database check failed: %s", exc)
        return problem_response(
            503,
            detail="The database does not answer.",
            checks={"database": f"error: {type(exc).__name__}"},
        )
    return {"status": "ok", "checks": {"database": "ok"}}
