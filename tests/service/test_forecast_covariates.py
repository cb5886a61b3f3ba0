"""Forecasts of a model trained with covariates: `future_covariates` in POST /v1/forecasts (in the
request and as a batch, JSON and CSV answers), and the refusals that name the field before
anything is stored or queued."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.settings import Settings
from service.store.db import upgrade
from service.store.queue import TRAIN_TASK
from service.store.tables import ForecastBatch

from .conftest import SimulatedWorker, broker_messages, row_count, settings_for
from .test_app import assert_problem

LENGTH, HORIZON = 60, 3
IDS = ("store-1", "store-2")
KINDS = {"promo": "future", "temp": "historical", "region": "static"}
REGIONS = {"store-1": "north", "store-2": "south"}
SPEC = {"horizon": HORIZON, "quantiles": [0.1, 0.5, 0.9], "model": {"hidden_size": 4},
        "training": {"epochs": 2, "ensemble": 1}}


def promo(i: int, t: int) -> float:
    """A promotion every fifth day, on another day for each store."""
    return 1.0 if (t + i) % 5 == 0 else 0.0


def series_item(i: int, name: str, length: int = LENGTH) -> dict[str, Any]:
    """A daily series whose sales jump on promotion days, with its covariates as a job
    request's item carries them."""
    return {"id": name, "start": "2024-01-01", "freq": "D",
            "values": [round(20 + 5 * i + 4 * math.sin(t / 3) + 6 * promo(i, t), 3)
                       for t in range(length)],
            "covariates": {"promo": [promo(i, t) for t in range(length)],
                           "temp": [round(15 + 3 * math.cos(t / 5), 2) for t in range(length)],
                           "region": REGIONS.get(name, "east")}}


SERIES = [series_item(i, name) for i, name in enumerate(IDS)]
NO_PROMO = {"promo": {name: [0.0] * HORIZON for name in IDS}}


def engine_covariates(series: list[dict[str, Any]]) -> dict[str, Any]:
    """The items' covariates in the engine's form."""
    return {name: {"kind": kind, "values": {s["id"]: s["covariates"][name] for s in series}}
            for name, kind in KINDS.items()}


def bare(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "covariates"} for s in series]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Requests of more than 2 series become batches."""
    result = settings_for(tmp_path / "data", BPTT_SYNC_FORECAST_MAX_SERIES="2")
    upgrade(result.database_url)
    return result


@pytest.fixture(scope="module")
def covariate_weights() -> bytes:
    """A tiny model trained by bptt.fit on SERIES with their covariates."""
    fitted = bptt.fit(bare(SERIES), spec=bptt.TrainingSpec.from_dict(SPEC),
                      covariates=engine_covariates(SERIES))
    return fitted.model.to_bytes()


@pytest.fixture
def model(covariate_weights: bytes) -> bptt.Model:
    return bptt.Model.from_bytes(covariate_weights)


@pytest.fixture
def job_id(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
           covariate_weights: bytes) -> str:
    """A succeeded job whose model was trained with SERIES' covariates."""
    response = client.post("/v1/jobs", json={"series": bare(SERIES), **SPEC}, headers=auth)
    assert response.status_code == 202, response.get_json()
    job = str(response.get_json()["id"])
    worker.start(job)
    worker.finish(job, weights=covariate_weights)
    return job


def forecast(client: FlaskClient, auth: dict[str, str], body: dict[str, Any],
             accept: str = "application/json") -> Any:
    response = client.post("/v1/forecasts", json=body, headers={**auth, "Accept": accept})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json() if accept == "application/json" else response.get_data(
        as_text=True)


def test_the_training_series_are_forecast_with_the_future_values_given(
        client: FlaskClient, auth: dict[str, str], job_id: str, model: bptt.Model) -> None:
    planned = {"promo": {"store-1": [1.0, 0.0, 1.0], "store-2": [0.0, 0.0, 0.0]}}
    got = forecast(client, auth, {"job_id": job_id, "future_covariates": planned})["forecasts"]
    expected = bptt.forecast(model, future_covariates=planned)
    assert [f["id"] for f in got] == list(IDS)
    for item, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(item["mean"], want["mean"])
        np.testing.assert_allclose(item["quantiles"]["0.9"], want["quantiles"][0.9])
    # the days after the series' last one (2024-01-01 + 59 days)
    assert got[0]["ds"] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    # the planned promotions are read: without them store-1's forecast is another one
    without = forecast(client, auth, {"job_id": job_id, "future_covariates": NO_PROMO})
    assert not np.allclose(without["forecasts"][0]["mean"], got[0]["mean"])
    np.testing.assert_allclose(without["forecasts"][1]["mean"], got[1]["mean"])

    text = forecast(client, auth, {"job_id": job_id, "future_covariates": planned,
                                   "quantiles": [0.5]}, accept="text/csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["unique_id", "ds", "step", "mean", "q0.5"]
    assert [(r[0], r[1]) for r in rows[1:4]] == [("store-1", d) for d in got[0]["ds"]]
    np.testing.assert_allclose([float(r[3]) for r in rows[1:4]], got[0]["mean"])


def test_bad_future_covariates_are_refused_naming_the_field(
        client: FlaskClient, auth: dict[str, str], job_id: str, trained_job: str,
        settings: Settings, sessions: sessionmaker[Session]) -> None:
    def planned(**by_series: Any) -> dict[str, Any]:
        return {"promo": {**NO_PROMO["promo"], **by_series}}

    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({}, ["future_covariates", "promo"]),
        ({"future_covariates": {"promo": {"store-1": [0.0] * HORIZON}}},
         ["future_covariates", "promo", "store-2"]),
        ({"future_covariates": planned(**{"store-2": [0.0, 1.0]})},
         ["future_covariates", "promo", "store-2"]),
        ({"future_covariates": planned(**{"store-2": [0.0] * (HORIZON + 1)})},
         ["future_covariates", "promo", "store-2"]),
        ({"future_covariates": planned(**{"store-1": [0.0, "yes", 1.0]})},
         ["future_covariates", "promo", "store-1", 1]),
        ({"future_covariates": planned(**{"store-1": [0.0, None, 1.0]})},
         ["future_covariates", "promo", "store-1", 1]),
        ({"future_covariates": {**planned(), "holiday": {"store-1": [0.0] * HORIZON}}},
         ["future_covariates", "holiday"]),
        ({"future_covariates": planned(**{"store-9": [0.0] * HORIZON})},
         ["future_covariates", "promo", "store-9"]),
        # the network reads the promotions at every step of the model's horizon
        ({"future_covariates": planned(), "horizon": 2}, ["horizon"]),
    ]
    for extra, loc in cases:
        problem = assert_problem(client.post("/v1/forecasts", json={"job_id": job_id, **extra},
                                             headers=auth), 422)
        assert loc in [e["loc"] for e in problem["errors"]], (extra, problem)
    # a model trained without covariates is given none
    problem = assert_problem(client.post("/v1/forecasts", json={
        "job_id": trained_job, "future_covariates": NO_PROMO}, headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["future_covariates"]
    assert row_count(sessions, ForecastBatch) == 0
    assert [task for task, _ in broker_messages(settings)] == [TRAIN_TASK, TRAIN_TASK]
