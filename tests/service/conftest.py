"""Fixtures: migrated SQLite settings, the app and its client, the CLI runner, a real PostgreSQL,
tokens, a simulated worker, the broker's messages and a real trained model."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api.extensions import services
from service.app import create_app
from service.settings import Settings
from service.store import repository
from service.store.codec import compress_json
from service.store.db import make_engine, upgrade
from service.store.tables import ForecastBatch, Job, TrainedModel, utcnow

from . import pg_server


def settings_for(data_dir: Path, **env: str) -> Settings:
    """Settings whose data (SQLite database and broker) live in `data_dir`."""
    return Settings.from_env({"BPTT_DATA_DIR": str(data_dir), **env})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite database in tmp_path, migrated to the latest revision."""
    result = settings_for(tmp_path / "data")
    upgrade(result.database_url)
    return result


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The API app on the migrated SQLite database."""
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    services(application).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    """A runner for the `bptt` command."""
    return CliRunner()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: pg_server.PostgresServer) -> str:
    """A SQLAlchemy URL for the empty database `bptt` on the test PostgreSQL server."""
    _create_database(postgres_server, "bptt")
    return postgres_server.url("bptt")


@pytest.fixture
def fresh_postgres_url(postgres_server: pg_server.PostgresServer) -> Iterator[str]:
    """A URL for a database of its own on the test server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    _create_database(postgres_server, name)
    yield postgres_server.url(name)
    # FORCE: a test that failed may have left a connection open.
    _outside_transaction(postgres_server, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pg_app(tmp_path: Path, fresh_postgres_url: str) -> Iterator[Flask]:
    """The API app on a migrated database of its own on the real PostgreSQL server."""
    settings = settings_for(tmp_path / "data", BPTT_DATABASE_URL=fresh_postgres_url)
    upgrade(settings.database_url)
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    services(application).engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables), once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return settings_for(tmp_path / "data").database_url
    return request.getfixturevalue("fresh_postgres_url")


def _create_database(server: pg_server.PostgresServer, name: str) -> None:
    """CREATE DATABASE `name` on the server."""
    _outside_transaction(server, f'CREATE DATABASE "{name}"')


def _outside_transaction(server: pg_server.PostgresServer, sql: str) -> None:
    """Run `sql` in autocommit mode (PostgreSQL refuses CREATE/DROP DATABASE in a transaction)."""
    engine = make_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    finally:
        engine.dispose()


# --- API fixtures: tenants and tokens, a simulated worker, the broker's messages, a real model ---

SPEC = {"horizon": 3, "quantiles": [0.1, 0.5, 0.9], "model": {"hidden_size": 4},
        "training": {"epochs": 2, "ensemble": 1}}
SERIES = [
    {"id": "store-1", "values": [round(20 + 10 * math.sin(i / 3), 3) for i in range(60)]},
    {"id": "store-2", "values": [round(10 + 5 * math.cos(i / 4), 3) for i in range(50)]},
]


@pytest.fixture
def sessions(app: Flask) -> sessionmaker[Session]:
    """The app's session factory, for arranging and inspecting rows directly."""
    return services(app).sessions


@pytest.fixture
def make_token(sessions: sessionmaker[Session]) -> Callable[[str], str]:
    """Make a token for the tenant called `name` (created on first use)."""

    def make(name: str) -> str:
        with sessions.begin() as session:
            tenant = repository.tenant_by_name(session, name=name)
            if tenant is None:
                tenant = repository.create_tenant(session, name=name)
            return repository.create_token(session, tenant=tenant).token

    return make


@pytest.fixture
def auth(make_token: Callable[[str], str]) -> dict[str, str]:
    """Authorization headers of tenant "acme"."""
    return {"Authorization": f"Bearer {make_token('acme')}"}


@pytest.fixture
def other_auth(make_token: Callable[[str], str]) -> dict[str, str]:
    """Authorization headers of another tenant, "intruder"."""
    return {"Authorization": f"Bearer {make_token('intruder')}"}


class SimulatedWorker:
    """Writes the rows a worker writes, through the repository and the models (no training)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def start(self, job_id: str) -> None:
        """Claim the job: running, one more attempt, a lease."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.status, job.started_at = "running", utcnow()
            job.attempts += 1
            job.lease_owner, job.lease_expires_at = "test:1", utcnow()

    def epoch(self, job_id: str, epoch: int, **metrics: Any) -> None:
        """Record one epoch's metrics (replacing a retried epoch) and the progress."""
        values = {"attempt": 1, "train_loss": 1.0 / epoch, "val_loss": 1.5 / epoch,
                  "grad_norm": 2.0, "max_grad_norm": 3.0 + epoch, "clip_fraction": 0.25,
                  "learning_rate": 0.003, "seconds": 0.01,
                  "grad_flow": [0.001 * epoch, 0.01, 0.1], **metrics}
        with self.sessions.begin() as session:
            repository.upsert_epoch_metrics(session, job_id=job_id, epoch=epoch, **values)
            job = session.get(Job, job_id)
            assert job is not None
            job.epochs_done = max(job.epochs_done, epoch)

    def finish(self, job_id: str, status: str = "succeeded", *, weights: bytes | None = None,
               error: str | None = None, best_epoch: int | None = None) -> None:
        """End the job; with `weights`, store the trained model as a worker would."""
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.status, job.finished_at, job.error = status, utcnow(), error
            job.best_epoch = best_epoch
            job.lease_owner = job.lease_expires_at = None
            if weights is not None:
                card = bptt.Model.from_bytes(weights).card()
                session.add(TrainedModel(job_id=job_id, weights=weights,
                                         sha256=hashlib.sha256(weights).hexdigest(),
                                         model_card=card))

    def finish_batch(self, batch_id: str, result: dict[str, Any]) -> None:
        """Answer a forecast batch as a worker would."""
        with self.sessions.begin() as session:
            batch = session.get(ForecastBatch, batch_id)
            assert batch is not None
            batch.status, batch.started_at, batch.finished_at = "succeeded", utcnow(), utcnow()
            batch.result_zlib = compress_json(result)


@pytest.fixture
def worker(sessions: sessionmaker[Session]) -> SimulatedWorker:
    """A simulated worker writing to the app's database."""
    return SimulatedWorker(sessions)


@pytest.fixture(scope="session")
def trained_weights() -> bytes:
    """A real (tiny) model trained by bptt.fit on SERIES with SPEC, as safetensors bytes."""
    result = bptt.fit(SERIES, spec=bptt.TrainingSpec.from_dict(SPEC))
    return result.model.to_bytes()


@pytest.fixture
def trained_job(client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
                trained_weights: bytes) -> str:
    """The id of a succeeded job of tenant "acme" whose model was really trained on SERIES."""
    response = client.post("/v1/jobs", json={"series": SERIES, **SPEC}, headers=auth)
    assert response.status_code == 202
    job_id = str(response.get_json()["id"])
    worker.start(job_id)
    worker.finish(job_id, weights=trained_weights)
    return job_id


def broker_messages(settings: Settings) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message waiting in the embedded SQLite broker."""
    path = make_url(settings.broker_url.removeprefix("sqla+")).database
    if path is None or not Path(path).exists():
        return []
    connection = sqlite3.connect(path)
    try:
        if not connection.execute(
            "SELECT name FROM sqlite_master WHERE name = 'kombu_message'"
        ).fetchall():
            return []
        payloads = [row[0] for row in connection.execute(
            "SELECT payload FROM kombu_message ORDER BY id")]
    finally:
        connection.close()
    messages = []
    for payload in payloads:
        message = json.loads(payload)
        args = json.loads(base64.b64decode(message["body"]))[0]
        messages.append((message["headers"]["task"], args))
    return messages


def row_count(sessions: sessionmaker[Session], model: type[Any]) -> int:
    """How many rows the table of `model` holds."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0
