"""The dashboard in a real browser against the real service: sign in, submit a CSV through the
form, watch the job train on its page (curves, gradient-flow heatmap, forecast), at desktop and
phone width, with screenshots of every page."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from service.client import progress_line, progress_text, timing_text
from tests.e2e.conftest import Stack

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402  (after the skip)

from tests.dashboard.browsing import (  # noqa: E402
    DESKTOP,
    PHONE,
    new_page,
    painted,
    shoot,
    sign_in,
    wait_painted,
)

TRAINING_TIMEOUT_MS = 180_000  # the first job may wait for the worker to load its kernels
EPOCHS = 8  # per ensemble member: a few seconds of training, long enough to be seen running
# Colours the charts draw with (service/dashboard/static/dashboard/charts.js).
TRAIN_BLUE, GRADIENT_PURPLE, CLIP_GREEN = (21, 101, 192), (106, 27, 154), (46, 125, 50)


def series_csv() -> str:
    """Two monthly series of eight years, trend plus season plus a wiggle, in long format."""
    rows = ["unique_id,ds,y"]
    for k, name in enumerate(["north", "south"]):
        for i in range(96):
            y = 100 + 0.5 * i + 12 * math.sin(2 * math.pi * i / 12 + k) + 3 * math.sin(i * 1.7)
            rows.append(f"{name},{2015 + i // 12}-{i % 12 + 1:02d},{y:.3f}")
    return "\n".join(rows) + "\n"


def cli_fields(job: dict[str, Any]) -> dict[str, str]:
    """The numbers `bptt status` prints for the job, by the page's field names."""
    line = progress_line(job)
    found = {name: re.search(rf"{label} (\S+)", line) for name, label in
             (("member", "member"), ("epoch", "epoch"), ("train", "train"), ("val", "val"),
              ("grad", r"\|g\|"))}
    return {name: match[1] for name, match in found.items() if match}


def check_finished_job_page(page: Page, service: Stack, job_id: str,
                            epochs_per_member: int | None = EPOCHS) -> None:
    """The page of a succeeded job: every curve, the heatmap and the forecast drawn, and its
    progress complete; each member trained `epochs_per_member` (None: early stopping chose)."""
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator("#chart-forecast")).to_have_attribute("data-state", "ready")
    status, job = service.call("GET", f"/v1/jobs/{job_id}")
    assert status == 200 and job["status"] == "succeeded"
    epochs = job["progress"]["epochs_done"]
    assert epochs == job["progress"]["epochs_total"]  # complete, as the full bar says
    assert page.evaluate("document.querySelector('#job-progress').value") == 1
    if epochs_per_member is not None:
        assert epochs == epochs_per_member * 5  # the default ensemble of five members
    # One row per member, saying how it stopped, as the job document does.
    finished = job["progress"]["finished_members"]
    rows = page.locator("#members-table tbody tr")
    expect(rows).to_have_count(5)
    for k, member in enumerate(finished):
        expect(rows.nth(k)).to_have_attribute("data-stopped", member["stopped"])
        expect(rows.nth(k).locator("td").nth(1)).to_have_text(str(member["epochs"]))
    # ...and the rest of the CLI's progress text (early stops) beside the numbers
    progress = job["progress"]
    numbers = (f"member {progress['member']}/{progress['members']} · "
               f"epoch {progress['member_epoch']}/{progress['member_epochs']}")
    note = progress_text(progress).removeprefix(numbers).removeprefix(" · ").strip()
    expect(page.locator("#progress-note")).to_have_text(note)

    # Every epoch reached the charts exactly once, through the ?since= polling.
    for chart in ("#chart-loss", "#chart-grad", "#chart-clip"):
        expect(page.locator(chart)).to_have_attribute("data-points", str(epochs))
    wait_painted(page, "#chart-loss canvas", TRAIN_BLUE, 51)
    wait_painted(page, "#chart-grad canvas", GRADIENT_PURPLE, 51)
    wait_painted(page, "#chart-clip canvas", CLIP_GREEN, 51)

    heatmap = page.locator("#heatmap")
    expect(heatmap).to_have_attribute("data-epochs", str(epochs))
    _, diagnostics = service.call("GET", f"/v1/jobs/{job_id}/diagnostics")
    steps = max(len(row["values"]) for row in diagnostics["grad_flow"])
    expect(heatmap).to_have_attribute("data-steps", str(steps))
    assert painted(page, "#heatmap")["colours"] > 10  # log-scaled colours, not one flat fill

    # BPTT insight: a memory horizon per epoch, and the latest epoch's table of gates
    expect(page.locator("#chart-memory")).to_have_attribute("data-points", str(epochs))
    wait_painted(page, "#chart-memory canvas", TRAIN_BLUE, 21)
    expect(page.locator("#insight-table")).to_have_attribute("data-epoch", str(epochs))
    latest = diagnostics["insight"][-1]
    gates = sum(len(layer) for layer in latest["spectral_radius"])
    expect(page.locator("#insight-table tbody tr")).to_have_count(gates)
    clip = page.locator("#insight-clip").inner_text()
    assert abs(float(clip) - latest["suggested_max_norm"]) <= 0.01 * latest["suggested_max_norm"]

    forecast = page.locator("#chart-forecast")
    expect(forecast).to_have_attribute("data-horizon", "6")
    wait_painted(page, "#chart-forecast canvas", TRAIN_BLUE, 21)  # the mean path
    assert page.locator("#chart-forecast .u-legend").inner_text().count("q0.") == 2  # the band

    # The page's numbers are the CLI's: same fields, same digits.
    shown = {name: page.locator(f'#summary [data-field="{name}"]').inner_text()
             for name in ("member", "epoch", "train", "val", "grad")}
    assert shown == cli_fields(job), (shown, progress_line(job))
    # ...and its time beside the estimate, as the CLI words it
    expect(page.locator("#timing-text")).to_have_text(timing_text(job))
    assert timing_text(job).startswith("took ")


def test_sign_in_submit_a_csv_and_watch_it_train(
    browser: Any, live_service: Stack, screenshots: Path, tmp_path: Path
) -> None:
    page, problems = new_page(browser, DESKTOP)
    page.goto(live_service.url + "/")
    expect(page.locator("#signin")).to_be_visible()
    shoot(page, screenshots, "desktop-1-sign-in")

    page.fill("#token", "bptt_not-a-token")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("invalid or revoked")
    sign_in(page, live_service)
    assert page.evaluate("sessionStorage.getItem('bptt.token')") == live_service.token

    # A refused CSV shows the API's reason, field by field, and creates nothing.
    page.click("text=…or paste the CSV")
    page.fill("#csv-text", "id,when,value\na,1,2\n")
    page.click("#submit-button")
    expect(page.locator("#submit-error")).to_contain_text("422")
    expect(page.locator("#submit-error")).to_contain_text("unique_id")
    page.fill("#csv-text", "")

    csv = tmp_path / "stores.csv"
    csv.write_text(series_csv())
    page.set_input_files("#csv-file", str(csv))
    page.fill("#horizon", "6")
    page.fill("#season_length", "12")
    page.select_option("#cell", "gru")
    page.fill("#epochs", str(EPOCHS))
    shoot(page, screenshots, "desktop-2-jobs-and-form")
    page.click("#submit-button")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    status, job = live_service.call("GET", f"/v1/jobs/{job_id}")
    assert status == 200
    assert job["spec"]["horizon"] == 6 and job["spec"]["model"]["cell"] == "gru"
    assert job["spec"]["quantiles"] == [0.1, 0.5, 0.9]  # the form's default

    # Live: the page follows the job while it runs (when it is seen running at all).
    try:
        expect(page.locator("main")).to_have_attribute("data-status", "running", timeout=20_000)
        expect(page.locator("#chart-loss")).not_to_have_attribute("data-points", "0")
        shoot(page, screenshots, "desktop-3-job-running")
    except AssertionError:
        pass  # it finished between two polls: the final state is checked below all the same
    check_finished_job_page(page, live_service, job_id)
    shoot(page, screenshots, "desktop-4-job-finished")

    page.click("text=← Runs")
    row = page.locator(f'tr.run[data-id="{job_id}"]')
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row).to_contain_text(f"member 5/5 · epoch {EPOCHS}/{EPOCHS}")
    shoot(page, screenshots, "desktop-5-jobs")

    # Emptying the quantiles field asks for the mean only, as its placeholder says.
    page.set_input_files("#csv-file", str(csv))
    page.fill("#horizon", "6")
    page.fill("#epochs", "1")
    page.fill("#quantiles", "")
    page.click("#submit-button")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    status, job = live_service.call("GET", f"/v1/jobs/{page.url.rsplit('/', 1)[1]}")
    assert status == 200 and job["spec"]["quantiles"] == []
    assert problems == []


def test_every_page_works_at_phone_width(
    browser: Any, live_service: Stack, screenshots: Path
) -> None:
    rows = [line.split(",") for line in series_csv().splitlines()[1:]]
    series = [{"id": name, "values": [float(y) for uid, _, y in rows if uid == name]}
              for name in ("north", "south")]
    # Members that early stopping ends long before their budget: the page still reads complete.
    status, job = live_service.call("POST", "/v1/jobs", {
        "series": series, "horizon": 6, "season_length": 12, "quantiles": [0.1, 0.9],
        "model": {"cell": "gru"}, "training": {"epochs": 300, "early_stopping_patience": 3,
                                               "learning_rate": 0.05}})
    assert status == 202, job
    ended = live_service.wait_for_status(job["id"], {"succeeded", "failed"})
    assert "early_stopping" in [m["stopped"] for m in ended["progress"]["finished_members"]]

    page, problems = new_page(browser, PHONE)
    page.goto(live_service.url + "/")
    expect(page.locator("#signin")).to_be_visible()
    shoot(page, screenshots, "phone-1-sign-in")
    sign_in(page, live_service)
    expect(page.locator(f'tr.run[data-id="{job["id"]}"] .badge')).to_have_text("succeeded")
    shoot(page, screenshots, "phone-2-jobs-and-form")
    page.click(f'tr.run[data-id="{job["id"]}"] td.name a')
    check_finished_job_page(page, live_service, job["id"], epochs_per_member=None)
    # early stopping was expected (this module's only such job: the prior share), so the
    # duration if every epoch ran is given as the bound, as the CLI gives it
    expect(page.locator("#timing-text")).to_contain_text(" (at most ")
    # Charts follow the width of the screen, not a desktop default.
    width = page.evaluate("document.querySelector('#chart-loss canvas').clientWidth")
    assert 200 < width <= 390
    shoot(page, screenshots, "phone-3-job")
    assert problems == []
