"""Timestamps over HTTP: a CSV's ds placed on a regular grid (gaps, off-grid rows refused by
line), the frequency inferred and shown, and every forecast step's ds in every answer format."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import forecast_batches
from service.store.db import upgrade
from service.store.tables import Job
from workers.attempts import run_training

from .conftest import SERIES, SPEC, SimulatedWorker, row_count, settings_for
from .test_app import assert_problem

QUERY = "horizon=3&quantiles=0.1,0.5,0.9&model.hidden_size=4&training.epochs=2" \
        "&training.ensemble=1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Requests of more than 2 series become batches."""
    result = settings_for(tmp_path / "data", BPTT_SYNC_FORECAST_MAX_SERIES="2")
    upgrade(result.database_url)
    return result


def months(start: date, count: int) -> list[str]:
    """`count` month starts from `start`, as YYYY-MM-DD."""
    return [date(start.year + (start.month - 1 + k) // 12, (start.month - 1 + k) % 12 + 1,
                 1).isoformat() for k in range(count)]


def long_csv(stamps: dict[str, list[str | int]]) -> str:
    """SERIES as `unique_id,ds,y` rows with these ds per series (as many rows as ds)."""
    values = {s["id"]: s["values"] for s in SERIES}
    rows = ["unique_id,ds,y"]
    for uid, ds in stamps.items():
        rows += [f"{uid},{d},{values[uid][k]}" for k, d in enumerate(ds)]
    return "\n".join(rows) + "\n"


def monthly_csv() -> str:
    """SERIES as monthly rows: store-1 from 2018-01 (60 months), store-2 from 2019-01 (50)."""
    return long_csv({"store-1": months(date(2018, 1, 1), 60),
                     "store-2": months(date(2019, 1, 1), 50)})


def submit_csv(client: FlaskClient, auth: dict[str, str], text: str, query: str = QUERY):
    return client.post(f"/v1/jobs?{query}", data=text, content_type="text/csv", headers=auth)


def stored_series(client: FlaskClient, auth: dict[str, str], job_id: str) -> dict[str, dict]:
    page = client.get(f"/v1/jobs/{job_id}/series?tail=1000", headers=auth).get_json()
    return {s["id"]: s for s in page["series"]}


@pytest.fixture
def monthly_job(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
                trained_weights: bytes) -> str:
    """A succeeded job submitted as monthly CSV (no freq given), with a model really trained on
    SERIES (the same ids and lengths)."""
    response = submit_csv(client, auth, monthly_csv())
    assert response.status_code == 202, response.get_json()
    job_id = str(response.get_json()["id"])
    worker.start(job_id)
    worker.finish(job_id, weights=trained_weights)
    return job_id


def test_the_frequency_is_inferred_and_shown(client: FlaskClient, auth: dict[str, str],
                                             monthly_job: str) -> None:
    job = client.get(f"/v1/jobs/{monthly_job}", headers=auth).get_json()
    assert job["freq_inferred"] == "MS"
    assert job["spec"]["freq"] == "MS" and job["requested_spec"]["freq"] is None
    assert job["spec"]["season_length"] == 12  # the season follows from the inferred freq
    series = stored_series(client, auth, monthly_job)
    assert (series["store-1"]["start"], series["store-1"]["freq"]) == ("2018-01-01", "MS")
    assert series["store-1"]["values"] == SERIES[0]["values"]


def test_a_given_frequency_is_not_inferred(client: FlaskClient, auth: dict[str, str]) -> None:
    response = submit_csv(client, auth, monthly_csv(), f"{QUERY}&freq=MS")
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["freq_inferred"] is None and job["requested_spec"]["freq"] == "MS"


def test_a_missing_timestamp_is_a_gap(client: FlaskClient, auth: dict[str, str]) -> None:
    stamps = months(date(2018, 1, 1), 61)
    del stamps[10]  # store-1's 11th month has no row: its neighbours stay a month apart
    response = submit_csv(client, auth, long_csv({"store-1": stamps[:60],
                                                  "store-2": months(date(2019, 1, 1), 50)}))
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["freq_inferred"] == "MS" and job["dataset"]["num_points"] == 61 + 50
    values = stored_series(client, auth, job["id"])["store-1"]["values"]
    assert len(values) == 61 and values[10] is None
    assert values[:10] == SERIES[0]["values"][:10] and values[11:] == SERIES[0]["values"][10:]


def test_an_off_grid_timestamp_is_refused_naming_series_and_line(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    stamps = months(date(2018, 1, 1), 60)
    stamps[20] = "2019-09-15"  # between 2019-09-01 and 2019-10-01; line 22 (after the header)
    problem = assert_problem(submit_csv(client, auth, long_csv(
        {"store-1": stamps, "store-2": months(date(2019, 1, 1), 50)})), 422)
    assert problem["errors"][0]["loc"] == ["body", "line 22", "ds"]
    message = problem["errors"][0]["msg"]
    assert "'store-1'" in message and "'2019-09-15'" in message and "MS" in message
    assert "2019-09-01 and 2019-10-01" in message
    # a given freq that the rows do not follow: the first row already cannot start its grid
    weekly = [(date(2021, 1, 4) + timedelta(weeks=k)).isoformat() for k in range(60)]  # Mondays
    problem = assert_problem(submit_csv(client, auth, long_csv({"store-1": weekly}),
                                        f"{QUERY}&freq=W-SUN"), 422)
    assert problem["errors"][0]["loc"] == ["body", "line 2", "ds"]
    assert "Sunday" in problem["errors"][0]["msg"]
    assert row_count(sessions, Job) == 0


def test_integer_ds_keeps_working(client: FlaskClient, auth: dict[str, str],
                                  worker: SimulatedWorker, trained_weights: bytes) -> None:
    response = submit_csv(client, auth, long_csv({"store-1": list(range(1, 61)),
                                                  "store-2": list(range(101, 151))}))
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["freq_inferred"] is None and job["spec"]["freq"] is None
    series = stored_series(client, auth, job["id"])
    assert (series["store-2"]["start"], series["store-2"]["freq"]) == ("101", "1")
    assert series["store-1"]["values"] == SERIES[0]["values"]
    worker.start(job["id"])
    worker.finish(job["id"], weights=trained_weights)
    answer = client.post("/v1/forecasts", json={"job_id": job["id"]}, headers=auth).get_json()
    assert {f["id"]: f["ds"] for f in answer["forecasts"]} == {"store-1": [61, 62, 63],
                                                              "store-2": [151, 152, 153]}
    # steps of 10 with a missing one: a gap, and the forecast steps by 10
    stepped = submit_csv(client, auth, long_csv({"store-1": [10 * k for k in range(61)
                                                             if k != 5][:60]}))
    assert stepped.status_code == 202, stepped.get_json()
    values = stored_series(client, auth, stepped.get_json()["id"])["store-1"]
    assert values["freq"] == "10" and values["values"][5] is None


def test_jobs_forecasts_carry_ds_in_json_and_csv(client: FlaskClient, auth: dict[str, str],
                                                  monthly_job: str) -> None:
    answer = client.post("/v1/forecasts", json={"job_id": monthly_job}, headers=auth)
    assert answer.status_code == 200, answer.get_json()
    ds = {f["id"]: f["ds"] for f in answer.get_json()["forecasts"]}
    # store-1: 60 months from 2018-01 end in 2022-12; store-2: 50 from 2019-01 end in 2023-02
    assert ds == {"store-1": ["2023-01-01", "2023-02-01", "2023-03-01"],
                  "store-2": ["2023-03-01", "2023-04-01", "2023-05-01"]}
    as_csv = client.post("/v1/forecasts", json={"job_id": monthly_job, "horizon": 2},
                         headers={**auth, "Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(as_csv.get_data(as_text=True))))
    assert rows[0][:4] == ["unique_id", "ds", "step", "mean"]
    assert [r[:3] for r in rows[1:3]] == [["store-1", "2023-01-01", "1"],
                                         ["store-1", "2023-02-01", "2"]]


def test_request_series_carry_ds_from_start_and_freq(
        client: FlaskClient, auth: dict[str, str], monthly_job: str, trained_job: str) -> None:
    numbered_job = trained_job  # submitted as JSON without start or freq: no freq of its own
    values = SERIES[0]["values"][:30]
    given = [{"id": "weekly", "values": values, "start": "2024-01-07", "freq": "W-SUN"},
             {"id": "model-freq", "values": values, "start": "2024-01"},  # the job's MS
             {"id": "numbered", "values": values}]
    answer = client.post("/v1/forecasts", json={"job_id": monthly_job, "series": given[:2]},
                         headers=auth).get_json()
    assert [f["ds"] for f in answer["forecasts"]] == [
        ["2024-08-04", "2024-08-11", "2024-08-18"], ["2026-07-01", "2026-08-01", "2026-09-01"]]
    answer = client.post("/v1/forecasts", json={"job_id": monthly_job, "series": given[2:]},
                         headers=auth).get_json()
    assert answer["forecasts"][0]["ds"] == [31, 32, 33]  # values numbered 1..30
    # a dated start without any frequency: none to step by, unless it names a month
    job_less = [{"id": "day", "values": values, "start": "2024-01-02"},
                {"id": "month", "values": values, "start": "2024-01"}]
    answer = client.post("/v1/forecasts", json={"job_id": numbered_job, "series": job_less},
                         headers=auth).get_json()
    assert [f["ds"] for f in answer["forecasts"]] == [
        None, ["2026-07-01", "2026-08-01", "2026-09-01"]]
    # a CSV forecast request: its ds, with their frequency inferred
    text = "unique_id,ds,y\n" + "".join(
        f"daily,{(date(2024, 2, 1) + timedelta(days=k)).isoformat()},{v}\n"
        for k, v in enumerate(values))
    as_csv = client.post(f"/v1/forecasts?job_id={monthly_job}", data=text,
                         content_type="text/csv", headers={**auth, "Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(as_csv.get_data(as_text=True))))
    assert [r[1] for r in rows[1:]] == ["2024-03-02", "2024-03-03", "2024-03-04"]


@pytest.mark.parametrize(("series", "loc"), [
    ({"start": "2024-01-15", "freq": "MS"}, ["series", 0, "start"]),
    ({"start": "soon"}, ["series", 0, "start"]),
    ({"start": "2024-01", "freq": "fortnightly"}, ["series", 0, "freq"]),
    ({"start": "3", "freq": "MS"}, ["series", 0, "start"]),
])
def test_bad_start_or_freq_names_the_field(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        series: dict[str, str], loc: list[str | int]) -> None:
    body = {"series": [{**SERIES[0], **series}], **SPEC}
    problem = assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert row_count(sessions, Job) == 0


def test_forecast_batches_carry_ds(client: FlaskClient, auth: dict[str, str], monthly_job: str,
                                   sessions: sessionmaker[Session], settings: Settings) -> None:
    values = SERIES[0]["values"][:30]
    series = [{"id": f"s{k}", "values": values, "start": f"202{k}-01", "freq": "MS"}
              for k in range(3)]
    created = client.post("/v1/forecasts", json={"job_id": monthly_job, "series": series,
                                                 "horizon": 2}, headers=auth)
    assert created.status_code == 202
    batch_id = created.get_json()["id"]
    assert forecast_batches.answer_batch(sessions, settings, batch_id) == "succeeded"
    done = client.get(f"/v1/forecasts/{batch_id}", headers=auth).get_json()
    assert [f["ds"] for f in done["result"]["forecasts"]] == [
        ["2022-07-01", "2022-08-01"], ["2023-07-01", "2023-08-01"], ["2024-07-01", "2024-08-01"]]
    as_csv = client.get(f"/v1/forecasts/{batch_id}", headers={**auth, "Accept": "text/csv"})
    assert as_csv.get_data(as_text=True).splitlines()[1].startswith("s0,2022-07-01,1,")


def test_stateful_forecasts_carry_ds_past_appended_values(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    hours = {uid: [f"2024-03-01T{h:02d}:00" if d == 0 else f"2024-03-0{d + 1}T{h:02d}:00"
                   for d in range(3) for h in range(24)][:n]
             for uid, n in (("store-1", 60), ("store-2", 50))}
    response = submit_csv(client, auth, long_csv(hours))
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    assert response.get_json()["freq_inferred"] == "h"
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    base = f"/v1/jobs/{job_id}/series/store-1"
    # 60 hours from 2024-03-01 00:00 end at 2024-03-03 11:00
    first = client.get(f"{base}/forecast", headers=auth).get_json()["forecast"]
    assert first["ds"] == ["2024-03-03T12:00:00", "2024-03-03T13:00:00", "2024-03-03T14:00:00"]
    appended = client.post(f"{base}/observations", json={"values": [25.0, None]}, headers=auth)
    assert appended.get_json()["forecast"]["ds"][0] == "2024-03-03T14:00:00"

