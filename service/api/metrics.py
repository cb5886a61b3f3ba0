"""GET /metrics: what operators watch, in Prometheus' text format.

Jobs by status, queue depth, recent epoch durations and worker heartbeats are read from the
database at scrape time, so every API process answers the same numbers. Forecast latency is a
histogram observed by the forecast route in this process: each gunicorn worker keeps its own, as
prometheus_client does without its multiprocess mode (scrape each process, or sum over them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.api.extensions import services
from service.settings import Settings
from service.store.tables import (
    FORECAST_STATUSES,
    JOB_STATUSES,
    EpochMetric,
    ForecastBatch,
    Job,
    utcnow,
)

# The classic text format: our names are plain, so it reads the same in every Prometheus.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FORECAST_ENDPOINT = "forecasts.create_forecasts"
# Epoch durations come from the epochs recorded this recently, at most this many rows: enough for
# stable percentiles, bounded work per scrape however large the table grows.
RECENT_EPOCHS = timedelta(minutes=10)
MAX_RECENT_EPOCHS = 10_000
EPOCH_QUANTILES = (0.5, 0.9, 0.99)

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

# Not in prometheus_client's global registry: each scrape builds a registry of its own (below),
# so several apps in one process (tests) never register a name twice.
FORECAST_SECONDS = Histogram(
    "bptt_forecast_request_duration_seconds",
    "Time to answer POST /v1/forecasts in this API process, by HTTP status.",
    ["code"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
PROCESS = ProcessCollector(registry=None)


def init_app(app: Flask) -> None:
    """Serve /metrics and time the forecast route."""
    app.before_request(_start_clock)
    app.after_request(_observe_forecast)
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric as Prometheus text; the database's part is read now."""
    app_services = services()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DatabaseCollector(app_services.sessions, app_services.settings))
    registry.register(FORECAST_SECONDS)
    registry.register(PROCESS)
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


class DatabaseCollector(Collector):
    """Metrics read from the database at each scrape; `bptt_database_up` 0 if it cannot be read."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions, self.settings = sessions, settings

    def describe(self) -> list[Metric]:
        """Nothing up front: describing would cost a query at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The families, or only `bptt_database_up 0` when the database fails."""
        up = GaugeMetricFamily("bptt_database_up",
                               "Whether this scrape could read the database (1) or not (0).")
        try:
            with self.sessions() as session:
                families = database_metrics(session, lease_seconds=self.settings.lease_seconds)
        except SQLAlchemyError as exc:
            # The scrape still answers: an alert on bptt_database_up beats a failed scrape.
            log.warning("metrics: database unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def database_metrics(session: Session, *, lease_seconds: int,
                     now: datetime | None = None) -> list[Metric]:
    """Jobs and forecast batches by status, queue depth, epoch durations, worker heartbeats."""
    now = now or utcnow()
    return [*_job_families(session, now), _batch_family(session),
            *_epoch_families(session, now), *_heartbeat_families(session, now, lease_seconds)]


def _job_families(session: Session, now: datetime) -> list[Metric]:
    """Jobs by status, the queue depth and how long its oldest job has waited."""
    counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    jobs = GaugeMetricFamily("bptt_jobs", "Jobs in the database, by status.", labels=["status"])
    for status in JOB_STATUSES:
        jobs.add_metric([status], counts.get(status, 0))
    depth = GaugeMetricFamily("bptt_queue_depth", "Jobs queued and not yet claimed by a worker.",
                              value=counts.get("queued", 0))
    # enqueued_at, not created_at: a job given back after a failed attempt waits anew.
    oldest = session.scalar(select(func.min(func.coalesce(Job.enqueued_at, Job.created_at)))
                            .where(Job.status == "queued"))
    waited = _seconds_between(oldest, now) if oldest is not None else 0.0
    age = GaugeMetricFamily("bptt_queue_oldest_age_seconds",
                            "How long the longest-waiting queued job has waited (0: none).",
                            value=max(0.0, waited))
    return [jobs, depth, age]


def _batch_family(session: Session) -> Metric:
    """Forecast batches by status."""
    counts = dict(session.execute(
        select(ForecastBatch.status, func.count()).group_by(ForecastBatch.status)).all())
    family = GaugeMetricFamily("bptt_forecast_batches",
                               "Asynchronous forecast batches in the database, by status.",
                               labels=["status"])
    for status in FORECAST_STATUSES:
        family.add_metric([status], counts.get(status, 0))
    return family


def _epoch_families(session: Session, now: datetime) -> list[Metric]:
    """Percentiles of the durations of the epochs recorded in the last RECENT_EPOCHS."""
    cutoff = now - RECENT_EPOCHS
    # Through the jobs that can have recent epochs (running, or finished since the cutoff), so
    # the epoch_metrics table is read by its job_id index rather than scanned whole.
    active = select(Job.id).where(or_(Job.status == "running", Job.finished_at >= cutoff))
    seconds = np.array(session.scalars(
        select(EpochMetric.seconds)
        .where(EpochMetric.job_id.in_(active), EpochMetric.recorded_at >= cutoff)
        .order_by(EpochMetric.recorded_at.desc())
        .limit(MAX_RECENT_EPOCHS)
    ).all(), dtype=float)
    window = f"the last {int(RECENT_EPOCHS.total_seconds())} s"
    count = GaugeMetricFamily("bptt_recent_epochs", f"Epochs recorded in {window}.",
                              value=len(seconds))
    quantiles = GaugeMetricFamily(
        "bptt_recent_epoch_duration_seconds",
        f"Percentiles of the duration of the epochs recorded in {window} (none: no epoch).",
        labels=["quantile"])
    if len(seconds):
        for q, value in zip(EPOCH_QUANTILES, np.quantile(seconds, EPOCH_QUANTILES), strict=True):
            quantiles.add_metric([str(q)], float(value))
    return [count, quantiles]


def _heartbeat_families(session: Session, now: datetime, lease_seconds: int) -> list[Metric]:
    """Per worker running a job: seconds since its last lease renewal, seconds of lease left."""
    rows = session.execute(select(Job.lease_owner, Job.lease_expires_at)
                           .where(Job.status == "running", Job.lease_owner.is_not(None))).all()
    remaining: dict[str, float] = {}
    rows = [(owner, expires_at) for owner, expires_at in rows if expires_at is not None]
    for owner, expires_at in rows:
        # The owner is host:pid:task-id; host:pid names the worker process and, unlike the task
        # id, stays the same from one job to the next.
        worker = owner.rsplit(":", 1)[0]
        left = _seconds_between(now, expires_at)
        remaining[worker] = min(left, remaining.get(worker, left))
    age = GaugeMetricFamily(
        "bptt_worker_heartbeat_age_seconds",
        "Seconds since the worker last renewed the lease of the job it runs (renewed every "
        f"third of the {lease_seconds} s lease; the reaper frees it once the lease runs out).",
        labels=["worker"])
    left = GaugeMetricFamily(
        "bptt_worker_lease_remaining_seconds",
        "Seconds until the lease of the worker's job expires (negative: expired, the worker is "
        "likely gone and the reaper will give the job to another).", labels=["worker"])
    expired = GaugeMetricFamily("bptt_running_jobs_lease_expired",
                                "Running jobs whose lease has expired (awaiting the reaper).",
                                value=sum(1 for _, expires_at in rows if expires_at < now))
    for worker, seconds in sorted(remaining.items()):
        # A renewal sets the expiry to renewal time + lease_seconds.
        age.add_metric([worker], max(0.0, lease_seconds - seconds))
        left.add_metric([worker], seconds)
    return [age, left, expired]


def _seconds_between(start: datetime, end: datetime) -> float:
    """end - start in seconds."""
    return (end - start).total_seconds()


def _start_clock() -> None:
    """Note when a forecast request started (app-level: before authentication runs)."""
    if request.endpoint == FORECAST_ENDPOINT:
        g.forecast_started = time.perf_counter()


def _observe_forecast(response: Response) -> Response:
    """Observe the forecast route's duration, errors included."""
    started = g.get("forecast_started")
    if started is not None:
        FORECAST_SECONDS.labels(code=str(response.status_code)).observe(
            time.perf_counter() - started)
    return response
