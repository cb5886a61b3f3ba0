"""Settling sweeps, in the database: trials are jobs, and the sweep settles when the
last of them finishes.

No chord and no callback task: whoever ends a trial (a worker, in the same transaction as the
trial's ending; the API, cancelling) calls `settle`, and the reaper settles any sweep whose
trials are all finished as a safety net. `settle` first updates the sweep row, which locks it on
PostgreSQL (and the whole database on SQLite) until commit, so of two trials finishing at once
the second waits for the first and then sees it finished: the last one always settles.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.store.tables import Job, Sweep, utcnow

UNFINISHED = ("queued", "running")


def settle(session: Session, sweep_id: str) -> bool:
    """Finish the sweep if none of its trials is left to run: status, best trial, end time.
    Returns whether it is (now or already) finished. The caller commits."""
    locked = session.execute(update(Sweep).where(Sweep.id == sweep_id)
                             .values(id=Sweep.id).execution_options(synchronize_session=False))
    if not locked.rowcount:  # type: ignore[attr-defined]
        return False  # deleted meanwhile
    left = session.scalar(select(func.count()).select_from(Job).where(
        Job.sweep_id == sweep_id, Job.status.in_(UNFINISHED)))
    if left:
        return False
    best = best_trial(session, sweep_id)
    current = session.scalar(select(Sweep.status).where(Sweep.id == sweep_id))
    status = "cancelled" if current == "cancelled" else ("succeeded" if best else "failed")
    session.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.finished_at.is_(None))
                    .values(status=status, best_job_id=best, finished_at=utcnow())
                    .execution_options(synchronize_session=False))
    return True


def best_trial(session: Session, sweep_id: str) -> str | None:
    """The succeeded trial with the lowest score (the earlier trial on ties), if any."""
    return session.scalar(select(Job.id).where(
        Job.sweep_id == sweep_id, Job.status == "succeeded", Job.score.is_not(None))
        .order_by(Job.score, Job.trial).limit(1))


def cancel(session: Session, sweep_id: str) -> None:
    """Cancel a sweep: queued trials at once, running ones by their cancel flag (they stop
    within an epoch and then settle the sweep). The caller commits."""
    session.execute(update(Sweep).where(Sweep.id == sweep_id, Sweep.status == "running")
                    .values(status="cancelled").execution_options(synchronize_session=False))
    now = utcnow()
    session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status == "queued")
                    .values(status="cancelled", cancel_requested=True, finished_at=now)
                    .execution_options(synchronize_session=False))
    session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status == "running")
                    .values(cancel_requested=True)
                    .execution_options(synchronize_session=False))
    settle(session, sweep_id)


def unsettled(session: Session, limit: int = 100) -> list[str]:
    """Unfinished sweeps none of whose trials is left to run (for the reaper)."""
    pending = select(Job.id).where(Job.sweep_id == Sweep.id, Job.status.in_(UNFINISHED))
    return list(session.scalars(select(Sweep.id).where(
        Sweep.finished_at.is_(None), ~pending.exists()).limit(limit)))


def counts(session: Session, sweep_id: str) -> dict[str, int]:
    """How many of the sweep's trials are in each status."""
    rows = session.execute(select(Job.status, func.count()).where(Job.sweep_id == sweep_id)
                           .group_by(Job.status))
    return {status: n for status, n in rows}
