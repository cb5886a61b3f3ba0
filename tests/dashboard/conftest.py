"""Fixtures: the app on SQLite (shared with tests/service), the whole service running for real
(the API under gunicorn and a Celery worker, on the embedded stack) and a headless Chromium
driven by Playwright. Browser tests are skipped when Chromium or Playwright is missing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from service import db, repository, serve
from service.settings import Settings
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
SCREENSHOTS: list[Path] = []  # where screenshots went, for the summary at the end of the run


@dataclass
class LiveService:
    """The running API and worker, and a token of a tenant of their own."""

    url: str
    token: str
    processes: list = field(default_factory=list)

    def call(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON) of one API request as the tenant."""
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


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
    SCREENSHOTS.append(where)
    print(f"dashboard screenshots: {where}")
    return where


@pytest.fixture(scope="module")
def live_service(browser: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LiveService]:
    """The API under gunicorn and one Celery worker on SQLite (the embedded stack)."""
    # `browser` first: without Chromium the test is skipped before any process starts.
    env = {**os.environ, "BPTT_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    live_settings = Settings.from_env(env)
    db.upgrade(live_settings.database_url)
    factory = db.session_factory(live_settings)
    with factory.begin() as session:
        tenant = repository.create_tenant(session, name="dashboard")
        token = repository.create_token(session, tenant=tenant).token
    factory.kw["bind"].dispose()
    port = _free_port()
    service = LiveService(f"http://127.0.0.1:{port}", token)
    service.processes = [
        serve.start(serve.api_command("127.0.0.1", port), env, quiet=True),
        serve.start(serve.worker_command("dashboard"), env, quiet=True),
    ]
    try:
        serve.wait_until_healthy(f"{service.url}/healthz", service.processes)
        yield service
    finally:
        serve.stop_all(service.processes)


def wait_for_status(service: LiveService, job_id: str, wanted: set[str],
                    deadline_s: float = 180) -> dict[str, Any]:
    """Poll the job through the API until its status is one of `wanted`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        status, job = service.call("GET", f"/v1/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in wanted:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {wanted}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the screenshots are, after the results."""
    for where in SCREENSHOTS:
        terminalreporter.write_line(f"dashboard screenshots: {where}")
