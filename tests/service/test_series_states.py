"""Stateful forecasts over HTTP: append observations to a training series, get the forecast of
its whole history without sending it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from workers.attempts import run_training

from .conftest import SERIES
from .test_app import assert_problem

JOB = {"series": SERIES, "horizon": 3, "quantiles": [0.1, 0.9],
       "model": {"cell": "gru", "hidden_size": 4}, "training": {"epochs": 2, "ensemble": 2}}


def _trained(client: FlaskClient, auth: dict[str, str], sessions, settings) -> str:
    job_id = client.post("/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    return job_id


def test_appending_observations_answers_the_forecast_of_the_whole_history(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    job_id = _trained(client, auth, sessions, settings)
    base = f"/v1/jobs/{job_id}/series/store-1"
    first = client.get(f"{base}/forecast", headers=auth).get_json()
    own = client.post("/v1/forecasts", json={"job_id": job_id}, headers=auth).get_json()
    assert first["length"] == 60 and first["version"] == 1
    np.testing.assert_allclose(first["forecast"]["mean"], own["forecasts"][0]["mean"],
                               rtol=1e-6)

    history = list(SERIES[0]["values"])
    for chunk in ([25.0, None, 27.5], [30.0] * 12):
        answer = client.post(f"{base}/observations", json={"values": chunk}, headers=auth)
        assert answer.status_code == 200, answer.get_json()
        history += chunk
        state = answer.get_json()
        full = client.post("/v1/forecasts", json={
            "job_id": job_id, "series": [{"id": "store-1", "values": history}]},
            headers=auth).get_json()["forecasts"][0]
        assert state["length"] == len(history)
        for key in ("0.1", "0.9"):
            np.testing.assert_allclose(state["forecast"]["quantiles"][key],
                                       full["quantiles"][key], rtol=1e-6)
        np.testing.assert_allclose(state["forecast"]["mean"], full["mean"], rtol=1e-6)
    assert state["version"] == 3
    short = client.get(f"{base}/forecast?horizon=2&quantiles=0.9", headers=auth).get_json()
    assert len(short["forecast"]["mean"]) == 2 and list(short["forecast"]["quantiles"]) == ["0.9"]
    # the other series did not move
    assert client.get(f"/v1/jobs/{job_id}/series/store-2/forecast",
                      headers=auth).get_json()["version"] == 1


def test_bad_appends_are_refused_and_change_nothing(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, make_token: Callable[[str], str]) -> None:
    job_id = _trained(client, auth, sessions, settings)
    base = f"/v1/jobs/{job_id}/series/store-1"
    for body, loc in [({"values": []}, ["values"]), ({"values": ["x"]}, ["values", 0]),
                      ({"values": [1.0], "horizon": 9}, ["horizon"]),
                      ({"values": [1.0], "quantiles": [0.5]}, ["quantiles"]),
                      ({"value": [1.0]}, ["value"])]:
        problem = assert_problem(client.post(f"{base}/observations", json=body, headers=auth),
                                 422)
        assert loc in [e["loc"] for e in problem["errors"]], (body, problem)
    assert client.get(f"{base}/forecast", headers=auth).get_json()["version"] == 1
    assert_problem(client.get(f"/v1/jobs/{job_id}/series/nope/forecast", headers=auth), 404)
    intruder = {"Authorization": f"Bearer {make_token('intruder')}"}
    assert_problem(client.get(f"{base}/forecast", headers=intruder), 404)
    assert_problem(client.post(f"{base}/observations", json={"values": [1.0]},
                               headers=intruder), 404)
    queued = client.post("/v1/jobs", json=JOB, headers=auth).get_json()["id"]
    assert_problem(client.get(f"/v1/jobs/{queued}/series/store-1/forecast", headers=auth), 409)


def test_concurrent_appends_never_lose_an_update(
        app, auth: dict[str, str], sessions: sessionmaker[Session], settings: Settings) -> None:
    client = app.test_client()
    job_id = _trained(client, auth, sessions, settings)
    base = f"/v1/jobs/{job_id}/series/store-2"
    statuses: list[int] = []

    def appender() -> None:
        own = app.test_client()  # one client per thread, as separate users would have
        for _ in range(5):
            answer = own.post(f"{base}/observations", json={"values": [1.0, 2.0]}, headers=auth)
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=appender) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(statuses) <= {200, 409} and len(statuses) == 30
    won = statuses.count(200)
    after = client.get(f"{base}/forecast", headers=auth).get_json()
    # every answered append is in the state exactly once; every refused one is not at all
    assert after["version"] == 1 + won and after["length"] == 50 + 2 * won
