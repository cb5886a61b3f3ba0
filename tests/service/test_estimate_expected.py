"""The duration a job is expected to take, through the HTTP app with the real worker code: early
stopping ends members long before their budget, so a job expects the share of its epochs that
the tenant's finished jobs with early stopping trained (a prior before there are enough), and
keeps the duration if every epoch runs as its upper bound; a job without early stopping expects
that bound itself."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.client import duration, timing_text
from service.settings import Settings
from service.store import epoch_shares
from workers.attempts import run_training

from .conftest import SERIES

BUDGET = 300  # epochs per member, of which early stopping leaves most untrained
# Two members of a network learning fast, stopped after 10 epochs without progress: each job
# trains about a fifth of its budget (the seed moves it).
EARLY = {"series": SERIES, "horizon": 3, "model": {"hidden_size": 4},
         "training": {"epochs": BUDGET, "ensemble": 2, "early_stopping_patience": 10,
                      "learning_rate": 0.05}}


def _submit(client: FlaskClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()


def _with_training(**fields: Any) -> dict[str, Any]:
    return {**EARLY, "training": {**EARLY["training"], **fields}}


def test_a_job_expects_the_share_of_its_epochs_that_early_stopped_jobs_trained(
        client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
        sessions: sessionmaker[Session], settings: Settings) -> None:
    # A new tenant's first job: the prior share, the whole budget as the bound
    first = _submit(client, auth, EARLY)["estimate"]
    assert first["epochs_share_jobs"] == 0
    assert first["epochs_share"] == pytest.approx(epoch_shares.PRIOR)
    assert first["seconds"] < first["max_seconds"]

    # Jobs that early stopping ended, trained by the worker code: what did they train?
    shares, took = [], []
    for seed in range(epoch_shares.MIN_JOBS):
        job_id = _submit(client, auth, _with_training(seed=seed))["id"]
        assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
        assert {m["stopped"] for m in job["progress"]["finished_members"]} == {"early_stopping"}
        shares.append(job["progress"]["epochs_done"] / (2 * BUDGET))
        took.append(job)
    assert max(shares) < 0.5  # far from the whole budget (each run is repeatable)
    # the first job was never run: the median is of the five that finished
    median = statistics.median(shares)

    job = _submit(client, auth, EARLY)
    estimate = job["estimate"]
    assert estimate["epochs_share_jobs"] == epoch_shares.MIN_JOBS
    members_epochs = round(median * BUDGET)  # each member's expected epochs
    assert estimate["epochs_share"] == pytest.approx(members_epochs / BUDGET)
    assert estimate["seconds"] < 0.5 * estimate["max_seconds"]
    assert estimate["max_seconds"] == pytest.approx(first["max_seconds"])  # the same bound
    # ...and what a job that trains those epochs to the end is estimated to take: the expected
    # duration is that of the epochs the finished jobs trained, not of the budget
    trained = _submit(client, auth, _with_training(epochs=members_epochs,
                                                   early_stopping_patience=None))["estimate"]
    assert estimate["seconds"] == pytest.approx(trained["seconds"])
    # the finished jobs' own estimates (the prior's, then) bound what they trained
    for finished in took:
        assert finished["estimate"]["seconds"] <= finished["estimate"]["max_seconds"]
    # queued, the time left is the expected duration, the bound beside it
    assert job["progress"]["remaining_seconds"] == estimate["seconds"]
    assert timing_text(job) == (f"{duration(estimate['seconds'])} left of "
                                f"~{duration(estimate['seconds'])} (at most "
                                f"{duration(estimate['max_seconds'])})")

    # Another cell has no finished jobs of its own yet: the tenant's jobs of any cell count
    gru = _submit(client, auth, {**EARLY, "model": {"hidden_size": 4, "cell": "gru"}})
    assert gru["estimate"]["epochs_share_jobs"] == epoch_shares.MIN_JOBS
    assert gru["estimate"]["epochs_share"] == pytest.approx(members_epochs / BUDGET)
    # Another tenant learns nothing from these: the prior again
    theirs = _submit(client, other_auth, EARLY)["estimate"]
    assert theirs["epochs_share_jobs"] == 0
    assert theirs["epochs_share"] == pytest.approx(epoch_shares.PRIOR)

    # Without early stopping every planned epoch runs: the expected duration is the bound
    full = _submit(client, auth, _with_training(early_stopping_patience=None))["estimate"]
    assert full["epochs_share"] == 1 and full["epochs_share_jobs"] == 0
    assert full["seconds"] == full["max_seconds"] == pytest.approx(first["max_seconds"])


def test_a_job_expects_no_fewer_epochs_than_early_stopping_allows(
        client: FlaskClient, auth: dict[str, str]) -> None:
    # patience 400 of 600 epochs: a member trains at least 401, whatever the prior says (0.35)
    estimate = _submit(client, auth, _with_training(epochs=600, early_stopping_patience=400))[
        "estimate"]
    assert estimate["epochs_share"] == pytest.approx(401 / 600)
    assert estimate["seconds"] < estimate["max_seconds"]


def test_jobs_too_short_for_early_stopping_to_end_them_teach_nothing(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    # 11 epochs with patience 10: every member trains them all, whatever its losses do
    for seed in range(epoch_shares.MIN_JOBS):
        job_id = _submit(client, auth, _with_training(epochs=11, seed=seed))["id"]
        assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    estimate = _submit(client, auth, EARLY)["estimate"]
    assert estimate["epochs_share_jobs"] == 0  # not a median of 1.0s: the prior still
    assert estimate["epochs_share"] == pytest.approx(epoch_shares.PRIOR)
