"""Insight and cross-validation over HTTP: what a trained job shows, what a short series gets."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store.tables import Job
from workers.attempts import run_training

from .conftest import SERIES, row_count
from .test_app import assert_problem

JOB = {"series": SERIES, "horizon": 3, "quantiles": [0.1, 0.9],
       "model": {"cell": "lstm", "hidden_size": 4},
       "training": {"epochs": 2, "ensemble": 1, "truncate": [2, 4]},
       "cross_validation": {"windows": 2}}


def test_diagnostics_show_insight_and_the_job_its_cross_validation(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job_id = client.post("/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    diagnostics = client.get(f"/v1/jobs/{job_id}/diagnostics", headers=auth).get_json()
    assert [i["epoch"] for i in diagnostics["insight"]] == [1, 2]
    first = diagnostics["insight"][0]
    assert 1 <= first["memory_horizon"] <= 4 and first["memory_threshold"] == 0.01
    assert set(first["spectral_radius"][0]) == {"i", "f", "g", "o"}
    assert -1 <= first["truncation_cosine"] <= 1 and first["suggested_max_norm"] > 0
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    windows = job["cross_validation"]["windows"]
    assert len(windows) == 2 and {r["id"] for r in windows[0]["series"]} == {"store-1", "store-2"}
    assert all(0 <= w["coverage"] <= 1 for w in windows)


def test_series_too_short_for_the_cross_validation_are_refused(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    body = {**JOB, "cross_validation": {"windows": 20, "step": 3}}
    problem = assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["cross_validation", "windows"]
    problem = assert_problem(client.post("/v1/jobs", json={**JOB, "cross_validation": {
        "windows": 0}}, headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["cross_validation", "windows"]
    assert row_count(sessions, Job) == 0
