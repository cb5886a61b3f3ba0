"""Waking the workers: a broker message carries only an id; the database owns every job's state.

The API commits a job row first and wakes a worker after the commit. If the broker is down the
wake-up is lost, which is harmless: the workers' reaper finds queued jobs nobody picked up and
sends them again. So a failed send is logged, never raised into the request.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from celery import Celery

from service.settings import Settings

TRAIN_TASK = "workers.train_job"  # args: [job_id]
FORECAST_TASK = "workers.forecast_batch"  # args: [forecast_batch_id]
BROKER_PREPARE_ATTEMPTS = 3
SEND_TIMEOUT_S = 2.0  # how long a request may wait for a broker that does not answer

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def client(broker_url: str) -> Celery:
    """A Celery app used only to send messages (JSON only: nothing is ever pickled)."""
    app = Celery("bptt-api", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=False,
        # fail fast: the reaper re-sends, and a request must not hang on a dead broker
        broker_connection_max_retries=0,
        broker_transport_options={"max_retries": 0},
    )
    return app


def wake(settings: Settings, task: str, item_id: str) -> bool:
    """Send `task(item_id)`; False (and a log line) when the broker cannot take it now."""
    try:
        client(settings.broker_url).send_task(task, args=[item_id], retry=False,
                                              ignore_result=True)
        return True
    except Exception as exc:  # any broker failure: the reaper will send it again
        log.warning("broker unavailable, %s %s left for the reaper: %s", task, item_id, exc)
        return False


def prepare_broker(broker_url: str) -> None:
    """Create the broker's tables and the workers' queue, so that no two processes race to.

    kombu's SQLAlchemy transport creates both on first use, unguarded across processes: two
    workers starting at once on a fresh broker both find no `celery` row and insert one, and the
    loser dies of `UNIQUE constraint failed: kombu_queue.name` (or of "table already exists").
    Once they exist every process only reads them. A loser of the race here (two `bptt worker`
    starting at once) retries and then finds them. On Redis the declaration adds a binding to a
    set, which nothing can race on.
    """
    from kombu import Connection, Exchange, Queue  # here: other commands need no kombu

    # Celery's default queue, as its workers declare it (no routes send tasks elsewhere).
    queue = Queue("celery", Exchange("celery", "direct"), routing_key="celery")
    for attempt in range(1, BROKER_PREPARE_ATTEMPTS + 1):
        try:
            with Connection(broker_url) as connection:
                queue.bind(connection.default_channel).declare()
            return
        except Exception:  # the race's loser: IntegrityError, OperationalError, by transport
            if attempt == BROKER_PREPARE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
