"""/v1/datasets over HTTP (the real app, SQLite): streamed uploads of CSV and JSON lines,
gzipped or not, described, listed, deleted; refusals that name the line and store nothing;
and jobs, sweeps and forecasts that name a dataset instead of sending series."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api import upload_formats
from service.api.csvio import parse_long_csv
from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store import dataset_rows, forecast_batches
from service.store.codec import decompress_json
from service.store.db import upgrade
from service.store.queue import FORECAST_TASK, TRAIN_TASK
from service.store.tables import (
    Dataset,
    ForecastBatch,
    Job,
    UploadedDataset,
    UploadedDatasetChunk,
)
from workers.attempts import run_training

from .conftest import SimulatedWorker, broker_messages, row_count, settings_for
from .test_app import assert_problem

CSV = "text/csv"
JSONL = "application/x-ndjson"
SPEC = {"horizon": 3, "model": {"hidden_size": 4},
        "training": {"epochs": 2, "ensemble": 1}, "quantiles": [0.1, 0.9]}


def monthly_csv(series: int = 3, months: int = 30, *, interleaved: bool = True,
                gap_every: int = 7) -> str:
    """unique_id,ds,y rows of `series` monthly series (month after month when interleaved),
    an empty y every `gap_every` points."""
    rows = []
    for s in range(series):
        for m in range(months + s):  # different lengths
            y = "" if (m + 1) % gap_every == 0 else f"{10 + s + 5 * math.sin(m / 2):.3f}"
            rows.append((m, f"store-{s}", f"{2015 + m // 12}-{m % 12 + 1:02d}", y))
    if interleaved:
        rows.sort()
    return "unique_id,ds,y\n" + "".join(f"{u},{d},{y}\n" for _, u, d, y in rows)


def upload(client: FlaskClient, auth: dict[str, str], body: str | bytes,
           content_type: str = CSV, query: str = "", **headers: str):
    data = body.encode() if isinstance(body, str) else body
    return client.post(f"/v1/datasets{query}", data=data,
                       headers={**auth, "Content-Type": content_type, **headers})


def stored_series(sessions: sessionmaker[Session], dataset_id: str) -> list[dict[str, Any]]:
    with sessions() as session:
        index = dataset_rows.load_index(session, dataset_id)
        return dataset_rows.read_series(session, index)


def as_inline(series: list[dict[str, Any]], *, start: bool = True) -> list[dict[str, Any]]:
    """Stored series in the inline parser's shape (None for a gap), to compare the two."""
    return [{"id": s["id"], **({"start": s["start"]} if start else {}),
             "values": [None if math.isnan(v) else v for v in s["values"].tolist()]}
            for s in series]


def observed(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids and observed values (gaps left out). (Both place a series on its grid: see
    test_dataset_timestamps.py for the whole series, gaps, starts and frequencies.)"""
    return [{"id": s["id"], "values": [v for v in s["values"] if v is not None]}
            for s in series]


def inline_csv(text: str) -> list[dict[str, Any]]:
    """observed() of the inline parser's series."""
    return observed(parse_long_csv(text))


def nothing_stored(sessions: sessionmaker[Session]) -> bool:
    return row_count(sessions, UploadedDataset) == row_count(sessions, UploadedDatasetChunk) == 0


# --- uploads ---------------------------------------------------------------------------------

def test_a_csv_upload_is_described_and_stored_as_the_inline_parser_reads_it(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    text = monthly_csv()
    answer = upload(client, auth, text, query="?name=sales.csv")
    assert answer.status_code == 201, answer.get_json()
    dataset = answer.get_json()
    assert answer.headers["Location"] == f"/v1/datasets/{dataset['id']}"
    lengths = [30, 31, 32]
    gaps = sum(n // 7 for n in lengths)
    assert {k: dataset[k] for k in ("name", "format", "num_series", "num_points", "num_gaps",
                                    "min_length", "max_length", "frequency",
                                    "missing_timestamps")} == {
        "name": "sales.csv", "format": "csv", "num_series": 3, "num_points": sum(lengths),
        "num_gaps": gaps, "min_length": 30, "max_length": 32, "frequency": "MS",
        "missing_timestamps": 0}
    assert dataset["length_histogram"] == [{"min": 30, "max": 30, "series": 1},
                                           {"min": 31, "max": 31, "series": 1},
                                           {"min": 32, "max": 32, "series": 1}]
    assert dataset["upload_bytes"] == dataset["text_bytes"] == len(text)
    assert 0 < dataset["stored_bytes"] < len(text)
    assert observed(as_inline(stored_series(sessions, dataset["id"]))) == inline_csv(text)
    shown = client.get(f"/v1/datasets/{dataset['id'][:8]}", headers=auth)  # a short id
    assert shown.status_code == 200 and shown.get_json() == dataset


@pytest.mark.parametrize("block_rows", [7, 16_384])
def test_rows_read_a_block_at_a_time_or_row_by_row_store_the_same_series(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch, block_rows: int) -> None:
    """Blocks are read column by column, and row by row when one holds something unusual (a
    blank line, here): both give what the inline parser gives, whatever the rows' order."""
    monkeypatch.setattr(upload_formats, "CSV_BLOCK_ROWS", block_rows)
    lines = monthly_csv(series=5, months=20).splitlines()
    header, rows = lines[0], lines[1:]
    rows = rows[:40][::-1] + rows[40:70] + [""] + rows[70:][::-1]  # unsorted, a blank line
    uid, ds, y = rows[3].split(",")
    rows[3] = f' "{uid}" , {ds} , {y} '  # quotes and spaces around cells
    text = "\n".join([header, *rows]) + "\n"
    answer = upload(client, auth, text)
    assert answer.status_code == 201, answer.get_json()
    assert observed(as_inline(stored_series(sessions, answer.get_json()["id"]))) == \
        inline_csv(text)


@pytest.mark.parametrize("how", ["content-encoding", "magic bytes", "format query"])
def test_gzipped_uploads_are_unzipped_as_they_stream(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        how: str) -> None:
    text = monthly_csv(series=4)
    body = gzip.compress(text.encode())
    if how == "content-encoding":
        answer = upload(client, auth, body, **{"Content-Encoding": "gzip"})
    elif how == "magic bytes":  # a .gz file sent as it is
        answer = upload(client, auth, body)
    else:
        answer = upload(client, auth, body, "application/gzip", "?format=csv")
    assert answer.status_code == 201, answer.get_json()
    dataset = answer.get_json()
    assert (dataset["upload_bytes"], dataset["text_bytes"]) == (len(body), len(text))
    assert observed(as_inline(stored_series(sessions, dataset["id"]))) == inline_csv(text)


def test_json_lines_hold_one_series_per_line(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    lines = [{"id": "a", "values": [1.5, None, 2, 3], "start": "2021-01", "freq": "MS"},
             {"id": "b", "values": [4, 5.25], "freq": "MS"}]
    answer = upload(client, auth, "\n".join(map(json.dumps, lines)) + "\n\n", JSONL)
    assert answer.status_code == 201, answer.get_json()
    dataset = answer.get_json()
    assert (dataset["format"], dataset["num_series"], dataset["num_points"],
            dataset["num_gaps"], dataset["frequency"]) == ("jsonl", 2, 6, 1, "MS")
    assert as_inline(stored_series(sessions, dataset["id"])) == [
        {"id": "a", "start": "2021-01", "values": [1.5, None, 2.0, 3.0]},
        {"id": "b", "start": None, "values": [4.0, 5.25]}]


def test_timestamps_missing_at_the_frequency_are_gaps(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    text = "unique_id,ds,y\na,2021-01-01,1\na,2021-01-02,2\na,2021-01-05,3\nb,2021-01-03,4\n" \
           "b,2021-01-04,5\n"
    dataset = upload(client, auth, text).get_json()
    assert (dataset["frequency"], dataset["missing_timestamps"], dataset["num_gaps"],
            dataset["num_points"]) == ("D", 2, 2, 7)
    assert as_inline(stored_series(sessions, dataset["id"])) == [
        {"id": "a", "start": "2021-01-01", "values": [1.0, 2.0, None, None, 3.0]},
        {"id": "b", "start": "2021-01-03", "values": [4.0, 5.0]}]
    mixed = upload(client, auth, "unique_id,ds,y\na,2021-01,1\na,2021-02,2\nb,1,1\nb,2,2\n")
    assert (mixed.get_json()["frequency"], mixed.get_json()["freq_inferred"]) == (None, "MS")


BAD_CSV = [
    ("unique_id,ds,y\na,1,x\n", ["body", "line 2", "y"], "must be a number"),
    ("unique_id,ds,y\na,1,nan\n", ["body", "line 2", "y"], "must be finite"),
    ("unique_id,ds,y\na,1,inf\n", ["body", "line 2", "y"], "must be finite"),
    ("unique_id,ds,y\na,1,1\na,soon,1\n", ["body", "line 3", "ds"], "ISO 8601"),
    ("unique_id,ds,y\na,1,1\na,2021-01,1\n", ["body", "line 3", "ds"], "mixes integer"),
    ("unique_id,ds,y\na,1,1\nb,1,1\na,1,3\n", ["body", "line 4", "ds"],
     "has ds 1 twice (lines 2 and 4)"),
    ("unique_id,ds,y\na,1,1,4\n", ["body", "line 2"], "has 4 fields"),
    ("unique_id,ds,y\n,1,1\n", ["body", "line 2", "unique_id"], "must not be empty"),
    (f"unique_id,ds,y\n{'x' * 129},1,1\n", ["body", "line 2", "unique_id"], "at most 128"),
    ("unique_id,ds,y\na,1,\na,2,\n", ["body", "line 2"], "no observed value"),
    ("unique_id,ds\na,1\n", ["body", "header", "y"], "column required"),
    ("unique_id,ds,y\n", ["body"], "no data rows"),
]


@pytest.mark.parametrize(("text", "loc", "msg"), BAD_CSV)
def test_bad_csv_rows_are_named_and_nothing_is_stored(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        text: str, loc: list, msg: str) -> None:
    problem = assert_problem(upload(client, auth, text), 422)
    assert any(e["loc"] == loc and msg in e["msg"] for e in problem["errors"]), problem
    assert nothing_stored(sessions)


BAD_JSONL = [
    ('{"id": "a", "values": [1, 2]\n', ["body", "line 1"], "not valid JSON"),
    ('{"id": "a", "values": [1, NaN]}\n', ["body", "line 1", "values"], "NaN is not valid"),
    ('{"id": "a", "values": [1, true]}\n', ["body", "line 1", "values"], "numbers or null"),
    ('{"id": "a", "values": [1e400]}\n', ["body", "line 1", "values"], "finite"),
    ('{"id": "a", "values": []}\n', ["body", "line 1", "values"], "non-empty"),
    ('{"id": "a", "values": [1], "colour": 1}\n', ["body", "line 1", "colour"], "unknown"),
    ('{"values": [1]}\n', ["body", "line 1", "id"], "field required"),
    ('{"id": "a", "values": [1], "freq": "fortnightly"}\n', ["body", "line 1", "freq"],
     "unknown frequency"),
    ('{"id": "a", "values": [1]}\n{"id": "a", "values": [2]}\n', ["body", "line 2", "id"],
     "already given on line 1"),
    ('[1, 2]\n', ["body", "line 1"], "must be a JSON object"),
    ('{"id": "a", "values": [null]}\n', ["body", "line 1"], "no observed value"),
]


@pytest.mark.parametrize(("text", "loc", "msg"), BAD_JSONL)
def test_bad_json_lines_are_named_and_nothing_is_stored(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        text: str, loc: list, msg: str) -> None:
    problem = assert_problem(upload(client, auth, text, JSONL), 422)
    assert any(e["loc"] == loc and msg in e["msg"] for e in problem["errors"]), problem
    assert nothing_stored(sessions)


def test_at_most_twenty_errors_are_named(client: FlaskClient, auth: dict[str, str]) -> None:
    text = "unique_id,ds,y\n" + "".join(f"a,{i},x\n" for i in range(100))
    problem = assert_problem(upload(client, auth, text), 422)
    assert len(problem["errors"]) == 20 and problem["errors"][-1]["loc"][1] == "line 21"


def test_bodies_that_are_not_text_or_not_gzip_answer_400(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    assert_problem(upload(client, auth, b"unique_id,ds,y\na,1,\xff\n"), 400)
    cut = gzip.compress(monthly_csv().encode())[:-30]
    assert "not valid gzip" in assert_problem(upload(client, auth, cut), 400)["detail"]
    assert_problem(upload(client, auth, "x", "application/xml"), 415)
    assert_problem(upload(client, auth, "x", query="?format=parquet"), 422)
    assert_problem(upload(client, auth, "x", query="?colour=red"), 422)
    assert nothing_stored(sessions)


@pytest.fixture
def small_app(tmp_path: Path) -> Flask:
    """The app with small dataset limits."""
    settings = settings_for(tmp_path / "small", BPTT_MAX_DATASET_BYTES="2000",
                            BPTT_MAX_DATASET_SERIES="3", BPTT_MAX_DATASET_POINTS="100",
                            BPTT_MAX_DATASET_SERIES_LENGTH="40", BPTT_MAX_BODY_BYTES="1000",
                            BPTT_MAX_DATASETS_PER_TENANT="2")
    upgrade(settings.database_url)
    app = create_app(settings)
    yield app
    services(app).engine.dispose()


def test_datasets_have_their_own_limits(small_app: Flask, make_token) -> None:
    client = small_app.test_client()
    with services(small_app).sessions.begin() as session:
        from service.store import repository
        tenant = repository.create_tenant(session, name="small")
        auth = {"Authorization": f"Bearer {repository.create_token(session, tenant=tenant).token}"}
    # 1,500 bytes: over the inline limit of 1,000, within the datasets' 2,000
    text = monthly_csv(series=2, months=25)
    assert 1000 < len(text) < 2000
    assert upload(client, auth, text).status_code == 201
    too_long = monthly_csv(series=1, months=41)
    problem = assert_problem(upload(client, auth, too_long), 422)
    assert "at most 40 per series" in problem["errors"][0]["msg"]
    problem = assert_problem(upload(client, auth, monthly_csv(series=4, months=3)), 422)
    assert "more than 3 series" in problem["errors"][0]["msg"]
    many = "unique_id,ds,y\n" + "".join(f"s{s},{i},1\n" for s in range(3) for i in range(34))
    problem = assert_problem(upload(client, auth, many), 422)
    assert "more than 100 points" in problem["errors"][0]["msg"]
    big = "unique_id,ds,y\n" + "a,1,1\n" * 400
    assert "2000" in assert_problem(upload(client, auth, big), 413)["detail"]
    bomb = gzip.compress(big.encode())  # small when sent, too large once unzipped
    assert len(bomb) < 2000
    assert "text is larger" in assert_problem(upload(client, auth, bomb), 413)["detail"]
    assert upload(client, auth, monthly_csv(series=1, months=5)).status_code == 201
    assert_problem(upload(client, auth, monthly_csv(series=1, months=5)), 429)  # 2 stored
    # inline bodies keep their own limit
    inline = {"series": [{"id": "a", "values": [1.0] * 300}], "horizon": 2}
    assert_problem(client.post("/v1/jobs", json=inline, headers=auth), 413)


def test_datasets_list_in_pages_per_tenant(client: FlaskClient, auth: dict[str, str],
                                           other_auth: dict[str, str]) -> None:
    made = [upload(client, auth, monthly_csv(series=1, months=5 + i)).get_json()["id"]
            for i in range(5)]
    theirs = upload(client, other_auth, monthly_csv(series=1)).get_json()["id"]
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/datasets{query}", headers=auth).get_json()
        seen += [d["id"] for d in page["datasets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    for method in ("get", "delete"):
        assert_problem(getattr(client, method)(f"/v1/datasets/{theirs}", headers=auth), 404)
    assert_problem(client.get("/v1/datasets", headers={"Authorization": "Bearer x"}), 401)


# --- jobs, sweeps and forecasts on a dataset ---------------------------------------------

@pytest.fixture
def dataset(client: FlaskClient, auth: dict[str, str]) -> dict[str, Any]:
    answer = upload(client, auth, monthly_csv(series=3, months=40))
    assert answer.status_code == 201
    return answer.get_json()


def test_a_job_on_a_dataset_is_checked_from_its_index_and_stores_a_reference(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings) -> None:
    answer = client.post("/v1/jobs", json={"dataset_id": dataset["id"][:8], **SPEC},
                         headers=auth)
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["dataset"] == {"num_series": 3, "num_points": 40 + 41 + 42,
                              "dataset_id": dataset["id"]}
    # the dataset's frequency is the job's freq: a yearly season for monthly data
    assert job["requested_spec"]["freq"] == "MS" and job["spec"]["freq"] == "MS"
    with sessions() as session:
        row = session.scalar(select(Dataset).where(Dataset.job_id == job["id"]))
        assert row.series_zlib is None and row.uploaded_dataset_id == dataset["id"]
    assert broker_messages(settings) == [(TRAIN_TASK, [job["id"]])]  # an id, nothing more

    subset = client.post("/v1/jobs", json={"dataset_id": dataset["id"],
                                           "series_ids": ["store-2", "store-0"], **SPEC,
                                           "season_length": 6}, headers=auth).get_json()
    assert subset["dataset"]["num_series"] == 2 and subset["spec"]["freq"] is None
    page = client.get(f"/v1/jobs/{subset['id']}/series?tail=5", headers=auth).get_json()
    assert [(s["id"], s["length"], s["start"]) for s in page["series"]] == [
        ("store-2", 42, "2015-01-01"), ("store-0", 40, "2015-01-01")]
    inline = parse_long_csv(monthly_csv(series=3, months=40))
    assert page["series"][0]["values"] == inline[2]["values"][-5:]


@pytest.mark.parametrize(("body", "status", "loc"), [
    ({"dataset_id": "0000aaaa"}, 404, ["dataset_id"]),
    ({"dataset_id": 7}, 422, ["dataset_id"]),
    ({"series_ids": ["store-0"]}, 422, ["series_ids"]),
    ({"DATASET": None, "series_ids": ["store-9", "store-0", "x"]}, 422, ["series_ids", 0]),
    ({"DATASET": None, "series_ids": ["store-0", "store-0"]}, 422, ["series_ids", 1]),
    ({"DATASET": None, "series_ids": []}, 422, ["series_ids"]),
    ({"DATASET": None, "series": [{"id": "a", "values": [1.0] * 30}]}, 422, ["series"]),
    ({"DATASET": None, "window": {"input_size": 40}}, 422, ["dataset_id"]),
    ({"DATASET": None, "cross_validation": {"windows": 20}}, 422,
     ["cross_validation", "windows"]),
])
def test_bad_dataset_references_are_named_and_store_nothing(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings, body: dict, status: int,
        loc: list) -> None:
    if "DATASET" in body:
        body = {**{k: v for k, v in body.items() if k != "DATASET"},
                "dataset_id": dataset["id"]}
    problem = assert_problem(client.post("/v1/jobs", json={**SPEC, **body}, headers=auth),
                             status)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert row_count(sessions, Job) == 0 and broker_messages(settings) == []


def test_another_tenants_dataset_is_unknown(client: FlaskClient, other_auth: dict[str, str],
                                            dataset: dict[str, Any]) -> None:
    problem = assert_problem(client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"]},
                                         headers=other_auth), 404)
    assert problem["errors"] == [{"loc": ["dataset_id"], "msg": "no such dataset"}]


def test_a_dataset_in_use_cannot_be_deleted(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        worker: SimulatedWorker, sessions: sessionmaker[Session]) -> None:
    job = client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"]},
                      headers=auth).get_json()
    for state in ("queued", "running"):
        if state == "running":
            worker.start(job["id"])
        problem = assert_problem(client.delete(f"/v1/datasets/{dataset['id']}", headers=auth),
                                 409)
        assert problem["jobs"] == [job["id"]] and job["id"] in problem["detail"]
    worker.finish(job["id"], status="failed", error="x")
    assert client.delete(f"/v1/datasets/{dataset['id']}", headers=auth).status_code == 204
    assert nothing_stored(sessions)
    # the finished job keeps its history, and says where its data was
    shown = client.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()
    assert shown["dataset"]["dataset_id"] == dataset["id"]
    page = client.get(f"/v1/jobs/{job['id']}/series", headers=auth).get_json()
    assert page["series"] == [] and page["num_series"] == 0


def test_a_job_on_a_dataset_trains_from_the_database(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings) -> None:
    job = client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"],
                                        "series_ids": ["store-1", "store-2"]},
                      headers=auth).get_json()
    # what a worker runs (workers/attempts.py), in this process
    assert run_training(sessions, settings, job["id"], "test:1") == "succeeded"
    model = client.get(f"/v1/jobs/{job['id']}/model", headers=auth)
    trained = bptt.Model.from_bytes(model.data)
    assert trained.series_ids == ["store-1", "store-2"]
    # the same fit on the same series sent inline gives the same weights (the calendar choice
    # as the service resolved it at submit: the job's spec says what "auto" became)
    assert job["spec"]["calendar"] == "cyclic"
    inline = parse_long_csv(monthly_csv(series=3, months=40))[1:]
    expected = bptt.fit(inline, spec=bptt.TrainingSpec.from_dict(
        {**SPEC, "freq": "MS", "calendar": "cyclic",
         "training": {**SPEC["training"], "threads": 1}}))
    np.testing.assert_array_equal(trained.to_bytes(), expected.model.to_bytes())


def test_a_job_whose_dataset_vanished_fails_with_the_reason(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings) -> None:
    job = client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"]},
                      headers=auth).get_json()
    with sessions.begin() as session:  # as if deleted by hand in the database
        session.execute(UploadedDataset.__table__.delete())
    assert run_training(sessions, settings, job["id"], "test:1") == "invalid"
    shown = client.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()
    assert shown["status"] == "failed" and "was deleted" in shown["error"]


def test_a_sweep_on_a_dataset_refers_to_it_from_every_trial_and_forecasts_dated(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings) -> None:
    sweep = client.post("/v1/sweeps", json={
        "job": {**SPEC, "dataset_id": dataset["id"], "series_ids": ["store-0"]},
        "strategy": "grid", "space": {"model.hidden_size": [4, 8]}}, headers=auth)
    assert sweep.status_code == 202, sweep.get_json()
    trials = [t["job_id"] for t in sweep.get_json()["trials"]]
    with sessions() as session:
        rows = session.scalars(select(Dataset).where(Dataset.job_id.in_(trials))).all()
        assert {(r.uploaded_dataset_id, r.series_zlib) for r in rows} == {(dataset["id"], None)}
    assert [args for _, args in broker_messages(settings)] == [[t] for t in trials]
    for trial in trials:  # what the workers do, in this process
        assert run_training(sessions, settings, trial, "test:1") == "succeeded"
    # the best trial's forecast of its training series is dated from the dataset's calendar
    # (store-0: 40 months from 2015-01, so the steps are 2018-05..07), as a job's would be
    answer = client.post("/v1/forecasts", json={"sweep_id": sweep.get_json()["id"]},
                         headers=auth)
    assert answer.status_code == 200, answer.get_json()
    [forecast] = answer.get_json()["forecasts"]
    assert forecast["id"] == "store-0"
    assert forecast["ds"] == ["2018-05-01", "2018-06-01", "2018-07-01"]
    problem = assert_problem(client.post("/v1/sweeps", json={
        "job": {**SPEC, "dataset_id": "ffff0000"}, "space": {"model.hidden_size": [4]}},
        headers=auth), 404)
    assert problem["errors"][0]["loc"] == ["job", "dataset_id"]


def test_forecasts_of_a_dataset_in_the_request_and_as_a_batch(
        client: FlaskClient, auth: dict[str, str], dataset: dict[str, Any],
        sessions: sessionmaker[Session], settings: Settings, worker: SimulatedWorker,
        trained_weights: bytes) -> None:
    job = client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"]},
                      headers=auth).get_json()
    worker.start(job["id"])
    worker.finish(job["id"], weights=trained_weights)  # a model trained on other series
    model = bptt.Model.from_bytes(trained_weights)
    inline = parse_long_csv(monthly_csv(series=3, months=40))
    expected = bptt.forecast(model, inline)
    answer = client.post("/v1/forecasts", json={"job_id": job["id"],
                                                "dataset_id": dataset["id"]}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    got = answer.get_json()["forecasts"]
    assert [f["id"] for f in got] == ["store-0", "store-1", "store-2"]
    np.testing.assert_allclose(got[2]["mean"], expected[2]["mean"], rtol=1e-12)

    # an app that answers more than one series as a batch, on the same database
    batch_settings = settings_for(settings.data_dir, BPTT_SYNC_FORECAST_MAX_SERIES="1")
    batch_app = create_app(batch_settings)
    try:
        created = batch_app.test_client().post("/v1/forecasts", json={
            "job_id": job["id"], "dataset_id": dataset["id"],
            "series_ids": ["store-2", "store-0"]}, headers=auth)
    finally:
        services(batch_app).engine.dispose()
    assert created.status_code == 202, created.get_json()
    batch_id = created.get_json()["id"]
    with sessions() as session:
        request = decompress_json(session.get(ForecastBatch, batch_id).request_zlib)
    # 42 and 40 months from 2015-01: they end in 2018-06 and 2018-04
    assert request == {"series": None, "horizon": None, "quantiles": None,
                       "dataset_id": dataset["id"], "series_ids": ["store-2", "store-0"],
                       "ds": {"store-2": ["2018-07-01", "2018-08-01", "2018-09-01"],
                              "store-0": ["2018-05-01", "2018-06-01", "2018-07-01"]}}
    assert broker_messages(settings)[-1] == (FORECAST_TASK, [batch_id])
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "succeeded"
    done = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()["result"]
    assert [f["id"] for f in done["forecasts"]] == ["store-2", "store-0"]
    assert done["forecasts"][0]["ds"] == ["2018-07-01", "2018-08-01", "2018-09-01"]
    np.testing.assert_allclose(done["forecasts"][0]["mean"], expected[2]["mean"], rtol=1e-12)

    for body, loc in (({"series_ids": ["store-0"]}, ["series_ids"]),
                      ({"dataset_id": dataset["id"], "series": inline[:1]}, ["dataset_id"]),
                      ({"dataset_id": dataset["id"], "series_ids": ["nope"]},
                       ["series_ids", 0])):
        problem = assert_problem(client.post("/v1/forecasts", json={"job_id": job["id"],
                                                                    **body}, headers=auth), 422)
        assert loc in [e["loc"] for e in problem["errors"]]


def test_csv_bodies_of_jobs_do_not_take_a_dataset(client: FlaskClient, auth: dict[str, str],
                                                  dataset: dict[str, Any]) -> None:
    problem = assert_problem(client.post(
        f"/v1/jobs?horizon=3&dataset_id={dataset['id']}", data=monthly_csv(),
        content_type=CSV, headers=auth), 422)
    assert problem["errors"] == [{"loc": ["query", "dataset_id"], "msg": "unknown field"}]

