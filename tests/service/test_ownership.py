"""Every /v1 route: 401 without a valid token, 404 for another tenant's job or forecast batch."""

from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from bptt.state import initial_states
from service.store import repository
from service.store.tables import ApiToken, Dataset, ForecastBatch, Job, SeriesState, utcnow

from .conftest import SERIES, SPEC, SimulatedWorker, row_count
from .test_app import assert_problem

# (method, URL template, JSON body template) for every route that names a job or a batch.
OWNED_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/jobs/{job}", None),
    ("GET", "/v1/jobs/{job}/metrics", None),
    ("GET", "/v1/jobs/{job}/diagnostics", None),
    ("GET", "/v1/jobs/{job}/series", None),
    ("POST", "/v1/jobs/{job}/cancel", None),
    ("GET", "/v1/jobs/{job}/model", None),
    ("DELETE", "/v1/jobs/{job}", None),
    ("GET", "/v1/jobs/{job}/series/store-1/forecast", None),
    ("POST", "/v1/jobs/{job}/series/store-1/observations", {"values": [1.0]}),
    ("POST", "/v1/forecasts", {"job_id": "{job}"}),
    ("POST", "/v1/forecasts", {"sweep_id": "{sweep}"}),
    ("GET", "/v1/forecasts/{batch}", None),
    ("GET", "/v1/sweeps/{sweep}", None),
    ("POST", "/v1/sweeps/{sweep}/cancel", None),
    ("GET", "/v1/datasets/{dataset}", None),
    ("DELETE", "/v1/datasets/{dataset}", None),
    ("POST", "/v1/jobs", {"dataset_id": "{dataset}", **SPEC}),
    ("POST", "/v1/sweeps", {"job": {"dataset_id": "{dataset}", **SPEC},
                            "space": {"model.hidden_size": [2, 4]}, "strategy": "grid"}),
]
# Routes that act on the tenant as a whole.
TENANT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/jobs", None),
    ("POST", "/v1/jobs", {"series": SERIES, **SPEC}),
    ("GET", "/v1/sweeps", None),
    ("POST", "/v1/sweeps", {"job": {"series": SERIES, **SPEC},
                            "space": {"model.hidden_size": [2, 4]}, "strategy": "grid"}),
    ("GET", "/v1/datasets", None),
    ("POST", "/v1/datasets", None),
]


@pytest.fixture
def owned(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
          sessions: sessionmaker[Session], trained_weights: bytes) -> dict[str, str]:
    """A succeeded job of "acme" with metrics, a model and series states, a forecast batch of
    it, and a sweep."""
    response = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    job_id = response.get_json()["id"]
    worker.start(job_id)
    worker.epoch(job_id, 1)
    worker.finish(job_id, weights=trained_weights)
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        batch = repository.create_forecast_batch(
            session, tenant_id=job.tenant_id, job_id=job_id,
            request={"series": None, "horizon": None, "quantiles": None})
        model = bptt.Model.from_bytes(trained_weights)
        states = initial_states(model, {s["id"]: np.array(s["values"]) for s in SERIES})
        session.add_all([SeriesState(job_id=job_id, series_id=st.series_id, state=st.to_bytes(),
                                     length=st.length, version=1, updated_at=utcnow())
                         for st in states])
    sweep = client.post("/v1/sweeps", json={"job": {"series": SERIES, **SPEC}, "strategy": "grid",
                                             "space": {"model.hidden_size": [2, 4]}},
                        headers=auth).get_json()
    csv = "unique_id,ds,y\n" + "".join(f"{s['id']},{t},{v}\n" for s in SERIES
                                        for t, v in enumerate(s["values"]))
    dataset = client.post("/v1/datasets", data=csv, content_type="text/csv",
                          headers=auth).get_json()
    return {"job": job_id, "batch": batch.id, "sweep": sweep["id"], "dataset": dataset["id"]}


def call(client: FlaskClient, route: tuple[str, str, dict[str, Any] | None],
         ids: dict[str, str], headers: dict[str, str]) -> Any:
    """Send `route` with the ids filled in."""
    method, template, body = route
    url = template.format(**ids)
    json_body = None if body is None else _filled(body, ids)
    return client.open(url, method=method, json=json_body, headers=headers)


def _filled(body: Any, ids: dict[str, str]) -> Any:
    """A body template with the ids filled into its strings, nested ones too."""
    if isinstance(body, dict):
        return {k: _filled(v, ids) for k, v in body.items()}
    return body.format(**ids) if isinstance(body, str) else body


@pytest.mark.parametrize("route", OWNED_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_tenants_resources_are_404(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
    owned: dict[str, str], route: tuple[str, str, dict[str, Any] | None],
    sessions: sessionmaker[Session]
) -> None:
    assert_problem(call(client, route, owned, other_auth), 404)
    # Nothing changed for the owner, who still gets a real answer on the same route.
    with sessions() as session:
        job = session.get(Job, owned["job"])
        assert job is not None and job.status == "succeeded" and not job.cancel_requested
    assert call(client, route, owned, auth).status_code not in (401, 404)


@pytest.mark.parametrize("route", OWNED_ROUTES + TENANT_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("authorization", [None, "Bearer bptt_not-a-token", "Basic YTpi",
                                           "Bearer", "revoked"])
def test_without_a_valid_token_every_route_is_401(
    client: FlaskClient, owned: dict[str, str], route: tuple[str, str, dict[str, Any] | None],
    authorization: str | None, make_token: Any, sessions: sessionmaker[Session]
) -> None:
    if authorization == "revoked":
        token = make_token("acme")
        with sessions.begin() as session:
            record = session.query(ApiToken).filter_by(
                token_hash=repository.hash_token(token)).one()
            record.revoked = True
        authorization = f"Bearer {token}"
    headers = {} if authorization is None else {"Authorization": authorization}
    before = (row_count(sessions, Job), row_count(sessions, Dataset),
              row_count(sessions, ForecastBatch))
    response = call(client, route, owned, headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (row_count(sessions, Job), row_count(sessions, Dataset),
            row_count(sessions, ForecastBatch)) == before


def test_the_route_lists_cover_every_v1_route(app: Flask) -> None:
    listed = {(method, template.replace("{job}", "<job_id>").replace("{batch}", "<batch_id>")
               .replace("{sweep}", "<sweep_id>").replace("store-1", "<path:series_id>")
               .replace("{dataset}", "<dataset_id>"))
              for method, template, _ in OWNED_ROUTES + TENANT_ROUTES}
    served = {(method, rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/v1/")
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert served == listed


def test_lists_show_only_the_tenants_own_jobs(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
    owned: dict[str, str]
) -> None:
    assert client.get("/v1/jobs", headers=other_auth).get_json()["jobs"] == []
    trials = [t["job_id"] for t in client.get(f"/v1/sweeps/{owned['sweep']}",
                                              headers=auth).get_json()["trials"]]
    listed = [j["id"] for j in client.get("/v1/jobs", headers=auth).get_json()["jobs"]]
    assert sorted(listed) == sorted([owned["job"], *trials])  # a sweep's trials are jobs too
