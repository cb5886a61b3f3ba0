"""The job page of a job with covariates (in Chromium): it lists them with their kinds, and its
curl command submits them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import Stack
from tests.e2e.test_covariates_e2e import covariate_job

from .browsing import DESKTOP, new_page, sign_in
from .test_tracker import run_command


def test_the_job_page_lists_the_covariates_and_its_command_resubmits_them(
        browser: Any, live_service: Stack, tmp_path: Path) -> None:
    status, job = live_service.call("POST", "/v1/jobs", covariate_job())
    assert status == 202, job
    page, problems = new_page(browser, DESKTOP,
                              permissions=["clipboard-read", "clipboard-write"])
    page.goto(live_service.url + "/")
    sign_in(page, live_service)
    page.goto(f"{live_service.url}/jobs/{job['id']}")
    expect(page.locator("#job-covariates")).to_be_visible()
    expect(page.locator("#job-covariates-list .chip")).to_have_text(
        ["store_type: static", "temp: historical", "promo: future"])

    page.click("#copy-curl")
    expect(page.locator("#action-note")).to_contain_text("Copied.")
    again = run_command(page.evaluate("navigator.clipboard.readText()"), live_service, tmp_path)
    assert again["covariates"] == job["covariates"]
    series = [live_service.call("GET", f"/v1/jobs/{j['id']}/series")[1]["series"]
              for j in (job, again)]
    assert series[0] == series[1] and series[0][0]["covariates"]["store_type"] == "big"

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
