"""A job's life in the database, from a worker's side: claim, lease, fenced writes, the end.

Every write after the claim is fenced: it happens only while the job's `attempts` still equals
the attempt this worker claimed and `lease_owner` is still this worker. A duplicate or stale
delivery (Celery redelivers late-acked messages after a visibility timeout or a lost worker)
either fails to claim or finds its attempt superseded, and then writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bptt import SeriesState
from service.store import sweep_settlement
from service.store.repository import upsert_epoch_metrics
from service.store.tables import Checkpoint, Job, TrainedModel, utcnow
from service.store.tables import SeriesState as SeriesStateRow


@dataclass(frozen=True)
class Claim:
    """This worker's hold on a job: the attempt number fences every later write."""

    job_id: str
    owner: str
    attempt: int


class LeaseLost(Exception):
    """The job moved on (cancelled, reclaimed after an expired lease, deleted): stop quietly."""


def claim_job(session: Session, *, job_id: str, owner: str, lease_seconds: int) -> Claim | None:
    """Take a queued job, or a running one whose lease expired; None if someone else holds it.

    One conditional UPDATE, so two workers racing for the same job cannot both win.
    """
    now = utcnow()
    claimable = or_(Job.status == "queued",
                    and_(Job.status == "running", Job.lease_expires_at < now))
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable, Job.cancel_requested.is_(False))
        .values(status="running", lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Job.attempts + 1, started_at=func.coalesce(Job.started_at, now))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        _cancel_if_requested(session, job_id=job_id)
        return None
    attempt = session.scalar(select(Job.attempts).where(Job.id == job_id))
    session.commit()
    return Claim(job_id, owner, attempt)


def _cancel_if_requested(session: Session, *, job_id: str) -> None:
    """A queued job with a cancel request is cancelled here, by whoever looks at it first."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(True))
        .values(status="cancelled", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _fence(session: Session, claim: Claim, **values: Any) -> None:
    """Update the job row only if this claim is still current, else raise LeaseLost.

    The UPDATE also locks the row (PostgreSQL) or the database (SQLite) until commit, so the
    writes that follow in the same transaction cannot interleave with a newer attempt's.
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


def renew_lease(session: Session, claim: Claim, *, lease_seconds: int) -> None:
    """Push the lease forward (the heartbeat); LeaseLost if the job is no longer ours."""
    _fence(session, claim, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    session.commit()


def cancel_requested(session: Session, claim: Claim) -> bool:
    """Whether someone asked to cancel this job."""
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == claim.job_id)))


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


def record_epoch(session: Session, claim: Claim, *, epoch: int, epochs_total: int,
                 metrics: dict[str, Any], checkpoint: bytes | None,
                 members: list[dict[str, Any]] | None = None) -> None:
    """Write one epoch's metrics (replacing a retried epoch's row), the progress (with the
    ensemble members finished so far) and the checkpoint after it, in one fenced transaction:
    metrics, progress and checkpoint always agree, so a resumed attempt picks all three up."""
    progress: dict[str, Any] = {"epochs_done": epoch, "epochs_total": epochs_total}
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
    _fence(session, claim, status="succeeded", finished_at=utcnow(), best_epoch=best_epoch,
           lease_owner=None, lease_expires_at=None, error=None, score=score,
           cross_validation=cross_validation, **progress)
    session.add(TrainedModel(job_id=claim.job_id, weights=weights, sha256=sha256,
                             model_card=model_card))
    now = utcnow()
    session.add_all([SeriesStateRow(job_id=claim.job_id, series_id=s.series_id,
                                    state=s.to_bytes(), length=s.length, version=1,
                                    updated_at=now) for s in states])
    _settle_sweep(session, claim.job_id)
    session.commit()


def end(session: Session, claim: Claim, *, status: str, error: str | None = None) -> None:
    """End the job failed or cancelled, with the reason (settling its sweep if a trial)."""
    _fence(session, claim, status=status, finished_at=utcnow(), error=error,
           lease_owner=None, lease_expires_at=None)
    _settle_sweep(session, claim.job_id)
    session.commit()


def _settle_sweep(session: Session, job_id: str) -> None:
    """In the transaction that ends a trial: finish its sweep if this was the last trial."""
    sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == job_id))
    if sweep_id is not None:
        sweep_settlement.settle(session, sweep_id)


def release(session: Session, claim: Claim, *, error: str) -> None:
    """Give the job back to the queue after a failure that another attempt may not repeat."""
    _fence(session, claim, status="queued", lease_owner=None, lease_expires_at=None,
           error=error, enqueued_at=utcnow())
    session.commit()
