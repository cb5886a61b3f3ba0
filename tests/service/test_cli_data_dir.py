"""The real `bptt` command run from another directory: every command that opens the database
takes --data-dir as `bptt up` does, and a missing schema says where it looked and what to run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from service.settings import Settings
from service.store.db import head_revision, make_engine, session_factory
from service.store.repository import tenant_for_token

BPTT = str(Path(sys.executable).parent / "bptt")  # the console script pip installed
TIMEOUT_S = 120


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not where the data lives."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def bptt(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`bptt ARGS` in `cwd`, with no BPTT_* location in the environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BPTT_DATA_DIR", "BPTT_DATABASE_URL", "BPTT_BROKER_URL")}
    return subprocess.run([BPTT, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def test_every_database_command_takes_the_data_dir(tmp_path: Path, elsewhere: Path) -> None:
    data = tmp_path / "data"
    upgraded = bptt(elsewhere, "db", "upgrade", "--data-dir", "../data")  # relative to the cwd
    assert upgraded.returncode == 0, upgraded.stderr
    assert str(data / "bptt.db") in upgraded.stdout

    created = bptt(elsewhere, "tokens", "create", "--tenant", "acme", "--data-dir", str(data))
    assert created.returncode == 0, created.stderr
    assert f"data dir {data}" in created.stdout
    settings = Settings(data_dir=data)
    sessions = session_factory(settings)
    try:
        with sessions() as session:
            tenant = tenant_for_token(session, token=created.stdout.splitlines()[-1])
            assert tenant is not None and tenant.name == "acme"
    finally:
        sessions.kw["bind"].dispose()

    downgraded = bptt(elsewhere, "db", "downgrade", "base", "--yes", "--data-dir", str(data))
    assert downgraded.returncode == 0, downgraded.stderr
    engine = make_engine(settings.database_url)
    try:
        assert "jobs" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert list(elsewhere.iterdir()) == []  # nothing was made in the working directory


def test_a_missing_schema_says_where_it_looked_and_what_to_run(elsewhere: Path) -> None:
    refused = bptt(elsewhere, "tokens", "create", "--tenant", "acme")
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert f"data dir {elsewhere / 'data'}" in message
    assert not (elsewhere / "data").exists()  # asking created no database

    # the command it names, run as written, is what was missing
    command = re.search(r"`(bptt db upgrade[^`]*)`", message).group(1)
    assert command == f"bptt db upgrade --data-dir {elsewhere / 'data'}"
    assert bptt(elsewhere, *shlex.split(command)[1:]).returncode == 0
    assert bptt(elsewhere, "tokens", "create", "--tenant", "acme").returncode == 0


def test_an_old_schema_says_which_revisions_and_a_data_dir_with_spaces_is_quoted(
        tmp_path: Path, elsewhere: Path) -> None:
    data = tmp_path / "my data"
    first = bptt(elsewhere, "db", "upgrade", "--revision", "0001", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    refused = bptt(elsewhere, "tokens", "create", "--tenant", "acme", "--data-dir", str(data))
    assert refused.returncode == 1
    assert f"at revision 0001; this version of bptt needs {head_revision()}" in refused.stderr
    command = re.search(r"`(bptt db upgrade[^`]*)`", refused.stderr).group(1)
    assert shlex.split(command)[-1] == str(data)
    assert bptt(elsewhere, *shlex.split(command)[1:]).returncode == 0
    assert bptt(elsewhere, "tokens", "create", "--tenant", "acme", "--data-dir",
                str(data)).returncode == 0


def test_downgrading_a_database_that_is_not_there_creates_nothing(elsewhere: Path) -> None:
    refused = bptt(elsewhere, "db", "downgrade", "base", "--yes", "--data-dir", "nowhere")
    assert refused.returncode == 1
    assert f"No database schema in data dir {elsewhere / 'nowhere'}" in refused.stderr
    assert list(elsewhere.iterdir()) == []
