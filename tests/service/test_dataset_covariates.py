"""Uploaded datasets with covariate columns: POST /v1/datasets stores a CSV's columns beyond
unique_id,ds,y beside the values; a job by dataset_id declares the columns it trains with and
the worker's code reads them; a forecast by dataset_id of such a model reads them too. Each
refusal is a 422 naming the field, nothing stored."""

from __future__ import annotations

import io
import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import dataset_rows, forecast_batches
from service.store.db import upgrade
from service.store.tables import Job, UploadedDataset
from workers.attempts import run_training

from .conftest import broker_messages, row_count, settings_for
from .test_app import assert_problem
from .test_datasets import upload

SPEC = {"horizon": 3, "quantiles": [0.5], "model": {"hidden_size": 4},
        "training": {"epochs": 2, "ensemble": 1}}
KINDS = {"promo": "future", "temp": "historical"}
DAYS = 60


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Forecasts of more than 2 series become batches."""
    result = settings_for(tmp_path / "data", BPTT_SYNC_FORECAST_MAX_SERIES="2")
    upgrade(result.database_url)
    return result


def promo(k: int, t: int) -> int:
    return int((t + k) % 5 == 0)


def long_csv(stores: int = 2, *, row: int | None = None, cells: str = "") -> str:
    """Daily sales lifted by a promotion, with a temperature; rows interleaved by day (the
    upload sorts them); the temperature's 11th day empty for every store (a gap). `row` and
    `cells`: put other covariate cells on that line."""
    lines = ["unique_id,ds,y,promo,temp"]
    for t in range(DAYS):
        day = date(2024, 1, 1) + timedelta(days=t)
        for k in range(stores):
            temp = "" if t == 10 else f"{15 + 3 * math.cos(t / 5):.2f}"
            sales = 20 + 5 * k + 4 * math.sin(t / 3) + 6 * promo(k, t)
            lines.append(f"s{k},{day},{sales:.3f},{promo(k, t)},{temp}")
    if row is not None:
        uid, ds = lines[row - 1].split(",")[:2]
        lines[row - 1] = f"{uid},{ds},1,{cells}"
    return "\n".join(lines) + "\n"


@pytest.fixture
def dataset_id(client: FlaskClient, auth: dict[str, str]) -> str:
    response = upload(client, auth, long_csv(3))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_an_upload_keeps_its_covariate_columns_beside_the_values(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        dataset_id: str) -> None:
    document = client.get(f"/v1/datasets/{dataset_id}", headers=auth).get_json()
    assert document["covariates"] == ["promo", "temp"]
    assert document["num_gaps"] == 0  # the covariates' gaps are not the values'
    with sessions() as session:
        index = dataset_rows.load_index(session, dataset_id)
        series = dataset_rows.read_series(session, index, [2, 0], covariates=["temp", "promo"])
    assert [s["id"] for s in series] == ["s2", "s0"]
    promo_s2 = series[0]["covariates"]["promo"]
    assert promo_s2.tolist() == [float(promo(2, t)) for t in range(DAYS)]
    temp_s0 = series[1]["covariates"]["temp"]
    assert np.isnan(temp_s0[10]) and temp_s0[11] == pytest.approx(15 + 3 * math.cos(11 / 5),
                                                                  abs=0.005)


def test_a_job_on_the_dataset_trains_on_the_columns_it_declares(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, dataset_id: str) -> None:
    response = client.post("/v1/jobs", headers=auth,
                           json={"dataset_id": dataset_id, "covariates": KINDS, **SPEC})
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    assert response.get_json()["covariates"] == KINDS
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, job_id)
    assert library is not None and list(library) == ["promo", "temp"]
    assert library["promo"]["kind"] == "future"
    assert library["promo"]["values"]["s1"][:5].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"

    # forecast the dataset's series: the model reads their columns, the future ones' values
    # over the horizon come in the request
    planned = {"promo": {f"s{k}": [1.0, 0.0, 0.0] for k in range(2)}}
    answer = client.post("/v1/forecasts", headers=auth, json={
        "job_id": job_id, "dataset_id": dataset_id, "series_ids": ["s0", "s1"],
        "future_covariates": planned})
    assert answer.status_code == 200, answer.get_json()
    by_dataset = answer.get_json()["forecasts"]
    assert [f["ds"] for f in by_dataset] == [["2024-03-01", "2024-03-02", "2024-03-03"]] * 2
    sent = client.post("/v1/forecasts", headers=auth, json={
        "job_id": job_id, "future_covariates": planned,
        "series": [sent_item(sessions, dataset_id, k) for k in range(2)]})
    assert sent.status_code == 200, sent.get_json()
    np.testing.assert_allclose([f["mean"] for f in by_dataset],
                               [f["mean"] for f in sent.get_json()["forecasts"]])


def sent_item(sessions: sessionmaker[Session], dataset_id: str, k: int) -> dict[str, Any]:
    """The dataset's series s<k> as a forecast request sends it, with its covariates."""
    with sessions() as session:
        item = dataset_rows.read_selection(session, dataset_id, [f"s{k}"], ["promo", "temp"])[0]
    as_list = (lambda a: [None if math.isnan(v) else v for v in a.tolist()])  # noqa: E731
    return {"id": item["id"], "start": item["start"], "freq": item["freq"],
            "values": as_list(item["values"]),
            "covariates": {name: as_list(v) for name, v in item["covariates"].items()}}


def test_a_batch_forecast_by_dataset_id_reads_the_columns(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, dataset_id: str) -> None:
    job = client.post("/v1/jobs", headers=auth,
                      json={"dataset_id": dataset_id, "covariates": KINDS, **SPEC}).get_json()
    assert run_training(sessions, settings, job["id"], "test:1") == "succeeded"
    planned = {"promo": {f"s{k}": [0.0, 1.0, 0.0] for k in range(3)}}
    queued = client.post("/v1/forecasts", headers=auth, json={
        "job_id": job["id"], "dataset_id": dataset_id, "future_covariates": planned})
    assert queued.status_code == 202, queued.get_json()
    batch_id = queued.get_json()["id"]
    # the worker's code, run here
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "succeeded"
    done = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    assert [f["id"] for f in done["result"]["forecasts"]] == ["s0", "s1", "s2"]


@pytest.mark.parametrize(("covariates", "loc", "words"), [
    ({"price": "historical"}, ["covariates", "price"],
     "the dataset has no covariate column 'price' (its columns: 'promo', 'temp'; its static "
     "table's: none)"),
    ({"promo": "static"}, ["covariates", "promo"], "declare it historical or future"),
])
def test_a_job_declaring_a_column_the_dataset_lacks_is_refused(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, dataset_id: str, covariates: dict, loc: list, words: str) -> None:
    problem = assert_problem(client.post("/v1/jobs", headers=auth, json={
        "dataset_id": dataset_id, "covariates": covariates, **SPEC}), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert words in problem["errors"][0]["msg"]
    assert row_count(sessions, Job) == 0 and broker_messages(settings) == []


def test_a_forecast_by_dataset_id_needs_the_columns_the_model_reads(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, dataset_id: str) -> None:
    job = client.post("/v1/jobs", headers=auth,
                      json={"dataset_id": dataset_id, "covariates": KINDS, **SPEC}).get_json()
    assert run_training(sessions, settings, job["id"], "test:1") == "succeeded"
    bare = "unique_id,ds,y\n" + "".join(f"s0,{t},{t % 7}\n" for t in range(40))
    other = upload(client, auth, bare).get_json()["id"]
    problem = assert_problem(client.post("/v1/forecasts", headers=auth, json={
        "job_id": job["id"], "dataset_id": other,
        "future_covariates": {"promo": {"s0": [0, 0, 0]}}}), 422)
    assert problem["errors"][0]["loc"] == ["dataset_id"]
    assert "['promo', 'temp']" in problem["errors"][0]["msg"]
    missing = assert_problem(client.post("/v1/forecasts", headers=auth, json={
        "job_id": job["id"], "dataset_id": dataset_id, "series_ids": ["s0"]}), 422)
    assert missing["errors"][0]["loc"][0] == "future_covariates"


@pytest.mark.parametrize(("text", "loc", "words"), [
    (long_csv(row=5, cells="1,warm"), ["body", "line 5", "temp"], "must be a number"),
    (long_csv(row=5, cells="nan,1"), ["body", "line 5", "promo"], "must be finite"),
    (long_csv().replace("promo,temp", "promo,te mp"), ["body", "header", "te mp"],
     "a covariate name"),
    (long_csv().replace("promo,temp", "promo,promo"), ["body", "header", "promo"],
     "repeated column"),
    ("unique_id,ds,y,promo\n" + "".join(f"a,{t},{t},\n" for t in range(20)),
     ["body", "line 2", "promo"], "series 'a' has no observed value of 'promo'"),
])
def test_a_bad_covariate_column_is_refused_naming_line_and_column(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        text: str, loc: list, words: str) -> None:
    problem = assert_problem(upload(client, auth, text), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc], problem["errors"]
    assert words in problem["errors"][0]["msg"]
    assert row_count(sessions, UploadedDataset) == 0


def test_a_dataset_without_covariate_columns_lists_none(
        client: FlaskClient, auth: dict[str, str]) -> None:
    bare = "unique_id,ds,y\n" + "".join(f"a,{t},{t % 7}\n" for t in range(20))
    response = upload(client, auth, bare)
    assert response.status_code == 201
    assert response.get_json()["covariates"] == []
    assert json.loads(response.data)["num_series"] == 1


# --- JSON lines: a "covariates" object per line ---

def json_line(uid: str, k: int, **covariates: Any) -> str:
    values = [round(20 + 5 * k + 6 * promo(k, t), 3) for t in range(DAYS)]
    given = {"promo": [promo(k, t) for t in range(DAYS)],
             "temp": [None if t == 3 else 15.5 for t in range(DAYS)], **covariates}
    return json.dumps({"id": uid, "values": values, "start": "2024-01-01", "freq": "D",
                       "covariates": {n: v for n, v in given.items() if v is not None}})


def test_json_lines_carry_covariates_a_job_trains_on(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    body = "\n".join(json_line(f"s{k}", k) for k in range(2)) + "\n"
    response = upload(client, auth, body, "application/x-ndjson")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["covariates"] == ["promo", "temp"]
    job = client.post("/v1/jobs", headers=auth, json={
        "dataset_id": response.get_json()["id"], "covariates": {"temp": "historical"}, **SPEC})
    assert job.status_code == 202, job.get_json()
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, job.get_json()["id"])
    assert list(library) == ["temp"] and np.isnan(library["temp"]["values"]["s1"][3])
    assert run_training(sessions, settings, job.get_json()["id"], "test:1") == "succeeded"


@pytest.mark.parametrize(("lines", "loc", "words"), [
    ([json_line("a", 0), json_line("b", 1, temp=None)], ["body", "line 2", "covariates"],
     "every series carries the same ones"),
    ([json_line("a", 0, promo=[1, 2])], ["body", "line 1", "covariates.promo"],
     f"has 2 values; the series has {DAYS}"),
    ([json_line("a", 0, promo=["x"] * DAYS)], ["body", "line 1", "covariates.promo"],
     "must be numbers or null"),
    ([json_line("a", 0, promo=[None] * DAYS)], ["body", "line 1", "promo"],
     "has no observed value of 'promo'"),
])
def test_bad_json_line_covariates_are_refused_naming_line_and_field(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        lines: list[str], loc: list, words: str) -> None:
    problem = assert_problem(upload(client, auth, "\n".join(lines), "application/x-ndjson"),
                             422)
    assert [e["loc"] for e in problem["errors"]] == [loc], problem["errors"]
    assert words in problem["errors"][0]["msg"]
    assert row_count(sessions, UploadedDataset) == 0


# --- a static table uploaded with the dataset (multipart: parts series and static) ---

STATIC = "unique_id,region,size\ns0,north,120\ns1,south,80\ns2,north,95.5\n"
ALL_KINDS = {**KINDS, "region": "static", "size": "static"}


def with_table(client: FlaskClient, auth: dict[str, str], static: str = STATIC,
               series: str | None = None) -> Any:
    """Upload the dataset with its static table, as `curl -F series=@... -F static=@...`."""
    return client.post("/v1/datasets", headers=auth, content_type="multipart/form-data", data={
        "series": (io.BytesIO((series or long_csv(3)).encode()), "long.csv", "text/csv"),
        "static": (io.BytesIO(static.encode()), "static.csv", "text/csv")})


def test_a_static_table_uploaded_with_the_dataset_gives_static_covariates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    response = with_table(client, auth)
    assert response.status_code == 201, response.get_json()
    dataset = response.get_json()
    assert dataset["covariates"] == ["promo", "temp"]
    assert dataset["static_covariates"] == ["region", "size"]
    job = client.post("/v1/jobs", headers=auth, json={
        "dataset_id": dataset["id"], "series_ids": ["s2", "s0"], "covariates": ALL_KINDS,
        **SPEC})
    assert job.status_code == 202, job.get_json()
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, job.get_json()["id"])
    assert library["region"] == {"kind": "static", "values": {"s2": "north", "s0": "north"}}
    assert library["size"]["values"] == {"s2": 95.5, "s0": 120.0}
    assert run_training(sessions, settings, job.get_json()["id"], "test:1") == "succeeded"
    answer = client.post("/v1/forecasts", headers=auth, json={
        "job_id": job.get_json()["id"], "dataset_id": dataset["id"], "series_ids": ["s1"],
        "future_covariates": {"promo": {"s1": [1, 1, 0]}}})
    assert answer.status_code == 200, answer.get_json()  # s1's region is new to the model


@pytest.mark.parametrize(("static", "loc", "words"), [
    ("unique_id,region\ns0,north\ns1,south\n", ["body", "static"], "has no row for series 's2'"),
    (STATIC + "s9,east,1\n", ["body", "static", "line 5", "unique_id"], "no series is 's9'"),
    ("unique_id,promo\ns0,1\ns1,1\ns2,1\n", ["body", "static", "header", "promo"],
     "is also a covariate column of the long CSV"),
    (STATIC.replace("north,120", ",120"), ["body", "static", "line 2", "region"],
     "must not be empty"),
    (STATIC.replace("north,120", f"{'n' * 200},120"), ["body", "static", "line 2", "region"],
     "a category has 1-128 characters"),
])
def test_a_bad_static_table_at_upload_is_refused_naming_it(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        static: str, loc: list, words: str) -> None:
    problem = assert_problem(with_table(client, auth, static), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc], problem["errors"]
    assert words in problem["errors"][0]["msg"]
    assert row_count(sessions, UploadedDataset) == 0


def test_a_job_declares_a_static_table_column_static(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    dataset_id = with_table(client, auth).get_json()["id"]
    problem = assert_problem(client.post("/v1/jobs", headers=auth, json={
        "dataset_id": dataset_id, "covariates": {"region": "future"}, **SPEC}), 422)
    assert problem["errors"] == [{"loc": ["covariates", "region"], "msg": (
        "is a column of the dataset's static table: declare it static")}]
    assert row_count(sessions, Job) == 0 and broker_messages(settings) == []


def test_a_warm_start_on_a_dataset_checks_its_static_tables_types(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    dataset_id = with_table(client, auth).get_json()["id"]
    body = {"dataset_id": dataset_id, "covariates": ALL_KINDS, **SPEC}
    parent = client.post("/v1/jobs", headers=auth, json=body).get_json()
    assert run_training(sessions, settings, parent["id"], "test:1") == "succeeded"
    fewer = client.post("/v1/jobs", headers=auth, json={
        **body, "warm_start": parent["id"], "series_ids": ["s0", "s2"]})  # north only
    assert fewer.status_code == 202, fewer.get_json()
    numbered = with_table(client, auth, STATIC.replace("north", "1").replace("south", "2"))
    problem = assert_problem(client.post("/v1/jobs", headers=auth, json={
        **body, "dataset_id": numbered.get_json()["id"], "warm_start": parent["id"]}), 422)
    assert problem["errors"] == [{"loc": ["covariates", "region"],
                                  "msg": "the continued model took it as a category (a string)"}]


def test_the_estimate_counts_the_network_a_datasets_covariates_make(
        client: FlaskClient, auth: dict[str, str]) -> None:
    """Without reading the columns' values: the inputs per step, the static table's columns
    and categories and the future one at every horizon step, at the head."""
    dataset = with_table(client, auth).get_json()["id"]

    def estimate(**fields: Any) -> dict[str, Any]:
        job = client.post("/v1/jobs", headers=auth, json={"dataset_id": dataset, **SPEC,
                                                          **fields})
        assert job.status_code == 202, job.get_json()
        return job.get_json()["estimate"]

    plain, some, every = estimate(), estimate(covariates=KINDS), estimate(covariates=ALL_KINDS)
    assert plain["flops"] < some["flops"] < every["flops"]
