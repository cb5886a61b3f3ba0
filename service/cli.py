"""The `bptt` command: run the service (up, api, worker), migrations and API tokens."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from service import serve, supervisor
from service.api.csvio import forecasts_to_csv, parse_long_csv
from service.api.problems import ValidationProblem
from service.client import TERMINAL, ApiError, Client, multipart, progress_line
from service.future_values import FutureValuesError, read_future_values
from service.logs import configure_logging
from service.settings import Settings
from service.store import db, queue, repository
from service.store.forecast_dates import series_dates, step_dates

TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Loading cached kernels takes 1-4 s (importing Numba and SciPy, most of it): no progress line
# for that. Compiling them takes a minute or two.
KERNEL_PROGRESS_AFTER_S = 5


def load_settings(data_dir: Path | None = None) -> Settings:
    """The settings for this command: BPTT_* with `data_dir` (--data-dir) as BPTT_DATA_DIR if
    given; else the context's object if one was given, else BPTT_*."""
    ctx = click.get_current_context(silent=True)
    if data_dir is None and ctx is not None and isinstance(ctx.obj, Settings):
        return ctx.obj  # tests and embedding programs pass settings as the context object
    env = dict(os.environ)
    if data_dir is not None:
        env["BPTT_DATA_DIR"] = str(data_dir)
    try:
        return Settings.from_env(env)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def data_dir_option(command):
    """--data-dir, as `bptt up` takes it, for every command that opens the database."""
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Where the SQLite database and broker live, as given to `bptt up` "
             "(default: BPTT_DATA_DIR or ./data).")(command)


def database_place(settings: Settings) -> str:
    """Where the command looked for the database, as a user would look for it."""
    if settings.database_url == Settings(data_dir=settings.data_dir).database_url:
        return f"data dir {settings.data_dir}"  # derived from the data dir
    return f"database {redacted(settings.database_url)}"


def upgrade_command(settings: Settings) -> str:
    """The `bptt db upgrade` that migrates the database these settings name."""
    if database_place(settings).startswith("data dir"):
        return f"bptt db upgrade --data-dir {shlex.quote(str(settings.data_dir))}"
    return "bptt db upgrade (with the same BPTT_DATABASE_URL)"


def require_schema(settings: Settings) -> None:
    """Stop with what to do when the database has no schema, or an older one than this code's.

    Checked before anything else opens the database: a SQLite file that is not there is not
    created (a command run from the wrong directory leaves no stray ./data behind).
    """
    try:
        revision, head = db.schema_revision(settings.database_url), db.head_revision()
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc  # the driver's message, without the SQL
        raise click.ClickException(
            f"cannot open the database ({database_place(settings)}): {reason}") from None
    if revision == head:
        return
    place, fix = database_place(settings), upgrade_command(settings)
    if revision is None:
        other = (", or give the --data-dir that `bptt up` uses" if place.startswith("data dir")
                 else "")
        raise click.ClickException(f"No database schema in {place}. Run `{fix}` to create "
                                   f"it{other}.")
    raise click.ClickException(f"The schema in {place} is at revision {revision}; this version "
                               f"of bptt needs {head}. Run `{fix}` first.")


def redacted(url: str) -> str:
    """A database URL safe to print (password hidden)."""
    return make_url(url).render_as_string(hide_password=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bptt-service", prog_name="bptt")
def main() -> None:
    """Train RNN forecasters over HTTP.

    Every command reads its settings from BPTT_* environment variables; by default all data
    lives under ./data (BPTT_DATA_DIR, or --data-dir on every command that opens the database)
    in SQLite files. See service/settings.py for the list.
    """


@main.group("db")
def db_group() -> None:
    """Manage the database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option(
    "--revision", default="head", show_default=True, help="Alembic revision to migrate up to."
)
@data_dir_option
def db_upgrade(revision: str, data_dir: Path | None) -> None:
    """Create or update the schema of the database (in the data dir, or BPTT_DATABASE_URL).
    Safe to run repeatedly."""
    settings = load_settings(data_dir)
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
@data_dir_option
def db_downgrade(revision: str, yes: bool, data_dir: Path | None) -> None:
    """Migrate the schema down to REVISION ("base" drops every table and its data)."""
    settings = load_settings(data_dir)
    configure_logging(settings.log_level)
    if db.schema_revision(settings.database_url) is None:
        raise click.ClickException(f"No database schema in {database_place(settings)}: "
                                   "nothing to downgrade.")
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
@data_dir_option
def tokens_create(tenant: str, data_dir: Path | None) -> None:
    """Create an API token for a tenant and print it.

    The token is printed once, as the last line of output; only its SHA-256 is stored, so it
    cannot be shown again. Use it as `Authorization: Bearer <token>`.
    """
    if not TENANT_NAME.fullmatch(tenant):
        raise click.BadParameter(
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            param_hint="--tenant",
        )
    settings = load_settings(data_dir)
    require_schema(settings)
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
            f"database error ({database_place(settings)}): {reason}"
        ) from None
    finally:
        sessions.kw["bind"].dispose()
    what = "new tenant" if created else "existing tenant"
    click.echo(
        f"Created token {issued.record.prefix}... for {what} {tenant!r} "
        f"({database_place(settings)}). It is shown only this once:"
    )
    click.echo(issued.token)


@main.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the API binds.")
@click.option("--port", default=8000, show_default=True, help="Port the API listens on.")
@click.option("--workers", default=2, show_default=True,
              help="Training worker processes (one job at a time each).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the SQLite database and broker live (default: BPTT_DATA_DIR or ./data).")
@click.option("--verbose", is_flag=True,
              help="Show every process's log lines here (requests too), not only warnings.")
def up(host: str, port: int, workers: int, data_dir: Path | None, verbose: bool) -> None:
    """Run everything on this machine: migrate, start the API and workers, print a token.

    Nothing else to install: SQLite holds the data and serves as the broker. A process that
    exits is restarted; each one's log is in <data dir>/logs. Ctrl-C stops all.
    """
    env = dict(os.environ)
    if data_dir is not None:
        env["BPTT_DATA_DIR"] = str(data_dir.resolve())
    threads_chosen = not env.get("BPTT_TRAIN_THREADS")
    if threads_chosen:  # the API writes it into each job's plan; the workers train with it
        env["BPTT_TRAIN_THREADS"] = str(serve.threads_per_worker(workers))
    try:
        settings = Settings.from_env(env)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if serve.port_in_use(host, port):
        raise click.ClickException(f"{host}:{port} is in use: choose another with --port")
    # Migrations and the like log at INFO: only what went wrong is worth a user's screen.
    configure_logging(settings.log_level if verbose else "WARNING")
    # Everything the processes share exists before any of them starts (none of them races to
    # create it): the schema, the broker's queue, the token's tenant, the kernels' cache.
    db.upgrade(settings.database_url)
    queue.prepare_broker(settings.broker_url)
    token = _issue_token(settings, "local")
    env = serve.kernel_cache_env(env, settings.data_dir)
    logs = settings.data_dir / "logs"
    children = [supervisor.Child("api", serve.api_command(host, port, control_socket=False), env,
                                 logs / "api.log")]
    children += [supervisor.Child(f"worker{i}", serve.worker_command(f"worker{i}"), env,
                                  logs / f"worker{i}.log",
                                  ready_file=settings.data_dir / "run" / f"worker{i}.ready")
                 for i in range(1, workers + 1)]
    url = f"http://{host}:{port}"

    def ready() -> None:
        threads = settings.train_threads
        how = (f"{len(os.sched_getaffinity(0))} cores shared among the workers; "
               "BPTT_TRAIN_THREADS overrides" if threads_chosen else "BPTT_TRAIN_THREADS")
        click.echo(f"bptt is up: dashboard at {url}/, API docs at {url}/docs, {workers} "
                   f"worker(s) training {threads} ensemble member(s) at once each ({how}), "
                   f"data in {settings.data_dir}, logs in {logs}. Ctrl-C stops everything.")
        click.echo("Token for tenant 'local' (Authorization: Bearer <token>):")
        click.echo(token)

    supervised = supervisor.Supervisor(children, click.echo, verbose=verbose)
    raise SystemExit(supervised.run(env, f"{url}/readyz", _kernel_progress(env), ready))


def _kernel_progress(env: dict[str, str]):
    """A progress display for the kernels' compilation: one line redrawn on a terminal, a line
    per step otherwise; silent when they come from Numba's cache within a few seconds."""
    shown = {"done": -1}
    cache = env.get("NUMBA_CACHE_DIR") or "__pycache__ beside bptt's sources"

    def show(done: int, total: int, seconds: float) -> None:
        if done == total and total:
            end = "\r" if sys.stdout.isatty() and shown["done"] >= 0 else ""
            click.echo(f"{end}kernels ready in {seconds:.0f} s (Numba's cache: {cache})".ljust(
                100 if end else 0))
        elif seconds >= KERNEL_PROGRESS_AFTER_S and total:
            line = (f"compiling kernels (once: later starts load them from the cache): "
                    f"{done}/{total}, {seconds:.0f} s")
            if sys.stdout.isatty():
                click.echo("\r" + line.ljust(100), nl=False)
            elif done != shown["done"]:
                click.echo(line)
            shown["done"] = done

    return show


@main.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--processes", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=serve.API_THREADS, show_default=True,
              help="Threads per process.")
@data_dir_option
def api(host: str, port: int, processes: int, threads: int, data_dir: Path | None) -> None:
    """Serve the HTTP API under gunicorn (the schema must exist: `bptt db upgrade`)."""
    _export_data_dir(data_dir)
    command = serve.api_command(host, port, processes, threads)
    os.execv(command[0], command)


@main.command("worker")
@click.option("--name", default="worker", show_default=True, help="Celery node name.")
@click.option("--concurrency", default=1, show_default=True,
              help="Jobs this worker trains at once (one process each).")
@data_dir_option
def worker(name: str, concurrency: int, data_dir: Path | None) -> None:
    """Run a Celery worker that trains jobs (and answers large forecast batches)."""
    _export_data_dir(data_dir)
    command = serve.worker_command(name, concurrency)
    os.execv(command[0], command)


def _export_data_dir(data_dir: Path | None) -> None:
    """Hand --data-dir to the program this process becomes (it reads BPTT_DATA_DIR), absolute:
    gunicorn and Celery may change directory."""
    if data_dir is not None:
        os.environ["BPTT_DATA_DIR"] = str(data_dir.expanduser().resolve())


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


def _client_options(command):
    """--url and --token, from BPTT_URL and BPTT_TOKEN by default."""
    command = click.option("--token", envvar="BPTT_TOKEN", required=True,
                           help="API token (env BPTT_TOKEN).")(command)
    return click.option("--url", envvar="BPTT_URL", default="http://127.0.0.1:8000",
                        show_default=True, help="API base URL (env BPTT_URL).")(command)


def _api_call(action):
    """Run an API action; print an API error as one line and exit 1."""
    try:
        return action()
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


def _labels(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]
            ) -> dict[str, str]:
    """--label KEY=VALUE options as a map (the API checks keys and values)."""
    labels = {}
    for raw in values:
        key, equals, value = raw.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{raw!r} is not KEY=VALUE", context, parameter)
        labels[key] = value
    return labels


STATIC_TABLE_HELP = ("Static covariates in a table of their own: a CSV unique_id,<a column per "
                     "static covariate> with one row per series (a column of numbers is "
                     "numeric, any other a category).")


@main.command("submit")
@click.argument("csv_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "dataset_id", default=None, metavar="ID",
              help="Train on an uploaded dataset (`bptt datasets upload`) instead of CSV_FILE.")
@click.option("--horizon", type=int, required=True, help="Steps to forecast.")
@click.option("--season-length", type=int, default=None, help="Season length (e.g. 12).")
@click.option("--cell", type=click.Choice(["lstm", "gru", "rnn"]), default=None)
@click.option("--epochs", type=int, default=None,
              help="Full passes over the training windows per ensemble member.")
@click.option("--max-steps", type=int, default=None,
              help="Optimizer updates per ensemble member (instead of --epochs; neither: "
                   "chosen from the data).")
@click.option("--quantiles", default=None, metavar="Q,Q,...",
              help="Prediction quantiles, comma-separated (default: 0.1,0.5,0.9; an empty "
                   "value '' forecasts the mean only).")
@click.option("--calendar", type=click.Choice(["auto", "cyclic", "onehot", "off"]),
              default=None, help="Calendar features from the series' dates (default: auto, "
                                 "on where the dates and frequency are known).")
@click.option("--name", default=None, help="A name for the job, shown by the dashboard.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", callback=_labels,
              help="A label (repeat for more); `GET /v1/jobs?label=KEY:VALUE` and the "
                   "dashboard filter by them.")
@click.option("--static", "static", multiple=True, metavar="COLUMN",
              help="A CSV column that is a static covariate: one value per series, a number "
                   "or a category (repeat for more).")
@click.option("--historical", "historical", multiple=True, metavar="COLUMN",
              help="A CSV column that is a historical covariate: a value per row, known only "
                   "up to a forecast's origin (repeat for more).")
@click.option("--future", "future", multiple=True, metavar="COLUMN",
              help="A CSV column that is a future covariate: a value per row, known ahead; "
                   "forecasts must give the horizon's values (repeat for more).")
@click.option("--static-table", "static_table", default=None, metavar="STATIC.csv",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=STATIC_TABLE_HELP)
@click.option("--follow", is_flag=True, help="Show live progress until the job ends.")
@_client_options
def submit(csv_file: Path | None, dataset_id: str | None, horizon: int,
           season_length: int | None, cell: str | None, epochs: int | None,
           max_steps: int | None, quantiles: str | None, calendar: str | None,
           name: str | None, labels: dict[str, str], static: tuple[str, ...],
           historical: tuple[str, ...], future: tuple[str, ...], static_table: Path | None,
           follow: bool, url: str, token: str) -> None:
    """Submit a training job from a long-format CSV (unique_id,ds,y, and a column per
    covariate declared with --static, --historical or --future; static ones also in a table
    of their own, --static-table), or on an uploaded dataset with --dataset; print its id."""
    if (csv_file is None) == (dataset_id is None):
        raise click.UsageError("give a CSV_FILE or --dataset ID (one of them)")
    if static_table is not None and csv_file is None:
        raise click.UsageError("--static-table goes with a CSV_FILE")
    covariates = _covariate_kinds(static=static, historical=historical, future=future)
    client = Client(url, token)
    if dataset_id is not None:  # (the API says whether a dataset can have covariates)
        body = {**_spec_body(horizon, season_length, cell, (epochs, max_steps), quantiles),
                **({"calendar": calendar} if calendar else {}), "dataset_id": dataset_id,
                **({"name": name} if name else {}), **({"labels": labels} if labels else {}),
                **({"covariates": covariates} if covariates else {})}
        job = _api_call(lambda: client.json("POST", "/v1/jobs", body))
        click.echo(job["id"])
        if follow:
            _follow(client, job["id"])
        return
    query = {"horizon": horizon, "season_length": season_length, "model.cell": cell,
             "training.epochs": epochs, "training.max_steps": max_steps,
             # a JSON list, so that one quantile or none at all is a list too
             "quantiles": None if quantiles is None else f"[{quantiles.strip()}]",
             "calendar": calendar, "name": name,
             "covariates": ",".join(f"{n}:{kind}" for n, kind in covariates.items()) or None,
             **{f"labels.{key}": value for key, value in labels.items()}}
    job = _api_call(lambda: _post_csv(client, "/v1/jobs", csv_file, query, static_table))
    click.echo(job["id"])
    if follow:
        _follow(client, job["id"])


def _covariate_kinds(**columns: tuple[str, ...]) -> dict[str, str]:
    """{column: kind} of the --static, --historical and --future options; a column given two
    kinds is a usage error."""
    kinds: dict[str, str] = {}
    for kind, names in columns.items():
        for name in names:
            if kinds.get(name, kind) != kind:
                raise click.UsageError(f"{name!r} is given as {kinds[name]} and as {kind}: a "
                                       "covariate has one kind")
            kinds[name] = kind
    return kinds


def _spec_body(horizon: int, season_length: int | None, cell: str | None,
               budget: tuple[int | None, int | None], quantiles: str | None) -> dict:
    """The spec fields of `submit` as a JSON job request has them."""
    body: dict = {"horizon": horizon}
    if season_length is not None:
        body["season_length"] = season_length
    if cell is not None:
        body["model"] = {"cell": cell}
    epochs, max_steps = budget
    training = {k: v for k, v in (("epochs", epochs), ("max_steps", max_steps)) if v is not None}
    if training:
        body["training"] = training
    if quantiles is not None:
        try:
            body["quantiles"] = [float(q) for q in quantiles.split(",") if q.strip()]
        except ValueError:
            raise click.BadParameter("numbers separated by commas",
                                     param_hint="--quantiles") from None
    return body


def _post_csv(client: Client, path: str, csv_file: Path, query: dict,
              static_table: Path | None = None) -> dict:
    """POST a CSV file (with its static table); the decoded JSON answer."""
    body, content_type = _csv_body(csv_file, static_table)
    _, answer = client.request("POST", path, body=body, content_type=content_type, query=query)
    return json.loads(answer)


def _csv_body(csv_file: Path, static_table: Path | None) -> tuple[bytes, str]:
    """A long CSV as a text/csv body, or with its static table as the API takes the two: a
    multipart/form-data body with the parts `series` and `static`."""
    if static_table is None:
        return csv_file.read_bytes(), "text/csv"
    return multipart({"series": ("series.csv", csv_file.read_bytes()),
                      "static": ("static.csv", static_table.read_bytes())})


def _static_columns(static_table: Path | None) -> set[str]:
    """The covariate columns of a static table (its header beyond unique_id)."""
    if static_table is None:
        return set()
    with open(static_table, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    return {name.strip() for name in header} - {"unique_id"}


def _follow(client: Client, job_id: str, poll_s: float = 1.0) -> None:
    """Redraw one progress line until the job ends; exit 1 unless it succeeded."""
    while True:
        job = _api_call(lambda: client.json("GET", f"/v1/jobs/{job_id}"))
        line = progress_line(job)
        if sys.stdout.isatty():
            click.echo("\r" + line.ljust(100), nl=False)
        else:
            click.echo(line)
        if job["status"] in TERMINAL:
            if sys.stdout.isatty():
                click.echo()
            if job["status"] != "succeeded":
                raise SystemExit(1)
            return
        time.sleep(poll_s)


@main.command("status")
@click.argument("job_id")
@_client_options
def status(job_id: str, url: str, token: str) -> None:
    """Print a job's status, progress and latest losses."""
    client = Client(url, token)
    click.echo(progress_line(_api_call(lambda: client.json("GET", f"/v1/jobs/{job_id}"))))


@main.command("forecast")
@click.argument("job_id")
@click.argument("csv_file", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "dataset_id", default=None, metavar="ID",
              help="Forecast the series of an uploaded dataset.")
@click.option("--horizon", type=int, default=None, help="At most the model's horizon.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the CSV here instead of printing it.")
@click.option("--future-values", "future_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="For a model trained with future covariates: their values over the "
                   "horizon, a CSV unique_id,ds,<a column per future covariate> with a row per "
                   "series and forecast step (of the job's own series, or of CSV_FILE's, whose "
                   "columns beyond unique_id,ds,y are the job's covariates).")
@click.option("--static-table", "static_table", default=None, metavar="STATIC.csv",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=STATIC_TABLE_HELP + " For CSV_FILE's series.")
@_client_options
def forecast(job_id: str, csv_file: Path | None, dataset_id: str | None, horizon: int | None,
             out: Path | None, future_file: Path | None, static_table: Path | None, url: str,
             token: str) -> None:
    """Forecast with a trained job: its own series, those of CSV_FILE, or those of an
    uploaded dataset (--dataset); prints CSV."""
    if csv_file is not None and dataset_id is not None:
        raise click.UsageError("give a CSV_FILE or --dataset ID, not both")
    if static_table is not None and csv_file is None:
        raise click.UsageError("--static-table goes with a CSV_FILE: the job's own series "
                               "have their static covariates")
    if future_file is not None and dataset_id is not None:
        raise click.UsageError("--future-values goes with the job's own series or CSV_FILE's; "
                               "for a dataset's, give future_covariates in POST /v1/forecasts")
    client = Client(url, token)

    def call() -> str:
        if csv_file is not None:
            query = {"job_id": job_id, "horizon": horizon,
                     **_csv_covariates(client, job_id, horizon, csv_file, future_file,
                                       _static_columns(static_table))}
            sent, content_type = _csv_body(csv_file, static_table)
            status, body = client.request("POST", "/v1/forecasts", body=sent,
                                          content_type=content_type, accept="text/csv",
                                          query=query)
        else:
            payload = {"job_id": job_id, **({"horizon": horizon} if horizon else {}),
                       **({"dataset_id": dataset_id} if dataset_id else {})}
            if future_file is not None:
                spec = client.json("GET", f"/v1/jobs/{job_id}")["spec"]
                dates = _training_dates(client, job_id, spec, horizon or spec["horizon"])
                payload["future_covariates"] = _future_values(future_file, dates)
            status, body = client.request("POST", "/v1/forecasts",
                                          body=json.dumps(payload).encode(),
                                          content_type="application/json", accept="text/csv")
        if status != 202:
            return body.decode()
        # Too many series to answer in the request: the API made a batch; wait for it.
        batch = json.loads(body)
        while batch["status"] not in ("succeeded", "failed"):
            time.sleep(1)
            batch = client.json("GET", f"/v1/forecasts/{batch['id']}")
        if batch["status"] == "failed":
            raise ApiError(f"forecast batch {batch['id']} failed: {batch.get('error')}")
        forecasts = batch["result"]["forecasts"]
        quantiles = list(forecasts[0]["quantiles"]) if forecasts else []
        return forecasts_to_csv(forecasts, quantiles)

    text = _api_call(call)
    if out is not None:
        out.write_text(text)
    else:
        click.echo(text, nl=False)


def _csv_covariates(client: Client, job_id: str, horizon: int | None, csv_file: Path,
                    future_file: Path | None, in_table: set[str]) -> dict[str, str]:
    """The query that goes with CSV_FILE for a job trained with covariates: the declaration
    of its covariate columns (the job's kinds, but for those the static table holds, here
    `in_table`), and with --future-values their values over the forecast of CSV_FILE's
    series, checked against its dates ({} for a job without)."""
    job = client.json("GET", f"/v1/jobs/{job_id}")
    kinds = {name: kind for name, kind in (job.get("covariates") or {}).items()
             if name not in in_table}
    query = {}
    if kinds:
        query["covariates"] = ",".join(f"{name}:{kind}" for name, kind in kinds.items())
    if future_file is not None:
        steps = horizon or job["spec"]["horizon"]
        try:  # read as the API will read it, for the dates its forecast steps to
            series = parse_long_csv(csv_file.read_text(encoding="utf-8-sig"), covariates=kinds)
        except ValidationProblem as exc:
            raise click.ClickException(f"{csv_file}: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors[:5])) from None
        dates = series_dates(series, steps, default_freq=job["spec"].get("freq"))
        query["future_covariates"] = json.dumps(_future_values(future_file, dates))
    return query


def _training_dates(client: Client, job_id: str, spec: dict, steps: int
                    ) -> dict[str, list[str | int] | None]:
    """The ds of a forecast of the job's own series, by id, worked out as the API works them
    out (each series' start, freq and length, the job's freq where a series has none)."""
    dates: dict[str, list[str | int] | None] = {}
    offset: int | None = 0
    while offset is not None:
        page = client.json("GET", f"/v1/jobs/{job_id}/series",
                           query={"tail": 1, "limit": 100, "offset": offset})
        for item in page["series"]:
            dates[item["id"]] = step_dates(item["start"], item["freq"], item["length"], steps,
                                           default_freq=spec.get("freq"))
        offset = page["next_offset"]
    return dates


def _future_values(path: Path, dates: dict[str, list[str | int] | None]
                   ) -> dict[str, dict[str, list[float]]]:
    """--future-values as future_covariates, checked against the forecast's `dates`."""
    try:
        return read_future_values(path.read_text(encoding="utf-8-sig"), dates)
    except FutureValuesError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


@main.group("datasets")
def datasets_group() -> None:
    """Upload series once (CSV or JSON lines, gzipped or not) and train on them by id."""


# File endings and what they hold; `.gz` after any of them means gzipped.
UPLOAD_FORMATS = {".csv": ("text/csv", "csv"), ".jsonl": ("application/x-ndjson", "jsonl"),
                  ".ndjson": ("application/x-ndjson", "jsonl")}


@datasets_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="A label (default: the file's name).")
@click.option("--format", "format_", type=click.Choice(["csv", "jsonl"]), default=None,
              help="The file's format when its name does not say (.csv, .jsonl, .ndjson, "
                   "each optionally .gz).")
@click.option("--static-table", "static_table", default=None, metavar="STATIC.csv",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=STATIC_TABLE_HELP)
@_client_options
def datasets_upload(file: Path, name: str | None, format_: str | None,
                    static_table: Path | None, url: str, token: str) -> None:
    """Upload FILE (its columns beyond unique_id,ds,y are covariate columns; static ones may
    come in a table of their own, --static-table), streamed with a progress bar; print the
    dataset's id, then its summary."""
    gzipped = file.suffix == ".gz"
    inner = Path(file.stem).suffix if gzipped else file.suffix
    if format_ is None:
        if inner not in UPLOAD_FORMATS:
            raise click.UsageError(f"cannot tell the format of {file.name}: name it .csv or "
                                   ".jsonl (.gz allowed) or give --format")
        format_ = UPLOAD_FORMATS[inner][1]
    content_type = "text/csv" if format_ == "csv" else "application/x-ndjson"
    client = Client(url, token)
    size = file.stat().st_size
    # The bar goes to stderr, so that stdout is the id and the summary only (for scripts).
    with click.progressbar(length=size, label=f"uploading {file.name}", file=sys.stderr,
                           show_pos=False, show_percent=True, show_eta=True,
                           width=30) as bar:
        dataset = _api_call(lambda: client.upload(
            "/v1/datasets", file, content_type=content_type, gzipped=gzipped,
            query={"name": name or file.name}, progress=bar.update,
            static_table=static_table))
    click.echo(dataset["id"])
    click.echo(dataset_line(dataset))


@datasets_group.command("list")
@_client_options
def datasets_list(url: str, token: str) -> None:
    """The tenant's datasets, newest first: id, series, points, frequency, name."""
    client = Client(url, token)
    page = {"next_cursor": None}
    while True:
        query = {"limit": 100, "cursor": page["next_cursor"]}
        page = _api_call(lambda q=query: client.json("GET", "/v1/datasets", query=q))
        for dataset in page["datasets"]:
            click.echo(dataset_line(dataset))
        if page["next_cursor"] is None:
            return


@datasets_group.command("show")
@click.argument("dataset_id")
@_client_options
def datasets_show(dataset_id: str, url: str, token: str) -> None:
    """A dataset's description as JSON (series, points, gaps, lengths, frequency)."""
    client = Client(url, token)
    dataset = _api_call(lambda: client.json("GET", f"/v1/datasets/{dataset_id}"))
    click.echo(json.dumps(dataset, indent=2))


@datasets_group.command("delete")
@click.argument("dataset_id")
@_client_options
def datasets_delete(dataset_id: str, url: str, token: str) -> None:
    """Delete a dataset (refused while queued or running jobs use it)."""
    client = Client(url, token)
    _api_call(lambda: client.request("DELETE", f"/v1/datasets/{dataset_id}"))
    click.echo(f"deleted {dataset_id}")


def dataset_line(dataset: dict) -> str:
    """One line: short id, series, points, gaps, lengths, frequency, covariates and name."""
    covariates = [*dataset.get("covariates", ()), *dataset.get("static_covariates", ())]
    return (f"{dataset['id'][:8]}  {dataset['num_series']} series  "
            f"{dataset['num_points']} points  {dataset['num_gaps']} gaps  "
            f"lengths {dataset['min_length']}-{dataset['max_length']}  "
            f"freq {dataset['frequency'] or '-'}  "
            + (f"covariates {','.join(covariates)}  " if covariates else "")
            + (dataset['name'] or '')).rstrip()
