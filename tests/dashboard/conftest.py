"""Fixtures: the app on SQLite (shared with tests/service), the whole service running for real
(the API under gunicorn and a Celery worker, on the embedded stack) and a headless Chromium
driven by Playwright. Browser tests are skipped when Chromium or Playwright is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SUMMARY_LINES
from tests.e2e.conftest import Stack, start_stack
from tests.service.conftest import (  # noqa: F401  (fixtures, registered by being imported)
    app,
    auth,
    client,
    make_token,
    other_auth,
    sessions,
    settings,
    trained_weights,
    worker,
)

# Debian's package; CI installs it in .ci/run. Playwright's own browser downloads are never used.
CHROMIUM = os.environ.get("BPTT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's) under Playwright, for the whole run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are saved: $BPTT_TEST_ARTIFACTS/dashboard, else a temporary dir."""
    root = os.environ.get("BPTT_TEST_ARTIFACTS")
    where = Path(root) / "dashboard" if root else tmp_path_factory.mktemp("screenshots")
    where.mkdir(parents=True, exist_ok=True)
    line = f"dashboard screenshots: {where}"
    SUMMARY_LINES.append(line)  # said after the results
    print(line)  # and in a failing test's captured output
    return where


@pytest.fixture(scope="module")
def live_service(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API under gunicorn and one Celery worker on SQLite (the embedded stack)."""
    # `browser` first: without Chromium the test is skipped before any process starts.
    env = {**os.environ, "BPTT_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    yield from start_stack(env, workers=1)
