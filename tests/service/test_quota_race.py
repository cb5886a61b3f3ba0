"""The per-tenant quota of queued jobs holds under concurrent submits: many requests at once, to
the API under gunicorn (several processes and threads), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service import serve
from service.settings import Settings
from service.store import queue, repository
from service.store.db import session_factory, upgrade
from service.store.tables import Job

from .conftest import SERIES, SPEC

QUOTA = 4
CLIENTS = 24


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Settings]]:
    """(URL, token, settings) of the API under gunicorn, 2 processes x 8 threads, no workers."""
    env = {"BPTT_DATA_DIR": str(tmp_path / "data"),
           "BPTT_MAX_QUEUED_JOBS_PER_TENANT": str(QUOTA)}
    if request.param == "postgresql":
        env["BPTT_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    settings = Settings.from_env(env)
    upgrade(settings.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the broker's file lives there
    queue.prepare_broker(settings.broker_url)
    sessions = session_factory(settings)
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="busy")
        token = repository.create_token(session, tenant=tenant).token
    sessions.kw["bind"].dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = serve.start(serve.api_command("127.0.0.1", port, processes=2, threads=8,
                                        control_socket=False), {**os.environ, **env}, quiet=True)
    try:
        serve.wait_until_healthy(f"http://127.0.0.1:{port}/healthz", [api])
        yield f"http://127.0.0.1:{port}", token, settings
    finally:
        serve.stop_all([api])


def test_concurrent_submits_never_exceed_the_queued_quota(served):
    url, token, settings = served
    body = json.dumps({"series": SERIES, **SPEC}).encode()
    start, statuses = threading.Barrier(CLIENTS), []

    def submit() -> None:
        request = urllib.request.Request(f"{url}/v1/jobs", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        start.wait(timeout=60)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    clients = [threading.Thread(target=submit) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=120)
    sessions = session_factory(settings)
    with sessions() as session:
        queued = session.scalar(select(func.count()).select_from(Job)
                                .where(Job.status == "queued"))
    sessions.kw["bind"].dispose()
    assert Counter(statuses) == {202: QUOTA, 429: CLIENTS - QUOTA}
    assert queued == QUOTA
