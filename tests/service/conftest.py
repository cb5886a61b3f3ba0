"""Fixtures: migrated SQLite settings, the app and its client, the CLI runner, a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from service.app import create_app
from service.db import make_engine, upgrade
from service.extensions import services
from service.settings import Settings

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
def postgres_server() -> Iterator[pg_server.PostgresServer]:
    """A real PostgreSQL 15 server for the whole test run (skipped when it cannot be run)."""
    reason = pg_server.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = pg_server.start()
    try:
        yield server
    finally:
        server.stop()


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
    engine = make_engine(postgres_server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # FORCE: a test that failed may have left a connection open.
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables), once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return settings_for(tmp_path / "data").database_url
    return request.getfixturevalue("fresh_postgres_url")


def _create_database(server: pg_server.PostgresServer, name: str) -> None:
    """CREATE DATABASE outside a transaction (PostgreSQL refuses it inside one)."""
    engine = make_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
