"""The `bptt` command: run the service (up, api, worker), migrations and API tokens."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from . import db, repository, serve
from .logs import configure_logging
from .settings import Settings

TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def load_settings() -> Settings:
    """The settings for this command: the context's object if one was given, else BPTT_*."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.obj, Settings):
        return ctx.obj  # tests and embedding programs pass settings as the context object
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def redacted(url: str) -> str:
    """A database URL safe to print (password hidden)."""
    return make_url(url).render_as_string(hide_password=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bptt-service", prog_name="bptt")
def main() -> None:
    """Train RNN forecasters over HTTP.

    Every command reads its settings from BPTT_* environment variables; by default all data
    lives under ./data (BPTT_DATA_DIR) in SQLite files. See service/settings.py for the list.
    """


@main.group("db")
def db_group() -> None:
    """Manage the database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option(
    "--revision", default="head", show_default=True, help="Alembic revision to migrate up to."
)
def db_upgrade(revision: str) -> None:
    """Create or update the schema of BPTT_DATABASE_URL. Safe to run repeatedly."""
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        db.upgrade(settings.database_url, revision)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc  # the driver's message, without the SQL
        raise click.ClickException(f"migration failed: {reason}") from None
    click.echo(f"Database {redacted(settings.database_url)} is at revision {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_downgrade(revision: str, yes: bool) -> None:
    """Migrate the schema down to REVISION ("base" drops every table and its data)."""
    settings = load_settings()
    configure_logging(settings.log_level)
    if not yes:
        click.confirm(
            f"Downgrade {redacted(settings.database_url)} to {revision}? Data may be lost.",
            abort=True,
        )
    try:
        db.downgrade(settings.database_url, revision)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise click.ClickException(f"migration failed: {reason}") from None
    click.echo(f"Database {redacted(settings.database_url)} is at revision {revision}.")


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens. Each token belongs to one tenant and sees only its jobs."""


@tokens_group.command("create")
@click.option(
    "--tenant",
    required=True,
    help="Tenant name (letters, digits, '.', '_', '-'; up to 64). Created if it does not exist.",
)
def tokens_create(tenant: str) -> None:
    """Create an API token for a tenant and print it.

    The token is printed once, as the last line of output; only its SHA-256 is stored, so it
    cannot be shown again. Use it as `Authorization: Bearer <token>`.
    """
    if not TENANT_NAME.fullmatch(tenant):
        raise click.BadParameter(
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            param_hint="--tenant",
        )
    settings = load_settings()
    sessions = db.session_factory(settings)
    try:
        with sessions.begin() as session:
            record = repository.tenant_by_name(session, name=tenant)
            created = record is None
            if record is None:
                record = repository.create_tenant(session, name=tenant)
            issued = repository.create_token(session, tenant=record)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc  # the driver's message, without the SQL
        raise click.ClickException(
            f"database error: {reason}. Has `bptt db upgrade` been run?"
        ) from None
    finally:
        sessions.kw["bind"].dispose()
    what = "new tenant" if created else "existing tenant"
    click.echo(
        f"Created token {issued.record.prefix}... for {what} {tenant!r}. "
        "It is shown only this once:"
    )
    click.echo(issued.token)


@main.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the API binds.")
@click.option("--port", default=8000, show_default=True, help="Port the API listens on.")
@click.option("--workers", default=2, show_default=True,
              help="Training worker processes (one job at a time each).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the SQLite database and broker live (default: BPTT_DATA_DIR or ./data).")
def up(host: str, port: int, workers: int, data_dir: Path | None) -> None:
    """Run everything on this machine: migrate, start the API and workers, print a token.

    Nothing else to install: SQLite holds the data and serves as the broker. Ctrl-C stops all.
    """
    env = dict(os.environ)
    if data_dir is not None:
        env["BPTT_DATA_DIR"] = str(data_dir.resolve())
    try:
        settings = Settings.from_env(env)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level)
    db.upgrade(settings.database_url)
    token = _issue_token(settings, "local")
    processes = [serve.start(serve.api_command(host, port), env)]
    processes += [serve.start(serve.worker_command(f"worker{i + 1}"), env)
                  for i in range(workers)]
    url = f"http://{host}:{port}"
    try:
        serve.wait_until_healthy(f"{url}/healthz", processes)
    except RuntimeError as exc:
        serve.stop_all(processes)
        raise click.ClickException(str(exc)) from None
    click.echo(f"bptt is up: {url} (API docs at {url}/docs), {workers} worker(s), "
               f"data in {settings.data_dir}. Ctrl-C stops everything.")
    click.echo("Token for tenant 'local' (Authorization: Bearer <token>):")
    click.echo(token, nl=True)
    raise SystemExit(serve.supervise(processes))


@main.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--processes", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per process.")
def api(host: str, port: int, processes: int, threads: int) -> None:
    """Serve the HTTP API under gunicorn (the schema must exist: `bptt db upgrade`)."""
    command = serve.api_command(host, port, processes, threads)
    os.execv(command[0], command)


@main.command("worker")
@click.option("--name", default="worker", show_default=True, help="Celery node name.")
@click.option("--concurrency", default=1, show_default=True,
              help="Jobs this worker trains at once (one process each).")
def worker(name: str, concurrency: int) -> None:
    """Run a Celery worker that trains jobs (and answers large forecast batches)."""
    command = serve.worker_command(name, concurrency)
    os.execv(command[0], command)


def _issue_token(settings: Settings, tenant: str) -> str:
    """A new token for `tenant`, creating the tenant if needed."""
    sessions = db.session_factory(settings)
    try:
        with sessions.begin() as session:
            record = repository.tenant_by_name(session, name=tenant)
            if record is None:
                record = repository.create_tenant(session, name=tenant)
            return repository.create_token(session, tenant=record).token
    finally:
        sessions.kw["bind"].dispose()
