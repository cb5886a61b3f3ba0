"""/v1/sweeps: trials fanned out as jobs, settled in the database, the best one forecasting;
every refusal stores nothing and queues nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store.queue import TRAIN_TASK
from service.store.tables import Job, Sweep
from workers.attempts import run_training
from workers.reaper import settle_sweeps

from .conftest import SERIES, broker_messages, row_count
from .test_app import assert_problem

JOB = {"series": SERIES, "horizon": 3, "model": {"cell": "gru", "hidden_size": 4},
       "training": {"epochs": 2, "ensemble": 1}}
GRID = {"job": JOB, "strategy": "grid",
        "space": {"model.hidden_size": [4, 8], "training.learning_rate": [0.001, 0.01]}}


def _train_all(sessions: sessionmaker[Session], settings: Settings, sweep: dict) -> None:
    """What the workers do, in this process: train every trial once."""
    for trial in sweep["trials"]:
        assert run_training(sessions, settings, trial["job_id"], "test:1") == "succeeded"


def test_a_grid_sweep_trains_every_combination_and_forecasts_with_the_best(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    answer = client.post("/v1/sweeps", json=GRID, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    sweep = answer.get_json()
    assert answer.headers["Location"] == f"/v1/sweeps/{sweep['id']}"
    assert sweep["status"] == "running" and sweep["trials_total"] == 4
    assert [t["settings"] for t in sweep["trials"]] == [
        {"model.hidden_size": h, "training.learning_rate": lr}
        for h in (4, 8) for lr in (0.001, 0.01)]
    trial_ids = [t["job_id"] for t in sweep["trials"]]
    assert [args[0] for task, args in broker_messages(settings) if task == TRAIN_TASK] == trial_ids
    job = client.get(f"/v1/jobs/{trial_ids[3]}", headers=auth).get_json()
    assert job["sweep_id"] == sweep["id"] and job["trial"] == 3
    assert job["spec"]["model"]["hidden_size"] == 8
    assert job["spec"]["training"]["learning_rate"] == 0.01

    # the answer about a sweep whose trials are not all done names no best trial yet
    assert_problem(client.post("/v1/forecasts", json={"sweep_id": sweep["id"]}, headers=auth),
                   409)

    _train_all(sessions, settings, sweep)
    done = client.get(f"/v1/sweeps/{sweep['id']}", headers=auth).get_json()
    assert done["status"] == "succeeded" and done["trials_finished"] == 4
    scores = {t["job_id"]: t["score"] for t in done["trials"]}
    assert all(math.isfinite(s) for s in scores.values())
    assert done["best_job_id"] == min(scores, key=scores.get)
    assert done["best_score"] == min(scores.values())

    by_sweep = client.post("/v1/forecasts", json={"sweep_id": sweep["id"]}, headers=auth)
    by_job = client.post("/v1/forecasts", json={"job_id": done["best_job_id"]}, headers=auth)
    assert by_sweep.status_code == 200 and by_sweep.get_json() == by_job.get_json()
    listed = client.get("/v1/sweeps", headers=auth).get_json()
    assert [s["id"] for s in listed["sweeps"]] == [sweep["id"]]


def test_a_random_sweep_draws_the_same_trials_from_the_same_seed(
        client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"job": JOB, "strategy": "random", "budget": 5, "seed": 7,
            "space": {"training.learning_rate": {"log_uniform": [0.001, 0.1]},
                      "model.hidden_size": {"int_uniform": [2, 6]},
                      "model.cell": ["rnn", "gru", "lstm"]}}
    first = client.post("/v1/sweeps", json=body, headers=auth).get_json()
    second = client.post("/v1/sweeps", json=body, headers=auth).get_json()
    drawn = [t["settings"] for t in first["trials"]]
    assert len(drawn) == 5 and drawn == [t["settings"] for t in second["trials"]]
    for s in drawn:
        assert 0.001 <= s["training.learning_rate"] <= 0.1
        assert 2 <= s["model.hidden_size"] <= 6 and s["model.cell"] in ("rnn", "gru", "lstm")
    assert len({s["training.learning_rate"] for s in drawn}) == 5


@pytest.mark.parametrize(("change", "loc"), [
    ({"space": {"model.colour": ["red"]}}, ["space", "model.colour"]),
    ({"space": {"model.hidden_size": [4, 100000]}}, ["space", "model.hidden_size"]),
    ({"space": {"model.hidden_size": {"uniform": [1, 2]}}}, ["space", "model.hidden_size"]),
    ({"space": {"model.hidden_size": list(range(1, 11))}, "budget": 9}, ["space"]),
    ({"space": {"model.hidden_size": []}}, ["space", "model.hidden_size"]),
    ({"space": {}}, ["space"]),
    ({"budget": 10_000}, ["budget"]),
    ({"metric": "cv_mase"}, ["metric"]),
    ({"strategy": "bayes"}, ["strategy"]),
    ({"job": {**JOB, "series": []}}, ["job", "series"]),
    ({"job": {**JOB, "warm_start": "x"}}, ["job", "warm_start"]),
    ({"job": {k: v for k, v in JOB.items() if k != "horizon"}}, ["job", "horizon"]),
    ({"surprise": 1}, ["surprise"]),
])
def test_a_bad_sweep_is_refused_naming_the_field_and_stores_nothing(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, change: dict, loc: list) -> None:
    problem = assert_problem(client.post("/v1/sweeps", json={**GRID, **change}, headers=auth),
                             422)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert row_count(sessions, Sweep) == 0 and row_count(sessions, Job) == 0
    assert broker_messages(settings) == []


def test_cancelling_a_sweep_cancels_its_trials_and_settles_it(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    sweep = client.post("/v1/sweeps", json=GRID, headers=auth).get_json()
    first = sweep["trials"][0]["job_id"]
    assert run_training(sessions, settings, first, "test:1") == "succeeded"
    answer = client.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=auth)
    assert answer.status_code == 200
    cancelled = answer.get_json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    assert [t["status"] for t in cancelled["trials"]] == ["succeeded"] + ["cancelled"] * 3
    assert cancelled["best_job_id"] == first  # what did finish still forecasts
    assert run_training(sessions, settings, sweep["trials"][1]["job_id"], "t:2") == "not claimed"
    assert_problem(client.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=auth), 409)


def test_a_running_trial_is_asked_to_stop_and_the_reaper_settles_what_nobody_did(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    sweep = client.post("/v1/sweeps", json=GRID, headers=auth).get_json()
    running = sweep["trials"][0]["job_id"]
    with sessions.begin() as session:
        session.get(Job, running).status = "running"
    answer = client.post(f"/v1/sweeps/{sweep['id']}/cancel", headers=auth)
    assert answer.status_code == 202 and answer.get_json()["finished_at"] is None
    with sessions() as session:
        assert session.get(Job, running).cancel_requested
    with sessions.begin() as session:  # the trial stops as a worker would end it, then is lost
        session.get(Job, running).status = "cancelled"
    with sessions() as session:
        assert settle_sweeps(session) == [sweep["id"]]
        assert session.scalar(select(Sweep.status).where(Sweep.id == sweep["id"])) == "cancelled"


def test_other_tenants_sweeps_are_unknown(
        client: FlaskClient, auth: dict[str, str], make_token: Callable[[str], str]) -> None:
    sweep_id = client.post("/v1/sweeps", json=GRID, headers=auth).get_json()["id"]
    intruder = {"Authorization": f"Bearer {make_token('intruder')}"}
    assert_problem(client.get(f"/v1/sweeps/{sweep_id}", headers=intruder), 404)
    assert_problem(client.post(f"/v1/sweeps/{sweep_id}/cancel", headers=intruder), 404)
    problem = assert_problem(client.post("/v1/forecasts", json={"sweep_id": sweep_id},
                                         headers=intruder), 404)
    assert problem["errors"][0]["loc"] == ["sweep_id"]
    assert client.get("/v1/sweeps", headers=intruder).get_json()["sweeps"] == []


def test_a_forecast_names_exactly_one_of_job_and_sweep(
        client: FlaskClient, auth: dict[str, str]) -> None:
    for body in ({}, {"job_id": "a", "sweep_id": "b"}):
        problem = assert_problem(client.post("/v1/forecasts", json=body, headers=auth), 422)
        assert ["job_id"] in [e["loc"] for e in problem["errors"]]


def test_more_running_sweeps_than_allowed_is_429(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    for _ in range(2):
        assert client.post("/v1/sweeps", json=GRID, headers=auth).status_code == 202
    before = row_count(sessions, Job)
    assert_problem(client.post("/v1/sweeps", json=GRID, headers=auth), 429)
    assert row_count(sessions, Job) == before


def test_a_cv_mase_sweep_ranks_trials_by_their_cross_validation(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job = {**JOB, "cross_validation": {"windows": 2}}
    body = {"job": job, "strategy": "grid", "metric": "cv_mase",
            "space": {"training.learning_rate": [0.0001, 0.01]}}
    sweep = client.post("/v1/sweeps", json=body, headers=auth).get_json()
    _train_all(sessions, settings, sweep)
    done = client.get(f"/v1/sweeps/{sweep['id']}", headers=auth).get_json()
    mase = {t["job_id"]: client.get(f"/v1/jobs/{t['job_id']}", headers=auth).get_json()[
        "cross_validation"]["mase"] for t in done["trials"]}
    assert {t["job_id"]: t["score"] for t in done["trials"]} == mase
    assert done["best_job_id"] == min(mase, key=mase.get)


def test_a_sweep_over_the_budget_in_updates_trains_each_trial_its_updates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job = {**JOB, "training": {"ensemble": 1, "eval_every": 4}}
    answer = client.post("/v1/sweeps", headers=auth, json={
        "job": job, "strategy": "grid", "space": {"training.max_steps": [6, 10]}})
    assert answer.status_code == 202, answer.get_json()
    sweep = answer.get_json()
    _train_all(sessions, settings, sweep)
    for trial, steps in zip(sweep["trials"], (6, 10), strict=True):
        done = client.get(f"/v1/jobs/{trial['job_id']}", headers=auth).get_json()
        assert done["status"] == "succeeded"
        assert done["spec"]["training"]["max_steps"] == steps
        assert done["progress"]["epochs_done"] == math.ceil(steps / 4)  # rounds of 4 updates
        assert done["estimate"]["updates"] == steps
    # both budgets at once: the trial is refused naming the field
    both = client.post("/v1/sweeps", headers=auth, json={
        "job": JOB, "strategy": "grid", "space": {"training.max_steps": [6]}})
    assert "max_steps" in json.dumps(assert_problem(both, 422))


def test_a_sweep_over_the_calendar_shows_each_trials_choice(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    dated = [{**s, "start": "2026-01-05", "freq": "D"} for s in SERIES]
    body = {"job": {**JOB, "series": dated}, "strategy": "grid",
            "space": {"calendar": ["auto", "onehot", "off"]}}
    answer = client.post("/v1/sweeps", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    trials = answer.get_json()["trials"]
    shown = [client.get(f"/v1/jobs/{t['job_id']}", headers=auth).get_json()["spec"]["calendar"]
             for t in trials]
    assert shown == ["cyclic", "onehot", "off"]  # auto: the default encoding, the dates known
    undated = {"job": JOB, "strategy": "grid", "space": {"calendar": ["cyclic"]}}
    refused = client.post("/v1/sweeps", json=undated, headers=auth)
    assert_problem(refused, 422)
    assert refused.get_json()["errors"][0]["loc"] == ["job", "calendar"]
