"""POST /v1/jobs with "warm_start": the earlier job's spec fills the gaps; misfits are refused."""

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.store.tables import Job

from .conftest import SERIES, SPEC, SimulatedWorker, broker_messages, row_count
from .test_app import assert_problem


@pytest.fixture
def parent(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
           trained_weights: bytes) -> str:
    """A succeeded job whose model is the conftest's real tiny model (SPEC on SERIES)."""
    answer = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    job_id = answer.get_json()["id"]
    worker.start(job_id)
    worker.finish(job_id, weights=trained_weights)
    return job_id


def test_a_warm_start_takes_the_earlier_spec_and_overrides_what_is_sent(
        client: FlaskClient, auth: dict[str, str], parent: str, settings) -> None:
    body = {"series": SERIES, "horizon": 3, "warm_start": parent, "training": {"epochs": 7}}
    answer = client.post("/v1/jobs", json=body, headers=auth)
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["warm_start_job_id"] == parent
    assert job["spec"]["model"]["hidden_size"] == 4  # the earlier job's
    assert job["spec"]["quantiles"] == [0.1, 0.5, 0.9]  # the earlier job's
    assert job["spec"]["training"]["epochs"] == 7  # this request's
    assert job["spec"]["training"]["ensemble"] == 1  # merged field by field
    assert job["progress"]["epochs_total"] == 7
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).get_json()[
        "warm_start_job_id"] == parent


@pytest.mark.parametrize(("change", "says"), [
    ({"model": {"hidden_size": 8}}, "hidden_size"),
    ({"model": {"cell": "gru"}}, "cell"),
    ({"quantiles": None}, "output_size"),
])
def test_a_network_the_model_cannot_fill_is_refused_naming_warm_start(
        client: FlaskClient, auth: dict[str, str], parent: str, settings,
        sessions: sessionmaker[Session], change: dict, says: str) -> None:
    before = row_count(sessions, Job)
    body = {"series": SERIES, "horizon": 3, "warm_start": parent, **change}
    answer = client.post("/v1/jobs", json=body, headers=auth)
    problem = assert_problem(answer, 422)
    assert problem["errors"][0]["loc"] == ["warm_start"] and says in problem["errors"][0]["msg"]
    assert row_count(sessions, Job) == before
    assert len(broker_messages(settings)) == 1  # only the parent's message


def test_unknown_unfinished_and_foreign_jobs_cannot_be_continued(
        client: FlaskClient, auth: dict[str, str], make_token: Callable[[str], str],
        sessions: sessionmaker[Session], parent: str) -> None:
    queued = client.post("/v1/jobs", json={"series": SERIES, **SPEC},
                         headers=auth).get_json()["id"]
    intruder = {"Authorization": f"Bearer {make_token('intruder')}"}
    before = row_count(sessions, Job)
    for headers, job_id, says in [(auth, "0" * 8 + "-0000-4000-8000-" + "0" * 12, "no such job"),
                                  (auth, queued, "queued"), (intruder, parent, "no such job"),
                                  (auth, 42, "string")]:
        body = {"series": SERIES, "horizon": 3, "warm_start": job_id}
        problem = assert_problem(client.post("/v1/jobs", json=body, headers=headers), 422)
        assert problem["errors"][0]["loc"] == ["warm_start"]
        assert says in problem["errors"][0]["msg"]
    assert row_count(sessions, Job) == before
