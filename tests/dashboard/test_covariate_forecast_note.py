"""The job page of a model trained with future covariates says how to forecast it instead of
asking for a forecast it cannot get without their planned values (in Chromium)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Stack
from tests.e2e.test_covariates_e2e import covariate_job

from .browsing import DESKTOP, new_page, sign_in


def test_a_future_covariate_job_says_how_to_forecast_it(browser: Any,
                                                        live_service: Stack) -> None:
    status, job = live_service.call("POST", "/v1/jobs", covariate_job())
    assert status == 202, job
    assert live_service.wait_for_status(job["id"], {"succeeded", "failed"})["status"] == \
        "succeeded"
    page, problems = new_page(browser, DESKTOP)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(live_service.url + "/")
    sign_in(page, live_service)
    page.goto(f"{live_service.url}/jobs/{job['id']}")
    expect(page.locator("#chart-forecast .chart-empty")).to_have_text(
        "No forecast here: the model reads the future values of promo over its horizon. Give "
        "them in POST /v1/forecasts (future_covariates) or to bptt forecast --future-values.")
    assert not [url for url in requests if url.endswith("/v1/forecasts")]
    assert problems == []
