"""A job's life in the database, from a worker's side: claim, lease, fenced writes, the end.

Every write after the claim is fenced: it happens only while the job's `attempts` still equals
the attempt this worker claimed and `lease_owner` is still this worker. A duplicate or stale
delivery (Celery redelivers late-acked messages after a visibility timeout or a lost worker)
either fails to claim or finds its attempt superseded, and then writes nothing.

Leases run on the database's clock (service.store.dbclock), never a worker host's. Each claim
is recorded in job_attempts, and every fenced write updates its row: the audit of who ran a
job when, and how many of its attempts lost their worker.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bptt import SeriesState
from service.store import sweep_settlement
from service.store.dbclock import db_now
from service.store.repository import upsert_epoch_metrics
from service.store.tables import Checkpoint, Job, JobAttempt, TrainedModel
from service.store.tables import SeriesState as SeriesStateRow

# A connection the database dropped (a restart, pg_terminate_backend, a failover) fails the
# statement on it; the pool's pre-ping gives the next one a fresh connection. Every operation
# here is safe to run again (fenced, or conditional), so it is, a few times, rather than
# failing a training attempt over a blip.
RECONNECT_TRIES = 4
RECONNECT_PAUSE_S = 0.5

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _reconnecting(operation: Callable[P, R]) -> Callable[P, R]:
    """Run `operation(session, ...)` again when its connection was lost (after a rollback)."""

    @functools.wraps(operation)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        session: Session = args[0]  # type: ignore[assignment]
        for attempt in range(1, RECONNECT_TRIES + 1):
            try:
                return operation(*args, **kwargs)
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt == RECONNECT_TRIES:
                    raise
                session.rollback()
                log.warning("%s: database connection lost (%s), trying again",
                            operation.__name__, exc.orig)
                time.sleep(RECONNECT_PAUSE_S * attempt)
        raise AssertionError("unreachable")

    return run


@dataclass(frozen=True)
class Claim:
    """This worker's hold on a job: the attempt number fences every later write."""

    job_id: str
    owner: str
    attempt: int


class LeaseLost(Exception):
    """The job moved on (cancelled, reclaimed after an expired lease, deleted): stop quietly."""


def _lease_expired() -> Any:
    """A running job whose lease ran out by the database's clock: its worker is gone."""
    return and_(Job.status == "running", Job.lease_expires_at < db_now())


@_reconnecting
def claim_job(session: Session, *, job_id: str, owner: str, lease_seconds: int,
              max_attempts: int) -> Claim | None:
    """Take a queued job, or a running one whose lease expired; None if someone else holds it,
    it has a cancel request, or it has had max_attempts attempts already.

    One conditional UPDATE, so two workers racing for the same job cannot both win. The lease
    runs on the database's clock. A job that cannot be claimed and never will (cancelled, or
    out of attempts, with nobody holding it) is ended here by whoever looks at it first.
    """
    claimable = or_(Job.status == "queued", _lease_expired())
    attempt = session.scalar(
        update(Job)
        .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False),
               Job.attempts < max_attempts)
        .values(status="running", lease_owner=owner, lease_expires_at=db_now(lease_seconds),
                attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, db_now()))
        .returning(Job.attempts)
        .execution_options(synchronize_session=False)
    )
    if attempt is None:
        session.rollback()
        end_abandoned(session, max_attempts=max_attempts, job_id=job_id)
        session.commit()
        return None
    _mark_lost(session, job_id, before=attempt)  # an attempt still open here lost its worker
    session.execute(insert(JobAttempt).values(job_id=job_id, attempt=attempt, owner=owner,
                                              claimed_at=db_now(), last_seen_at=db_now()))
    session.commit()
    return Claim(job_id, owner, attempt)


def end_abandoned(session: Session, *, max_attempts: int, job_id: str | None = None) -> list[str]:
    """End the jobs nobody may claim again (all of them, or just `job_id`); returns their ids.

    - cancel requested, and queued or with an expired lease: cancelled (a running job with a
      live worker is left to stop itself within an epoch);
    - max_attempts attempts made, and queued or with an expired lease: failed, with how many
      attempts lost their worker. A job that kills its worker (out of memory, a crash) ends
      here, not in the worker's own error handling, which never runs.

    Each ending settles its sweep if it is a trial. The caller commits.
    """
    only = [Job.id == job_id] if job_id is not None else []
    unheld = or_(Job.status == "queued", _lease_expired())
    ended: list[str] = []
    cancelled = session.execute(
        update(Job).where(*only, unheld, Job.cancel_requested.is_(True))
        .values(status="cancelled", finished_at=db_now(), lease_owner=None,
                lease_expires_at=None,
                error="cancelled on request")
        .returning(Job.id, Job.sweep_id, Job.attempts)
        .execution_options(synchronize_session=False)).all()
    exhausted = session.execute(
        update(Job).where(*only, unheld, Job.attempts >= max_attempts)
        .values(status="failed", finished_at=db_now(), lease_owner=None, lease_expires_at=None)
        .returning(Job.id, Job.sweep_id, Job.attempts)
        .execution_options(synchronize_session=False)).all()
    for row in cancelled:
        _mark_lost(session, row.id, before=row.attempts + 1)
    for row in exhausted:
        _mark_lost(session, row.id, before=row.attempts + 1)
        lost = session.scalar(select(func.count()).select_from(JobAttempt).where(
            JobAttempt.job_id == row.id, JobAttempt.outcome == "lost")) or 0
        session.execute(update(Job).where(Job.id == row.id).values(
            error=_exhausted_error(lost, row.attempts, max_attempts))
            .execution_options(synchronize_session=False))
    for row in [*cancelled, *exhausted]:
        ended.append(row.id)
        if row.sweep_id is not None:
            sweep_settlement.settle(session, row.sweep_id)
    if ended:
        log.warning("ended %d job(s) nobody may claim again: %s", len(ended), ", ".join(ended))
    return ended


def _exhausted_error(lost: int, attempts: int, max_attempts: int) -> str:
    """Why a job that used up its attempts failed."""
    if lost:
        return (f"worker lost {lost} times: the process training this job died (killed, out "
                f"of memory or crashed) in {lost} of its {attempts} attempts; not retried "
                f"after {max_attempts} attempts (BPTT_MAX_ATTEMPTS)")
    return f"failed after {attempts} attempts (BPTT_MAX_ATTEMPTS={max_attempts})"


def _mark_lost(session: Session, job_id: str, *, before: int) -> None:
    """Attempts of the job before `before` that never ended: their worker was lost."""
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == job_id, JobAttempt.attempt < before,
               JobAttempt.outcome.is_(None))
        .values(outcome="lost", ended_at=db_now())
        .execution_options(synchronize_session=False)
    )


def _fence(session: Session, claim: Claim, *, outcome: str | None = None,
           **values: Any) -> None:
    """Update the job row only if this claim is still current, else raise LeaseLost.

    The UPDATE also locks the row (PostgreSQL) or the database (SQLite) until commit, so the
    writes that follow in the same transaction cannot interleave with a newer attempt's. The
    attempt's audit row records the write (and, with `outcome`, the attempt's end).
    """
    result = session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.attempts == claim.attempt,
               Job.lease_owner == claim.owner, Job.status == "running")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise LeaseLost(claim.job_id)
    seen: dict[str, Any] = {"last_seen_at": db_now()}
    if outcome is not None:
        seen.update(outcome=outcome, ended_at=db_now())
    session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == claim.job_id, JobAttempt.attempt == claim.attempt)
        .values(**seen)
        .execution_options(synchronize_session=False)
    )


@_reconnecting
def renew_lease(session: Session, claim: Claim, *, lease_seconds: int,
                epoch_batches: int | None = None) -> None:
    """Push the lease forward (the heartbeat), with the batches done in the epoch in progress
    when given; LeaseLost if the job is no longer ours."""
    progress = {} if epoch_batches is None else {"epoch_batches": epoch_batches}
    _fence(session, claim, lease_expires_at=db_now(lease_seconds), **progress)
    session.commit()


@_reconnecting
def cancel_requested(session: Session, claim: Claim) -> bool:
    """Whether someone asked to cancel this job."""
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == claim.job_id)))


@_reconnecting
def set_stage(session: Session, claim: Claim, stage: str, *, epochs_total: int | None = None,
              resolved_spec: dict[str, Any] | None = None) -> None:
    """Record what the attempt does now ("training", "cross_validation"); with it, the job's
    planned epochs and, for a job submitted without one, the spec the worker resolved."""
    values: dict[str, Any] = {"stage": stage}
    if epochs_total is not None:
        values["epochs_total"] = epochs_total
    if resolved_spec is not None:
        values["resolved_spec"] = resolved_spec
    _fence(session, claim, **values)
    session.commit()


@_reconnecting
def record_epoch(session: Session, claim: Claim, *, epoch: int, epochs_total: int,
                 metrics: dict[str, Any], checkpoint: bytes | None,
                 members: list[dict[str, Any]] | None = None) -> None:
    """Write one epoch's metrics (replacing a retried epoch's row), the progress (with the
    ensemble members finished so far) and the checkpoint after it, in one fenced transaction:
    metrics, progress and checkpoint always agree, so a resumed attempt picks all three up."""
    progress: dict[str, Any] = {"epochs_done": epoch, "epochs_total": epochs_total,
                                "epoch_batches": 0}
    if members is not None:
        progress["members"] = members
    _fence(session, claim, **progress)
    upsert_epoch_metrics(session, job_id=claim.job_id, epoch=epoch, attempt=claim.attempt,
                         **metrics)
    if checkpoint is not None:
        row = session.scalar(select(Checkpoint).where(Checkpoint.job_id == claim.job_id))
        if row is None:
            session.add(Checkpoint(job_id=claim.job_id, epoch=epoch, attempt=claim.attempt,
                                   data=checkpoint))
        else:
            row.epoch, row.attempt, row.data = epoch, claim.attempt, checkpoint
    session.commit()


@_reconnecting
def succeed(session: Session, claim: Claim, *, weights: bytes, sha256: str,
            model_card: dict[str, Any], best_epoch: int | None, score: float | None = None,
            cross_validation: dict[str, Any] | None = None,
            states: list[SeriesState] = (), epochs: int | None = None,
            members: list[dict[str, Any]] | None = None) -> None:
    """Store the final model and each training series' forecast state, and end the job
    succeeded (settling its sweep if it is a trial). `epochs` trained in all becomes both done
    and total: a job that early stopping made shorter reads complete, not 388/1500."""
    progress: dict[str, Any] = {}
    if epochs is not None:
        progress.update(epochs_done=epochs, epochs_total=epochs)
    if members is not None:
        progress["members"] = members
    _fence(session, claim, outcome="succeeded", status="succeeded", finished_at=db_now(),
           best_epoch=best_epoch, lease_owner=None, lease_expires_at=None, error=None,
           score=score, cross_validation=cross_validation, **progress)
    session.add(TrainedModel(job_id=claim.job_id, weights=weights, sha256=sha256,
                             model_card=model_card))
    session.add_all([SeriesStateRow(job_id=claim.job_id, series_id=s.series_id,
                                    state=s.to_bytes(), length=s.length, version=1,
                                    updated_at=db_now()) for s in states])
    _settle_sweep(session, claim.job_id)
    session.commit()


@_reconnecting
def end(session: Session, claim: Claim, *, status: str, error: str | None = None) -> None:
    """End the job failed or cancelled, with the reason (settling its sweep if a trial)."""
    _fence(session, claim, outcome=status, status=status, finished_at=db_now(), error=error,
           lease_owner=None, lease_expires_at=None)
    _settle_sweep(session, claim.job_id)
    session.commit()


def _settle_sweep(session: Session, job_id: str) -> None:
    """In the transaction that ends a trial: finish its sweep if this was the last trial."""
    sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == job_id))
    if sweep_id is not None:
        sweep_settlement.settle(session, sweep_id)


@_reconnecting
def release(session: Session, claim: Claim, *, error: str) -> None:
    """Give the job back to the queue after a failure that another attempt may not repeat."""
    _fence(session, claim, outcome="released", status="queued", lease_owner=None,
           lease_expires_at=None, error=error, enqueued_at=db_now())
    session.commit()
