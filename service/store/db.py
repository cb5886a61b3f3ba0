"""Database plumbing: engines, sessions, and the schema through Alembic migrations.

No Flask here: the workers and the CLI use this module as well as the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings

# The package is installed in editable mode, so the migrations sit beside it in the repository.
REPO_ROOT = Path(__file__).resolve().parents[2]  # service/store/db.py -> the repository
MIGRATIONS_DIR = REPO_ROOT / "migrations"
ALEMBIC_INI = REPO_ROOT / "alembic.ini"

# A writer waits this long for another writer's lock instead of failing at once with
# "database is locked": the API and several worker processes share one SQLite file.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A readiness probe or a request must not hang for minutes on an unreachable PostgreSQL host.
POSTGRES_CONNECT_TIMEOUT_S = 10


def normalize_url(url: str) -> str:
    """The URL with PostgreSQL pointed at psycopg 3 (SQLAlchemy's default driver is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(parsed.database)
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        connect_args.update(options.pop("connect_args", {}))
        # pre_ping: a pooled connection that died with a database restart is replaced, not
        # handed to a request.
        options.setdefault("pool_pre_ping", True)
        return create_engine(url, connect_args=connect_args, **options)
    return create_engine(url, **options)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    """A session factory bound to a new engine for the settings' database."""
    # expire_on_commit=False: objects stay readable after commit (a route serializes the job it
    # just committed) without a second round trip.
    return sessionmaker(bind=make_engine(settings.database_url), expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the repository's migrations, pointed at `url`."""
    config = Config(str(ALEMBIC_INI) if ALEMBIC_INI.exists() else None)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates "%", which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    # Called from a running program: leave its logging alone (alembic.ini's [loggers] section
    # would otherwise replace the program's handlers).
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (the latest by default)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" removes every table)."""
    command.downgrade(alembic_config(url), revision)


def schema_revision(url: str) -> str | None:
    """The migration revision of the database at `url`; None when it has no schema. A SQLite
    file that does not exist is not created (nor its directory) by asking."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and not _sqlite_file_exists(parsed.database):
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The latest revision of the repository's migrations (what `upgrade` migrates to)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _sqlite_file_exists(database: str | None) -> bool:
    """Whether a SQLite URL's file exists (in-memory and URI databases count as existing)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    return Path(database).expanduser().is_file()


def _ensure_sqlite_dir(database: str | None) -> None:
    """Create the directory of a SQLite file so a fresh data dir works out of the box."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # the connection attempt will report the real problem, with the path in it


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite pragmas (they are not stored in the file, except journal_mode)."""
    cursor = dbapi_connection.cursor()
    try:
        # First, so that switching to WAL waits for a concurrent writer instead of failing.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers (status polls) never block the writer (a worker's metrics) and vice versa.
        cursor.execute("PRAGMA journal_mode = WAL")
        # Durable at each checkpoint rather than each commit: safe with WAL, much faster.
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Off by default in SQLite; without it ON DELETE CASCADE would silently do nothing.
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
