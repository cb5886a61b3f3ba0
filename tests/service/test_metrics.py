"""What operators see: GET /metrics (Prometheus text from the database and this process) and the
tenant and job in the log lines of the job routes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from service.api.extensions import services
from service.app import create_app
from service.logs import JsonFormatter
from service.store import repository
from service.store.tables import Job, utcnow

from .conftest import SERIES, SPEC, SimulatedWorker, settings_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    """Every sample of GET /metrics (no token), by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value, or None if it is absent."""
    return samples.get((name, frozenset(labels.items())))


def submit(client: FlaskClient, auth: dict[str, str]) -> str:
    """A new queued job of the tenant; its id."""
    response = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    assert response.status_code == 202
    return response.get_json()["id"]


def test_an_empty_deployment_answers_zeros_without_a_token(client: FlaskClient) -> None:
    samples = scrape(client)
    assert value(samples, "bptt_database_up") == 1
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        assert value(samples, "bptt_jobs", status=status) == 0
    assert value(samples, "bptt_queue_depth") == 0
    assert value(samples, "bptt_queue_oldest_age_seconds") == 0
    assert value(samples, "bptt_recent_epochs") == 0
    assert value(samples, "bptt_running_jobs_lease_expired") == 0
    assert not any(name == "bptt_worker_heartbeat_age_seconds" for name, _ in samples)
    assert value(samples, "process_open_fds") is not None  # the process' own, as usual


def test_jobs_queue_epochs_and_heartbeats_come_from_the_database(
    client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
    sessions: sessionmaker[Session], app: Flask
) -> None:
    lease_seconds = services(app).settings.lease_seconds
    now = utcnow()
    queued = [submit(client, auth) for _ in range(3)]
    healthy, stalled, done, broken, old = (submit(client, auth) for _ in range(5))
    for job_id in (healthy, stalled, done, broken, old):
        worker.start(job_id)
    for epoch in range(1, 11):  # ten recent epochs of 0.1, 0.2, ... 1.0 s
        worker.epoch(healthy, epoch, seconds=epoch / 10)
    worker.finish(done)
    worker.finish(broken, "failed", error="boom")
    worker.finish(old)
    with sessions.begin() as session:
        # A job that queued two minutes ago, and was never picked up.
        session.get(Job, queued[0]).enqueued_at = now - timedelta(seconds=120)
        # A worker that renewed its lease 20 s ago, and one that has not for longer than a lease.
        running = session.get(Job, healthy)
        running.lease_owner, running.lease_expires_at = (
            "host-a:101:task-1", now + timedelta(seconds=lease_seconds - 20))
        lost = session.get(Job, stalled)
        lost.lease_owner, lost.lease_expires_at = "host-b:7:task-2", now - timedelta(seconds=5)
        # Epochs of a job that finished an hour ago are not "recent".
        session.get(Job, old).finished_at = now - timedelta(hours=1)
        repository.upsert_epoch_metrics(
            session, job_id=old, epoch=1, train_loss=1.0, grad_norm=1.0, max_grad_norm=1.0,
            clip_fraction=0.0, learning_rate=0.01, seconds=99.0,
            recorded_at=now - timedelta(hours=1))
        batch = repository.create_forecast_batch(session, tenant_id=running.tenant_id,
                                                 job_id=done, request={})
        assert batch.status == "queued"

    samples = scrape(client)
    assert {status: value(samples, "bptt_jobs", status=status) for status in
            ("queued", "running", "succeeded", "failed", "cancelled")} == {
        "queued": 3, "running": 2, "succeeded": 2, "failed": 1, "cancelled": 0}
    assert value(samples, "bptt_queue_depth") == 3
    assert 120 <= value(samples, "bptt_queue_oldest_age_seconds") < 150
    assert value(samples, "bptt_forecast_batches", status="queued") == 1

    assert value(samples, "bptt_recent_epochs") == 10
    assert value(samples, "bptt_recent_epoch_duration_seconds", quantile="0.5") == \
        pytest.approx(0.55)
    assert value(samples, "bptt_recent_epoch_duration_seconds", quantile="0.9") == \
        pytest.approx(0.91)

    # Workers are named host:pid (not by task id, which changes with every job).
    assert 20 <= value(samples, "bptt_worker_heartbeat_age_seconds", worker="host-a:101") < 40
    assert lease_seconds - 40 < value(samples, "bptt_worker_lease_remaining_seconds",
                                      worker="host-a:101") <= lease_seconds - 20
    assert value(samples, "bptt_worker_lease_remaining_seconds", worker="host-b:7") <= -5
    assert value(samples, "bptt_worker_heartbeat_age_seconds", worker="host-b:7") >= \
        lease_seconds + 5
    assert value(samples, "bptt_running_jobs_lease_expired") == 1


def test_forecast_latency_is_observed_by_status(
    client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker, trained_weights: bytes
) -> None:
    job_id = submit(client, auth)
    worker.start(job_id)
    worker.finish(job_id, weights=trained_weights)
    name = "bptt_forecast_request_duration_seconds"
    # The histogram lives as long as the process: compare before and after.
    before = scrape(client)
    assert client.post("/v1/forecasts", json={"job_id": job_id}, headers=auth).status_code == 200
    assert client.post("/v1/forecasts", json={"job_id": "nope"}, headers=auth).status_code == 404
    after = scrape(client)
    for code in ("200", "404"):
        assert (value(after, f"{name}_count", code=code) or 0) == \
            (value(before, f"{name}_count", code=code) or 0) + 1
    assert value(after, f"{name}_sum", code="200") > (value(before, f"{name}_sum", code="200")
                                                      or 0)
    assert value(after, f"{name}_bucket", code="200", le="+Inf") == \
        value(after, f"{name}_count", code="200")
    client.get("/v1/jobs", headers=auth)  # other routes are not timed
    assert scrape(client).keys() == after.keys()


def test_an_unreadable_database_is_reported_not_a_failed_scrape(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path / "unmigrated"))  # no tables to read
    try:
        samples = scrape(app.test_client())
    finally:
        services(app).engine.dispose()
    assert value(samples, "bptt_database_up") == 0
    assert value(samples, "bptt_jobs", status="queued") is None


class JsonLines(logging.Handler):
    """Formats each record as it is emitted (inside the request), as the real handler does."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[list[dict]]:
    """The JSON lines logged during the test."""
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)


def test_job_routes_log_the_job_and_the_tenant(
    client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
    log_lines: list[dict]
) -> None:
    job_id = submit(client, auth)
    with sessions() as session:
        tenant_id = session.get(Job, job_id).tenant_id
    client.get(f"/v1/jobs/{job_id}/metrics", headers=auth)
    client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    client.get("/healthz")

    submitted = next(line for line in log_lines if line["message"] == "job submitted")
    assert (submitted["job_id"], submitted["tenant_id"]) == (job_id, tenant_id)
    cancelled = next(line for line in log_lines if line["message"].startswith("job cancel"))
    assert (cancelled["job_id"], cancelled["tenant_id"]) == (job_id, tenant_id)
    access = {line["path"]: line for line in log_lines if line["logger"] == "service.access"}
    for path in (f"/v1/jobs/{job_id}/metrics", f"/v1/jobs/{job_id}/cancel"):
        assert (access[path]["job_id"], access[path]["tenant_id"]) == (job_id, tenant_id)
        assert access[path]["request_id"]
    assert "job_id" not in access["/healthz"] and "tenant_id" not in access["/healthz"]
