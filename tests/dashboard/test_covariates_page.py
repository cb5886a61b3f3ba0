"""The job page lists the covariates a job declared, with their kinds (in Chromium)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Stack
from tests.e2e.test_covariates_e2e import covariate_job

from .browsing import DESKTOP, new_page, sign_in


def test_the_job_page_lists_the_declared_covariates(browser: Any, live_service: Stack) -> None:
    status, job = live_service.call("POST", "/v1/jobs", covariate_job())
    assert status == 202, job
    page, problems = new_page(browser, DESKTOP)
    page.goto(live_service.url + "/")
    sign_in(page, live_service)
    page.goto(f"{live_service.url}/jobs/{job['id']}")
    expect(page.locator("#job-covariates")).to_be_visible()
    expect(page.locator("#job-covariates-list .chip")).to_have_text(
        ["store_type: static", "temp: historical", "promo: future"])

    body = covariate_job()
    del body["covariates"]
    for item in body["series"]:
        del item["covariates"]
    status, plain = live_service.call("POST", "/v1/jobs", body)
    assert status == 202, plain
    page.goto(f"{live_service.url}/jobs/{plain['id']}")
    expect(page.locator("#job-status")).not_to_have_text("loading")
    expect(page.locator("#job-covariates")).to_be_hidden()
    assert problems == []
