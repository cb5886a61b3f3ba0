"""The whole system as users run it: the API under gunicorn and Celery worker processes, on the
embedded stack (SQLite data and broker) or the production one (PostgreSQL and Redis, each a real
server started for the test run). Tests talk to it over HTTP only."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from service import serve
from service.settings import Settings
from service.store import db, repository
from tests.service import pg_server
from tests.workers import redis_server

DEADLINE_S = 240  # every wait here ends by itself


@dataclass
class Stack:
    """A running API and workers, and how to reach them."""

    url: str
    token: str
    env: dict[str, str]
    port: int
    api: object = None
    workers: list = field(default_factory=list)

    def call(self, method: str, path: str, payload=None, token: str | None = None):
        """(status, decoded JSON or raw bytes) of one request."""
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {token or self.token}",
            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, data, kind = answer.status, answer.read(), answer.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, data, kind = exc.code, exc.read(), exc.headers.get_content_type()
        return status, (json.loads(data) if data and "json" in kind else data)

    def wait_for_status(self, job_id: str, wanted: set[str]) -> dict:
        """Poll the job until its status is one of `wanted`."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            status, job = self.call("GET", f"/v1/jobs/{job_id}")
            assert status == 200, job
            if job["status"] in wanted:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never reached {wanted}: {job}")

    def restart_api(self) -> None:
        """Stop the API process and start a new one on the same port."""
        serve.stop_all([self.api])
        self.api = serve.start(serve.api_command("127.0.0.1", self.port), self.env, quiet=True)
        serve.wait_until_healthy(f"{self.url}/healthz", [self.api])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(env: dict[str, str], workers: int) -> Iterator[Stack]:
    """Migrate, make a tenant and token, start the API and `workers` workers; stop them after."""
    settings = Settings.from_env(env)
    db.upgrade(settings.database_url)
    sessions = db.session_factory(settings)
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name=f"e2e{time.time_ns()}")
        token = repository.create_token(session, tenant=tenant).token
    sessions.kw["bind"].dispose()
    port = _free_port()
    stack = Stack(f"http://127.0.0.1:{port}", token, env, port)
    stack.api = serve.start(serve.api_command("127.0.0.1", port), env, quiet=True)
    stack.workers = [serve.start(serve.worker_command(f"e2e{i}"), env, quiet=True)
                     for i in range(workers)]
    try:
        serve.wait_until_healthy(f"{stack.url}/healthz", [stack.api, *stack.workers])
        yield stack
    finally:
        serve.stop_all([stack.api, *stack.workers])


def _base_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "BPTT_DATA_DIR": str(data_dir), "BPTT_LEASE_SECONDS": "3",
            "BPTT_REAPER_INTERVAL_SECONDS": "1", "BPTT_REQUEUE_AFTER_SECONDS": "2"}


@pytest.fixture(scope="module")
def postgres_and_redis(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A real PostgreSQL and a real Redis for the production stack (skipped if absent)."""
    for reason in (pg_server.missing_reason(), redis_server.missing_reason()):
        if reason:
            pytest.skip(reason)
    postgres = pg_server.start()
    redis = redis_server.RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        engine = db.make_engine(postgres.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text('CREATE DATABASE "bptt"'))
        engine.dispose()
        yield postgres.url("bptt"), redis.url
    finally:
        redis.stop()
        postgres.stop()


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    """The system with two workers, on each stack in turn."""
    env = _base_env(tmp_path_factory.mktemp("data"))
    if request.param == "production":
        database_url, broker_url = request.getfixturevalue("postgres_and_redis")
        env.update(BPTT_DATABASE_URL=database_url, BPTT_BROKER_URL=broker_url)
    yield from start_stack(env, workers=2)
