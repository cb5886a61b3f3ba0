"""Fixtures for the workers: a migrated SQLite database, sessions, and jobs written as the API
writes them (a job row and its compressed dataset)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.settings import Settings
from service.store.codec import compress_json
from service.store.db import make_engine, session_factory, upgrade
from service.store.repository import create_tenant
from service.store.tables import Dataset, EpochMetric, Job, utcnow
from tests.service import pg_server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh, migrated SQLite database; short leases so tests stay quick."""
    result = Settings.from_env({"BPTT_DATA_DIR": str(tmp_path / "data"),
                                "BPTT_LEASE_SECONDS": "2", "BPTT_REQUEUE_AFTER_SECONDS": "1",
                                "BPTT_REAPER_INTERVAL_SECONDS": "1"})
    upgrade(result.database_url)
    return result


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    """A session factory on the test database."""
    factory = session_factory(settings)
    yield factory
    factory.kw["bind"].dispose()


def series(count: int = 2, length: int = 90, seed: int = 0) -> list[dict]:
    """Seasonal series in the API's stored shape: [{"id", "values"}] with a gap."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        t = np.arange(length)
        values = 10 + 3 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.3, length)
        values = [round(float(v), 4) for v in values]
        values[20] = None
        out.append({"id": f"s{i}", "values": values})
    return out


def training_spec(**training) -> dict:
    """A small, quick spec (as the API stores it: TrainingSpec.to_dict())."""
    return bptt.TrainingSpec.from_dict({
        "horizon": 4, "season_length": 12, "model": {"hidden_size": 8},
        "training": {"epochs": 6, "ensemble": 1, "early_stopping_patience": None, **training},
    }).to_dict()


def add_job(sessions: sessionmaker[Session], spec: dict | None = None, data=None) -> str:
    """Insert a queued job and its dataset, as POST /v1/jobs does; returns the job id."""
    data = data if data is not None else series()
    with sessions() as session:
        tenant = create_tenant(session, name=f"t{utcnow().timestamp()}")
        job = Job(tenant_id=tenant.id, spec=spec or training_spec(), enqueued_at=utcnow())
        session.add(job)
        session.flush()
        session.add(Dataset(job_id=job.id, series_zlib=compress_json(data),
                            num_series=len(data), num_points=sum(len(s["values"]) for s in data)))
        session.commit()
        return job.id


DEADLINE_S = 180  # every wait in these tests ends by itself


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll predicate until it holds, or fail after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def job_row(sessions: sessionmaker[Session], job_id: str) -> Job:
    """The job as the database has it now."""
    with sessions() as session:
        return session.get(Job, job_id)


def metric_epochs(sessions: sessionmaker[Session], job_id: str) -> list[int]:
    """The epochs that have a metrics row, in order."""
    with sessions() as session:
        return list(session.scalars(select(EpochMetric.epoch)
                                    .where(EpochMetric.job_id == job_id)
                                    .order_by(EpochMetric.epoch)))


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts real `celery worker` processes on the test's database; kills them after.

    start_worker(name, **env) adds BPTT_* overrides, e.g. BPTT_BROKER_URL for Redis;
    address_space=N runs it (and its pool) under RLIMIT_AS N bytes.
    """
    started: list[subprocess.Popen] = []
    base = {**os.environ, "BPTT_DATA_DIR": str(settings.data_dir), "BPTT_LEASE_SECONDS": "2",
            "BPTT_REAPER_INTERVAL_SECONDS": "1", "BPTT_REQUEUE_AFTER_SECONDS": "1"}

    def start(name: str, address_space: int | None = None, **env: str) -> subprocess.Popen:
        log = open(settings.data_dir / f"{name}.log", "wb")  # noqa: SIM115  (closed with it)

        def limit() -> None:  # in the child, before exec: RLIMIT_AS for it and its pool
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
             "--pool", "prefork", "--concurrency", "1", "--hostname", f"{name}@%h",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            env={**base, **env}, start_new_session=True,  # kill its pool child with it
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=limit if address_space else None)
        log.close()  # the child keeps its own descriptor
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings as `settings` has them, on SQLite and then on a fresh, migrated database of
    the real PostgreSQL server."""
    env = {"BPTT_DATA_DIR": str(tmp_path / "data"), "BPTT_LEASE_SECONDS": "2",
           "BPTT_REQUEUE_AFTER_SECONDS": "1", "BPTT_REAPER_INTERVAL_SECONDS": "1"}
    if request.param == "sqlite":
        result = Settings.from_env(env)
        upgrade(result.database_url)
        yield result
        return
    server = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex[:12]}"
    _autocommit(server, f'CREATE DATABASE "{name}"')
    result = Settings.from_env({**env, "BPTT_DATABASE_URL": server.url(name)})
    upgrade(result.database_url)
    yield result
    _autocommit(server, f'DROP DATABASE "{name}" WITH (FORCE)')


def _autocommit(server: pg_server.PostgresServer, sql: str) -> None:
    engine = make_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture
def any_sessions(any_settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the any_settings database."""
    factory = session_factory(any_settings)
    yield factory
    factory.kw["bind"].dispose()
