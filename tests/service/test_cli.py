"""The `bptt` command, run through click's CliRunner against a real SQLite database."""

import hashlib
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select
from werkzeug.serving import make_server

from service.cli import main
from service.settings import Settings
from service.store.db import make_engine, session_factory
from service.store.repository import tenant_for_token
from service.store.tables import ApiToken, Tenant
from workers.attempts import run_training

from . import test_forecast_covariates as covariates
from .conftest import settings_for
from .test_covariates_api import csv_rows


def test_tokens_create_prints_a_token_stored_only_as_its_hash(
    runner: CliRunner, settings: Settings
) -> None:
    result = runner.invoke(
        main,
        ["tokens", "create", "--tenant", "acme"],
        env={"BPTT_DATA_DIR": str(settings.data_dir)},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    token = lines[-1]
    assert token.startswith("bptt_") and " " not in token
    assert "acme" in lines[0] and "new tenant" in lines[0]

    sessions = session_factory(settings)
    try:
        with sessions() as session:
            stored = session.scalars(select(ApiToken)).all()
            assert [t.token_hash for t in stored] == [hashlib.sha256(token.encode()).hexdigest()]
            tenant = tenant_for_token(session, token=token)
            assert tenant is not None and tenant.name == "acme"
        # The clear token is nowhere in the database file.
        for path in settings.data_dir.glob("bptt.db*"):
            assert token.encode() not in path.read_bytes()
    finally:
        sessions.kw["bind"].dispose()


def test_a_second_token_for_the_same_tenant(runner: CliRunner, settings: Settings) -> None:
    first = runner.invoke(main, ["tokens", "create", "--tenant", "acme"], obj=settings)
    second = runner.invoke(main, ["tokens", "create", "--tenant", "acme"], obj=settings)
    assert first.exit_code == second.exit_code == 0
    assert "existing tenant" in second.stdout
    assert first.stdout.splitlines()[-1] != second.stdout.splitlines()[-1]
    sessions = session_factory(settings)
    try:
        with sessions() as session:
            assert len(session.scalars(select(Tenant)).all()) == 1
            for output in (first.stdout, second.stdout):
                found = tenant_for_token(session, token=output.splitlines()[-1])
                assert found is not None and found.name == "acme"
    finally:
        sessions.kw["bind"].dispose()


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "x" * 65, "semi;colon"])
def test_tokens_create_refuses_bad_tenant_names(
    runner: CliRunner, settings: Settings, name: str
) -> None:
    result = runner.invoke(main, ["tokens", "create", "--tenant", name], obj=settings)
    assert result.exit_code == 2
    assert "--tenant" in result.output


def test_tokens_create_on_an_unmigrated_database_says_what_to_do(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        main, ["tokens", "create", "--tenant", "acme"], obj=settings_for(tmp_path / "data")
    )
    assert result.exit_code == 1
    assert "bptt db upgrade" in result.output


def test_db_upgrade_and_downgrade(runner: CliRunner, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    result = runner.invoke(main, ["db", "upgrade"], env={"BPTT_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 0, result.output
    assert "head" in result.stdout

    engine = make_engine(settings.database_url)
    try:
        assert "jobs" in inspect(engine).get_table_names()
        refused = runner.invoke(main, ["db", "downgrade", "base"], obj=settings, input="n\n")
        assert refused.exit_code == 1
        assert "jobs" in inspect(engine).get_table_names()
        done = runner.invoke(main, ["db", "downgrade", "base", "--yes"], obj=settings)
        assert done.exit_code == 0, done.output
        assert "jobs" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_bad_settings_are_reported_not_raised(runner: CliRunner) -> None:
    result = runner.invoke(main, ["db", "upgrade"], env={"BPTT_MAX_EPOCHS": "many"})
    assert result.exit_code == 1
    assert "BPTT_MAX_EPOCHS" in result.output


@pytest.mark.parametrize(
    "args", [[], ["db"], ["db", "upgrade"], ["db", "downgrade"], ["tokens"], ["tokens", "create"]]
)
def test_every_command_has_help(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 4


@pytest.fixture
def served(app) -> Iterator[str]:
    """The app over real HTTP on 127.0.0.1 (werkzeug's server in a thread): its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_submit_names_and_labels_the_job(runner: CliRunner, served: str, tmp_path: Path,
                                         client, auth: dict[str, str]) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("unique_id,ds,y\n" + "".join(f"a,{i},{i % 5}\n" for i in range(40)))
    env = {"BPTT_URL": served, "BPTT_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
    result = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--name", "weekly 7",
                                  "--label", "team=retail", "--label", "v=2"], env=env)
    assert result.exit_code == 0, result.output
    job = client.get(f"/v1/jobs/{result.stdout.strip()}", headers=auth).get_json()
    assert job["name"] == "weekly 7" and job["labels"] == {"team": "retail", "v": "2"}

    bad = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--label", "team"], env=env)
    assert bad.exit_code == 2 and "'team' is not KEY=VALUE" in bad.output
    refused = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--label", "a:b=c"],
                            env=env)
    assert refused.exit_code == 1 and "labels.a:b: a label key is" in refused.output


def test_submit_declares_the_csvs_covariate_columns(runner: CliRunner, served: str,
                                                   tmp_path: Path, client,
                                                   auth: dict[str, str]) -> None:
    data = tmp_path / "stores.csv"
    data.write_text(csv_rows())
    env = {"BPTT_URL": served, "BPTT_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
    result = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--future", "promo",
                                  "--historical", "temp", "--static", "store_type"], env=env)
    assert result.exit_code == 0, result.output
    job = client.get(f"/v1/jobs/{result.stdout.strip()}", headers=auth).get_json()
    assert job["covariates"] == {"store_type": "static", "temp": "historical",
                                 "promo": "future"}

    undeclared = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--future",
                                      "promo", "--static", "store_type"], env=env)
    assert undeclared.exit_code == 1 and "temp: unknown column" in undeclared.output
    twice = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--future", "promo",
                                 "--historical", "promo"], env=env)
    assert twice.exit_code == 2 and "'promo' is given as historical and as future" in (
        twice.output)


def test_submit_sets_the_calendar(runner: CliRunner, served: str, tmp_path: Path,
                                  client, auth: dict[str, str]) -> None:
    data = tmp_path / "daily.csv"
    data.write_text("unique_id,ds,y\n" + "".join(
        f"a,2026-01-{1 + i:02d},{i % 7}\n" for i in range(31)))
    env = {"BPTT_URL": served, "BPTT_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
    result = runner.invoke(main, ["submit", str(data), "--horizon", "2", "--calendar", "onehot"],
                           env=env)
    assert result.exit_code == 0, result.output
    job = client.get(f"/v1/jobs/{result.stdout.strip()}", headers=auth).get_json()
    assert job["requested_spec"]["calendar"] == job["spec"]["calendar"] == "onehot"
    undated = tmp_path / "undated.csv"
    undated.write_text("unique_id,ds,y\n" + "".join(f"a,{i},{i % 5}\n" for i in range(40)))
    refused = runner.invoke(main, ["submit", str(undated), "--horizon", "2", "--calendar",
                                   "cyclic"], env=env)
    assert refused.exit_code == 1 and "calendar: 'cyclic' needs calendar dates" in refused.output


def test_forecast_reads_the_future_values_from_a_csv_on_the_forecast_dates(
        runner: CliRunner, served: str, tmp_path: Path, client, auth: dict[str, str],
        sessions, settings: Settings) -> None:
    body = {"series": covariates.SERIES, "covariates": covariates.KINDS, **covariates.SPEC}
    job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    env = {"BPTT_URL": served, "BPTT_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]  # the days after the series' last
    promo = {"store-1": [1, 0, 1], "store-2": [0, 0, 1]}
    rows = [f"{sid},{day},{promo[sid][k]}" for sid in promo for k, day in enumerate(days)]
    planned = tmp_path / "promo.csv"
    planned.write_text("\n".join(["ds,unique_id,promo", *(
        f"{r.split(',')[1]},{r.split(',')[0]},{r.split(',')[2]}" for r in reversed(rows))]))

    result = runner.invoke(main, ["forecast", job_id, "--future-values", str(planned)], env=env)
    assert result.exit_code == 0, result.output
    expected = client.post("/v1/forecasts", headers={**auth, "Accept": "text/csv"}, json={
        "job_id": job_id, "future_covariates": {"promo": promo}}).get_data(as_text=True)
    assert result.stdout == expected
    assert result.stdout.splitlines()[1].startswith("store-1,2024-03-01,1,")

    for lines, message in [
        (["unique_id,ds,promo", *rows[:-1]], "'store-2' has no row for ds 2024-03-03"),
        (["unique_id,ds,promo", *rows, "store-2,2024-03-02T12:00,1"],
         "line 8: ds '2024-03-02T12:00' is not a forecast step of 'store-2' (those are "
         "2024-03-01 ... 2024-03-03)"),
        (["unique_id,ds,promo", *rows, "store-1,2024-03-04,1"],
         "line 8: ds '2024-03-04' is not a forecast step"),
        (["unique_id,ds,promo", *rows, "store-9,2024-03-01,1"],
         "line 8: 'store-9' is not a series of this forecast"),
        (["unique_id,ds,promo", rows[0].replace(",1", ",yes"), *rows[1:]],
         "line 2: promo must be a finite number (got 'yes')"),
        (["unique_id,promo", *rows], "the header must hold unique_id, ds"),
    ]:
        planned.write_text("\n".join(lines) + "\n")
        refused = runner.invoke(main, ["forecast", job_id, "--future-values", str(planned)],
                                env=env)
        assert refused.exit_code == 1 and message in refused.output, (lines, refused.output)
    # a name the model does not know reaches the API, whose 422 names it
    planned.write_text("\n".join(["unique_id,ds,promo,sun", *(f"{r},1" for r in rows)]) + "\n")
    refused = runner.invoke(main, ["forecast", job_id, "--future-values", str(planned)], env=env)
    assert refused.exit_code == 1 and "future_covariates.sun" in refused.output, refused.output
    usage = runner.invoke(main, ["forecast", job_id, "--dataset", "d1", "--future-values",
                                 str(planned)], env=env)
    assert usage.exit_code == 2 and "--future-values goes with the job's own series" in usage.output


def test_forecast_of_a_csv_with_covariate_columns_reads_its_future_values(
        runner: CliRunner, served: str, tmp_path: Path, client, auth: dict[str, str],
        sessions, settings: Settings) -> None:
    body = {"series": covariates.SERIES, "covariates": covariates.KINDS, **covariates.SPEC}
    job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    assert run_training(sessions, settings, job_id, "test:1") == "succeeded"
    env = {"BPTT_URL": served, "BPTT_TOKEN": auth["Authorization"].removeprefix("Bearer ")}
    # store-1 with 5 more days than in training (so to 2024-03-05), and a new store
    sent = [covariates.series_item(0, "store-1", 65), covariates.series_item(2, "store-3", 40)]
    lines = ["unique_id,ds,y,promo,temp,region"]
    for s in sent:
        own = s["covariates"]
        lines += [f"{s['id']},{date(2024, 1, 1) + timedelta(days=t)},{v},{own['promo'][t]},"
                  f"{own['temp'][t]},{own['region']}" for t, v in enumerate(s["values"])]
    series = tmp_path / "series.csv"
    series.write_text("\n".join(lines) + "\n")
    promo = {"store-1": [0, 1, 1], "store-3": [1, 0, 0]}
    days = {"store-1": ["2024-03-06", "2024-03-07", "2024-03-08"],
            "store-3": ["2024-02-10", "2024-02-11", "2024-02-12"]}
    planned = tmp_path / "promo.csv"
    planned.write_text("unique_id,ds,promo\n" + "".join(
        f"{sid},{day},{promo[sid][k]}\n" for sid in promo for k, day in enumerate(days[sid])))

    result = runner.invoke(main, ["forecast", job_id, str(series), "--future-values",
                                  str(planned)], env=env)
    assert result.exit_code == 0, result.output
    expected = client.post("/v1/forecasts", headers={**auth, "Accept": "text/csv"}, json={
        "job_id": job_id, "series": sent, "future_covariates": {"promo": promo}})
    assert result.stdout == expected.get_data(as_text=True)
    # the training series' dates are not these series' dates
    planned.write_text(planned.read_text().replace("2024-03-06", "2024-03-01"))
    refused = runner.invoke(main, ["forecast", job_id, str(series), "--future-values",
                                   str(planned)], env=env)
    assert refused.exit_code == 1 and "ds '2024-03-01' is not a forecast step of 'store-1'" \
        in refused.output, refused.output
