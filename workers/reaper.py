"""The reaper: finds jobs whose wake-up message was lost or whose worker died, and re-sends them.

The broker is only a wake-up call, and it can lose one: kombu's server-less transports mark a
message taken when it is fetched (a SIGKILL loses it), Redis can be flushed. The database still
says the job is queued, or running under a lease nobody renews. Re-sending is always safe: the
claim lets exactly one worker through.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import queue, sweep_settlement
from service.store.tables import ForecastBatch, Job, utcnow

log = logging.getLogger(__name__)


def sweep(session: Session, settings: Settings) -> list[str]:
    """Mark stale jobs as just enqueued and return their ids (the caller sends the messages).

    Stale: queued and not sent for requeue_after_seconds, or running with an expired lease.
    Updating enqueued_at first means several reapers do not all re-send the same job at once.
    """
    now = utcnow()
    stale = or_(
        and_(Job.status == "queued",
             or_(Job.enqueued_at.is_(None),
                 Job.enqueued_at < now - timedelta(seconds=settings.requeue_after_seconds))),
        and_(Job.status == "running", Job.lease_expires_at < now,
             or_(Job.enqueued_at.is_(None),
                 Job.enqueued_at < now - timedelta(seconds=settings.lease_seconds))),
    )
    ids = list(session.scalars(select(Job.id).where(stale).limit(1000)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids), stale).values(enqueued_at=now)
                        .execution_options(synchronize_session=False))
    session.commit()
    return ids


def stale_batches(session: Session, settings: Settings) -> list[str]:
    """Forecast batches still queued after requeue_after_seconds: their message was lost.

    (A batch left running by a dead worker is taken over by any later delivery; see
    service.store.forecast_batches.) Batches carry no enqueue time, so a batch is re-sent at
    most once per sweep, which is harmless: claiming it is one conditional update.
    """
    cutoff = utcnow() - timedelta(seconds=settings.requeue_after_seconds)
    return list(session.scalars(select(ForecastBatch.id).where(
        ForecastBatch.status == "queued", ForecastBatch.created_at < cutoff).limit(1000)))


def settle_sweeps(session: Session) -> list[str]:
    """Finish sweeps whose trials have all finished but that nobody settled (a trial cancelled
    while queued ends without a worker; see service.store.sweep_settlement)."""
    settled = [s for s in sweep_settlement.unsettled(session)
               if sweep_settlement.settle(session, s)]
    session.commit()
    return settled


def reap_once(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """One sweep, then a wake-up for every job and forecast batch it found."""
    with sessions() as session:
        ids = sweep(session, settings)
        batches = stale_batches(session, settings)
        settle_sweeps(session)
    for job_id in ids:
        queue.wake(settings, queue.TRAIN_TASK, job_id)
    for batch_id in batches:
        queue.wake(settings, queue.FORECAST_TASK, batch_id)
    if ids or batches:
        log.info("reaper re-sent %d job(s) and %d forecast batch(es)", len(ids), len(batches))
    return ids + batches


class Reaper(threading.Thread):
    """reap_once every reaper_interval_seconds until stop() (a daemon thread)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings):
        super().__init__(name="bptt-reaper", daemon=True)
        self.sessions, self.settings = sessions, settings
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.settings.reaper_interval_seconds):
            try:
                reap_once(self.sessions, self.settings)
            except Exception:  # the database may be restarting: sweep again next time
                log.exception("reaper sweep failed")

    def stop(self) -> None:
        self._stop_event.set()
