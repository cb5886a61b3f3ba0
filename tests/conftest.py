"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service import pg_server

# Lines said after the results (where the dashboard's screenshots went). Under pytest-xdist each
# test process hands its own to the controller, which says them all.
SUMMARY_LINES: list[str] = []


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


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n`), compile every kernel once, here in the controller, before
    the test processes start: each then loads them from Numba's cache instead of all of them
    compiling the same kernels at once."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        import numpy as np

        import bptt

        bptt.warm_kernels(dtypes=(np.float32, np.float64),
                          processes=bptt.default_compile_processes())


MAX_TEST_PROCESSES = 4  # each test process starts services and workers of its own


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one test process per CPU this process may run on, at most 4. (xdist's own
    count is psutil's physical cores when psutil is installed, which some dependency may pull
    in on one day and not another: on a machine of two hyperthreads of one core, 1.)"""
    return max(1, min(MAX_TEST_PROCESSES, len(os.sched_getaffinity(0))))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # a pytest-xdist test process
        session.config.workeroutput["summary_lines"] = SUMMARY_LINES


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In pytest-xdist's controller: a test process has finished; keep its summary lines."""
    SUMMARY_LINES.extend(getattr(node, "workeroutput", {}).get("summary_lines", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
