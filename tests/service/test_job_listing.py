"""Names and labels on jobs and sweeps, and GET /v1/jobs as a table of runs: filters by status,
cell, label and sweep, every sort, and cursors that walk each sort exactly once, on SQLite and
on a real PostgreSQL."""

from __future__ import annotations

import base64
import functools
import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.api.extensions import services
from service.store import repository
from service.store.job_listing import SORTS, sort_names
from service.store.tables import Job, Sweep, utcnow

from .conftest import SERIES, SPEC, SimulatedWorker, row_count
from .test_app import assert_problem

BODY = {"series": SERIES, **SPEC}
# The status order the list sorts by: a job's lifecycle.
STATUS_RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 3, "cancelled": 4}


def submit(client: FlaskClient, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    """Submit a job (BODY with `fields` laid over it); the document POST answered."""
    response = client.post("/v1/jobs", json={**BODY, **fields}, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def walk(client: FlaskClient, auth: dict[str, str], query: str, limit: int) -> list[str]:
    """Every job id the list gives for `query`, page by page with the cursors."""
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        url = f"/v1/jobs?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        assert len(page["jobs"]) <= limit
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursors never ended")


def test_names_and_labels_from_json_and_csv(client: FlaskClient, auth: dict[str, str]) -> None:
    job = submit(client, auth, name="weekly stores", labels={"team": "retail", "run.v": "2"})
    assert job["name"] == "weekly stores"
    assert job["labels"] == {"team": "retail", "run.v": "2"}
    shown = client.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()
    assert (shown["name"], shown["labels"]) == ("weekly stores", {"team": "retail", "run.v": "2"})
    # the row carries what the runs table shows
    assert (shown["cell"], shown["hidden_size"], shown["num_layers"], shown["horizon"],
            shown["num_series"]) == ("lstm", 4, 1, 3, 2)

    # With a CSV body they are query parameters, and stay text whatever they look like.
    rows = "".join(f"a,{i},{i % 7}\n" for i in range(40))
    csv = client.post("/v1/jobs?horizon=2&training.epochs=1&name=2024&labels.year=2024"
                      "&labels.team=csv", data="unique_id,ds,y\n" + rows,
                      content_type="text/csv", headers=auth)
    assert csv.status_code == 202, csv.get_json()
    assert csv.get_json()["name"] == "2024"
    assert csv.get_json()["labels"] == {"year": "2024", "team": "csv"}

    plain = submit(client, auth)
    assert plain["name"] is None and plain["labels"] == {}


@pytest.mark.parametrize(("fields", "loc", "message"), [
    ({"name": ""}, ["name"], "at least 1 character"),
    ({"name": "x" * 129}, ["name"], "at most 128 characters"),
    ({"name": "two\nlines"}, ["name"], "control characters"),
    ({"name": 7}, ["name"], "valid string"),
    ({"labels": {"team:a": "x"}}, ["labels", "team:a"], "label key"),
    ({"labels": {"-team": "x"}}, ["labels", "-team"], "label key"),
    ({"labels": {"k" * 64: "x"}}, ["labels", "k" * 64], "label key"),
    ({"labels": {"team": "x" * 257}}, ["labels", "team"], "at most 256 characters"),
    ({"labels": {"team": 3}}, ["labels", "team"], "valid string"),
    ({"labels": {f"k{i}": "v" for i in range(17)}}, ["labels"], "at most 16 labels"),
    ({"labels": ["team"]}, ["labels"], "valid dictionary"),
])
def test_bad_names_and_labels_are_refused_and_nothing_is_stored(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        fields: dict[str, Any], loc: list[str], message: str) -> None:
    problem = assert_problem(client.post("/v1/jobs", json={**BODY, **fields}, headers=auth), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert message in problem["errors"][0]["msg"]
    sweep = {"job": BODY, "space": {"model.hidden_size": [4, 8]}, **fields}
    problem = assert_problem(client.post("/v1/sweeps", json=sweep, headers=auth), 422)
    assert [e["loc"] for e in problem["errors"]] == [loc]
    assert row_count(sessions, Job) == 0 and row_count(sessions, Sweep) == 0


def test_the_limits_themselves_are_accepted(client: FlaskClient, auth: dict[str, str]) -> None:
    labels = {f"k{i}": "v" * 256 for i in range(15)} | {"K" + "k" * 62: ""}
    job = submit(client, auth, name="n" * 128, labels=labels)
    assert len(job["name"]) == 128 and job["labels"] == labels


def test_a_sweep_names_and_labels_its_trials(client: FlaskClient, auth: dict[str, str],
                                             sessions: sessionmaker[Session]) -> None:
    refused = client.post("/v1/sweeps", json={"job": {**BODY, "name": "x"},
                                              "space": {"model.hidden_size": [4, 8]}},
                          headers=auth)
    assert [e["loc"] for e in assert_problem(refused, 422)["errors"]] == [["job", "name"]]
    assert row_count(sessions, Job) == 0

    answer = client.post("/v1/sweeps", json={
        "job": BODY, "space": {"model.hidden_size": [4, 8]}, "strategy": "grid",
        "name": "size search", "labels": {"team": "retail"}}, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    sweep = answer.get_json()
    assert (sweep["name"], sweep["labels"]) == ("size search", {"team": "retail"})
    trials = client.get(f"/v1/jobs?sweep_id={sweep['id'][:8]}&sort=name",
                        headers=auth).get_json()["jobs"]
    assert [(t["name"], t["labels"], t["trial"]) for t in trials] == [
        ("size search #0", {"team": "retail"}, 0), ("size search #1", {"team": "retail"}, 1)]
    listed = client.get("/v1/sweeps", headers=auth).get_json()["sweeps"]
    assert listed[0]["name"] == "size search"


def test_filters(client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
                 worker: SimulatedWorker) -> None:
    a = submit(client, auth, labels={"team": "retail", "stage": "prod"})["id"]
    b = submit(client, auth, labels={"team": "retail"},
               model={"cell": "gru", "hidden_size": 4})["id"]
    c = submit(client, auth, labels={"team": "energy"},
               model={"cell": "rnn", "hidden_size": 4})["id"]
    d = submit(client, auth)["id"]
    submit(client, other_auth, labels={"team": "retail"})  # never listed for acme
    sweep = client.post("/v1/sweeps", json={"job": BODY, "space": {"model.hidden_size": [4, 8]},
                                            "strategy": "grid", "labels": {"team": "retail"}},
                        headers=auth).get_json()
    trials = [t["job_id"] for t in sweep["trials"]]
    worker.start(b)
    worker.start(c)
    worker.finish(c, "failed", error="boom")

    def ids(query: str) -> set[str]:
        return set(walk(client, auth, query, limit=100))

    assert ids("label=team:retail") == {a, b, *trials}
    assert ids("label=team:retail&label=stage:prod") == {a}
    assert ids("label=stage") == {a}
    assert ids("label=team:nobody") == set()
    assert ids("status=running") == {b}
    assert ids("status=running&status=failed") == ids("status=running,failed") == {b, c}
    assert ids("cell=gru") == {b}
    assert ids("cell=rnn&cell=gru") == {b, c}
    assert ids("cell=lstm&label=team:retail&sweep_id=none") == {a}
    assert ids(f"sweep_id={sweep['id']}") == set(trials)
    assert ids("sweep_id=none") == {a, b, c, d}
    assert ids("") == {a, b, c, d, *trials}


@pytest.mark.parametrize(("query", "loc", "message"), [
    ("status=done", "status", "not one of"),
    ("cell=transformer", "cell", "not one of"),
    ("label=:x", "label", "key:value"),
    ("label=te%20am:x", "label", "key:value"),
    ("label=team:" + "x" * 257, "label", "at most 256"),
    ("sort=speed", "sort", "must be one of"),
    ("sort=--created", "sort", "must be one of"),
    ("cursor=WzEsMl0", "cursor", "not a cursor"),
    ("cursor=not-a-cursor", "cursor", "not a cursor"),
    ("page=2", "page", "unknown parameter"),
])
def test_bad_list_queries_are_refused(client: FlaskClient, auth: dict[str, str], query: str,
                                      loc: str, message: str) -> None:
    problem = assert_problem(client.get(f"/v1/jobs?{query}", headers=auth), 422)
    assert [e["loc"] for e in problem["errors"]] == [["query", loc]]
    assert message in problem["errors"][0]["msg"]


def test_an_unknown_sweep_filter_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    problem = assert_problem(client.get("/v1/jobs?sweep_id=abcd1234", headers=auth), 404)
    assert problem["errors"] == [{"loc": ["query", "sweep_id"], "msg": "no such sweep"}]


def test_a_cursor_belongs_to_its_sort(client: FlaskClient, auth: dict[str, str]) -> None:
    for _ in range(3):
        submit(client, auth)
    page = client.get("/v1/jobs?limit=1&sort=name", headers=auth).get_json()
    problem = assert_problem(client.get(f"/v1/jobs?cursor={page['next_cursor']}", headers=auth),
                             422)
    assert "sort=name" in problem["errors"][0]["msg"]
    # A cursor from before sorts existed ([created_at, id]) still reads, newest first.
    first = client.get("/v1/jobs?limit=1", headers=auth).get_json()["jobs"][0]
    old = base64.urlsafe_b64encode(json.dumps([first["created_at"], first["id"]]).encode())
    rest = client.get(f"/v1/jobs?cursor={old.decode().rstrip('=')}", headers=auth).get_json()
    assert len(rest["jobs"]) == 2 and first["id"] not in [j["id"] for j in rest["jobs"]]


# --- every sort, paged, against the order computed here from the documents ---

def sort_value(job: dict[str, Any], name: str) -> tuple[Any, ...]:
    """The keys GET /v1/jobs sorts `name` by, from a job document."""
    duration = job["duration_seconds"]
    return {
        "created": (job["created_at"],),
        "name": (None if job["name"] is None else job["name"].lower(),),
        "status": (STATUS_RANK[job["status"]],),
        "cell": (job["cell"],),
        "hidden": (job["hidden_size"], job["num_layers"]),
        "series": (job["num_series"],),
        "horizon": (job["horizon"],),
        "val_loss": (job["best_val_loss"],),
        "cv_mase": (job["cv_mase"],),
        "score": (job["score"],),
        "duration": (None if duration is None else round(duration * 1000),),
    }[name]


def expected_order(jobs: list[dict[str, Any]], sort: str) -> list[str]:
    """Ids in `sort` order: missing values last in either direction, ties by id."""
    descending = sort.startswith("-")
    name = sort.removeprefix("-")

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for x, y in zip((*sort_value(a, name), a["id"]), (*sort_value(b, name), b["id"]),
                        strict=True):
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            return (1 if x > y else -1) * (-1 if descending else 1)
        return 0

    return [job["id"] for job in sorted(jobs, key=functools.cmp_to_key(compare))]


def arrange_varied_jobs(client: FlaskClient, auth: dict[str, str],
                        sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Twelve jobs whose every sort key has ties and gaps: names (some missing, some equal
    but for case), cells, sizes, series counts, statuses, losses, scores, durations."""
    cells = itertools.cycle(["gru", "lstm", "rnn"])
    names = itertools.cycle(["beta", None, "Alpha", "alpha", None, "gamma"])
    worker = SimulatedWorker(sessions)
    ids = []
    for i in range(12):
        fields: dict[str, Any] = {"model": {"cell": next(cells), "hidden_size": 4 + 4 * (i % 2),
                                            "num_layers": 1 + i % 3 // 2},
                                  "horizon": 2 + i % 2, "series": SERIES[: 1 + i % 2]}
        name = next(names)
        if name is not None:
            fields["name"] = name
        ids.append(submit(client, auth, **fields)["id"])
    start = utcnow() - timedelta(hours=1)
    for i, job_id in enumerate(ids):
        if i % 4 == 0:
            continue  # queued: no start, no losses
        worker.start(job_id)
        if i % 3:
            worker.epoch(job_id, 1, val_loss=[0.5, 0.25, 0.5][i % 3])
        if i % 4 == 3:
            continue  # still running
        worker.finish(job_id, ["succeeded", "failed", "cancelled"][i % 3])
        with sessions.begin() as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.started_at = start
            job.finished_at = start + timedelta(seconds=[10, 20, 10.0004, 30][i % 4])
            job.score = [None, 0.3, 0.3, 0.1][i % 4]
            if i % 5 == 1:
                job.cross_validation = {"mase": [0.9, 0.7][i % 2], "windows": []}
    everything = walk(client, auth, "", limit=100)
    return [client.get(f"/v1/jobs/{job_id}", headers=auth).get_json() for job_id in everything]


def check_every_sort(client: FlaskClient, auth: dict[str, str],
                     sessions: sessionmaker[Session]) -> None:
    jobs = arrange_varied_jobs(client, auth, sessions)
    assert {job["cv_mase"] for job in jobs} >= {0.9, 0.7, None}
    assert len({job["best_val_loss"] for job in jobs}) == 3  # two values and missing
    for sort in sort_names():
        expected = expected_order(jobs, sort)
        for limit in (1, 5):  # every cursor, and cursors that land inside runs of ties
            assert walk(client, auth, f"sort={sort}", limit) == expected, (sort, limit)
    filtered = [job for job in jobs if job["cell"] == "gru"]
    assert walk(client, auth, "sort=-score&cell=gru", 2) == expected_order(filtered, "-score")


def test_every_sort_pages_exactly_once_on_sqlite(client: FlaskClient, auth: dict[str, str],
                                                  sessions: sessionmaker[Session]) -> None:
    assert set(SORTS) == {"created", "name", "status", "cell", "hidden", "series", "horizon",
                          "val_loss", "cv_mase", "score", "duration"}
    check_every_sort(client, auth, sessions)


@pytest.fixture
def pg(pg_app: Flask) -> Iterator[tuple[FlaskClient, dict[str, str], sessionmaker[Session]]]:
    """A client of the app on PostgreSQL, a tenant's headers, and the app's sessions."""
    sessions = services(pg_app).sessions
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="acme")
        token = repository.create_token(session, tenant=tenant).token
    yield pg_app.test_client(), {"Authorization": f"Bearer {token}"}, sessions


def test_every_sort_pages_exactly_once_on_postgres(
        pg: tuple[FlaskClient, dict[str, str], sessionmaker[Session]]) -> None:
    check_every_sort(*pg)
