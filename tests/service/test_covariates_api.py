"""Covariates on POST /v1/jobs: what is stored for a valid request, and each refusal (422 naming
the field, nothing stored, no message sent)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store import dataset_rows
from service.store.tables import Dataset, Job

from .conftest import SERIES, SPEC, broker_messages, row_count
from .test_app import assert_problem

KINDS = {"store_type": "static", "temp": "historical", "promo": "future"}


def with_covariates() -> dict[str, Any]:
    """A valid job request: two series, each with a category, a temperature with a gap and a
    promotion flag."""
    series = []
    for k, item in enumerate(SERIES):
        n = len(item["values"])
        temp: list[float | None] = [round(15.0 + (i % 7) + k, 1) for i in range(n)]
        temp[3] = None
        series.append({**item, "covariates": {"store_type": ["big", "small"][k], "temp": temp,
                                              "promo": [int(i % 5 == 0) for i in range(n)]}})
    return {"series": series, "covariates": dict(KINDS), **SPEC}


def refused(client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
            settings: Settings, body: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Submit `body`; assert a 422 that stored nothing and sent nothing; its errors."""
    response = client.post("/v1/jobs", json=body, headers=auth, **kwargs)
    problem = assert_problem(response, 422)
    assert row_count(sessions, Job) == 0 and row_count(sessions, Dataset) == 0
    assert broker_messages(settings) == []
    return problem["errors"]


def test_a_job_keeps_its_covariates_and_gives_them_in_the_engines_form(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    body = with_covariates()
    response = client.post("/v1/jobs", json=body, headers=auth)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    with sessions() as session:
        assert session.get(Job, job_id).covariates == KINDS
        stored = dataset_rows.series_for_job(session, job_id)
        library = dataset_rows.covariates_for_job(session, job_id)
    assert [s["covariates"] for s in stored] == [s["covariates"] for s in body["series"]]
    assert list(library) == list(KINDS)
    assert library["store_type"] == {"kind": "static",
                                     "values": {"store-1": "big", "store-2": "small"}}
    assert library["temp"]["kind"] == "historical"
    assert library["temp"]["values"]["store-1"][3] is None
    assert library["promo"]["values"]["store-2"] == body["series"][1]["covariates"]["promo"]


def test_a_job_without_covariates_has_none(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    response = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    assert response.status_code == 202
    with sessions() as session:
        assert dataset_rows.covariates_for_job(session, response.get_json()["id"]) is None


def _undeclared(body: dict[str, Any]) -> None:
    body["series"][1]["covariates"]["price"] = 3.5


def _absent(body: dict[str, Any]) -> None:
    del body["series"][1]["covariates"]["temp"]


def _too_short(body: dict[str, Any]) -> None:
    body["series"][1]["covariates"]["promo"].pop()


def _not_numeric(body: dict[str, Any]) -> None:
    body["series"][0]["covariates"]["temp"][5] = "warm"


def _mixed_static(body: dict[str, Any]) -> None:
    body["series"][1]["covariates"]["store_type"] = 2


def _bad_kind(body: dict[str, Any]) -> None:
    body["covariates"]["promo"] = "planned"


def _bad_name(body: dict[str, Any]) -> None:
    body["covariates"]["promo day"] = "future"


def _no_observed_value(body: dict[str, Any]) -> None:
    temp = body["series"][0]["covariates"]["temp"]
    body["series"][0]["covariates"]["temp"] = [None] * len(temp)


def _static_list(body: dict[str, Any]) -> None:
    body["series"][0]["covariates"]["store_type"] = ["big"]


@pytest.mark.parametrize(("change", "loc", "words"), [
    (_undeclared, ["series", 1, "covariates", "price"], "not declared"),
    (_absent, ["series", 1, "covariates", "temp"], "missing"),
    (_too_short, ["series", 1, "covariates", "promo"], "has 49 values; the series has 50"),
    (_not_numeric, ["series", 0, "covariates", "temp"], "numbers or null"),
    (_mixed_static, ["series", 1, "covariates", "store_type"], "mixes numbers and categories"),
    (_bad_kind, ["covariates", "promo"], "must be one of ['static', 'historical', 'future']"),
    (_bad_name, ["covariates", "promo day"], "a covariate name is"),
    (_no_observed_value, ["series", 0, "covariates", "temp"], "no observed value"),
    (_static_list, ["series", 0, "covariates", "store_type"], "one number, or one category"),
])
def test_a_bad_covariate_is_refused_by_name(client: FlaskClient, auth: dict[str, str],
                                            sessions: sessionmaker[Session], settings: Settings,
                                            change, loc: list, words: str) -> None:
    body = copy.deepcopy(with_covariates())
    change(body)
    errors = refused(client, auth, sessions, settings, body)
    assert [e["loc"] for e in errors] == [loc]
    assert words in errors[0]["msg"]


def test_covariates_on_an_item_need_a_declaration(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    body = with_covariates()
    del body["covariates"]
    errors = refused(client, auth, sessions, settings, body)
    assert {tuple(e["loc"]) for e in errors} == {
        ("series", i, "covariates", name) for i in (0, 1) for name in KINDS}
