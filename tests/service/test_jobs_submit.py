"""POST /v1/jobs: acceptance, CSV, Idempotency-Key, quota, and refusals that leave nothing."""

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store.codec import decompress_json
from service.store.db import upgrade
from service.store.queue import TRAIN_TASK
from service.store.tables import Dataset, Job, new_id, utcnow

from .conftest import SERIES, SPEC, SimulatedWorker, broker_messages, row_count, settings_for
from .test_app import assert_problem

LIMITS = {
    "BPTT_MAX_SERIES": "3",
    "BPTT_MAX_POINTS": "400",
    "BPTT_MAX_HORIZON": "24",
    "BPTT_MAX_HIDDEN_SIZE": "64",
    "BPTT_MAX_EPOCHS": "100",
    "BPTT_MAX_BODY_BYTES": "20000",
    "BPTT_MAX_QUEUED_JOBS_PER_TENANT": "3",
}
BODY = {"series": SERIES, **SPEC}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Small limits, so that each one can be crossed by a small request."""
    result = settings_for(tmp_path / "data", **LIMITS)
    upgrade(result.database_url)
    return result


def assert_nothing_stored(sessions: sessionmaker[Session], settings: Settings) -> None:
    """No job, no dataset, no message: the request left no trace."""
    assert row_count(sessions, Job) == 0
    assert row_count(sessions, Dataset) == 0
    assert broker_messages(settings) == []


def test_submit_stores_job_and_dataset_and_wakes_a_worker(
    client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
    settings: Settings
) -> None:
    response = client.post("/v1/jobs", json=BODY, headers=auth)
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{body['id']}"
    assert body["status"] == "queued"
    # queued: the time left is the whole estimate, at the default speed (no worker reported)
    estimate = body["estimate"]
    assert body["progress"].pop("remaining_seconds") == estimate["seconds"] > 0
    # 2 epochs of 3 batches: 69 training windows of 12 steps, 32 to a batch
    assert estimate["speed"]["measurements"] == 0 and estimate["updates"] == 2 * 3
    assert 0 < estimate["peak_bytes"] < 2**30 and estimate["flops"] > 0
    assert body["usage"] is None
    assert body["progress"] == {  # 2 epochs x 1 member
        "epochs_done": 0, "epochs_total": 2, "member": 1, "members": 1, "member_epoch": 0,
        "member_epochs": 2, "finished_members": [], "stage": None}
    assert body["dataset"] == {"num_series": 2, "num_points": 110, "dataset_id": None}
    requested = bptt.TrainingSpec.from_dict(SPEC)
    assert body["requested_spec"] == requested.to_dict()
    # what the job trains with: every open choice made from the series' lengths, and the
    # calendar from their dates (they have none: off)
    assert body["spec"] == {**bptt.resolve_spec([60, 50], requested).to_dict(), "calendar": "off"}

    with sessions() as session:
        job = session.get(Job, body["id"])
        assert job is not None and job.status == "queued" and job.enqueued_at is not None
        assert job.spec == requested.to_dict()
        assert job.resolved_spec == body["spec"]
        dataset = session.query(Dataset).filter_by(job_id=job.id).one()
        assert decompress_json(dataset.series_zlib) == SERIES
        assert (dataset.num_series, dataset.num_points) == (2, 110)
    assert broker_messages(settings) == [(TRAIN_TASK, [body["id"]])]

    shown = client.get(response.headers["Location"], headers=auth)
    assert shown.status_code == 200 and shown.get_json()["id"] == body["id"]


def test_submit_accepts_long_csv_with_the_spec_in_the_query(
    client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    rows = [f"b,2024-{m:02d},{m * 1.5}" for m in range(12, 0, -1)]  # newest first: sorted later
    rows += [f"a,{day},{'' if day == 3 else day}" for day in range(1, 21)]  # day 3 is a gap
    text = "unique_id,ds,y\n" + "\n".join(rows) + "\n"
    response = client.post(
        "/v1/jobs?horizon=2&season_length=4&quantiles=0.1,0.9&model.cell=gru"
        "&training.epochs=3&training.clip.max_norm=null",
        data=text, content_type="text/csv", headers=auth,
    )
    assert response.status_code == 202, response.get_json()
    spec = response.get_json()["spec"]
    assert (spec["horizon"], spec["season_length"], spec["quantiles"]) == (2, 4, [0.1, 0.9])
    assert spec["model"]["cell"] == "gru" and spec["training"]["epochs"] == 3
    assert spec["training"]["clip"]["max_norm"] is None
    with sessions() as session:
        series = decompress_json(session.query(Dataset).one().series_zlib)
    assert [s["id"] for s in series] == ["b", "a"]  # first-seen order
    assert series[0]["values"] == [m * 1.5 for m in range(1, 13)]
    assert series[0]["start"] == "2024-01-01"  # the first ds, as a date
    assert series[1]["values"][2] is None and series[1]["values"][:2] == [1.0, 2.0]


@pytest.mark.parametrize(("quantiles", "expected"), [
    ("absent", [0.1, 0.5, 0.9]),  # intervals by default, as in the library and the dashboard
    ([], []),  # explicitly none: the mean only
    (None, None),  # null: the mean only too (what jobs before the default stored)
    ([0.05, 0.95], [0.05, 0.95]),
])
def test_prediction_intervals_are_on_unless_the_request_says_otherwise(
        client: FlaskClient, auth: dict[str, str], quantiles: Any, expected: Any) -> None:
    body = {k: v for k, v in BODY.items() if k != "quantiles"}
    if quantiles != "absent":
        body["quantiles"] = quantiles
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["spec"]["quantiles"] == job["requested_spec"]["quantiles"] == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("", [0.1, 0.5, 0.9]),
    ("&quantiles=[]", []),  # what the dashboard's form sends when its field is emptied
    ("&quantiles=[0.5]", [0.5]),  # and with one level (the CLI sends lists the same way)
    ("&quantiles=0.2,0.8", [0.2, 0.8]),
    ("&quantiles=0.5", [0.5]),  # one value of a comma-separated array, as documented
    ("&quantiles=null", None),
])
def test_csv_requests_take_the_same_quantile_default(
        client: FlaskClient, auth: dict[str, str], query: str, expected: Any) -> None:
    rows = [f"a,{day},{day % 7}" for day in range(1, 41)]
    answer = client.post(f"/v1/jobs?horizon=2{query}", data="unique_id,ds,y\n" + "\n".join(rows),
                         content_type="text/csv", headers=auth)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["spec"]["quantiles"] == expected


def test_a_job_asked_for_no_quantiles_forecasts_the_mean_only(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    from workers.attempts import run_training

    jobs = {}
    for name, extra in (("default", {}), ("none", {"quantiles": []})):
        body = {"series": SERIES, "horizon": 3, "training": {"epochs": 2, "ensemble": 1},
                **extra}
        jobs[name] = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
        assert run_training(sessions, settings, jobs[name], "test:1") == "succeeded"
    answers = {name: client.post("/v1/forecasts", json={"job_id": job_id}, headers=auth)
               for name, job_id in jobs.items()}
    assert set(answers["default"].get_json()["forecasts"][0]["quantiles"]) == {
        "0.1", "0.5", "0.9"}
    assert answers["none"].get_json()["forecasts"][0]["quantiles"] == {}


def test_idempotency_key_replays_the_first_answer(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
    sessions: sessionmaker[Session], settings: Settings, worker: SimulatedWorker
) -> None:
    headers = {**auth, "Idempotency-Key": "order-42"}
    first = client.post("/v1/jobs", json=BODY, headers=headers)
    assert first.status_code == 202
    job_id = first.get_json()["id"]
    worker.start(job_id)  # the job moves on; the replay still answers what was first answered
    worker.epoch(job_id, 1)

    again = client.post("/v1/jobs", json=BODY, headers=headers)
    assert (again.status_code, again.data) == (202, first.data)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert row_count(sessions, Job) == 1
    assert broker_messages(settings) == [(TRAIN_TASK, [job_id])]  # no second wake-up

    other_body = client.post("/v1/jobs", json={**BODY, "horizon": 4}, headers=headers)
    problem = assert_problem(other_body, 422)
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert row_count(sessions, Job) == 1

    # Keys are scoped per tenant: the same key is a new request for another tenant.
    theirs = client.post("/v1/jobs", json=BODY, headers={**other_auth,
                                                        "Idempotency-Key": "order-42"})
    assert theirs.status_code == 202 and theirs.get_json()["id"] != job_id
    assert row_count(sessions, Job) == 2


def test_a_refused_request_leaves_its_key_free(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    headers = {**auth, "Idempotency-Key": "retry-me"}
    assert client.post("/v1/jobs", json={**BODY, "horizon": 0}, headers=headers
                       ).status_code == 422
    assert client.post("/v1/jobs", json=BODY, headers=headers).status_code == 202


def test_csv_replays_depend_on_the_query_too(client: FlaskClient, auth: dict[str, str]) -> None:
    text = "unique_id,ds,y\n" + "".join(f"a,{i},{i % 7}\n" for i in range(30))
    headers = {**auth, "Idempotency-Key": "csv-1"}
    first = client.post("/v1/jobs?horizon=3", data=text, content_type="text/csv",
                        headers=headers)
    assert first.status_code == 202
    replay = client.post("/v1/jobs?horizon=3", data=text, content_type="text/csv",
                         headers=headers)
    assert replay.data == first.data
    other = client.post("/v1/jobs?horizon=4", data=text, content_type="text/csv",
                        headers=headers)
    assert_problem(other, 422)


def insert_keyed_job(session: Session, tenant_id: int, key: str) -> None:
    """Another request's job holding `key`, flushed but not committed (still in flight)."""
    session.add(Job(id=new_id(), tenant_id=tenant_id, spec={"horizon": 3}, status="queued",
                    enqueued_at=utcnow(), idempotency_key=key, request_hash="0" * 64))
    session.flush()


def tenant_of(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        from service.store.repository import tenant_by_name

        tenant = tenant_by_name(session, name=name)
        assert tenant is not None
        return tenant.id


def test_a_concurrent_request_with_the_key_waits_for_the_first_on_sqlite(
    client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    tenant_id = tenant_of(sessions, "acme")
    holder = sessions()
    insert_keyed_job(holder, tenant_id, "race")  # holds SQLite's write lock

    def commit_soon() -> None:
        time.sleep(0.5)
        holder.commit()  # the first request completes while the second waits for the lock

    thread = threading.Thread(target=commit_soon)
    thread.start()
    try:
        response = client.post("/v1/jobs", json=BODY, headers={**auth, "Idempotency-Key": "race"})
    finally:
        thread.join()
        holder.close()
    # The winner committed another body under the key: the loser learns it, and stores nothing.
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert row_count(sessions, Job) == 1 and row_count(sessions, Dataset) == 0


def test_a_request_whose_key_is_still_in_flight_gets_409_on_postgres(pg_app: Flask) -> None:
    from service.store import repository

    sessions = services(pg_app).sessions
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="acme")
        token = repository.create_token(session, tenant=tenant).token
        tenant_id = tenant.id
    client = pg_app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "slow"}
    holder = sessions()
    insert_keyed_job(holder, tenant_id, "slow")  # in flight: not committed
    try:
        started = time.monotonic()
        response = client.post("/v1/jobs", json=BODY, headers=headers)
        waited = time.monotonic() - started
    finally:
        holder.rollback()  # the first request fails after all
        holder.close()
    problem = assert_problem(response, 409)
    assert "in flight" in problem["detail"] and response.headers["Retry-After"] == "1"
    assert 1.5 < waited < 10
    # Its key is free again, and the retry goes through.
    retried = client.post("/v1/jobs", json=BODY, headers=headers)
    assert retried.status_code == 202
    assert client.post("/v1/jobs", json=BODY, headers=headers).data == retried.data
    with sessions() as session:
        assert session.query(Job).count() == 1 and session.query(Dataset).count() == 1


def test_over_the_queued_quota_is_429(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
    sessions: sessionmaker[Session], worker: SimulatedWorker
) -> None:
    ids = []
    for n in range(3):
        response = client.post("/v1/jobs", json=BODY, headers={**auth, "Idempotency-Key": f"{n}"})
        assert response.status_code == 202
        ids.append(response.get_json()["id"])
    refused = client.post("/v1/jobs", json=BODY, headers=auth)
    problem = assert_problem(refused, 429)
    assert "3" in problem["detail"] and refused.headers["Retry-After"]
    assert row_count(sessions, Job) == 3
    # A replay is not a new job: it is answered even at the quota.
    assert client.post("/v1/jobs", json=BODY, headers={**auth, "Idempotency-Key": "0"}
                       ).status_code == 202
    # The quota is per tenant, and frees up as jobs start.
    assert client.post("/v1/jobs", json=BODY, headers=other_auth).status_code == 202
    worker.start(ids[0])
    assert client.post("/v1/jobs", json=BODY, headers=auth).status_code == 202


def series(*lengths: int) -> list[dict[str, Any]]:
    """Series of the given lengths, ids s0, s1, ..."""
    return [{"id": f"s{i}", "values": [float(j % 5) for j in range(n)]}
            for i, n in enumerate(lengths)]


def job(**fields: Any) -> dict[str, Any]:
    """A valid small job request with `fields` replaced (None removes a field)."""
    body = {"series": series(40, 30), "horizon": 3, **fields}
    return {k: v for k, v in body.items() if v is not None}


# (json body or raw bytes, expected status, the error location it must name)
JSON_CASES: dict[str, tuple[Any, int, list[Any] | None]] = {
    "no series": (job(series=None), 422, ["series"]),
    "empty series list": (job(series=[]), 422, ["series"]),
    "series not a list": (job(series={"a": [1, 2]}), 422, ["series"]),
    "series without values": (job(series=[{"id": "a"}]), 422, ["series", 0, "values"]),
    "series without id": (job(series=[{"values": [1.0] * 30}]), 422, ["series", 0, "id"]),
    "empty values": (job(series=[{"id": "a", "values": []}]), 422, ["series", 0, "values"]),
    "number as string": (job(series=[{"id": "a", "values": [1, "2.5", 3]}]), 422,
                         ["series", 0, "values", 1]),
    "NaN string": (job(series=[{"id": "a", "values": [1, "NaN", 3]}]), 422,
                   ["series", 0, "values", 1]),
    "inf string": (job(series=[{"id": "a", "values": [1, "inf", 3]}]), 422,
                   ["series", 0, "values", 1]),
    "boolean value": (job(series=[{"id": "a", "values": [1, True, 3]}]), 422,
                      ["series", 0, "values", 1]),
    "NaN literal": (b'{"series": [{"id": "a", "values": [1, NaN, 3]}], "horizon": 3}', 422,
                    ["series", 0, "values", 1]),
    "Infinity literal": (b'{"series": [{"id": "a", "values": [1, -Infinity]}], "horizon": 3}',
                         422, ["series", 0, "values", 1]),
    "no observed value": (job(series=[{"id": "a", "values": [None] * 30}]), 422,
                          ["series", 0, "values"]),
    "duplicate ids": (job(series=[{"id": "a", "values": [1.0] * 30}] * 2), 422,
                      ["series", 1, "id"]),
    "unknown series field": (job(series=[{"id": "a", "values": [1.0] * 30, "colour": 1}]), 422,
                             ["series", 0, "colour"]),
    "unknown field": (job(horizont=3), 422, ["horizont"]),
    "unknown nested field": (job(model={"celll": "gru"}), 422, ["model", "celll"]),
    "unknown cell": (job(model={"cell": "transformer"}), 422, ["model", "cell"]),
    "no horizon": (job(horizon=None), 422, ["horizon"]),
    "horizon as string": (job(horizon="3"), 422, ["horizon"]),
    "horizon zero": (job(horizon=0), 422, ["horizon"]),
    "horizon over the limit": (job(horizon=25, series=series(60)), 422, ["horizon"]),
    "hidden size over the limit": (job(model={"hidden_size": 65}), 422, ["model", "hidden_size"]),
    "epochs over the limit": (job(training={"epochs": 101}), 422, ["training", "epochs"]),
    "too many layers": (job(model={"num_layers": 5}), 422, ["model", "num_layers"]),
    "too many series": (job(series=series(30, 30, 30, 30)), 422, ["series"]),
    "too many points": (job(series=series(150, 150, 150)), 422, ["series"]),
    "series too short": (job(series=series(40, 3)), 422, ["series", 1, "values"]),
    "shorter than the given window": (job(window={"input_size": 38}), 422,
                                      ["series", 0, "values"]),
    "body not an object": ([1, 2, 3], 422, ["body"]),
    "malformed JSON": (b'{"series": [', 400, None),
    "body over the limit": (job(series=[{"id": "a", "values": [1.5] * 4000}]), 413, None),
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_bad_json_requests_are_refused_naming_the_field_and_store_nothing(
    case: str, client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
    settings: Settings
) -> None:
    body, status, loc = JSON_CASES[case]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v1/jobs", data=data, content_type="application/json",
                           headers={**auth, "Idempotency-Key": "k"})
    problem = assert_problem(response, status)
    if loc is not None:
        assert loc in [error["loc"] for error in problem["errors"]], problem
        assert all(set(error) == {"loc", "msg"} and error["msg"] for error in problem["errors"])
    assert_nothing_stored(sessions, settings)


CSV_OK = "unique_id,ds,y\n" + "".join(f"a,{i},{i % 5}\n" for i in range(30))
CSV_CASES: dict[str, tuple[str, str, int, list[Any]]] = {
    "missing column": ("?horizon=3", "unique_id,ds\na,1\n", 422, ["body", "header", "y"]),
    "unknown column": ("?horizon=3", "unique_id,ds,y,price\na,1,2,3\n", 422,
                       ["body", "header", "price"]),
    "not a number": ("?horizon=3", CSV_OK + "a,30,abc\n", 422, ["body", "line 32", "y"]),
    "NaN text": ("?horizon=3", CSV_OK + "a,30,NaN\n", 422, ["body", "line 32", "y"]),
    "inf text": ("?horizon=3", CSV_OK + "a,30,inf\n", 422, ["body", "line 32", "y"]),
    "bad ds": ("?horizon=3", CSV_OK + "a,yesterday,1\n", 422, ["body", "line 32", "ds"]),
    "repeated ds": ("?horizon=3", CSV_OK + "a,29,1\n", 422, ["body", "line 32", "ds"]),
    "ragged row": ("?horizon=3", CSV_OK + "a,30\n", 422, ["body", "line 32"]),
    "header only": ("?horizon=3", "unique_id,ds,y\n", 422, ["body"]),
    "no horizon": ("", CSV_OK, 422, ["query", "horizon"]),
    "unknown parameter": ("?horizon=3&horizn=4", CSV_OK, 422, ["query", "horizn"]),
    "series in the query": ("?horizon=3&series=1", CSV_OK, 422, ["query", "series"]),
    "unknown nested parameter": ("?horizon=3&model.size=4", CSV_OK, 422,
                                 ["query", "model", "size"]),
    "bad parameter value": ("?horizon=three", CSV_OK, 422, ["query", "horizon"]),
    "epochs over the limit": ("?horizon=3&training.epochs=500", CSV_OK, 422,
                              ["query", "training", "epochs"]),
    "series too short": ("?horizon=3&window.input_size=28", CSV_OK, 422,
                         ["series", 0, "values"]),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_bad_csv_requests_are_refused_naming_the_field_and_store_nothing(
    case: str, client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
    settings: Settings
) -> None:
    query, text, status, loc = CSV_CASES[case]
    response = client.post(f"/v1/jobs{query}", data=text, content_type="text/csv", headers=auth)
    problem = assert_problem(response, status)
    assert loc in [error["loc"] for error in problem["errors"]], problem
    assert_nothing_stored(sessions, settings)


@pytest.mark.parametrize(
    ("content_type", "headers", "query", "status", "loc"),
    [
        ("text/plain", {}, "", 415, None),
        ("application/x-www-form-urlencoded", {}, "", 415, None),
        ("application/json", {"Idempotency-Key": "k" * 256}, "", 422,
         ["header", "Idempotency-Key"]),
        ("application/json", {}, "?horizon=3", 422, ["query", "horizon"]),
    ],
)
def test_other_refusals_store_nothing(
    client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
    settings: Settings, content_type: str, headers: dict[str, str], query: str, status: int,
    loc: list[Any] | None
) -> None:
    response = client.post(f"/v1/jobs{query}", data=json.dumps(BODY), content_type=content_type,
                           headers={**auth, **headers})
    problem = assert_problem(response, status)
    if loc is not None:
        assert problem["errors"][0]["loc"] == loc
    assert_nothing_stored(sessions, settings)


def test_errors_are_collected_not_first_only(client: FlaskClient, auth: dict[str, str]) -> None:
    body = job(series=[{"id": "a", "values": [1, "x"]}], horizon="3", model={"cell": "tcn"})
    problem = assert_problem(client.post("/v1/jobs", json=body, headers=auth), 422)
    locs = [error["loc"] for error in problem["errors"]]
    assert ["series", 0, "values", 1] in locs and ["horizon"] in locs
    assert "(and " in problem["detail"]


def test_a_dead_broker_does_not_fail_the_request(
    tmp_path: Path, make_token: Callable[[str], str]
) -> None:
    # The broker file cannot be opened (its directory does not exist): the job is stored and
    # answered; the reaper re-sends later.
    settings = settings_for(tmp_path / "other",
                            BPTT_BROKER_URL=f"sqla+sqlite:///{tmp_path}/no/such/dir/broker.db")
    upgrade(settings.database_url)
    app = create_app(settings)
    try:
        sessions = services(app).sessions
        with sessions.begin() as session:
            from service.store import repository

            tenant = repository.create_tenant(session, name="solo")
            token = repository.create_token(session, tenant=tenant).token
        response = app.test_client().post("/v1/jobs", json=BODY,
                                          headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 202
        assert row_count(sessions, Job) == 1
    finally:
        services(app).engine.dispose()


def test_a_budget_in_updates_is_planned_and_estimated_in_updates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    training = {"max_steps": 25, "eval_every": 10, "ensemble": 1}
    response = client.post("/v1/jobs", json={**BODY, "training": training}, headers=auth)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    # 25 updates in rounds of 10, 10 and 5: three "epochs"
    assert body["spec"]["training"] | training == body["spec"]["training"]
    assert body["spec"]["training"]["epochs"] == 3
    assert body["estimate"]["updates"] == 25 and body["progress"]["member_epochs"] == 3


@pytest.mark.parametrize(("training", "loc"), [
    ({"epochs": 5, "max_steps": 100}, ["training", "max_steps"]),  # two budgets
    ({"epochs": 5, "eval_every": 10}, ["training", "eval_every"]),  # full passes: no rounds
    ({"max_steps": 5000, "eval_every": 10}, ["training", "eval_every"]),  # 500 rounds > 100
])
def test_a_budget_given_twice_or_in_too_many_rounds_is_refused_naming_the_field(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, training: dict, loc: list) -> None:
    response = client.post("/v1/jobs", json={**BODY, "training": training}, headers=auth)
    problem = assert_problem(response, 422)
    assert loc in [error["loc"] for error in problem["errors"]], problem
    assert_nothing_stored(sessions, settings)
