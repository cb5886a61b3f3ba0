"""Short ids (the first characters of an id, as the CLI and the dashboard print them) wherever an
id is accepted, through the real app: unique within the tenant → that resource; none → 404;
several → 409 naming them. Another tenant's resources are never candidates."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.api.extensions import services
from service.client import describe_problem
from service.settings import Settings
from service.store import repository
from service.store.db import make_engine, upgrade
from service.store.tables import ForecastBatch, Job, Sweep, utcnow
from workers.attempts import run_training

from .conftest import SERIES, SPEC, settings_for
from .test_app import assert_problem

SHORT = 8  # what `bptt status` and the dashboard print
THREE_SERIES = [*SERIES, {"id": "store-3", "values": SERIES[0]["values"][::-1]}]
STORE_1_CSV = "unique_id,ds,y\n" + "".join(f"store-1,{t},{value}\n"
                                           for t, value in enumerate(SERIES[0]["values"]))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Forecast requests of more than 2 series become batches."""
    result = settings_for(tmp_path / "data", BPTT_SYNC_FORECAST_MAX_SERIES="2")
    upgrade(result.database_url)
    return result


@pytest.fixture
def trained(trained_job: str) -> str:
    return trained_job


def twin(sessions: sessionmaker[Session], model: Any, of: str, *, differ_at: int,
         tenant: str | None = None, variant: int = 0) -> str:
    """A copy of row `of` (optionally as another tenant's) whose id is the same up to the hex
    digit at `differ_at`: arranged directly, as only chance gives two random ids a common
    prefix."""
    assert of[differ_at] != "-"
    with sessions.begin() as session:
        row = session.get(model, of)
        values = {c.key: getattr(row, c.key) for c in inspect(model).column_attrs}
        digits = [c for c in "0123456789abcdef" if c != of[differ_at]]
        values["id"] = twin_id = of[:differ_at] + digits[variant] + of[differ_at + 1:]
        if "idempotency_key" in values:
            values["idempotency_key"] = None  # unique per tenant
        if tenant is not None:
            values["tenant_id"] = repository.tenant_by_name(session, name=tenant).id
        session.add(model(**values))
    return twin_id


def test_a_short_id_works_wherever_a_job_id_is_accepted(
        client: FlaskClient, auth: dict[str, str], trained: str) -> None:
    short = trained[:SHORT]
    for form in (short, short.upper(), trained.upper(), trained[:4], trained[:9], trained[:20]):
        answer = client.get(f"/v1/jobs/{form}", headers=auth)
        assert answer.status_code == 200, (form, answer.get_json())
        assert answer.get_json()["id"] == trained  # the answer carries the full id
    for path in ("metrics", "diagnostics", "series"):
        answer = client.get(f"/v1/jobs/{short}/{path}", headers=auth)
        assert answer.status_code == 200 and answer.get_json()["job_id"] == trained, path
    model = client.get(f"/v1/jobs/{short}/model", headers=auth)
    assert model.status_code == 200 and trained in model.headers["Content-Disposition"]

    by_full = client.post("/v1/forecasts", json={"job_id": trained}, headers=auth)
    by_short = client.post("/v1/forecasts", json={"job_id": short}, headers=auth)
    assert by_short.status_code == 200 and by_short.data == by_full.data
    as_csv = client.post(f"/v1/forecasts?job_id={short}", data=STORE_1_CSV,
                         content_type="text/csv", headers=auth)
    assert as_csv.status_code == 200, as_csv.get_json()
    batch = client.post("/v1/forecasts", json={"job_id": short, "series": THREE_SERIES},
                        headers=auth)
    assert batch.status_code == 202 and batch.get_json()["job_id"] == trained
    batch_id = batch.get_json()["id"]
    shown = client.get(f"/v1/forecasts/{batch_id[:SHORT]}", headers=auth)
    assert shown.status_code == 200 and shown.get_json()["id"] == batch_id

    warm = client.post("/v1/jobs", json={"series": SERIES, "horizon": 3, "warm_start": short},
                       headers=auth)
    assert warm.status_code == 202, warm.get_json()
    assert warm.get_json()["warm_start_job_id"] == trained
    queued = warm.get_json()["id"]
    cancelled = client.post(f"/v1/jobs/{queued[:SHORT]}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.get_json()["id"] == queued
    assert client.delete(f"/v1/jobs/{queued[:SHORT]}", headers=auth).status_code == 204
    assert_problem(client.get(f"/v1/jobs/{queued}", headers=auth), 404)


def test_a_short_id_reaches_a_series_state(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    body = {"series": SERIES, "horizon": 3, "model": {"cell": "gru", "hidden_size": 4},
            "training": {"epochs": 2, "ensemble": 1}}
    job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    base = f"/v1/jobs/{job_id[:SHORT]}/series/store-1"
    forecast = client.get(f"{base}/forecast", headers=auth)
    assert forecast.status_code == 200 and forecast.get_json()["job_id"] == job_id
    appended = client.post(f"{base}/observations", json={"values": [21.0, 22.0]}, headers=auth)
    assert appended.status_code == 200 and appended.get_json()["job_id"] == job_id
    assert appended.get_json()["version"] == 2


def test_a_short_id_works_wherever_a_sweep_id_is_accepted(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job = {"series": SERIES, "horizon": 3, "model": {"cell": "gru", "hidden_size": 4},
           "training": {"epochs": 2, "ensemble": 1}}
    sweep = client.post("/v1/sweeps", json={"job": job, "strategy": "grid", "space": {
        "training.learning_rate": [0.001, 0.01]}}, headers=auth).get_json()
    short = sweep["id"][:SHORT]
    shown = client.get(f"/v1/sweeps/{short}", headers=auth)
    assert shown.status_code == 200 and shown.get_json()["id"] == sweep["id"]
    for trial in sweep["trials"]:
        assert run_training(sessions, settings, trial["job_id"], "test:1") == "succeeded"
    best = client.get(f"/v1/sweeps/{short}", headers=auth).get_json()["best_job_id"]
    by_sweep = client.post("/v1/forecasts", json={"sweep_id": short}, headers=auth)
    by_job = client.post("/v1/forecasts", json={"job_id": best}, headers=auth)
    assert by_sweep.status_code == 200 and by_sweep.data == by_job.data
    finished = client.post(f"/v1/sweeps/{short}/cancel", headers=auth)
    assert "already finished" in assert_problem(finished, 409)["detail"]  # found, then refused


def test_a_short_id_of_several_jobs_is_409_naming_them_and_changes_nothing(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        trained: str) -> None:
    other = twin(sessions, Job, trained, differ_at=12)  # the same first 12 characters
    short = trained[:SHORT]
    candidates = sorted([trained, other])

    def ambiguous(answer, loc: list[str]) -> None:
        problem = assert_problem(answer, 409)
        assert problem["candidates"] == candidates
        [error] = problem["errors"]
        assert error["loc"] == loc
        line = describe_problem(answer.status_code, answer.data)  # what the CLI prints
        assert line.startswith("409 Conflict: ") and all(c in line for c in candidates)

    for method, path in (("get", ""), ("get", "/metrics"), ("get", "/diagnostics"),
                         ("get", "/series"), ("get", "/model"), ("get", "/series/store-1/forecast"),
                         ("post", "/cancel"), ("delete", "")):
        ambiguous(client.open(f"/v1/jobs/{short}{path}", method=method, headers=auth),
                  ["path", "job_id"])
    ambiguous(client.post("/v1/forecasts", json={"job_id": short}, headers=auth), ["job_id"])
    ambiguous(client.post(f"/v1/forecasts?job_id={short}", data=STORE_1_CSV,
                          content_type="text/csv", headers=auth), ["query", "job_id"])
    ambiguous(client.post("/v1/jobs", json={"series": SERIES, "horizon": 3, "warm_start": short},
                          headers=auth), ["warm_start"])
    with sessions() as session:
        assert session.get(Job, trained).status == "succeeded"  # the delete did nothing
        assert session.query(Job).count() == 2  # nor did the warm start
    # one more character than they share tells them apart
    for job_id in candidates:
        answer = client.get(f"/v1/jobs/{job_id[:13]}", headers=auth)
        assert answer.status_code == 200 and answer.get_json()["id"] == job_id


def test_short_ids_of_several_sweeps_or_batches_are_409(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        trained: str) -> None:
    sweep = client.post("/v1/sweeps", json={"job": {"series": SERIES, **SPEC}, "strategy": "grid",
                                             "space": {"model.hidden_size": [4]}},
                        headers=auth).get_json()["id"]
    other_sweep = twin(sessions, Sweep, sweep, differ_at=SHORT + 1)
    problem = assert_problem(client.get(f"/v1/sweeps/{sweep[:SHORT]}", headers=auth), 409)
    assert problem["candidates"] == sorted([sweep, other_sweep])
    assert problem["errors"][0]["loc"] == ["path", "sweep_id"]
    problem = assert_problem(client.post("/v1/forecasts", json={"sweep_id": sweep[:SHORT]},
                                         headers=auth), 409)
    assert problem["errors"][0]["loc"] == ["sweep_id"]
    assert problem["candidates"] == sorted([sweep, other_sweep])

    batch = client.post("/v1/forecasts", json={"job_id": trained, "series": THREE_SERIES},
                        headers=auth).get_json()["id"]
    other_batch = twin(sessions, ForecastBatch, batch, differ_at=SHORT + 1)
    problem = assert_problem(client.get(f"/v1/forecasts/{batch[:SHORT]}", headers=auth), 409)
    assert problem["candidates"] == sorted([batch, other_batch])
    assert problem["errors"][0]["loc"] == ["path", "batch_id"]


def test_another_tenants_ids_are_never_candidates(
        client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
        sessions: sessionmaker[Session], trained: str) -> None:
    theirs = twin(sessions, Job, trained, differ_at=SHORT + 1, tenant="intruder")
    short = trained[:SHORT]
    # each tenant's short id finds its own job alone: no 409 that would reveal the other's id
    mine = client.get(f"/v1/jobs/{short}", headers=auth)
    assert mine.status_code == 200 and mine.get_json()["id"] == trained
    assert theirs not in mine.get_data(as_text=True)
    found = client.get(f"/v1/jobs/{short}", headers=other_auth)
    assert found.status_code == 200 and found.get_json()["id"] == theirs
    # to the other tenant, a prefix of acme's job alone is unknown, as its full id is
    for wanted in (trained[:SHORT + 2], trained):
        problem = assert_problem(client.get(f"/v1/jobs/{wanted}", headers=other_auth), 404)
        assert "candidates" not in problem
        assert_problem(client.post("/v1/forecasts", json={"job_id": wanted},
                                   headers=other_auth), 404)


def test_a_short_id_that_begins_no_id_is_404(
        client: FlaskClient, auth: dict[str, str], trained: str) -> None:
    too_short = assert_problem(client.get(f"/v1/jobs/{trained[:3]}", headers=auth), 404)
    assert "at least 4 characters" in too_short["detail"]
    unknown = "0000" if not trained.startswith("0000") else "ffff"
    for wanted in (unknown, trained[:SHORT] + "x", trained[:SHORT] + "0", "gggg", "33%_",
                   trained[:SHORT] + "-" + trained[SHORT + 1:] + "0", trained.replace("-", "")):
        assert_problem(client.get(f"/v1/jobs/{wanted}", headers=auth), 404)
    problem = assert_problem(client.post("/v1/forecasts", json={"job_id": unknown}, headers=auth),
                             404)
    assert problem["errors"] == [{"loc": ["job_id"], "msg": "no such job"}]


def test_an_ambiguity_names_at_most_ten_ids(
        auth: dict[str, str], client: FlaskClient, sessions: sessionmaker[Session],
        trained: str) -> None:
    twins = [twin(sessions, Job, trained, differ_at=12, variant=i) for i in range(11)]
    problem = assert_problem(client.get(f"/v1/jobs/{trained[:SHORT]}", headers=auth), 409)
    assert problem["candidates"] == sorted([trained, *twins])[:repository.MAX_ID_CANDIDATES]
    assert "more than 10 of your jobs" in problem["detail"]
    assert problem["errors"][0]["msg"].count(", ") == 10  # ten ids and "..."


def test_the_api_document_says_where_a_short_id_can_be_ambiguous(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for path, item in document["paths"].items():
        ids = [p for p in item[next(iter(item))].get("parameters", [])
               if p["in"] == "path" and p["name"].endswith("_id") and p["name"] != "series_id"]
        if not path.startswith("/v1/") or not ids:
            continue
        assert "short id" in ids[0]["description"], path
        for method, operation in item.items():
            assert "409" in operation["responses"], (method, path)
    for body_field in ("/v1/forecasts", "/v1/jobs"):  # job_id and sweep_id; warm_start
        assert "409" in document["paths"][body_field]["post"]["responses"]

def test_a_short_id_reads_a_range_of_the_primary_key(
        client: FlaskClient, auth: dict[str, str], app, trained: str) -> None:
    """The lookup is an index range scan on the ids, not a scan of the tenant's jobs."""
    engine = services(app).engine
    statements: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM jobs" in statement and ">=" in statement:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(f"/v1/jobs/{trained[:SHORT]}", headers=auth).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [(statement, parameters)] = statements
    with engine.connect() as connection:
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                          parameters).fetchall()
    assert [row[-1] for row in plan] == [
        "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id>? AND id<?)"]


@pytest.fixture
def icu_postgres_url(postgres_server) -> Any:
    """A migrated database on the real PostgreSQL whose text sorts by ICU's root collation, as
    a production database under a linguistic locale (en_US.UTF-8) does, not byte by byte."""
    name = "short_ids_icu"
    admin = make_engine(postgres_server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 '
                                    "LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C'"))
        url = postgres_server.url(name)
        upgrade(url)
        yield url
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_short_ids_find_exactly_the_ids_they_begin_under_a_linguistic_collation(
        icu_postgres_url: str) -> None:
    # Ids drawn from four digits share prefixes often and run into the f -> carry edge.
    rng = random.Random(7)
    form = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx"
    ids = sorted({"".join(rng.choice("09af") if c == "x" else c for c in form)
                  for _ in range(3000)})
    engine = make_engine(icu_postgres_url)
    sessions = sessionmaker(bind=engine)
    try:
        with sessions.begin() as session:
            mine = repository.create_tenant(session, name="acme").id
            theirs = repository.create_tenant(session, name="intruder").id
            session.add_all(Job(id=job_id, tenant_id=mine if i % 3 else theirs, spec={},
                                status="queued", created_at=utcnow())
                            for i, job_id in enumerate(ids))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 'a-c' < 'ab'")).scalar()  # not bytewise
            connection.execute(text("ANALYZE jobs"))
            connection.commit()
        owned = [job_id for i, job_id in enumerate(ids) if i % 3]
        prefixes = {job_id[:n] for job_id in rng.sample(ids, 200) for n in (4, 5, 8, 9, 10, 14)}
        prefixes |= {"ffff", "0000", "aaaa", "f0f0f0f0-", "9999", "1234", "abcd"}
        with sessions() as session:
            for prefix in sorted(prefixes):
                expected = [job_id for job_id in owned if job_id.startswith(prefix)]
                try:
                    found = repository.job_for_tenant(session, tenant_id=mine, job_id=prefix)
                    got = [] if found is None else [found.id]
                except repository.AmbiguousIdError as exc:
                    got = exc.candidates + (["..."] if exc.more else [])
                want = expected[:repository.MAX_ID_CANDIDATES] + (
                    ["..."] if len(expected) > repository.MAX_ID_CANDIDATES else [])
                assert got == want, prefix
    finally:
        engine.dispose()


def test_on_postgresql_a_short_id_reads_a_range_of_the_primary_key(
        icu_postgres_url: str) -> None:
    engine = make_engine(icu_postgres_url)
    try:
        with Session(engine) as session:
            tenant = repository.create_tenant(session, name="acme").id
            session.add_all(Job(id=str(uuid.uuid4()), tenant_id=tenant, spec={}, status="queued",
                                created_at=utcnow()) for _ in range(2000))
            session.commit()
            session.execute(text("ANALYZE jobs"))
            statements: list[tuple[str, Any]] = []

            def record(conn, cursor, statement, parameters, context, executemany) -> None:
                if "FROM jobs" in statement and ">=" in statement:
                    statements.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", record)
            prefix = session.scalar(select(Job.id).limit(1))[:SHORT]
            assert repository.job_for_tenant(session, tenant_id=tenant, job_id=prefix)
            event.remove(engine, "before_cursor_execute", record)
            [(statement, parameters)] = statements
            plan = "\n".join(session.connection().exec_driver_sql(
                "EXPLAIN " + statement, parameters).scalars())
        assert "Index" in plan and "pk_jobs" in plan, plan
    finally:
        engine.dispose()
