"""The reaper: finds jobs whose wake-up message was lost or whose worker died, and re-sends them.

The broker is only a wake-up call, and it can lose one: kombu's server-less transports mark a
message taken when it is fetched (a SIGKILL loses it), Redis can be flushed. The database still
says the job is queued, or running under a lease nobody renews. Re-sending is always safe: the
claim lets exactly one worker through.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import forecast_batches, queue, sweep_settlement
from service.store.dbclock import db_now
from service.store.tables import Job
from workers import claims

log = logging.getLogger(__name__)
BATCH_SIZE = 1000  # rows one sweep re-sends at most; the next sweep takes the rest


def sweep(session: Session, settings: Settings) -> list[str]:
    """Mark stale jobs as just enqueued and return their ids (the caller sends the messages).

    Stale: queued and not sent for requeue_after_seconds, or running with an expired lease (by
    the database's clock). First, jobs nobody may claim again are ended instead (cancelled
    ones whose worker died, and ones out of attempts: see claims.end_abandoned), so that they
    are not sent again forever. The UPDATE re-checks staleness on each row it changes and
    returns only those: of two reapers sweeping at once, each job goes to exactly one.
    """
    claims.end_abandoned(session, max_attempts=settings.max_attempts)
    stale = or_(
        and_(Job.status == "queued",
             or_(Job.enqueued_at.is_(None),
                 Job.enqueued_at < db_now(-settings.requeue_after_seconds))),
        and_(Job.status == "running", Job.lease_expires_at < db_now(),
             or_(Job.enqueued_at.is_(None),
                 Job.enqueued_at < db_now(-settings.lease_seconds))),
    )
    candidates = select(Job.id).where(stale).limit(BATCH_SIZE)
    ids = list(session.scalars(
        update(Job).where(Job.id.in_(candidates), stale).values(enqueued_at=db_now())
        .returning(Job.id).execution_options(synchronize_session=False)))
    session.commit()
    return ids


def stale_batches(session: Session, settings: Settings) -> list[str]:
    """Forecast batches to send again: queued ones whose message was lost, running ones whose
    worker died (expired lease). Batches out of attempts are failed first. As `sweep`, returns
    only the batches its UPDATE changed."""
    forecast_batches.end_abandoned(session, max_attempts=settings.max_attempts)
    ids = forecast_batches.mark_stale(session, requeue_after_seconds=settings.requeue_after_seconds,
                                      lease_seconds=settings.lease_seconds, limit=BATCH_SIZE)
    session.commit()
    return ids


def settle_sweeps(session: Session) -> list[str]:
    """Finish sweeps whose trials have all finished but that nobody settled (a trial cancelled
    while queued ends without a worker; see service.store.sweep_settlement)."""
    settled = [s for s in sweep_settlement.unsettled(session)
               if sweep_settlement.settle(session, s)]
    session.commit()
    return settled


# The reaper runs in a Celery worker's main process, from which billiard forks the pool
# processes (a killed one's replacement at any moment). A fork while the reaper is inside a
# SQLite transaction copies SQLite's in-memory record of that lock into the child: the child
# then takes the database as held by a connection of its own, and every write it tries is
# "database is locked", for good (CI saw a replacement fail every claim for three minutes).
# So a fork waits until the reaper's transaction has ended.
_no_fork = threading.Lock()


def _reset_in_child() -> None:
    global _no_fork
    _no_fork = threading.Lock()  # the child has no reaper thread; the copy is held


os.register_at_fork(before=lambda: _no_fork.acquire(), after_in_parent=lambda: _no_fork.release(),
                    after_in_child=_reset_in_child)


def reap_once(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """One sweep, then a wake-up for every job and forecast batch it found."""
    with _no_fork, sessions() as session:
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
