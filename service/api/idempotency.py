"""Idempotency-Key for job submission: a retried request replays the first answer.

The key lives on the job row (unique per tenant), written in the same transaction as the job,
so the database, not a lock in this process, decides which of two concurrent requests wins:
the loser's insert waits on the unique index until the winner commits, then fails, and the
loser replays the winner's answer. If the winner is still in flight after a short wait, the
loser answers 409 and the client retries. Refused requests store nothing, so their key stays
free for a corrected request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Response, request
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.api.documents import json_response, submitted_job_document
from service.api.problems import Problem, ValidationProblem
from service.store import repository
from service.store.tables import Job

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# How long a request waits for another in-flight request with its key before answering 409.
# The winner only inserts two rows, so a longer wait means it is stuck, not slow.
IN_FLIGHT_WAIT_MS = 2000
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII; the column holds 255


def key_from_header() -> str | None:
    """The request's Idempotency-Key, if any (422 when malformed)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise ValidationProblem([{"loc": ["header", HEADER],
                                  "msg": "must be 1 to 255 visible ASCII characters"}])
    return key


def replay(session: Session, *, tenant_id: int, key: str, request_hash: str) -> Response | None:
    """The first answer for `key`, if a request with it was accepted; 422 if its body differed."""
    job = repository.job_by_idempotency_key(session, tenant_id=tenant_id, key=key)
    if job is None:
        return None
    if job.request_hash != request_hash:
        raise ValidationProblem(
            [{"loc": ["header", HEADER], "msg": "was already used with another request body"}],
            detail=f"This {HEADER} was used for another request; use a new key.",
        )
    response = created_response(session, job)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def insert_once(session: Session, insert: Callable[[], Job], *, tenant_id: int,
                key: str | None, request_hash: str) -> Job | Response:
    """Run `insert` and commit; on a key collision, the winner's answer (or 409/422) instead."""
    try:
        if key is not None and session.get_bind().dialect.name == "postgresql":
            # Bounded wait on the unique index; SQLite waits its busy timeout instead.
            session.execute(text(f"SET LOCAL lock_timeout = '{IN_FLIGHT_WAIT_MS}ms'"))
        job = insert()
        session.commit()
        return job
    except IntegrityError as exc:
        session.rollback()
        if key is None or "idempotency_key" not in str(exc.orig):
            raise
    except OperationalError as exc:
        session.rollback()
        if not _is_lock_timeout(exc):
            raise
        if key is None:
            raise Problem("The database is busy; retry shortly.", status=503,
                          headers={"Retry-After": "1"}) from None
    assert key is not None
    answer = replay(session, tenant_id=tenant_id, key=key, request_hash=request_hash)
    if answer is None:  # the other request holds the key but has not committed
        raise Problem(f"A request with this {HEADER} is still in flight; retry shortly.",
                      status=409, headers={"Retry-After": "1"})
    return answer


def created_response(session: Session, job: Job) -> Response:
    """202 with the job as first submitted and its Location."""
    dataset = repository.dataset_size(session, job_id=job.id)
    response = json_response(submitted_job_document(job, dataset=dataset), 202)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return response


def _is_lock_timeout(exc: OperationalError) -> bool:
    """Whether the database gave up waiting for a lock (PostgreSQL 55P03, SQLite busy)."""
    orig: Any = exc.orig
    return getattr(orig, "sqlstate", None) == "55P03" or "database is locked" in str(orig)
