"""A long CSV with a separate static table (multipart/form-data, parts `series` and `static`) on
POST /v1/jobs and POST /v1/forecasts: the table's columns are static covariates, and each
refusal names the part, line and column (422, nothing stored, no message sent)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import dataset_rows
from service.store.db import upgrade
from service.store.tables import Job
from workers.attempts import run_training

from .conftest import settings_for
from .test_app import assert_problem
from .test_covariates_api import refused

QUERY = "/v1/jobs?horizon=3&training.epochs=2&model.hidden_size=4&training.ensemble=1" \
        "&covariates=promo:future"
STATIC = "unique_id,region,size\na,north,120\nb,south,80.5\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    result = settings_for(tmp_path / "data")
    upgrade(result.database_url)
    return result


def long_csv(ids: tuple[str, ...] = ("a", "b"), days: int = 40) -> str:
    """Daily series with a promotion flag column."""
    lines = ["unique_id,ds,y,promo"]
    for k, uid in enumerate(ids):
        lines += [f"{uid},2024-{1 + t // 28:02d}-{1 + t % 28:02d},{10 + k + (t % 5)},"
                  f"{int((t + k) % 5 == 0)}" for t in range(28 * (days // 28))]
    return "\n".join(lines) + "\n"


def parts(series: str | None = None, static: str | None = STATIC,
          **others: str) -> dict[str, Any]:
    """A multipart body: the long CSV and its static table, sent as files as `curl -F
    series=@long.csv -F static=@static.csv` sends them."""
    body = {"series": (io.BytesIO((series or long_csv()).encode()), "long.csv")}
    if static is not None:
        body["static"] = (io.BytesIO(static.encode()), "static.csv")
    body.update({name: (io.BytesIO(text.encode()), f"{name}.csv")
                 for name, text in others.items()})
    return {"data": body, "content_type": "multipart/form-data"}


def test_the_static_tables_columns_are_static_covariates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    response = client.post(QUERY, headers=auth, **parts())
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["covariates"] == {"promo": "future", "region": "static",
                                                 "size": "static"}
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, response.get_json()["id"])
    assert library["region"] == {"kind": "static", "values": {"a": "north", "b": "south"}}
    assert library["size"] == {"kind": "static", "values": {"a": 120.0, "b": 80.5}}
    assert library["promo"]["values"]["b"][:5] == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_a_static_table_in_any_row_order_gives_the_same_job_as_static_columns(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    table = client.post(QUERY, headers=auth, **parts(
        static="size,unique_id,region\n80.5,b,south\n\n120,a,north\n"))
    assert table.status_code == 202, table.get_json()
    regions = {"a": "north", "b": "south"}
    sizes = {"a": "120", "b": "80.5"}
    inline = "\n".join(line if i == 0 else f"{line},{regions[line[0]]},{sizes[line[0]]}"
                       for i, line in enumerate(long_csv().splitlines()))
    inline = inline.replace("promo", "promo,region,size", 1)
    columns = client.post(QUERY + ",region:static,size:static", data=inline,
                          content_type="text/csv", headers=auth)
    assert columns.status_code == 202, columns.get_json()
    with sessions() as session:
        assert (dataset_rows.covariates_for_job(session, table.get_json()["id"])
                == dataset_rows.covariates_for_job(session, columns.get_json()["id"]))


def test_a_multipart_body_without_a_static_part_is_the_long_csv_alone(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    response = client.post(QUERY, headers=auth, **parts(static=None))
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["covariates"] == {"promo": "future"}


def test_the_same_parts_replay_under_an_idempotency_key(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    headers = {**auth, "Idempotency-Key": "static-1"}
    first = client.post(QUERY, headers=headers, **parts())
    again = client.post(QUERY, headers=headers, **parts())  # another boundary, same parts
    assert first.status_code == again.status_code == 202, again.get_json()
    assert first.get_json()["id"] == again.get_json()["id"]
    other = client.post(QUERY, headers=headers, **parts(static=STATIC.replace("north", "west")))
    assert_problem(other, 422)


@pytest.mark.parametrize(("query", "body", "loc", "words"), [
    (QUERY, parts(static="unique_id,region\na,north\n"), ["body", "static"],
     "has no row for series 'b'"),
    (QUERY, parts(static=STATIC + "c,east,10\n"), ["body", "static", "line 4", "unique_id"],
     "no series is 'c'"),
    (QUERY, parts(static=STATIC + "a,east,10\n"), ["body", "static", "line 4", "unique_id"],
     "series 'a' already has a row (line 2)"),
    (QUERY, parts(static="unique_id,region,size\na,,120\nb,south,80.5\n"),
     ["body", "static", "line 2", "region"], "must not be empty"),
    (QUERY, parts(static="unique_id,promo\na,1\nb,2\n"), ["body", "static", "header", "promo"],
     "is also a covariate column of the long CSV"),
    (QUERY, parts(static="unique_id,y\na,1\nb,2\n"), ["body", "static", "header", "y"],
     "the long CSV's columns"),
    (QUERY, parts(static="region,size\nnorth,1\n"), ["body", "static", "header", "unique_id"],
     "column required"),
    (QUERY, parts(static="unique_id\na\nb\n"), ["body", "static", "header"],
     "has no covariate column"),
    (QUERY, parts(static="unique_id,region\na,north,1\nb,south\n"),
     ["body", "static", "line 2"], "has 3 fields; the header has 2"),
    (QUERY, parts(series=long_csv().replace(",0\n", ",x\n", 1)),
     ["body", "series", "line 3", "promo"], "finite number"),
    (QUERY, parts(notes="hello"), ["body", "notes"], "unknown part"),
    (QUERY, {"data": {"static": (io.BytesIO(STATIC.encode()), "s.csv")},
             "content_type": "multipart/form-data"}, ["body", "series"], "part required"),
    (QUERY.replace("&covariates=promo:future", ""), parts(), ["body", "series", "header", "promo"],
     "unknown column: a covariate?"),
])
def test_a_bad_static_table_is_refused_naming_part_line_and_column(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, query: str, body: dict[str, Any], loc: list, words: str) -> None:
    errors = refused(client, auth, sessions, settings, None, path=query, **body)
    assert [e["loc"] for e in errors] == [loc], errors
    assert words in errors[0]["msg"]


def test_multipart_is_for_jobs_and_forecasts_only(client: FlaskClient,
                                                  auth: dict[str, str]) -> None:
    response = client.post("/v1/sweeps", headers=auth, **parts())
    assert_problem(response, 415)


# --- forecasts of sent series, their static covariates in a table ---

def test_a_forecast_of_sent_series_reads_their_static_table(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    submitted = client.post(QUERY, headers=auth, **parts())
    assert submitted.status_code == 202, submitted.get_json()
    job_id = submitted.get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    with sessions() as session:
        assert session.get(Job, job_id).status == "succeeded"
    planned = json.dumps({"promo": {"a": [1, 0, 0], "b": [0, 1, 0]}})
    query = urlencode({"job_id": job_id, "covariates": "promo:future",
                       "future_covariates": planned})
    by_table = client.post(f"/v1/forecasts?{query}", headers={**auth, "Accept": "text/csv"},
                           **parts())
    assert by_table.status_code == 200, by_table.get_data(as_text=True)
    sent = client.post("/v1/forecasts", headers=auth, json={
        "job_id": job_id, "future_covariates": json.loads(planned)})
    assert sent.status_code == 200, sent.get_json()  # the job's own series: the same ones
    rows = list(csv.reader(io.StringIO(by_table.get_data(as_text=True))))
    forecasts = sent.get_json()["forecasts"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(f["id"], d) for f in forecasts for d in f["ds"]]
    np.testing.assert_allclose([float(r[3]) for r in rows[1:]],
                               [m for f in forecasts for m in f["mean"]])
    unmatched = client.post(f"/v1/forecasts?{query}", headers=auth,
                            **parts(static=STATIC + "c,east,10\n"))
    assert assert_problem(unmatched, 422)["errors"] == [{
        "loc": ["body", "static", "line 4", "unique_id"],
        "msg": "no series is 'c': every row must be one of the long CSV's series"}]
