"""Covariates on POST /v1/jobs: what is stored for a valid request, and each refusal (422 naming
the field, nothing stored, no message sent)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.settings import Settings
from service.store import dataset_rows
from service.store.db import upgrade
from service.store.tables import Dataset, Job

from .conftest import SERIES, SPEC, SimulatedWorker, broker_messages, row_count, settings_for
from .test_app import assert_problem

KINDS = {"store_type": "static", "temp": "historical", "promo": "future"}
MAX_POINTS = 400  # SERIES hold 110 values: 330 with two dynamic covariates, 440 with three


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    result = settings_for(tmp_path / "data", BPTT_MAX_POINTS=str(MAX_POINTS))
    upgrade(result.database_url)
    return result


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
            settings: Settings, body: dict[str, Any] | None, *, path: str = "/v1/jobs",
            **kwargs: Any) -> list[dict[str, Any]]:
    """Submit `body` (or, with data=..., a CSV); assert a 422 that stored nothing and sent
    nothing; its errors."""
    if body is not None:
        kwargs["json"] = body
    response = client.post(path, headers=auth, **kwargs)
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


def test_the_job_document_shows_the_declared_kinds(client: FlaskClient,
                                                  auth: dict[str, str]) -> None:
    job_id = client.post("/v1/jobs", json=with_covariates(), headers=auth).get_json()["id"]
    shown = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()["covariates"]
    assert list(shown.items()) == list(KINDS.items())
    plain = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth).get_json()
    assert plain["covariates"] is None


def test_the_jobs_series_carry_their_covariates_cut_to_the_tail(
        client: FlaskClient, auth: dict[str, str]) -> None:
    body = with_covariates()
    job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    page = client.get(f"/v1/jobs/{job_id}/series?tail=5", headers=auth).get_json()
    given = body["series"][1]["covariates"]
    assert page["series"][1]["covariates"] == {"store_type": "small", "temp": given["temp"][-5:],
                                               "promo": given["promo"][-5:]}


def test_a_sweeps_trials_keep_the_covariates(client: FlaskClient, auth: dict[str, str],
                                             sessions: sessionmaker[Session]) -> None:
    answer = client.post("/v1/sweeps", json={"job": with_covariates(), "strategy": "grid",
                                             "space": {"model.hidden_size": [4, 6]}},
                         headers=auth)
    assert answer.status_code == 202, answer.get_json()
    for trial in answer.get_json()["trials"]:
        with sessions() as session:
            assert dataset_rows.covariates_for_job(session, trial["job_id"])["promo"][
                "kind"] == "future"


def test_a_sweep_with_a_bad_covariate_is_refused_naming_it_under_job(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job = with_covariates()
    job["series"][0]["covariates"]["temp"].append(20.0)
    answer = client.post("/v1/sweeps", json={"job": job, "space": {"model.hidden_size": [4, 6]}},
                         headers=auth)
    errors = assert_problem(answer, 422)["errors"]
    assert [e["loc"] for e in errors] == [["job", "series", 0, "covariates", "temp"]]
    assert row_count(sessions, Job) == 0 and broker_messages(settings) == []


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


def test_the_limit_on_values_counts_the_dynamic_covariates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    body = with_covariates()
    body["covariates"]["price"] = "historical"
    for item in body["series"]:
        item["covariates"]["price"] = [9.5] * len(item["values"])
    errors = refused(client, auth, sessions, settings, body)
    assert errors == [{"loc": ["series"], "msg": f"at most {MAX_POINTS} values in all, the "
                                                 "dynamic covariates' included (got 440)"}]


def test_the_estimate_holds_the_dynamic_covariates_and_the_wider_network(
        client: FlaskClient, auth: dict[str, str]) -> None:
    plain = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    covariates = client.post("/v1/jobs", json=with_covariates(), headers=auth)
    assert plain.status_code == covariates.status_code == 202
    plain, covariates = plain.get_json()["estimate"], covariates.get_json()["estimate"]
    assert covariates["peak_bytes"] > plain["peak_bytes"]
    # the network reads the covariates' columns and its head the static and future ones
    # (bptt.input_widths): more FLOPs for the same series and spec
    assert covariates["flops"] > plain["flops"]


@pytest.fixture(scope="module")
def covariate_weights() -> bytes:
    """A real tiny model trained by bptt.fit on with_covariates()'s series and covariates."""
    body = with_covariates()
    return bptt.fit(body["series"], spec=bptt.TrainingSpec.from_dict(SPEC),
                    covariates=dataset_rows.library_covariates(KINDS, body["series"])
                    ).model.to_bytes()


def succeeded(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
              body: dict[str, Any], weights: bytes) -> str:
    """A job of `body` that succeeded with the model `weights`."""
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    job_id = answer.get_json()["id"]
    worker.start(job_id)
    worker.finish(job_id, weights=weights)
    return job_id


def test_a_warm_start_keeps_the_models_covariates_in_its_order(
        client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
        sessions: sessionmaker[Session], covariate_weights: bytes) -> None:
    parent = succeeded(client, auth, worker, with_covariates(), covariate_weights)
    body = {**with_covariates(), "warm_start": parent,
            "covariates": dict(reversed(KINDS.items()))}
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    with sessions() as session:
        assert list(session.get(Job, answer.get_json()["id"]).covariates.items()) == list(
            KINDS.items())


def _without(body: dict[str, Any]) -> None:
    del body["covariates"]
    for item in body["series"]:
        del item["covariates"]


def _another_kind(body: dict[str, Any]) -> None:
    body["covariates"]["temp"] = "future"


def _numbers_for_the_category(body: dict[str, Any]) -> None:
    for i, item in enumerate(body["series"]):
        item["covariates"]["store_type"] = float(i)


@pytest.mark.parametrize(("change", "loc", "words"), [
    (_without, ["covariates"], "must be the covariates of job"),
    (_another_kind, ["covariates"], "'temp': 'historical'"),
    (_numbers_for_the_category, ["covariates", "store_type"],
     "took it as a category (a string)"),
])
def test_a_warm_start_with_other_covariates_is_refused(
        client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
        sessions: sessionmaker[Session], covariate_weights: bytes,
        change, loc: list, words: str) -> None:
    parent = succeeded(client, auth, worker, with_covariates(), covariate_weights)
    body = {**copy.deepcopy(with_covariates()), "warm_start": parent}
    change(body)
    answer = client.post("/v1/jobs", json=body, headers=auth)
    errors = assert_problem(answer, 422)["errors"]
    assert [e["loc"] for e in errors] == [loc] and words in errors[0]["msg"]
    assert row_count(sessions, Job) == 1


def test_a_warm_start_takes_categories_the_model_never_met(
        client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
        covariate_weights: bytes) -> None:
    """The engine keeps the model's categories; a new one is its unknown category."""
    parent = succeeded(client, auth, worker, with_covariates(), covariate_weights)
    body = {**copy.deepcopy(with_covariates()), "warm_start": parent}
    body["series"][1]["covariates"]["store_type"] = "kiosk"
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()


def test_a_model_without_covariates_is_not_continued_with_some(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        trained_job: str) -> None:
    answer = client.post("/v1/jobs", json={**with_covariates(), "warm_start": trained_job},
                         headers=auth)
    errors = assert_problem(answer, 422)["errors"]
    assert errors == [{"loc": ["covariates"], "msg": f"must be the covariates of job "
                       f"{trained_job}'s model, which this one continues: none"}]
    assert row_count(sessions, Job) == 1


# --- inline CSV: extra columns are the covariates `covariates=name:kind,...` declares ---

CSV_QUERY = "/v1/jobs?horizon=3&training.epochs=2&covariates=promo:future,temp:historical" \
            "&covariates=store_type:static"


def csv_rows(*, store_b: str = "small", temp_b_5: str = "17.5") -> str:
    """Two monthly series over two years with a promotion flag, a temperature (store a's 7th
    month empty, its 4th month's row missing: a gap in every column) and a store type."""
    lines = ["unique_id,ds,y,promo,temp,store_type"]
    for month in range(1, 25):
        ds = f"{2022 + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}-01"
        if month != 4:
            temp_a = "" if month == 7 else str(12.5 + month)
            lines.append(f"a,{ds},{10 + month % 3},{month % 2},{temp_a},big")
        temp_b = temp_b_5 if month == 5 else str(11.0 + month)
        lines.append(f"b,{ds},{20 + month % 4},{(month + 1) % 2},{temp_b},{store_b}")
    return "\n".join(lines) + "\n"


def test_a_csv_jobs_extra_columns_are_its_declared_covariates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    response = client.post(CSV_QUERY, data=csv_rows(), content_type="text/csv", headers=auth)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["covariates"] == {"promo": "future", "temp": "historical",
                                                 "store_type": "static"}
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, response.get_json()["id"])
    assert library["store_type"]["values"] == {"a": "big", "b": "small"}
    promo_a, temp_a = library["promo"]["values"]["a"], library["temp"]["values"]["a"]
    assert len(promo_a) == len(temp_a) == 24  # on the monthly grid
    assert promo_a[3] is None and temp_a[3] is None  # the missing month: gaps
    assert temp_a[6] is None and temp_a[7] == 20.5  # an empty cell: a gap
    assert library["promo"]["values"]["b"][:3] == [0.0, 1.0, 0.0]


def test_a_static_csv_column_of_numbers_is_a_number(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]) -> None:
    text = csv_rows(store_b="2").replace(",big\n", ",1\n")
    response = client.post(CSV_QUERY, data=text, content_type="text/csv", headers=auth)
    assert response.status_code == 202, response.get_json()
    with sessions() as session:
        library = dataset_rows.covariates_for_job(session, response.get_json()["id"])
    assert library["store_type"]["values"] == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize(("query", "text", "loc", "words"), [
    ("/v1/jobs?horizon=3&covariates=promo:future,temp:historical", csv_rows(),
     ["body", "header", "store_type"], "declare it with covariates=name:kind"),
    ("/v1/jobs?horizon=3&covariates=temp:historical,store_type:static", csv_rows(),
     ["body", "header", "promo"], "declare it with covariates=name:kind"),
    (CSV_QUERY, csv_rows().replace("b,2022-03-01,23,0,14.0,small", "b,2022-03-01,23,0,14.0,big"),
     ["body", "store_type"], "series 'b' has 2 values ('big', 'small'): a static covariate "
                             "holds one value per series"),
    (CSV_QUERY, csv_rows(temp_b_5="warm"), ["body", "line 10", "temp"], "finite number"),
    (CSV_QUERY + ",price:historical", csv_rows(), ["body", "header", "price"], "column required"),
    (CSV_QUERY.replace("promo:future", "promo:planned"), csv_rows(),
     ["query", "covariates", "promo"], "must be one of"),
    (CSV_QUERY.replace("promo:future", "promo"), csv_rows(), ["query", "covariates"],
     "is not name:kind"),
])
def test_a_bad_csv_covariate_is_refused_by_name(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, query: str, text: str, loc: list, words: str) -> None:
    errors = refused(client, auth, sessions, settings, None, data=text,
                     content_type="text/csv", path=query)
    assert [e["loc"] for e in errors] == [loc], errors
    assert words in errors[0]["msg"]


# --- uploaded datasets: a job uses the dataset's own columns (test_dataset_covariates) ---

def test_covariates_with_a_dataset_id_must_be_its_columns(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    text = "unique_id,ds,y\n" + "".join(f"a,{i},{i % 5}\n" for i in range(30))
    upload = client.post("/v1/datasets", data=text, content_type="text/csv", headers=auth)
    assert upload.status_code == 201, upload.get_json()
    body = {"dataset_id": upload.get_json()["id"], "covariates": {"promo": "future"}, **SPEC}
    errors = refused(client, auth, sessions, settings, body)
    assert errors == [{"loc": ["covariates", "promo"],
                       "msg": "the dataset has no covariate column 'promo' (its columns: none; its "
                       "static table's: none)"}]
