"""Inputs that once reached the database and failed there with a 500 (found by fuzzing and
probing): huge `since`, cursors at the ends of time, ids with NUL characters."""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import SERIES, SPEC


@pytest.fixture
def submitted_job(client, auth) -> str:
    """A queued job of tenant acme."""
    answer = client.post("/v1/jobs", headers=auth, json={"series": SERIES, **SPEC})
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["id"]


def _cursor(moment: str, item: str) -> str:
    raw = json.dumps([moment, item]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("path", [
    "/v1/jobs/{job}/metrics?since=9223372036854775808",
    "/v1/jobs/{job}/metrics?since=2147483648",
    "/v1/jobs/{job}/diagnostics?since=547710370414518398353408",
    "/v1/jobs?cursor=" + _cursor("0001-01-01T00:00:00+14:00", "a"),
    "/v1/jobs?cursor=" + _cursor("9999-12-31T23:59:59-14:00", "a"),
    "/v1/jobs?cursor=" + _cursor("2026-01-01T00:00:00+00:00", "a\x00b"),
])
def test_out_of_range_query_values_are_422(client, auth, submitted_job, path):
    answer = client.get(path.format(job=submitted_job), headers=auth)
    assert answer.status_code == 422, answer.get_json()


@pytest.mark.parametrize("path", ["/v1/jobs/%00", "/v1/jobs/a%00b/metrics",
                                  "/v1/forecasts/%00", "/v1/jobs/not-a-uuid"])
def test_malformed_ids_are_unknown(client, auth, path):
    assert client.get(path, headers=auth).status_code == 404


def test_a_forecast_for_a_malformed_job_id_names_the_field(client, auth):
    answer = client.post("/v1/forecasts", headers=auth, json={"job_id": "\x00"})
    assert answer.status_code == 404
    assert answer.get_json()["errors"][0]["loc"] == ["job_id"]
