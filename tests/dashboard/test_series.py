"""GET /v1/jobs/{id}/series: the history a forecast is drawn after, cut to its tail, a page of
series at a time, for the job's own tenant only."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.service.conftest import SERIES, SPEC
from tests.service.test_app import assert_problem


@pytest.fixture
def job_id(client: FlaskClient, auth: dict[str, str]) -> str:
    """A job of "acme" on SERIES (60 and 50 points), with a gap in the second series."""
    series = [SERIES[0], {**SERIES[1], "values": [*SERIES[1]["values"][:-3], None,
                                                  *SERIES[1]["values"][-2:]]}]
    response = client.post("/v1/jobs", json={"series": series, **SPEC}, headers=auth)
    assert response.status_code == 202
    return response.get_json()["id"]


def get(client: FlaskClient, auth: dict[str, str], job_id: str, query: str = "") -> Any:
    return client.get(f"/v1/jobs/{job_id}/series{query}", headers=auth)


def test_every_series_with_its_tail(client: FlaskClient, auth: dict[str, str],
                                    job_id: str) -> None:
    page = get(client, auth, job_id).get_json()
    assert page["job_id"] == job_id and page["num_series"] == 2 and page["next_offset"] is None
    first, second = page["series"]
    assert first == {"id": "store-1", "values": SERIES[0]["values"], "length": 60,
                     "start": None, "freq": None,  # shorter than the default tail: all of it
                     "covariates": None}  # (the job declared none)
    assert second["length"] == 50 and second["values"][-3] is None  # a gap stays a gap

    tails = get(client, auth, job_id, "?tail=4").get_json()["series"]
    assert tails[0]["values"] == SERIES[0]["values"][-4:]
    assert tails[1]["values"] == [*SERIES[1]["values"][-4:-3], None, *SERIES[1]["values"][-2:]]
    assert [s["length"] for s in tails] == [60, 50]


def test_pages_of_series(client: FlaskClient, auth: dict[str, str], job_id: str) -> None:
    first = get(client, auth, job_id, "?limit=1&tail=2").get_json()
    assert [s["id"] for s in first["series"]] == ["store-1"] and first["next_offset"] == 1
    second = get(client, auth, job_id, "?limit=1&offset=1").get_json()
    assert [s["id"] for s in second["series"]] == ["store-2"] and second["next_offset"] is None
    past = get(client, auth, job_id, "?offset=5").get_json()
    assert past["series"] == [] and past["num_series"] == 2 and past["next_offset"] is None


def test_a_csv_job_keeps_the_labels_of_its_series(client: FlaskClient,
                                                  auth: dict[str, str]) -> None:
    rows = "".join(f"a,2020-{m:02d},{m}\n" for m in range(1, 13))
    rows += "".join(f"a,2021-{m:02d},{m + 12}\n" for m in range(1, 13))
    response = client.post("/v1/jobs?horizon=2&training.epochs=1", data="unique_id,ds,y\n" + rows,
                           content_type="text/csv", headers=auth)
    assert response.status_code == 202, response.get_json()
    page = get(client, auth, response.get_json()["id"], "?tail=3").get_json()
    # the first ds as a date, and the frequency inferred from the rows' spacing
    assert page["series"] == [{"id": "a", "values": [22.0, 23.0, 24.0], "length": 24,
                               "start": "2020-01-01", "freq": "MS", "covariates": None}]


@pytest.mark.parametrize("query, where", [
    ("?tail=0", "tail"), ("?tail=1001", "tail"), ("?tail=x", "tail"), ("?limit=0", "limit"),
    ("?limit=101", "limit"), ("?offset=-1", "offset"), ("?since=1", "since"),
])
def test_bounds_are_enforced(client: FlaskClient, auth: dict[str, str], job_id: str,
                             query: str, where: str) -> None:
    problem = assert_problem(get(client, auth, job_id, query), 422)
    assert [e["loc"] for e in problem["errors"]] == [["query", where]]


def test_only_the_owner_sees_the_series(client: FlaskClient, auth: dict[str, str],
                                        other_auth: dict[str, str], job_id: str) -> None:
    assert_problem(get(client, other_auth, job_id), 404)
    assert_problem(get(client, {}, job_id), 401)
    assert_problem(get(client, {"Authorization": "Bearer bptt_nope"}, job_id), 401)
    assert_problem(get(client, auth, "no-such-job"), 404)
