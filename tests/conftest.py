"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service import pg_server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg_server.PostgresServer]:
    """One real PostgreSQL 15 server for the whole test run (skipped when it cannot be run).
    Each user makes its own database on it: `bptt` and uniquely named ones."""
    reason = pg_server.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = pg_server.start()
    try:
        yield server
    finally:
        server.stop()
