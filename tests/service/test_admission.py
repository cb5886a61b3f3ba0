"""Admission control on cost: a job (a sweep's trial) whose estimated compute, memory or duration
is over the deployment's limits is refused with 422 naming what drives it, the estimate beside
the limit, and nothing is stored or queued; an admitted job carries its estimate."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store import worker_speed
from service.store.db import upgrade
from service.store.repository import create_tenant, create_token
from service.store.tables import Dataset, Job, Sweep

from .conftest import SERIES, broker_messages, row_count, settings_for
from .test_app import assert_problem

JOB = {"series": SERIES, "horizon": 3, "model": {"hidden_size": 4},
       "training": {"epochs": 2, "ensemble": 1}}


def _nothing_stored(sessions: sessionmaker[Session], settings: Settings) -> None:
    assert row_count(sessions, Job) == row_count(sessions, Dataset) == 0
    assert row_count(sessions, Sweep) == 0
    assert broker_messages(settings) == []


def _by_field(problem: dict) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in problem["errors"]}


@pytest.fixture
def limited(tmp_path: Path):
    """(client, sessions, settings, auth) of an app with the given limits."""
    apps: list[Flask] = []

    def make(**env: str):
        settings = settings_for(tmp_path / f"data{len(apps)}", **env)
        upgrade(settings.database_url)
        app = create_app(settings)
        apps.append(app)
        sessions = services(app).sessions
        with sessions() as session:
            token = create_token(session, tenant=create_tenant(session, name="acme")).token
            session.commit()
        return app.test_client(), sessions, settings, {"Authorization": f"Bearer {token}"}

    yield make
    for app in apps:
        services(app).engine.dispose()


def test_the_request_of_the_issue_is_refused_and_nothing_is_stored(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    # 1M points, input_size 999,400, hidden 256 x 4 layers, batch_size 1e9, ensemble 100,
    # 1000 epochs: accepted with 202 before, the LSTM caches alone about 2 TB
    values = [round(math.sin(i / 50), 3) for i in range(1_000_000)]
    body = {"series": [{"id": "huge", "values": values}], "horizon": 12,
            "window": {"input_size": 999_400},
            "model": {"hidden_size": 256, "num_layers": 4},
            "training": {"batch_size": 10**9, "ensemble": 100, "epochs": 1000}}
    problem = assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422)
    assert _by_field(problem) == {"window.input_size": "must be at most 1024",
                                  "training.batch_size": "must be at most 4096",
                                  "training.ensemble": "must be at most 20"}
    _nothing_stored(sessions, settings)

    # each field within its own limit, the product still far over: named with the estimate
    body["window"]["input_size"] = 1024
    body["training"].update(batch_size=4096, ensemble=20)
    problem = assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422)
    named = _by_field(problem)
    assert {"window.input_size", "model.hidden_size", "model.num_layers",
            "training.ensemble", "training.epochs"} <= set(named)
    compute = re.compile(r"estimated compute (\S+) FLOPs \(limit 1e\+15 FLOPs, "
                         r"BPTT_MAX_JOB_FLOPS\), peak memory \S+ GiB \(limit 2 GiB, "
                         r"BPTT_MAX_JOB_MEMORY\) and duration")
    flops = float(compute.search(named["model.hidden_size"])[1])
    estimate = bptt.estimate_cost(bptt.TrainingSpec.from_dict(
        {k: v for k, v in body.items() if k != "series"}), [1_000_000])
    assert flops == pytest.approx(estimate.flops, rel=0.01) and flops > 1e17
    assert "hidden_size 256 makes them" in named["model.hidden_size"]
    assert "what hidden_size 64 would" in named["model.hidden_size"]  # the data's default
    assert "ensemble 20 makes them 4x and 4x what ensemble 5 would" in named["training.ensemble"]
    assert named["training.batch_size"].startswith(  # the caches: memory alone
        "estimated peak memory ")
    assert "estimated compute" in problem["detail"] and "training.ensemble" in problem["detail"]
    _nothing_stored(sessions, settings)

    # the same data with the engine's choices is within every default limit
    body = {"series": body["series"], "horizon": 12}
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    estimate = answer.get_json()["estimate"]
    assert estimate["flops"] <= settings.max_job_flops
    assert estimate["peak_bytes"] <= settings.max_job_memory
    # the limit bounds every planned epoch; early stopping is expected to take less
    assert estimate["seconds"] < estimate["max_seconds"] <= settings.job_time_limit_seconds


def test_a_job_within_every_limit_carries_its_estimate(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    job = client.post("/v1/jobs", json=JOB, headers=auth).get_json()
    estimate = job["estimate"]
    expected = bptt.estimate_cost(bptt.TrainingSpec.from_dict(
        {k: v for k, v in JOB.items() if k != "series"}), [60, 50])
    assert estimate["flops"] >= expected.flops  # and the service's insight and states
    assert estimate["updates"] == expected.updates
    assert estimate["seconds"] == pytest.approx(
        estimate["epoch_seconds"] * 2 + estimate["other_seconds"])
    # 2 epochs, fewer than early stopping's patience: both are expected to run
    assert estimate["seconds"] == estimate["max_seconds"] and estimate["epochs_share"] == 1
    assert estimate["speed"] == {**bptt.DEFAULT_KERNEL_SPEED.to_dict(), "measurements": 0,
                                 "measured_at": None}
    with sessions() as session:
        assert session.get(Job, job["id"]).estimate == estimate


def test_the_estimate_uses_the_workers_measured_speed(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    first = client.post("/v1/jobs", json=JOB, headers=auth).get_json()["estimate"]
    default = bptt.DEFAULT_KERNEL_SPEED
    measured = bptt.KernelSpeed(gflops=default.gflops / 2, gelements=default.gelements / 2,
                                pass_seconds=default.pass_seconds * 2)
    with sessions() as session:  # as a worker records it when it starts
        worker_speed.record(session, worker="host:1", threads=1, speed=measured)
        session.commit()
    second = client.post("/v1/jobs", json=JOB, headers=auth).get_json()["estimate"]
    assert second["speed"]["measurements"] == 1 and second["speed"]["gflops"] == measured.gflops
    assert second["seconds"] == pytest.approx(2 * first["seconds"])  # everything twice as slow
    assert second["flops"] == first["flops"]


def test_a_refusal_names_the_limit_it_crossed(limited) -> None:
    client, sessions, settings, auth = limited(BPTT_MAX_JOB_MEMORY=str(10 * 2**20))
    body = {**JOB, "model": {"hidden_size": 128}}  # 15 MiB: weights and caches grow with it
    named = _by_field(assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422))
    assert list(named) == ["model.hidden_size"]
    assert re.search(r"estimated peak memory \S+ MiB is over the limit of 10 MiB "
                     r"\(BPTT_MAX_JOB_MEMORY\)", named["model.hidden_size"])
    _nothing_stored(sessions, settings)

    client, sessions, settings, auth = limited(BPTT_JOB_TIME_LIMIT_SECONDS="1")
    body = {**JOB, "training": {"epochs": 1000, "ensemble": 1}}
    named = _by_field(assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422))
    assert "estimated duration on these workers" in named["training.epochs"]
    assert "over the limit of 1 s (BPTT_JOB_TIME_LIMIT_SECONDS)" in named["training.epochs"]
    _nothing_stored(sessions, settings)


def test_when_even_the_defaults_cost_too_much_the_data_is_named(limited) -> None:
    client, sessions, settings, auth = limited(BPTT_MAX_JOB_FLOPS="1e6")
    problem = assert_problem(client.post("/v1/jobs", json={"series": SERIES, "horizon": 3},
                                         headers=auth), 422)
    named = _by_field(problem)
    assert list(named) == ["series"]
    assert "(BPTT_MAX_JOB_FLOPS) for this data: 2 series, 110 values" in named["series"]
    _nothing_stored(sessions, settings)


def test_csv_requests_are_named_in_the_query(limited) -> None:
    client, sessions, settings, auth = limited(BPTT_MAX_JOB_FLOPS="1e8")
    text = "unique_id,ds,y\n" + "".join(f"s,{i},{math.sin(i / 5):.3f}\n" for i in range(200))
    answer = client.post("/v1/jobs?horizon=6&model.hidden_size=128&training.epochs=1000",
                         data=text, content_type="text/csv", headers=auth)
    named = _by_field(assert_problem(answer, 422))
    assert "query.model.hidden_size" in named and "query.training.epochs" in named
    assert "even with the named fields at their defaults: 1 series, 200 values" in named[
        "series"]  # the series stay where they are: in the body
    _nothing_stored(sessions, settings)


def test_a_sweep_is_checked_trial_by_trial(limited) -> None:
    client, sessions, settings, auth = limited(BPTT_MAX_JOB_FLOPS="1e8")
    sweep = {"job": JOB, "strategy": "grid", "space": {"model.hidden_size": [4, 64]}}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep, headers=auth), 422)
    named = _by_field(problem)
    assert list(named) == ["space.model.hidden_size"]  # trial 1's; trial 0 is within
    assert named["space.model.hidden_size"].startswith("trial 1 ({'model.hidden_size': 64}): "
                                                       "estimated compute")
    _nothing_stored(sessions, settings)
    sweep["space"] = {"model.hidden_size": [4, 8]}
    answer = client.post("/v1/sweeps", json=sweep, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    with sessions() as session:
        estimates = [job.estimate for job in session.query(Job).order_by(Job.trial)]
    assert len(estimates) == 2 and estimates[0]["flops"] < estimates[1]["flops"] <= 1e8


def test_limits_are_settings_written_as_numbers_or_exponents() -> None:
    settings = Settings.from_env({"BPTT_MAX_JOB_FLOPS": "2.5e13", "BPTT_MAX_JOB_MEMORY": "1e9",
                                  "BPTT_MAX_ENSEMBLE": "8"})
    assert (settings.max_job_flops, settings.max_job_memory) == (25 * 10**12, 10**9)
    assert settings.max_ensemble == 8
    with pytest.raises(ValueError, match="BPTT_MAX_JOB_FLOPS='1.5': not an integer"):
        Settings.from_env({"BPTT_MAX_JOB_FLOPS": "1.5"})
