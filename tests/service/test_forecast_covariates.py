"""Forecasts of a model trained with covariates: `future_covariates` in POST /v1/forecasts (in the
request and as a batch, JSON and CSV answers), and the refusals that name the field before
anything is stored or queued."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.settings import Settings
from service.store import forecast_batches
from service.store.codec import decompress_json
from service.store.db import upgrade
from service.store.queue import TRAIN_TASK
from service.store.tables import ForecastBatch
from workers.attempts import run_training

from .conftest import broker_messages, row_count, settings_for
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


@pytest.fixture
def job_id(client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
           settings: Settings) -> str:
    """A job with covariates, submitted over the API and trained by the worker's own code."""
    response = client.post("/v1/jobs", json={"series": SERIES, "covariates": KINDS, **SPEC},
                           headers=auth)
    assert response.status_code == 202, response.get_json()
    job = str(response.get_json()["id"])
    assert run_training(sessions, settings, job, "test:1") == "succeeded"
    return job


@pytest.fixture
def model(client: FlaskClient, auth: dict[str, str], job_id: str) -> bptt.Model:
    """The job's trained model, as it downloads."""
    response = client.get(f"/v1/jobs/{job_id}/model", headers=auth)
    assert response.status_code == 200
    return bptt.Model.from_bytes(response.data)


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
    # with a CSV body, future_covariates is a query parameter (JSON); the CSV's series carry
    # no covariates of their own
    rows = [f"{s['id']},{t},{v}" for s in SERIES for t, v in enumerate(s["values"])]
    query = urlencode({"job_id": job_id, "future_covariates": json.dumps(
        {"promo": {"store-1": [0.0, 1.0], "store-2": [0.0] * HORIZON}})})
    problem = assert_problem(client.post(f"/v1/forecasts?{query}", headers=auth,
                                         data="\n".join(["unique_id,ds,y", *rows]),
                                         content_type="text/csv"), 422)
    assert [e["loc"] for e in problem["errors"]] == [
        ["series", 0, "covariates", "promo"], ["series", 0, "covariates", "temp"],
        ["series", 0, "covariates", "region"], ["series", 1, "covariates", "promo"],
        ["series", 1, "covariates", "temp"], ["series", 1, "covariates", "region"],
        ["query", "future_covariates", "promo", "store-1"]]
    # a dataset without the model's covariate columns (and a static one no dataset carries)
    uploaded = client.post("/v1/datasets", data="\n".join(["unique_id,ds,y", *rows]),
                           headers={**auth, "Content-Type": "text/csv"})
    assert uploaded.status_code == 201, uploaded.get_json()
    problem = assert_problem(client.post("/v1/forecasts", json={
        "job_id": job_id, "dataset_id": uploaded.get_json()["id"],
        "future_covariates": NO_PROMO}, headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["dataset_id"]
    assert "covariates" in problem["errors"][0]["msg"]
    assert row_count(sessions, ForecastBatch) == 0
    assert [task for task, _ in broker_messages(settings)] == [TRAIN_TASK, TRAIN_TASK]


def test_given_series_carry_their_covariates_and_large_requests_become_batches(
        client: FlaskClient, auth: dict[str, str], job_id: str, model: bptt.Model,
        settings: Settings, sessions: sessionmaker[Session]) -> None:
    # a known store with more history, and a new one in a region the model has not met
    series = [series_item(0, "store-1", LENGTH + 5), series_item(2, "store-3", 40)]
    planned = {"promo": {"store-1": [0.0, 1.0, 0.0], "store-3": [1.0, 1.0, 0.0]}}
    got = forecast(client, auth, {"job_id": job_id, "series": series,
                                  "future_covariates": planned})["forecasts"]
    expected = bptt.forecast(model, bare(series), covariates=engine_covariates(series),
                             future_covariates=planned)
    for item, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(item["mean"], want["mean"])
    assert got[1]["ds"] == ["2024-02-10", "2024-02-11", "2024-02-12"]

    three = [*series, series_item(1, "store-2")]
    planned["promo"]["store-2"] = [0.0, 0.0, 1.0]
    created = client.post("/v1/forecasts", json={"job_id": job_id, "series": three,
                                                 "future_covariates": planned}, headers=auth)
    assert created.status_code == 202, created.get_json()
    batch_id = created.get_json()["id"]
    with sessions() as session:  # the batch keeps what the worker needs to forecast it
        request = decompress_json(session.get(ForecastBatch, batch_id).request_zlib)
    assert request["future_covariates"] == planned
    assert [s["covariates"] for s in request["series"]] == [s["covariates"] for s in three]
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "succeeded"
    done = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    assert done["status"] == "succeeded", done
    expected = bptt.forecast(model, bare(three), covariates=engine_covariates(three),
                             future_covariates=planned)
    for item, want in zip(done["result"]["forecasts"], expected, strict=True):
        np.testing.assert_allclose(item["mean"], want["mean"])
    as_csv = client.get(f"/v1/forecasts/{batch_id}", headers={**auth, "Accept": "text/csv"})
    assert as_csv.get_data(as_text=True).splitlines()[1].startswith("store-1,2024-03-06,1,")


def test_bad_series_covariates_are_refused_naming_the_field(
        client: FlaskClient, auth: dict[str, str], job_id: str, trained_job: str,
        settings: Settings, sessions: sessionmaker[Session]) -> None:
    # three series: a request that passed would be stored as a batch
    three = [series_item(i, name) for i, name in enumerate(("store-1", "store-2", "store-3"))]
    planned = {"promo": {s["id"]: [0.0] * HORIZON for s in three}}

    def changed(covariates: dict[str, Any]) -> list[dict[str, Any]]:
        first = {**three[0], "covariates": covariates}
        return [first, *three[1:]]

    own = three[0]["covariates"]
    cases: list[tuple[list[dict[str, Any]], list[Any]]] = [
        (changed({k: v for k, v in own.items() if k != "temp"}), ["series", 0, "covariates",
                                                                  "temp"]),
        (changed({**own, "temp": own["temp"][1:]}), ["series", 0, "covariates", "temp"]),
        (changed({**own, "temp": [*own["temp"][:-1], "warm"]}),
         ["series", 0, "covariates", "temp"]),
        (changed({**own, "region": 3.0}), ["series", 0, "covariates", "region"]),
        (changed({**own, "colour": "red"}), ["series", 0, "covariates", "colour"]),
    ]
    for series, loc in cases:
        problem = assert_problem(client.post("/v1/forecasts", json={
            "job_id": job_id, "series": series, "future_covariates": planned}, headers=auth),
            422)
        assert loc in [e["loc"] for e in problem["errors"]], (loc, problem)
    # a model trained without covariates is sent series with none
    plain = [{"id": s["id"], "values": s["values"], **({"covariates": s["covariates"]}
                                                       if i == 1 else {})}
             for i, s in enumerate(three)]
    problem = assert_problem(client.post("/v1/forecasts", json={
        "job_id": trained_job, "series": plain}, headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["series", 1, "covariates"]
    assert row_count(sessions, ForecastBatch) == 0
    assert [task for task, _ in broker_messages(settings)] == [TRAIN_TASK, TRAIN_TASK]


def test_appends_take_the_covariates_and_state_forecasts_the_future_values(
        client: FlaskClient, auth: dict[str, str], job_id: str) -> None:
    base = f"/v1/jobs/{job_id}/series/store-1"
    planned = [1.0, 0.0, 0.0]
    first = client.get(f"{base}/forecast?future_covariates.promo=1,0,0", headers=auth)
    assert first.status_code == 200, first.get_json()
    own = forecast(client, auth, {"job_id": job_id, "future_covariates": {
        "promo": {"store-1": planned, "store-2": [0.0] * HORIZON}}})["forecasts"][0]
    np.testing.assert_allclose(first.get_json()["forecast"]["mean"], own["mean"], rtol=1e-6)
    assert first.get_json()["forecast"]["ds"] == own["ds"]

    history = series_item(0, "store-1", LENGTH + 4)  # four more days, promotions and all
    new = {name: values[LENGTH:] for name, values in history["covariates"].items()
           if name != "region"}
    answer = client.post(f"{base}/observations", json={
        "values": history["values"][LENGTH:], "covariates": new,
        "future_covariates": {"promo": planned}}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    state = answer.get_json()
    assert (state["length"], state["version"]) == (LENGTH + 4, 2)
    # the same as a forecast of the whole history sent with its covariates
    full = forecast(client, auth, {"job_id": job_id, "series": [history],
                                   "future_covariates": {"promo": {"store-1": planned}}})
    expected = full["forecasts"][0]
    np.testing.assert_allclose(state["forecast"]["mean"], expected["mean"], rtol=1e-6)
    np.testing.assert_allclose(state["forecast"]["quantiles"]["0.9"],
                               expected["quantiles"]["0.9"], rtol=1e-6)
    assert state["forecast"]["ds"] == expected["ds"] == ["2024-03-05", "2024-03-06",
                                                         "2024-03-07"]
    later = client.get(f"{base}/forecast?future_covariates.promo=0,0,0", headers=auth)
    assert not np.allclose(later.get_json()["forecast"]["mean"], state["forecast"]["mean"])


def test_bad_appends_and_state_forecasts_are_refused_naming_the_field(
        client: FlaskClient, auth: dict[str, str], job_id: str, sessions: sessionmaker[Session],
        settings: Settings) -> None:
    base = f"/v1/jobs/{job_id}/series/store-1"
    good = {"values": [20.0, 21.0], "covariates": {"promo": [0.0, 1.0], "temp": [15.0, None]},
            "future_covariates": {"promo": [0.0, 0.0, 1.0]}}
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({**good, "covariates": {"promo": [0.0, 1.0]}}, ["covariates", "temp"]),
        ({**good, "covariates": {**good["covariates"], "promo": [1.0]}}, ["covariates", "promo"]),
        ({**good, "covariates": {**good["covariates"], "region": [1.0, 1.0]}},
         ["covariates", "region"]),
        ({**good, "covariates": {**good["covariates"], "promo": [0.0, "on"]}},
         ["covariates", "promo", 1]),
        ({k: v for k, v in good.items() if k != "future_covariates"},
         ["future_covariates", "promo"]),
        ({**good, "future_covariates": {"promo": [0.0, 1.0]}}, ["future_covariates", "promo"]),
        ({**good, "future_covariates": {"promo": [0.0] * HORIZON, "sun": [1.0] * HORIZON}},
         ["future_covariates", "sun"]),
        ({**good, "horizon": 2}, ["horizon"]),
    ]
    for body, loc in cases:
        problem = assert_problem(client.post(f"{base}/observations", json=body, headers=auth),
                                 422)
        assert loc in [e["loc"] for e in problem["errors"]], (body, problem)
    for query, loc in [("", ["query", "future_covariates.promo"]),
                       ("?future_covariates.promo=1,0", ["query", "future_covariates.promo"]),
                       ("?future_covariates.promo=1,0,x", ["query", "future_covariates.promo"]),
                       ("?future_covariates.promo=1,0,0&future_covariates.sun=1,1,1",
                        ["query", "future_covariates.sun"])]:
        problem = assert_problem(client.get(f"{base}/forecast{query}", headers=auth), 422)
        assert loc in [e["loc"] for e in problem["errors"]], (query, problem)
    # nothing was appended
    after = client.get(f"{base}/forecast?future_covariates.promo=0,0,0", headers=auth)
    assert (after.get_json()["length"], after.get_json()["version"]) == (LENGTH, 1)

    plain = client.post("/v1/jobs", json={"series": bare(SERIES), **SPEC}, headers=auth)
    plain_id = plain.get_json()["id"]
    assert run_training(sessions, settings, plain_id, "test:1") == "succeeded"
    plain_base = f"/v1/jobs/{plain_id}/series/store-1"
    for body, loc in [({"values": [1.0], "covariates": {"promo": [1.0]}}, ["covariates"]),
                      ({"values": [1.0], "future_covariates": {"promo": [1.0] * HORIZON}},
                       ["future_covariates"])]:
        problem = assert_problem(client.post(f"{plain_base}/observations", json=body,
                                             headers=auth), 422)
        assert problem["errors"][0]["loc"] == loc
    problem = assert_problem(client.get(f"{plain_base}/forecast?future_covariates.promo=1,1,1",
                                        headers=auth), 422)
    assert problem["errors"][0]["loc"] == ["query", "future_covariates"]
    assert client.get(f"{plain_base}/forecast", headers=auth).get_json()["version"] == 1


def test_a_csv_body_carries_the_covariates_in_declared_columns(
        client: FlaskClient, auth: dict[str, str], job_id: str) -> None:
    lines = ["unique_id,ds,y,promo,temp,region"]
    for s in SERIES:
        own = s["covariates"]
        lines += [f"{s['id']},{date(2024, 1, 1) + timedelta(days=t)},{v},{own['promo'][t]},"
                  f"{own['temp'][t]},{own['region']}" for t, v in enumerate(s["values"])]
    planned = {"promo": {"store-1": [1.0, 0.0, 1.0], "store-2": [0.0, 1.0, 0.0]}}
    query = urlencode({"job_id": job_id, "covariates": "promo:future,temp:historical,"
                       "region:static", "future_covariates": json.dumps(planned)})
    response = client.post(f"/v1/forecasts?{query}", data="\n".join(lines),
                           content_type="text/csv", headers={**auth, "Accept": "text/csv"})
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    sent = forecast(client, auth, {"job_id": job_id, "series": SERIES,
                                   "future_covariates": planned})["forecasts"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(f["id"], d) for f in sent for d in f["ds"]]
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]],
                               [m for f in sent for m in f["mean"]])
