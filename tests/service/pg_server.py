"""A throwaway PostgreSQL 15 server for the tests: initdb in a temp dir, 127.0.0.1 only, trust auth.

PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user (runuser).
Every wait is bounded; the server is stopped and its directory removed by `stop`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("BPTT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it
COMMAND_TIMEOUT_S = 60


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None if it can."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / name).is_file():
            return f"PostgreSQL server binaries not found ({PG_BIN / name} is missing)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (PostgreSQL refuses to run as root)"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


@dataclass
class PostgresServer:
    """A running server: its port, data directory and log file."""

    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """The server's log (read it when the server misbehaves)."""
        return self.root / "server.log"

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """A SQLAlchemy URL for `database` on this server."""
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its files."""
        try:
            _run_as_postgres(
                [PG_BIN / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "30", "stop"],
                cwd=self.root,
                check=False,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start() -> PostgresServer:
    """Initialize a cluster in a new temp dir and start a server on a free 127.0.0.1 port."""
    # Not under pytest's tmp_path: its parents are private to root, and postgres must reach it.
    root = Path(tempfile.mkdtemp(prefix="bptt-pg-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(root, account.pw_uid, account.pw_gid)
        _run_as_postgres(
            [PG_BIN / "initdb", "-D", root / "data", "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            cwd=root,
        )
        last_error = ""
        for _ in range(START_ATTEMPTS):
            server = PostgresServer(root=root, port=_free_port())
            # Sockets only on 127.0.0.1 plus a Unix socket in our own dir (the default
            # /var/run/postgresql may not exist); fsync off: test data need not survive a crash.
            options = (f"-h 127.0.0.1 -p {server.port} -k {root} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            result = _run_as_postgres(
                [PG_BIN / "pg_ctl", "-D", server.data_dir, "-l", server.log_file, "-w",
                 "-t", "30", "-o", options, "start"],
                cwd=root,
                check=False,
            )
            if result.returncode == 0:
                return server
            last_error = result.stdout + result.stderr + _tail(server.log_file)
        raise RuntimeError(f"PostgreSQL did not start after {START_ATTEMPTS} tries:\n{last_error}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _run_as_postgres(
    args: list[object], *, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary as the postgres user (directly when not root), bounded in time."""
    command = [str(a) for a in args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, if it exists."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
