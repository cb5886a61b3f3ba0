"""The dashboard as a run tracker, in Chromium against the real service: the runs table (sort,
filter, sweep groups, pages, live updates), the sweep page, compare, readable charts, and the
job page's actions. Each test checks what is drawn (rows, points, axis titles and ticks as the
canvases drew them), not only that a page loads.

With BPTT_DOCS_SCREENSHOTS=1 the screenshots of each view are written to docs/ as well (the
ones README shows): `BPTT_DOCS_SCREENSHOTS=1 python -m pytest tests/dashboard/test_tracker.py`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from service.api.sweep_space import trials as sweep_trials
from tests.e2e.conftest import Stack

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402  (after the skip)

from tests.dashboard.browsing import (  # noqa: E402
    DESKTOP,
    PHONE,
    drawn_text,
    new_page,
    shoot,
    sign_in,
    wait_painted,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
TRAINING_TIMEOUT_MS = 240_000  # the first job may wait for the worker to load its kernels
REFRESH_TIMEOUT_MS = 40_000  # the runs table refreshes every 15 s while nothing runs
HORIZON = 6
SPACE = {"model.cell": ["gru", "lstm"], "model.hidden_size": [4, 8],
         "training.learning_rate": {"log_uniform": [0.001, 0.03]}}
PINK = (216, 27, 96)  # the best trial (charts.js COLORS.best)


def monthly_series(count: int = 2, length: int = 96) -> list[dict[str, Any]]:
    """`count` monthly series from 2015-01: trend, season and a wiggle."""
    return [{"id": f"store-{k}", "start": "2015-01", "values": [
        round(100 + 0.5 * i + 12 * math.sin(2 * math.pi * i / 12 + k) + 3 * math.sin(i * 1.7), 3)
        for i in range(length)]} for k in range(count)]


# A job that keeps a worker busy for minutes unless cancelled: 20 members x 1,000 epochs, no early
# stopping. (300 epochs once took long enough only because every checkpoint carried the
# history; a few seconds now, and the job could end before the test cancels it.)
LONG_TRAINING = {"epochs": 1000, "ensemble": 20, "early_stopping_patience": 1000}


def job_body(**fields: Any) -> dict[str, Any]:
    """A small job on monthly_series(), `fields` laid over it."""
    return {"series": monthly_series(), "horizon": HORIZON, "season_length": 12,
            "training": {"epochs": 6, "ensemble": 1}, **fields}


@dataclass
class Runs:
    """What the tests look at: three jobs, a sweep, and their documents once finished."""

    gru: dict[str, Any]  # "gru small": two ensemble members, so the loss chart marks member 2
    lstm: dict[str, Any]  # "lstm wide"
    rnn: dict[str, Any]  # unnamed, cross-validated (a CV MASE)
    sweep: dict[str, Any]  # "search": 4 trials over three settings (parallel coordinates)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return [self.gru, self.lstm, self.rnn]


def submit(service: Stack, body: dict[str, Any], path: str = "/v1/jobs") -> dict[str, Any]:
    status, answer = service.call("POST", path, body)
    assert status == 202, answer
    return answer


def both_cells_seed() -> int:
    """The first seed whose random trials try both cells (so the cell scatter has two columns)."""
    return next(seed for seed in range(100) if {t["model.cell"] for t in sweep_trials(
        SPACE, "random", 4, seed)} == {"gru", "lstm"})


@pytest.fixture(scope="module")
def runs(live_service: Stack) -> Runs:
    """Submit the jobs and the sweep, and wait until every one has finished."""
    gru = submit(live_service, job_body(name="gru small", labels={"team": "north"},
                                        model={"cell": "gru", "hidden_size": 8},
                                        training={"epochs": 6, "ensemble": 2}))
    lstm = submit(live_service, job_body(name="lstm wide", labels={"team": "south"},
                                         model={"cell": "lstm", "hidden_size": 16}))
    rnn = submit(live_service, job_body(labels={"team": "north"},
                                        model={"cell": "rnn", "hidden_size": 8},
                                        cross_validation={"windows": 2, "step": 6}))
    sweep = submit(live_service, {
        "job": job_body(training={"epochs": 4, "ensemble": 1}), "space": SPACE,
        "strategy": "random", "budget": 4, "seed": both_cells_seed(), "name": "search",
        "labels": {"team": "north"}}, "/v1/sweeps")
    for job in (gru, lstm, rnn, *({"id": t["job_id"]} for t in sweep["trials"])):
        ended = live_service.wait_for_status(job["id"], {"succeeded", "failed", "cancelled"})
        assert ended["status"] == "succeeded", ended
    documents = [live_service.call("GET", f"/v1/jobs/{job['id']}")[1] for job in (gru, lstm, rnn)]
    _, sweep = live_service.call("GET", f"/v1/sweeps/{sweep['id']}")
    assert sweep["status"] == "succeeded"
    return Runs(*documents, sweep)


def document_screenshot(path: Path, name: str) -> None:
    """Copy a screenshot to docs/ when asked to (BPTT_DOCS_SCREENSHOTS=1)."""
    if os.environ.get("BPTT_DOCS_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / f"dashboard-{name}.png")


def open_signed_in(browser: Any, service: Stack, path: str, **context: Any
                   ) -> tuple[Page, list[str]]:
    """A new page, signed in, at `path`."""
    page, problems = new_page(browser, DESKTOP, **context)
    page.goto(service.url + "/")
    sign_in(page, service)
    if path != "/":
        page.goto(service.url + path)
    return page, problems


def api_ids(service: Stack, query: str) -> list[str]:
    """Job ids of GET /v1/jobs?query, every page."""
    ids: list[str] = []
    cursor = ""
    while True:
        status, page = service.call("GET", f"/v1/jobs?limit=100&{query}{cursor}")
        assert status == 200, page
        ids += [job["id"] for job in page["jobs"]]
        if page["next_cursor"] is None:
            return ids
        cursor = f"&cursor={page['next_cursor']}"


def table_ids(page: Page, kind: str = "run") -> list[str]:
    """The data-id of the table's rows of `kind` (run or trial), top to bottom."""
    return page.eval_on_selector_all(f"#runs tbody tr.{kind}",
                                     "rows => rows.map(r => r.dataset.id)")


def standalone(service: Stack, ids: list[str]) -> list[str]:
    """Those of `ids` that are no sweep's trial, in order."""
    trials = set(api_ids(service, "sweep_id=none"))
    return [i for i in ids if i in trials]


# --- the runs table ---

def test_the_runs_table_sorts_by_every_column_and_keeps_it(
        browser: Any, live_service: Stack, runs: Runs) -> None:
    page, problems = open_signed_in(browser, live_service, "/")
    table = page.locator("#runs")
    expect(page.locator("#runs tbody tr.run")).to_have_count(3)
    expect(page.locator("#runs tbody tr.sweep")).to_have_count(1)
    expect(page.locator("#runs tbody tr.trial")).to_have_count(0)  # collapsed by default
    sweep_row = page.locator(f'tr.sweep[data-sweep-id="{runs.sweep["id"]}"]')
    expect(sweep_row).to_contain_text("4/4 trials finished")
    expect(sweep_row).to_contain_text(f"best {runs.sweep['best_score']:.4g}")
    headers = page.locator("#runs thead button.sort")
    expect(headers).to_have_count(10)
    expect(page.locator('#runs thead th[aria-sort="descending"]')).to_have_text("Created ▼")

    # Each column sorts the whole list on the server, its first click the usual way round.
    first_click = {"name": "name", "status": "status", "cell": "cell", "hidden": "-hidden",
                   "series": "-series", "horizon": "-horizon", "val_loss": "val_loss",
                   "cv_mase": "cv_mase", "duration": "-duration", "created": "-created"}
    for column, sort in first_click.items():
        page.click(f'#runs thead button[data-sort="{column}"]')
        expect(table).to_have_attribute("data-sort", sort)
        expected = standalone(live_service, api_ids(live_service, f"sort={sort}"))
        expect(page.locator("#runs tbody tr.run")).to_have_count(3)
        assert table_ids(page) == expected, sort

    page.click('#runs thead button[data-sort="val_loss"]')
    expect(table).to_have_attribute("data-sort", "val_loss")
    shown = page.eval_on_selector_all("#runs tbody tr.run td:nth-child(8)",
                                      "cells => cells.map(c => Number(c.textContent))")
    assert shown == sorted(shown) and len(shown) == 3  # lowest loss first, as printed
    page.click('#runs thead button[data-sort="val_loss"]')  # again: the other way
    expect(table).to_have_attribute("data-sort", "-val_loss")
    expect(page.locator('#runs thead th[aria-sort="descending"] button')).to_have_attribute(
        "data-sort", "val_loss")
    assert table_ids(page) == standalone(live_service, api_ids(live_service, "sort=-val_loss"))

    # The sort is in the URL: a reload (or a shared link) shows the same table.
    assert parse_qs(urlparse(page.url).query)["sort"] == ["-val_loss"]
    page.reload()
    expect(table).to_have_attribute("data-sort", "-val_loss")
    assert table_ids(page) == standalone(live_service, api_ids(live_service, "sort=-val_loss"))
    assert problems == []


def test_the_runs_table_filters_groups_and_stays_put_while_it_updates(
        browser: Any, live_service: Stack, runs: Runs, screenshots: Path) -> None:
    page, problems = open_signed_in(browser, live_service, "/?sort=name")
    rows = page.locator("#runs tbody tr.run")
    expect(rows).to_have_count(3)

    page.select_option("#filter-status", "failed")
    expect(rows).to_have_count(0)
    expect(page.locator("#jobs-empty")).to_have_text("No runs match these filters.")
    page.select_option("#filter-status", "")

    page.select_option("#filter-cell", "gru")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", runs.gru["id"])
    sweep = page.locator("#runs tbody tr.sweep")
    expect(sweep).to_have_count(1)  # some of its trials train GRUs
    sweep.locator("button.toggle").click()
    gru_trials = [t["job_id"] for t in runs.sweep["trials"] if t["settings"]["model.cell"] == "gru"]
    expect(page.locator("#runs tbody tr.trial")).to_have_count(len(gru_trials))
    assert sorted(table_ids(page, "trial")) == sorted(gru_trials)
    cells = page.eval_on_selector_all("#runs tbody tr.trial td:nth-child(4)",
                                      "cells => cells.map(c => c.textContent)")
    assert set(cells) == {"gru"}
    page.select_option("#filter-cell", "")

    page.fill("#filter-labels", "team:south")
    page.press("#filter-labels", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", runs.lstm["id"])
    expect(page.locator("#runs tbody tr.sweep")).to_have_count(0)
    page.click("#filter-clear")
    expect(rows).to_have_count(3)

    # A label on a row filters by it.
    page.locator(f'tr.run[data-id="{runs.gru["id"]}"] button.chip').click()
    expect(page.locator("#filter-labels")).to_have_value("team:north")
    expect(rows).to_have_count(2)
    assert set(table_ids(page)) == {runs.gru["id"], runs.rnn["id"]}
    expect(page.locator("#runs tbody tr.trial")).to_have_count(4)  # the group stayed open
    assert parse_qs(urlparse(page.url).query) == {"sort": ["name"], "label": ["team:north"]}
    path = shoot(page, screenshots, "tracker-runs", full_page=False)
    document_screenshot(path, "runs")

    # A new run appears by itself; sort, filter and the open group stay as they were.
    new = submit(live_service, job_body(name="added later", labels={"team": "north"},
                                        training={"epochs": 1, "ensemble": 1}))
    expect(page.locator(f'tr.run[data-id="{new["id"]}"]')).to_have_count(
        1, timeout=REFRESH_TIMEOUT_MS)
    live_service.wait_for_status(new["id"], {"succeeded"})
    expect(page.locator(f'tr.run[data-id="{new["id"]}"] .badge')).to_have_text(
        "succeeded", timeout=REFRESH_TIMEOUT_MS)
    expect(page.locator("#runs")).to_have_attribute("data-sort", "name")
    expect(page.locator("#filter-labels")).to_have_value("team:north")
    expect(page.locator("#runs tbody tr.trial")).to_have_count(4)
    assert table_ids(page) == standalone(
        live_service, api_ids(live_service, "sort=name&label=team:north"))
    assert problems == []


def test_the_runs_table_pages_with_the_api_cursor(browser: Any, live_service: Stack,
                                                 runs: Runs) -> None:
    everything = api_ids(live_service, "")
    page, problems = open_signed_in(browser, live_service, "/?limit=2")
    table = page.locator("#runs")
    more = page.locator("#jobs-more")
    loaded = 2
    expect(table).to_have_attribute("data-rows", str(loaded))
    while loaded < len(everything):
        more.click()
        loaded = min(loaded + 2, len(everything))
        expect(table).to_have_attribute("data-rows", str(loaded))
    expect(more).to_be_hidden()
    page.locator("#runs tbody tr.sweep button.toggle").click()
    expect(page.locator("#runs tbody tr.trial")).to_have_count(4)
    shown = table_ids(page) + table_ids(page, "trial")
    assert sorted(shown) == sorted(everything) and len(set(shown)) == len(shown)
    assert problems == []


# --- the sweep page ---

def test_the_sweep_page(browser: Any, live_service: Stack, runs: Runs,
                        screenshots: Path) -> None:
    sweep = runs.sweep
    page, problems = open_signed_in(browser, live_service, f"/sweeps/{sweep['id']}")
    expect(page.locator("#sweep-status")).to_have_text("succeeded")
    expect(page.locator("#sweep-name")).to_have_text("search")
    assert page.evaluate("document.querySelector('#sweep-progress').value") == 4
    rows = page.locator("#trials tbody tr")
    expect(rows).to_have_count(4)
    best = page.locator("#trials tbody tr.best")
    expect(best).to_have_count(1)
    expect(best).to_have_attribute("data-id", sweep["best_job_id"])
    expect(best.locator("td").last).to_have_text(f"{sweep['best_score']:.4g}")
    headers = page.eval_on_selector_all("#trials thead th", "hs => hs.map(h => h.textContent)")
    assert headers == ["trial", "run", "status", *SPACE, "score"]

    # One scatter per swept setting: every scored trial a point, the best one drawn apart.
    charts = page.locator("#scatters .chart")
    expect(charts).to_have_count(3)
    for i, path in enumerate(SPACE):
        chart = charts.nth(i)
        expect(chart).to_have_attribute("data-param", path)
        expect(chart).to_have_attribute("data-points", "4")
        texts = drawn_text(page, f'#scatters .chart[data-param="{path}"] canvas')
        assert {path, "score: val loss (scaled)"} <= texts, texts
        wait_painted(page, f'#scatters .chart[data-param="{path}"] canvas', PINK, 20)
    assert {"gru", "lstm"} <= drawn_text(page, '#scatters .chart[data-param="model.cell"] canvas')

    # More than two settings: parallel coordinates, a line per trial through every axis.
    expect(page.locator("#parallel-card")).to_be_visible()
    expect(page.locator("#parallel path.trial")).to_have_count(4)
    expect(page.locator("#parallel path.trial.best")).to_have_count(1)
    names = page.eval_on_selector_all("#parallel text.axis-name",
                                      "ts => ts.map(t => t.textContent)")
    assert names == [*SPACE, "score: val loss (scaled)"]
    path_points = page.eval_on_selector_all("#parallel path.trial",
                                            "ps => ps.map(p => p.getAttribute('d'))")
    assert all(d.count("L") == 3 for d in path_points)  # four axes: three segments each

    # A forecast with the best trial, dated from the series' start.
    page.click("#forecast-best")
    forecast = page.locator("#chart-forecast")
    expect(forecast).to_have_attribute("data-state", "ready")
    expect(forecast).to_have_attribute("data-x-kind", "dates")
    expect(forecast).to_have_attribute("data-first-forecast", "2023-01-01")
    expect(forecast).to_have_attribute("data-horizon", str(HORIZON))
    texts = drawn_text(page, "#chart-forecast canvas")
    assert {"value (series units)", "date (UTC)", "2023"} <= texts, texts
    page.mouse.move(0, 0)
    path = shoot(page, screenshots, "tracker-sweep")
    document_screenshot(path, "sweep")
    assert problems == []


def test_a_sweep_is_cancelled_from_its_page(browser: Any, live_service: Stack,
                                            runs: Runs) -> None:
    sweep = submit(live_service, {
        "job": job_body(training=LONG_TRAINING),
        "space": {"model.hidden_size": [4, 8]}, "strategy": "grid"}, "/v1/sweeps")
    page, problems = open_signed_in(browser, live_service, f"/sweeps/{sweep['id']}")
    page.click("#cancel-sweep")
    expect(page.locator("#sweep-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#cancel-sweep")).to_be_hidden(timeout=60_000)
    _, after = live_service.call("GET", f"/v1/sweeps/{sweep['id']}")
    assert after["status"] == "cancelled"
    assert problems == []


# --- compare ---

def test_compare_overlays_losses_and_lists_what_differs(
        browser: Any, live_service: Stack, runs: Runs, screenshots: Path) -> None:
    page, problems = open_signed_in(browser, live_service, "/?sort=name")
    compare = page.locator("#compare")
    expect(compare).to_be_disabled()
    for job in runs.jobs:
        page.locator(f'tr.run[data-id="{job["id"]}"] input[type=checkbox]').check()
    expect(compare).to_have_text("Compare 3 runs")
    compare.click()
    page.wait_for_url("**/compare?ids=*")
    ids = parse_qs(urlparse(page.url).query)["ids"][0].split(",")
    assert sorted(ids) == sorted(job["id"] for job in runs.jobs)
    order = {job["id"]: job for job in runs.jobs}
    shown = [order[i] for i in ids]
    epochs = [len(live_service.call("GET", f"/v1/jobs/{j['id']}/metrics")[1]["metrics"])
              for j in shown]
    assert epochs[ids.index(runs.gru["id"])] == 12  # two members of 6 epochs

    expect(page.locator("#compare-summary")).to_have_attribute("data-runs", "3")
    val = page.locator("#chart-val")
    expect(val).to_have_attribute("data-points", str(max(epochs)))
    expect(val).to_have_attribute("data-curves", ",".join(map(str, epochs)))
    texts = drawn_text(page, "#chart-val canvas")
    assert "val MSE + pinball (scaled)" in texts and "epoch" in texts, texts
    legend = page.locator("#chart-val .u-legend").inner_text()
    assert all(name in legend for name in ("gru small", "lstm wide", runs.rnn["id"][:8]))

    grads = page.locator("#grad-charts .chart")
    expect(grads).to_have_count(3)
    for k, count in enumerate(epochs):
        expect(grads.nth(k)).to_have_attribute("data-points", str(count))
        assert "gradient L2 norm" in drawn_text(page, f"#grad-charts figure:nth-child({k + 1}) "
                                                      "canvas")

    differing = page.eval_on_selector_all("#spec-diff tbody tr", "rs => rs.map(r => "
                                          "[r.dataset.path, ...[...r.cells].slice(1).map("
                                          "c => c.textContent)])")
    paths = [row[0] for row in differing]
    assert {"model.cell", "model.hidden_size", "training.ensemble",
            "cross_validation.windows"} <= set(paths)
    assert all(len(set(row[1:])) > 1 for row in differing)  # only fields that differ
    cell_row = next(row for row in differing if row[0] == "model.cell")
    assert cell_row[1:] == [job["cell"] for job in shown]
    page.check("#diff-all")
    every = page.locator("#spec-diff tbody tr")
    expect(every).not_to_have_count(len(differing))
    assert every.count() > len(differing)
    page.uncheck("#diff-all")
    path = shoot(page, screenshots, "tracker-compare")
    document_screenshot(path, "compare")

    # One run (given once or twice), or seven, is not a comparison.
    for query in (runs.gru["id"], f"{runs.gru['id']},{runs.gru['id']}"):
        page.goto(f"{live_service.url}/compare?ids={query}")
        expect(page.locator("#compare-error")).to_contain_text("Pick 2 to 6 runs")
    page.goto(f"{live_service.url}/compare?ids=" + ",".join(f"{n:08x}" for n in range(7)))
    expect(page.locator("#compare-error")).to_contain_text("(got 7)")
    assert problems == []


# --- readable charts on the job page ---

def test_the_job_page_titles_its_axes_ticks_the_heatmap_and_dates_the_forecast(
        browser: Any, live_service: Stack, runs: Runs, screenshots: Path) -> None:
    job = runs.gru
    page, problems = open_signed_in(browser, live_service, f"/jobs/{job['id']}")
    expect(page.locator("#chart-forecast")).to_have_attribute("data-state", "ready",
                                                             timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator("#job-name")).to_have_text("gru small")
    expect(page.locator("#job-labels")).to_have_text("team: north")
    titles = {"#chart-loss": "MSE + pinball (scaled)", "#chart-grad": "gradient L2 norm",
              "#chart-clip": "clipped updates (%)", "#chart-memory": "horizon (steps)",
              "#chart-forecast": "value (series units)"}
    for chart, title in titles.items():
        expect(page.locator(chart)).to_have_attribute("data-y-title", title)
        texts = drawn_text(page, f"{chart} canvas")
        assert title in texts, (chart, texts)  # drawn, not only declared

    # The loss chart marks where the second ensemble member starts.
    finished = job["progress"]["finished_members"]
    start = 1 + finished[0]["epochs"]
    expect(page.locator("#chart-loss")).to_have_attribute("data-markers", str(start))
    assert "member 2" in drawn_text(page, "#chart-loss canvas")

    # The heatmap's axes: epochs down (from 1), lags across (0: the last input step).
    epochs = job["progress"]["epochs_done"]
    expect(page.locator("#heatmap")).to_have_attribute("data-epochs", str(epochs))
    y_ticks = page.locator("#heatmap-y").get_attribute("data-ticks").split(",")
    x_ticks = page.locator("#heatmap-x").get_attribute("data-ticks").split(",")
    steps = int(page.locator("#heatmap").get_attribute("data-steps"))
    assert y_ticks[0] == "1" and all(1 <= int(t) <= epochs for t in y_ticks) and len(y_ticks) > 2
    lags = [int(t) for t in x_ticks]
    assert lags == sorted(lags, reverse=True) and lags[-1] == 0 and len(lags) > 2
    assert steps - 1 - lags[0] < steps / 4  # the oldest lags are labelled too
    assert page.locator("#heatmap-y text").count() == len(y_ticks)
    assert page.locator("#heatmap-x text").count() == len(x_ticks)

    # Dates on the forecast: the series start in 2015-01 and have 96 months.
    forecast = page.locator("#chart-forecast")
    expect(forecast).to_have_attribute("data-x-kind", "dates")
    expect(forecast).to_have_attribute("data-first-forecast", "2023-01-01")
    assert "2023" in drawn_text(page, "#chart-forecast canvas")
    over = page.locator("#chart-forecast .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2, steps=5)
    legend_x = page.locator("#chart-forecast .u-legend .u-series").first.inner_text()
    assert "2023-06-01" in legend_x, legend_x  # the last forecast month, under the cursor
    page.mouse.move(0, 0)
    path = shoot(page, screenshots, "tracker-job")
    document_screenshot(path, "job")
    assert problems == []


def test_the_views_fit_a_phone(browser: Any, live_service: Stack, runs: Runs,
                               screenshots: Path) -> None:
    page, problems = new_page(browser, PHONE)
    page.goto(live_service.url + "/")
    sign_in(page, live_service)
    expect(page.locator("#runs tbody tr.run").first).to_be_visible()
    shoot(page, screenshots, "tracker-phone-runs")  # the table scrolls inside its card
    page.goto(f"{live_service.url}/sweeps/{runs.sweep['id']}")
    expect(page.locator("#parallel path.trial")).to_have_count(4)
    shoot(page, screenshots, "tracker-phone-sweep")
    ids = ",".join(job["id"] for job in runs.jobs)
    page.goto(f"{live_service.url}/compare?ids={ids}")
    expect(page.locator("#grad-charts .chart[data-state=ready]")).to_have_count(3)
    width = page.evaluate("document.querySelector('#chart-val canvas').clientWidth")
    assert 200 < width <= 390
    shoot(page, screenshots, "tracker-phone-compare")
    assert problems == []


# --- actions on the job page ---

def test_empty_charts_say_what_comes_and_a_job_is_cancelled_and_deleted_from_its_page(
        browser: Any, live_service: Stack, runs: Runs) -> None:
    # A long job keeps the only worker busy, so the next one waits in the queue.
    long = submit(live_service, job_body(training=LONG_TRAINING))
    live_service.wait_for_status(long["id"], {"running"})
    waiting = submit(live_service, job_body(name="waits"))
    page, problems = open_signed_in(browser, live_service, f"/jobs/{waiting['id']}")
    expect(page.locator("#job-status")).to_have_text("queued")
    for chart in ("#chart-loss", "#chart-grad", "#chart-clip", "#chart-memory"):
        expect(page.locator(chart)).to_have_attribute("data-state", "empty")
        expect(page.locator(f"{chart} .chart-empty")).to_contain_text(
            "when a worker has started the job and finished its first epoch")
        expect(page.locator(f"{chart} .uplot")).to_be_hidden()
    expect(page.locator("#heatmap-empty")).to_contain_text("when a worker has started the job")
    expect(page.locator("#chart-forecast .chart-empty")).to_have_text(
        "The forecast of each series appears here once the job has succeeded.")
    expect(page.locator("#delete")).to_be_hidden()  # not while it may still run

    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.locator("#chart-loss .chart-empty")).to_have_text(
        "The job cancelled before any epoch was recorded.")
    expect(page.locator("#chart-forecast .chart-empty")).to_have_text(
        "No forecast: the job cancelled.")
    page.click("#delete")
    expect(page.locator("#delete-ask")).to_be_visible()
    page.click("#delete-keep")  # changing one's mind deletes nothing
    expect(page.locator("#delete-ask")).to_be_hidden()
    assert live_service.call("GET", f"/v1/jobs/{waiting['id']}")[0] == 200
    page.click("#delete")
    page.click("#delete-confirm")
    page.wait_for_url(live_service.url + "/")
    assert live_service.call("GET", f"/v1/jobs/{waiting['id']}")[0] == 404

    # The running job stops when asked, from its page.
    page.goto(f"{live_service.url}/jobs/{long['id']}")
    expect(page.locator("#job-status")).to_have_text("running")
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#delete")).to_be_visible()
    assert problems == []


def test_downloads_and_the_curl_command_that_submits_the_job_again(
        browser: Any, live_service: Stack, runs: Runs, tmp_path: Path) -> None:
    job = runs.gru
    page, problems = open_signed_in(browser, live_service, f"/jobs/{job['id']}",
                                    permissions=["clipboard-read", "clipboard-write"])
    expect(page.locator("#download-model")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)

    with page.expect_download() as model:
        page.click("#download-model")
    assert model.value.suggested_filename == f"bptt-{job['id']}.safetensors"
    weights = Path(model.value.path()).read_bytes()
    _, served = live_service.call("GET", f"/v1/jobs/{job['id']}/model")
    assert weights == served and len(weights) > 1000
    expect(page.locator("#action-note")).to_contain_text(f"{len(weights):,} bytes")

    with page.expect_download() as forecast:
        page.click("#download-forecast")
    assert forecast.value.suggested_filename == f"forecast-{job['id'][:8]}.csv"
    rows = list(csv.reader(io.StringIO(Path(forecast.value.path()).read_text())))
    assert rows[0] == ["unique_id", "ds", "step", "mean", "q0.1", "q0.5", "q0.9"]
    assert len(rows) == 1 + 2 * HORIZON
    assert [r[:3] for r in rows[1:3]] == [["store-0", "2023-01-01", "1"],
                                         ["store-0", "2023-02-01", "2"]]

    # The command submits the same request again (the token read from $BPTT_TOKEN).
    page.click("#copy-curl")
    expect(page.locator("#action-note")).to_contain_text("Copied.")
    command = page.evaluate("navigator.clipboard.readText()")
    assert command == page.locator("#curl-command").inner_text()
    assert "$BPTT_TOKEN" in command and live_service.token not in command
    again = run_command(command, live_service, tmp_path)
    same_request(live_service, job, again)
    assert problems == []


def test_the_curl_command_of_a_large_dataset_uploads_a_csv(
        browser: Any, live_service: Stack, runs: Runs, tmp_path: Path) -> None:
    series = monthly_series(count=30, length=700)  # 21,000 values: past what is inlined
    job = submit(live_service, job_body(series=series, name="large", labels={"size": "21k"},
                                        training={"epochs": 1, "ensemble": 1}))
    live_service.call("POST", f"/v1/jobs/{job['id']}/cancel")  # it need not train
    page, problems = open_signed_in(browser, live_service, f"/jobs/{job['id']}",
                                    permissions=["clipboard-read", "clipboard-write"])
    expect(page.locator("#job-name")).to_have_text("large")
    page.click("#copy-curl")
    expect(page.locator("#action-note")).to_contain_text("30 series, 21,000 values: too large")
    command = page.evaluate("navigator.clipboard.readText()")
    assert "--data-binary @series.csv" in command and len(command) < 2000
    rows = ["unique_id,ds,y"] + [f"{s['id']},{i},{v}" for s in series
                                 for i, v in enumerate(s["values"])]
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    again = run_command(command, live_service, tmp_path)
    live_service.call("POST", f"/v1/jobs/{again['id']}/cancel")
    _, first = live_service.call("GET", f"/v1/jobs/{job['id']}")
    _, second = live_service.call("GET", f"/v1/jobs/{again['id']}")
    assert second["requested_spec"] == first["requested_spec"]
    assert (second["name"], second["labels"]) == ("large", {"size": "21k"})
    assert second["num_series"] == 30 and second["dataset"]["num_points"] == 21_000
    assert problems == []


def run_command(command: str, service: Stack, where: Path) -> dict[str, Any]:
    """Run a copied command in bash, as a user would paste it; the job document it printed."""
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                          cwd=where, env={**os.environ, "BPTT_TOKEN": service.token})
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def same_request(service: Stack, first: dict[str, Any], second: dict[str, Any]) -> None:
    """The second job was asked for exactly as the first: spec, name, labels and series."""
    assert second["id"] != first["id"]
    assert second["requested_spec"] == first["requested_spec"]
    assert (second["name"], second["labels"]) == (first["name"], first["labels"])
    series = [service.call("GET", f"/v1/jobs/{job['id']}/series?tail=1000")[1]["series"]
              for job in (first, second)]
    assert series[0] == series[1] and len(series[0]) == 2
