"""POST /v1/forecasts and GET /v1/forecasts/{id}: in the request, as a batch, JSON and CSV."""

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api.documents import forecast_batch_document
from service.settings import Settings
from service.store import forecast_batches
from service.store.codec import decompress_json
from service.store.db import upgrade
from service.store.forecast_batches import MODELS
from service.store.queue import FORECAST_TASK, TRAIN_TASK
from service.store.tables import ForecastBatch, TrainedModel

from .conftest import SERIES, SPEC, SimulatedWorker, broker_messages, row_count, settings_for
from .test_app import assert_problem


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Requests of more than 2 series become batches."""
    result = settings_for(tmp_path / "data", BPTT_SYNC_FORECAST_MAX_SERIES="2")
    upgrade(result.database_url)
    return result


@pytest.fixture
def job_id(trained_job: str) -> str:
    return trained_job


@pytest.fixture
def model(trained_weights: bytes) -> bptt.Model:
    return bptt.Model.from_bytes(trained_weights)


def new_series(n: int, length: int = 30) -> list[dict[str, Any]]:
    """Series the model has not seen."""
    return [{"id": f"new-{i}", "values": [float(5 + i + (t % 6)) for t in range(length)]}
            for i in range(n)]


def test_sync_forecast_matches_the_engine(
    client: FlaskClient, auth: dict[str, str], job_id: str, model: bptt.Model,
    trained_weights: bytes
) -> None:
    series = new_series(2)
    response = client.post("/v1/forecasts", json={"job_id": job_id, "series": series},
                           headers=auth)
    assert response.status_code == 200, response.get_json()
    forecasts = response.get_json()["forecasts"]
    expected = bptt.forecast(model, series)
    assert [f["id"] for f in forecasts] == ["new-0", "new-1"]
    for got, want in zip(forecasts, expected, strict=True):
        np.testing.assert_allclose(got["mean"], want["mean"])
        assert list(got["quantiles"]) == ["0.1", "0.5", "0.9"]
        np.testing.assert_allclose(got["quantiles"]["0.9"], want["quantiles"][0.9])
        assert len(got["mean"]) == 3
    # Loaded once and kept by the sha256 of its bytes.
    cached = MODELS.get(hashlib.sha256(trained_weights).hexdigest(),
                        lambda: pytest.fail("the model was not cached"))
    assert cached.series_ids == model.series_ids


def test_without_series_the_training_series_are_forecast(
    client: FlaskClient, auth: dict[str, str], job_id: str, model: bptt.Model
) -> None:
    response = client.post("/v1/forecasts",
                           json={"job_id": job_id, "horizon": 2, "quantiles": [0.1]},
                           headers=auth)
    assert response.status_code == 200
    forecasts = response.get_json()["forecasts"]
    assert [f["id"] for f in forecasts] == ["store-1", "store-2"]
    assert all(len(f["mean"]) == 2 and list(f["quantiles"]) == ["0.1"] for f in forecasts)
    expected = bptt.forecast(model, None, horizon=2, quantiles=[0.1])
    np.testing.assert_allclose(forecasts[1]["mean"], expected[1]["mean"])


def test_csv_in_and_csv_out(client: FlaskClient, auth: dict[str, str], job_id: str) -> None:
    series = new_series(2)
    lines = ["unique_id,ds,y"] + [f"{s['id']},{t},{v}" for s in series
                                  for t, v in enumerate(s["values"])]
    response = client.post(
        f"/v1/forecasts?job_id={job_id}&quantiles=0.1,0.9", data="\n".join(lines),
        content_type="text/csv", headers={**auth, "Accept": "text/csv"},
    )
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["unique_id", "ds", "step", "mean", "q0.1", "q0.9"]
    # ds 0..29 in, so the steps are ds 30, 31, 32
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [(s, str(29 + k), str(k))
                                                    for s in ("new-0", "new-1")
                                                    for k in (1, 2, 3)]
    assert all(float(r[4]) <= float(r[5]) for r in rows[1:])  # quantiles never cross
    one = client.post(f"/v1/forecasts?job_id={job_id}&quantiles=0.9", data="\n".join(lines),
                      content_type="text/csv", headers={**auth, "Accept": "text/csv"})
    assert one.status_code == 200, one.data  # one value is a list of one, as for jobs
    assert one.get_data(as_text=True).splitlines()[0] == "unique_id,ds,step,mean,q0.9"

    as_json = client.post("/v1/forecasts", json={"job_id": job_id, "series": series,
                                                 "quantiles": [0.1, 0.9]}, headers=auth)
    first = as_json.get_json()["forecasts"][0]
    assert [float(r[3]) for r in rows[1:4]] == first["mean"]


def test_large_requests_become_batches(
    client: FlaskClient, auth: dict[str, str], job_id: str, settings: Settings,
    sessions: sessionmaker[Session], worker: SimulatedWorker
) -> None:
    series = new_series(3)
    response = client.post("/v1/forecasts",
                           json={"job_id": job_id, "series": series, "horizon": 2},
                           headers=auth)
    assert response.status_code == 202
    batch = response.get_json()
    assert response.headers["Location"] == f"/v1/forecasts/{batch['id']}"
    assert (batch["status"], batch["job_id"], batch["result"]) == ("queued", job_id, None)
    with sessions() as session:
        row = session.get(ForecastBatch, batch["id"])
        assert row is not None and row.status == "queued"
        # the steps' ds go with the request (series without a start: values numbered 1..30)
        assert decompress_json(row.request_zlib) == {
            "series": series, "horizon": 2, "quantiles": None,
            "ds": {s["id"]: [31, 32] for s in series}}
    assert broker_messages(settings)[-1] == (FORECAST_TASK, [batch["id"]])

    shown = client.get(f"/v1/forecasts/{batch['id']}", headers=auth).get_json()
    assert shown["status"] == "queued" and shown["result"] is None

    result = {"forecasts": [{"id": s["id"], "mean": [1.0, 2.0],
                             "quantiles": {"0.1": [0.5, 1.5]}} for s in series]}
    worker.finish_batch(batch["id"], result)
    done = client.get(f"/v1/forecasts/{batch['id']}", headers=auth).get_json()
    # a result is answered as stored (this one without ds, as before timestamps)
    assert done["status"] == "succeeded" and done["result"] == result
    as_csv = client.get(f"/v1/forecasts/{batch['id']}", headers={**auth, "Accept": "text/csv"})
    # this result was written without ds (as before timestamps): the ds cells are empty
    assert as_csv.get_data(as_text=True).splitlines()[:2] == ["unique_id,ds,step,mean,q0.1",
                                                             "new-0,,1,1.0,0.5"]


def test_bad_requests_name_the_field_and_store_no_batch(
    client: FlaskClient, auth: dict[str, str], job_id: str, settings: Settings,
    sessions: sessionmaker[Session], worker: SimulatedWorker
) -> None:
    three = new_series(3)  # above the sync limit: the checks must run before a batch exists
    short = [*new_series(2), {"id": "tiny", "values": [1.0, 2.0]}]
    cases: list[tuple[dict[str, Any], int, list[Any]]] = [
        ({"job_id": job_id, "series": three, "quantiles": [0.25]}, 422, ["quantiles", 0]),
        ({"job_id": job_id, "series": three, "horizon": 4}, 422, ["horizon"]),
        ({"job_id": job_id, "series": short}, 422, ["series", 2, "values"]),
        ({"job_id": job_id, "horizon": 0}, 422, ["horizon"]),
        ({"job_id": job_id, "horizon": "2"}, 422, ["horizon"]),
        ({"job_id": job_id, "series": []}, 422, ["series"]),
        ({"job_id": job_id, "series": [{"id": "a", "values": [1, "NaN"]}]}, 422,
         ["series", 0, "values", 1]),
        ({"job_id": job_id, "series": three[:1] * 2}, 422, ["series", 1, "id"]),
        ({"job_id": job_id, "colour": "red"}, 422, ["colour"]),
        ({"series": three}, 422, ["job_id"]),
        ({"job_id": "no-such-job"}, 404, ["job_id"]),
    ]
    for body, status, loc in cases:
        problem = assert_problem(client.post("/v1/forecasts", json=body, headers=auth), status)
        assert loc in [error["loc"] for error in problem["errors"]], (body, problem)

    unfinished = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    problem = assert_problem(client.post(
        "/v1/forecasts", json={"job_id": unfinished.get_json()["id"]}, headers=auth), 409)
    assert problem["errors"] == [{"loc": ["job_id"], "msg": "job is queued, not succeeded"}]

    csv_problem = assert_problem(client.post(
        "/v1/forecasts?job_id=no-such-job", data="unique_id,ds,y\na,1,2\n",
        content_type="text/csv", headers=auth), 404)
    assert csv_problem["errors"][0]["loc"] == ["query", "job_id"]
    csv_problem = assert_problem(client.post(
        f"/v1/forecasts?job_id={job_id}&horizon=9", data="unique_id,ds,y\na,1,2\n",
        content_type="text/csv", headers=auth), 422)
    assert ["query", "horizon"] in [e["loc"] for e in csv_problem["errors"]]

    assert row_count(sessions, ForecastBatch) == 0
    assert [task for task, _ in broker_messages(settings)] == [TRAIN_TASK, TRAIN_TASK]


def test_workers_answer_batches_with_the_same_code(
    client: FlaskClient, auth: dict[str, str], job_id: str, model: bptt.Model,
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    series = new_series(3)
    created = client.post("/v1/forecasts", json={"job_id": job_id, "series": series,
                                                 "quantiles": [0.5]}, headers=auth)
    assert created.status_code == 202
    batch_id = created.get_json()["id"]
    # What the workers' forecast task runs (workers/forecast_batches.py), twice: a redelivered
    # message finds the batch taken and does nothing.
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "succeeded"
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "not claimed"
    done = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    assert done["status"] == "succeeded" and done["started_at"] and done["finished_at"]
    with sessions() as session:  # the stored JSON spliced in is the schema's document
        row = session.get(ForecastBatch, batch_id)
        assert done == json.loads(forecast_batch_document(row).model_dump_json())
    expected = bptt.forecast(model, series, quantiles=[0.5])
    got = done["result"]["forecasts"]
    assert [f["id"] for f in got] == [s["id"] for s in series]
    np.testing.assert_allclose(got[2]["quantiles"]["0.5"], expected[2]["quantiles"][0.5])


def test_a_batch_whose_model_is_gone_fails_with_the_reason(
    client: FlaskClient, auth: dict[str, str], job_id: str, sessions: sessionmaker[Session],
    settings: Settings
) -> None:
    created = client.post("/v1/forecasts", json={"job_id": job_id, "series": new_series(3)},
                          headers=auth)
    batch_id = created.get_json()["id"]
    with sessions.begin() as session:
        session.query(TrainedModel).filter_by(job_id=job_id).delete()
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "failed"
    failed = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    assert failed["status"] == "failed" and "no longer stored" in failed["error"]
    assert failed["result"] is None
