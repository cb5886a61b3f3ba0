"""The job's `calendar` field over HTTP: the choice the job's spec shows, the refusals that
name the field, and forecasts that recompute the calendar from the series' dates."""

from collections.abc import Callable

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.settings import Settings
from workers.attempts import run_training

from .conftest import SERIES, SPEC
from .test_app import assert_problem

DATED = [{**s, "start": "2026-01-05", "freq": "D"} for s in SERIES]


def _submit(client: FlaskClient, auth: dict[str, str], **body) -> dict:
    response = client.post("/v1/jobs", json={**SPEC, "series": DATED, **body}, headers=auth)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(("series", "asked", "used"), [
    (DATED, None, bptt.calendar_inputs.DEFAULT_ENCODING),
    (DATED, "onehot", "onehot"),
    (DATED, "off", "off"),
    (SERIES, None, "off"),  # no dates: auto is off
])
def test_the_job_spec_shows_the_calendar_it_trains_with(
        client: FlaskClient, auth: dict[str, str], series: list[dict], asked: str | None,
        used: str) -> None:
    body = {"series": series} | ({} if asked is None else {"calendar": asked})
    job = _submit(client, auth, **body)
    assert job["requested_spec"]["calendar"] == (asked or "auto")
    assert job["spec"]["calendar"] == used


@pytest.mark.parametrize(("body", "msg"), [
    ({"calendar": "weekly"}, "must be one of ['auto', 'cyclic', 'onehot', 'off']"),
    ({"calendar": "cyclic", "series": SERIES}, "'cyclic' needs calendar dates, but no date "
                                               "frequency is known"),
    ({"calendar": "onehot", "series": [{**s, "start": "2026-01-05"} for s in SERIES],
      "freq": "YS"}, "'onehot' needs calendar dates, but the frequency YS resolves no calendar "
                     "cycle finer than a year"),
])
def test_a_calendar_the_job_cannot_have_is_a_422_naming_the_field(
        client: FlaskClient, auth: dict[str, str], body: dict, msg: str) -> None:
    response = client.post("/v1/jobs", json={**SPEC, "series": DATED, **body}, headers=auth)
    assert_problem(response, 422)
    [error] = response.get_json()["errors"]
    assert error["loc"] == ["calendar"] and error["msg"].startswith(msg), error


def test_forecasts_recompute_the_calendar_from_the_series_dates(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings, make_token: Callable[[str], str]) -> None:
    job = _submit(client, auth, calendar="onehot")
    assert run_training(sessions, settings, job["id"], "test:1") == "succeeded"
    model = bptt.Model.from_bytes(client.get(f"/v1/jobs/{job['id']}/model", headers=auth).data)
    card = model.card()["calendar"]
    assert card["encoding"] == "onehot" and card["freq"] == "D"
    assert card["starts"] == ["2026-01-05"] * 2 and card["lengths"] == [60, 50]

    # the training series, and the same series sent with their dates, forecast alike: as the
    # library forecasts them from the model file
    own = client.post("/v1/forecasts", json={"job_id": job["id"]}, headers=auth).get_json()
    sent = client.post("/v1/forecasts", json={"job_id": job["id"], "series": DATED},
                       headers=auth).get_json()
    library = {f["id"]: f["mean"] for f in bptt.forecast(model, DATED)}
    for a, b in zip(own["forecasts"], sent["forecasts"], strict=True):
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-6)
        np.testing.assert_allclose(a["mean"], library[a["id"]], rtol=1e-6)
    # sent as starting three days later, a series ends on other weekdays: the forecast reads
    # those, as the library's does
    later = [{**DATED[0], "start": "2026-01-08"}]
    moved = client.post("/v1/forecasts", json={"job_id": job["id"], "series": later},
                        headers=auth).get_json()
    np.testing.assert_allclose(moved["forecasts"][0]["mean"],
                               bptt.forecast(model, later)[0]["mean"], rtol=1e-6)
    # the stateful forecast of a training series follows its calendar too
    stateful = client.get(f"/v1/jobs/{job['id']}/series/store-1/forecast",
                          headers=auth).get_json()
    np.testing.assert_allclose(stateful["forecast"]["mean"], own["forecasts"][0]["mean"],
                               rtol=1e-5)
