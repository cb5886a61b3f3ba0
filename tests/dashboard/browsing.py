"""Driving the dashboard in Chromium: fresh pages that record their errors and the text drawn on
their canvases, signing in, screenshots, and reading what charts painted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
STEP_TIMEOUT_MS = 30_000
# What the browser logs for the refusals the tests provoke on purpose (a bad token, a bad CSV,
# a deleted job's page).
EXPECTED_REFUSALS = re.compile(r"the server responded with a status of (401|404|422)")
# Every string a canvas draws with fillText, kept on the canvas (uPlot draws its axis titles,
# tick labels and our markers that way): what a chart shows, not what its data attributes say.
RECORD_TEXT = """
(() => {
  const fillText = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    (this.canvas.drawnText ??= new Set()).add(String(text));
    return fillText.call(this, text, ...rest);
  };
})();
"""


def new_page(browser: Any, device: dict[str, Any], **context: Any) -> tuple[Page, list[str]]:
    """A page in a fresh context (its own sessionStorage) and the errors it will log (script
    errors, CSP violations, failed loads)."""
    browser_context = browser.new_context(**device, **context)
    browser_context.set_default_timeout(STEP_TIMEOUT_MS)
    browser_context.add_init_script(RECORD_TEXT)
    page = browser_context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not EXPECTED_REFUSALS.search(m.text) else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page, problems


def sign_in(page: Page, service: Stack) -> None:
    """Use the sign-in form."""
    page.fill("#token", service.token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()


def shoot(page: Page, where: Path, name: str, *, full_page: bool = True) -> Path:
    """A screenshot, after checking that nothing is wider than the viewport."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow} px wider than the viewport"
    path = where / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def drawn_text(page: Page, canvas: str) -> set[str]:
    """Every string the canvas (a selector) has drawn with fillText."""
    return set(page.evaluate("(s) => [...(document.querySelector(s).drawnText ?? [])]", canvas))


def painted(page: Page, canvas: str, rgb: tuple[int, int, int] | None = None) -> dict[str, int]:
    """Pixels of a canvas that are painted (or near `rgb`), and how many colours it holds."""
    return page.evaluate(f"([selector, rgb]) => ({COUNT_PIXELS})(selector, rgb)",
                         [canvas, list(rgb) if rgb else None])


def wait_painted(page: Page, canvas: str, rgb: tuple[int, int, int], at_least: int) -> None:
    """Wait until the canvas has `at_least` pixels near `rgb`. A chart draws in the frame after
    its data arrives, and a resize (a scrollbar appearing, say) clears it until the next one."""
    page.wait_for_function(f"([selector, rgb, n]) => ({COUNT_PIXELS})(selector, rgb).near >= n",
                           arg=[canvas, list(rgb), at_least])


COUNT_PIXELS = """(selector, rgb) => {
            const canvas = document.querySelector(selector);
            const context = canvas.getContext("2d");
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0, near = 0;
            const colours = new Set();
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] === 0) continue;
                painted += 1;
                colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
                if (rgb && Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1])
                    + Math.abs(data[i + 2] - rgb[2]) < 40) near += 1;
            }
            return {painted, near, colours: colours.size};
        }"""
