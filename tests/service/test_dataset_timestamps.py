"""Timestamps of uploaded datasets over HTTP, against the same data sent inline: the ds placed on
a regular grid (a missing one is a gap, one between grid points a 422 naming its series and
line, with nothing stored), the frequency inferred and shown, integer ds as before, and the ds
of every forecast step of a job trained on a dataset equal to the inline job's."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.api.csvio import parse_long_csv
from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store import dataset_rows, forecast_batches
from service.store.tables import UploadedDataset, UploadedDatasetChunk
from workers.attempts import run_training

from .conftest import row_count, settings_for
from .test_app import assert_problem
from .test_timestamps import long_csv, monthly_csv, months, submit_csv

SPEC = {"horizon": 3, "quantiles": [0.1, 0.5, 0.9], "model": {"hidden_size": 4},
        "training": {"epochs": 2, "ensemble": 1}}


def upload(client: FlaskClient, auth: dict[str, str], text: str, query: str = "",
           content_type: str = "text/csv"):
    return client.post(f"/v1/datasets{query}", data=text.encode(),
                       headers={**auth, "Content-Type": content_type})


def stored(sessions: sessionmaker[Session], dataset_id: str) -> list[dict[str, Any]]:
    """The dataset's series as the inline parser gives them: id, values (None for a gap),
    start, freq."""
    with sessions() as session:
        index = dataset_rows.load_index(session, dataset_id)
        series = dataset_rows.read_series(session, index)
    return [{"id": s["id"], "start": s["start"], "freq": s["freq"],
             "values": [None if math.isnan(v) else v for v in s["values"].tolist()]}
            for s in series]


def inline(text: str) -> list[dict[str, Any]]:
    """The inline parser's series of a CSV, with their keys in stored()'s order."""
    return [{"id": s["id"], "start": s["start"], "freq": s.get("freq"), "values": s["values"]}
            for s in parse_long_csv(text)]


def nothing_stored(sessions: sessionmaker[Session]) -> bool:
    return row_count(sessions, UploadedDataset) == row_count(sessions, UploadedDatasetChunk) == 0


def shuffled(text: str) -> str:
    """The rows of a CSV interleaved (the header first): series mixed, ds out of order."""
    header, *rows = text.splitlines()
    return "\n".join([header, *rows[1::2], *rows[::2][::-1]]) + "\n"


def test_a_missing_timestamp_is_a_gap_as_inline(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    stamps = months(date(2018, 1, 1), 61)
    del stamps[10]  # store-1's 11th month has no row
    text = long_csv({"store-1": stamps[:60], "store-2": months(date(2019, 1, 1), 50)})
    for body in (text, shuffled(text)):
        answer = upload(client, auth, body)
        assert answer.status_code == 201, answer.get_json()
        dataset = answer.get_json()
        assert (dataset["frequency"], dataset["freq_inferred"], dataset["missing_timestamps"],
                dataset["num_points"]) == ("MS", "MS", 1, 61 + 50)
        series = stored(sessions, dataset["id"])
        assert series == inline(text)
        assert series[0]["values"][10] is None and series[0]["start"] == "2018-01-01"


def test_an_off_grid_timestamp_is_refused_naming_series_and_line(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    stamps = months(date(2018, 1, 1), 60)
    stamps[20] = "2019-09-15"  # between 2019-09-01 and 2019-10-01; line 22 (after the header)
    text = long_csv({"store-1": stamps, "store-2": months(date(2019, 1, 1), 50)})
    problem = assert_problem(upload(client, auth, text), 422)
    assert problem["errors"][0]["loc"] == ["body", "line 22", "ds"]
    message = problem["errors"][0]["msg"]
    assert "'store-1'" in message and "'2019-09-15'" in message
    assert "2019-09-01 and 2019-10-01" in message
    # the same words as for the same rows sent with a job
    inline_problem = assert_problem(submit_csv(client, auth, text), 422)
    assert inline_problem["errors"] == problem["errors"]
    # rows in another order: the line is still the row's own
    header, *rows = text.splitlines()
    moved = "\n".join([header, *rows[::-1]]) + "\n"
    problem = assert_problem(upload(client, auth, moved), 422)
    assert problem["errors"][0]["loc"] == ["body", f"line {len(rows) + 2 - 21}", "ds"]
    # a given freq that the rows do not follow: the first row already cannot start its grid
    weekly = [(date(2021, 1, 4) + timedelta(weeks=k)).isoformat() for k in range(60)]  # Mondays
    problem = assert_problem(upload(client, auth, long_csv({"store-1": weekly}),
                                    "?freq=W-SUN"), 422)
    assert problem["errors"][0]["loc"] == ["body", "line 2", "ds"]
    assert "'store-1' starts at '2021-01-04'" in problem["errors"][0]["msg"]
    assert "Sunday" in problem["errors"][0]["msg"]
    assert nothing_stored(sessions)


def test_the_frequency_is_inferred_unless_given(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    inferred = upload(client, auth, monthly_csv()).get_json()
    shown = client.get(f"/v1/datasets/{inferred['id']}", headers=auth).get_json()
    assert (shown["frequency"], shown["freq_inferred"]) == ("MS", "MS")
    given = upload(client, auth, monthly_csv(), "?freq=MS").get_json()
    assert (given["frequency"], given["freq_inferred"]) == ("MS", None)
    daily = [(date(2024, 2, 1) + timedelta(days=k)).isoformat() for k in range(60)]
    hourly = upload(client, auth, long_csv({"store-1": daily}), "?freq=12h").get_json()
    assert hourly["frequency"] == "12h" and hourly["num_gaps"] == 59  # a row every other step
    for query, msg in (("?freq=fortnightly", "unknown frequency"), ("?freq=2", "date frequency")):
        problem = assert_problem(upload(client, auth, monthly_csv(), query), 422)
        assert problem["errors"][0]["loc"] == ["query", "freq"]
        assert msg in problem["errors"][0]["msg"]
    problem = assert_problem(upload(client, auth, json.dumps({"id": "a", "values": [1]}),
                                    "?freq=MS", "application/x-ndjson"), 422)
    assert problem["errors"][0]["loc"] == ["query", "freq"]
    assert row_count(sessions, UploadedDataset) == 3


def test_json_lines_start_and_freq_are_checked_as_a_job_requests_are(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    lines = [{"id": "a", "values": [1, 2], "start": "2024-01", "freq": "MS"},
             {"id": "b", "values": [1, 2], "start": "2024-01-15", "freq": "MS"},
             {"id": "c", "values": [1, 2], "start": "soon"},
             {"id": "d", "values": [1, 2], "start": "2024-01", "freq": "fortnightly"}]
    problem = assert_problem(upload(client, auth, "\n".join(map(json.dumps, lines)),
                                    content_type="application/x-ndjson"), 422)
    assert [e["loc"] for e in problem["errors"]] == [
        ["body", "line 2", "start"], ["body", "line 3", "start"], ["body", "line 4", "freq"]]
    assert "first day of a month" in problem["errors"][0]["msg"]
    assert nothing_stored(sessions)


def test_integer_ds_keep_working(client: FlaskClient, auth: dict[str, str],
                                 sessions: sessionmaker[Session]) -> None:
    text = long_csv({"store-1": list(range(1, 61)), "store-2": list(range(101, 151))})
    dataset = upload(client, auth, text).get_json()
    assert (dataset["frequency"], dataset["freq_inferred"], dataset["missing_timestamps"]) == \
        (None, None, 0)
    series = stored(sessions, dataset["id"])
    assert series == inline(text)
    assert [(s["start"], s["freq"]) for s in series] == [("1", "1"), ("101", "1")]
    # steps of 10 with a missing one: a gap, on a grid of 10
    stepped = long_csv({"store-1": [10 * k for k in range(61) if k != 5][:60]})
    dataset = upload(client, auth, stepped).get_json()
    series = stored(sessions, dataset["id"])
    assert series == inline(stepped)
    assert series[0]["freq"] == "10" and series[0]["values"][5] is None


def forecast_ds(client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
                ) -> dict[str, Any]:
    answer = client.post("/v1/forecasts", json=body, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    return {f["id"]: f["ds"] for f in answer.get_json()["forecasts"]}


def csv_ds(client: FlaskClient, auth: dict[str, str], job_id: str) -> list[list[str]]:
    answer = client.post("/v1/forecasts", json={"job_id": job_id},
                         headers={**auth, "Accept": "text/csv"})
    return [row[:3] for row in csv.reader(io.StringIO(answer.get_data(as_text=True)))]


def batch_ds(settings: Settings, sessions: sessionmaker[Session], auth: dict[str, str],
             body: dict[str, Any]) -> dict[str, Any]:
    """The ds of a forecast answered as a batch (by an app that batches 2 series or more)."""
    batching = settings_for(settings.data_dir, BPTT_SYNC_FORECAST_MAX_SERIES="1")
    app = create_app(batching)
    try:
        created = app.test_client().post("/v1/forecasts", json=body, headers=auth)
        assert created.status_code == 202, created.get_json()
        batch_id = created.get_json()["id"]
        assert forecast_batches.answer_batch(sessions, batching, batch_id) == "succeeded"
        done = app.test_client().get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    finally:
        services(app).engine.dispose()
    return {f["id"]: f["ds"] for f in done["result"]["forecasts"]}


@pytest.mark.parametrize("text", [
    monthly_csv(),
    long_csv({"store-1": [f"2024-03-{1 + h // 24:02d}T{h % 24:02d}:00" for h in range(61)
                          if h != 7],  # hourly, an hour missing: a gap
              "store-2": [f"2024-03-{5 + h // 24:02d}T{h % 24:02d}:30" for h in range(50)]}),
], ids=["monthly", "hourly"])
def test_forecasts_of_a_job_on_a_dataset_carry_the_ds_of_the_same_data_inline(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, text: str) -> None:
    inline_job = submit_csv(client, auth, text)
    assert inline_job.status_code == 202, inline_job.get_json()
    dataset = upload(client, auth, text).get_json()
    on_dataset = client.post("/v1/jobs", json={**SPEC, "dataset_id": dataset["id"]},
                             headers=auth)
    assert on_dataset.status_code == 202, on_dataset.get_json()
    jobs = [inline_job.get_json()["id"], on_dataset.get_json()["id"]]
    for job_id in jobs:
        assert run_training(sessions, settings, job_id, "test:1") == "succeeded"

    answers = [forecast_ds(client, auth, {"job_id": job_id}) for job_id in jobs]
    assert answers[0] == answers[1]
    assert all(ds is not None and len(ds) == 3 for ds in answers[1].values())
    assert csv_ds(client, auth, jobs[0]) == csv_ds(client, auth, jobs[1])
    assert forecast_ds(client, auth, {"job_id": jobs[1], "dataset_id": dataset["id"],
                                      "series_ids": ["store-2"]}) == \
        {"store-2": answers[0]["store-2"]}
    assert batch_ds(settings, sessions, auth, {"job_id": jobs[1]}) == answers[0]
    assert batch_ds(settings, sessions, auth, {"job_id": jobs[0],
                                               "dataset_id": dataset["id"]}) == answers[0]
    stateful = [client.get(f"/v1/jobs/{job_id}/series/store-1/forecast",
                           headers=auth).get_json()["forecast"]["ds"] for job_id in jobs]
    assert stateful[0] == stateful[1] == answers[0]["store-1"]
