"""Alembic environment: the database URL comes from the Alembic config, else from the settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from service.settings import Settings
from service.store.db import make_engine, normalize_url
from service.store.tables import Base

config = context.config

# From the alembic command line, log as alembic.ini says; service.store.db.upgrade() turns this
# off so that a running program keeps its own logging (fileConfig would replace its handlers).
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# For `alembic revision --autogenerate` only: the versions themselves spell out every table.
target_metadata = Base.metadata


def database_url() -> str:
    """The URL given in the Alembic config, else the one the service's settings name."""
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    return normalize_url(url)


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    """Configure the migration context for a live connection or for offline SQL output."""
    dialect = connection.dialect.name if connection is not None else url.split(":")[0]
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        literal_binds=connection is None,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=dialect.startswith("sqlite"),
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection of their own."""
    # NullPool: a migration is one connection, used once; nothing to keep open afterwards.
    engine = make_engine(database_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # A batch migration re-creates a table by copying and dropping it; with foreign
                # keys on, dropping the old table would cascade-delete the rows that point at it.
                # (The pragma is a no-op inside a transaction, so it comes first.)
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
                # End the transaction the pragma auto-began: otherwise begin_transaction() below
                # would join it and the version row would be rolled back when the connection
                # closes.
                connection.commit()
            configure(connection)
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
