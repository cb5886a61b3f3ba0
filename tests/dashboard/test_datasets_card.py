"""The jobs page's datasets card in a real browser against the real service: it lists the
tenant's uploaded datasets once signed in, as text, and pages on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.client import Client
from tests.e2e.conftest import Stack

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402  (after the skip)

STEP_TIMEOUT_MS = 30_000


def test_the_jobs_page_lists_the_datasets(browser: Any, live_service: Stack, tmp_path: Path,
                                          screenshots: Path) -> None:
    client = Client(live_service.url, live_service.token)
    made = []
    for i in range(22):  # one more than a page of 20 ... and one more
        name = f"<b>shop-{i}</b>.csv"  # a name that must stay text
        path = tmp_path / f"shop-{i}.csv"
        path.write_text("unique_id,ds,y\n" + "".join(
            f"s{k},2020-{m:02d},{k + m}\n" for k in range(i + 1) for m in range(1, 13)))
        made.append(client.upload("/v1/datasets", path, content_type="text/csv",
                                  gzipped=False, query={"name": name}))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_service.url + "/")
    expect(page.locator("#datasets")).to_be_hidden()  # nothing is asked before signing in
    page.fill("#token", live_service.token)
    page.click("#signin-form button[type=submit]")
    rows = page.locator("#datasets tbody tr")
    expect(rows).to_have_count(20)
    newest = made[-1]
    first = rows.nth(0).locator("td")
    expect(first.nth(0)).to_have_text("<b>shop-21</b>.csv")
    expect(first.nth(1)).to_have_text(newest["id"][:8])
    expect(first.nth(2)).to_have_text("22")
    expect(first.nth(3)).to_have_text("264")
    expect(first.nth(6)).to_have_text("MS")
    assert page.locator("#datasets b").count() == 0
    page.click("#datasets-more")
    expect(rows).to_have_count(22)
    expect(rows.nth(21).locator("td").nth(1)).to_have_text(made[0]["id"][:8])
    page.screenshot(path=str(screenshots / "datasets-card.png"), full_page=True)
    assert errors == []
    context.close()
