"""The schema comes only from migrations: up from empty, down to nothing, up again; on SQLite and
on a real PostgreSQL; and the models match what the migrations build."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from service.store.db import downgrade, make_engine, schema_revision, upgrade
from service.store.tables import Base

TABLES = {
    "tenants",
    "api_tokens",
    "jobs",
    "datasets",
    "epoch_metrics",
    "checkpoints",
    "models",
    "forecast_batches",
    "sweeps",
    "series_states",
    "job_attempts",
    "uploaded_datasets",
    "uploaded_dataset_chunks",
    "worker_calibrations",
}
HEAD = "0012_dataset_covariates"


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def column_names(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    return schema_revision(url)


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert table_names(database_url) == set()

    upgrade(database_url)
    assert TABLES <= table_names(database_url)
    assert current_revision(database_url) == HEAD

    downgrade(database_url, "0010_dataset_calendar")  # one step: the newest revision's own
    assert current_revision(database_url) == "0010_dataset_calendar"
    assert "covariates" not in column_names(database_url, "jobs")
    downgrade(database_url, "0006_cost")
    assert current_revision(database_url) == "0006_cost"
    assert "freq_inferred" not in column_names(database_url, "uploaded_datasets")
    downgrade(database_url, "0009_datasets")
    assert current_revision(database_url) == "0009_datasets"
    assert "estimate" not in column_names(database_url, "jobs")
    assert "worker_calibrations" not in table_names(database_url)
    downgrade(database_url, "0004_recovery")
    assert current_revision(database_url) == "0004_recovery"
    assert "uploaded_datasets" not in table_names(database_url)
    assert "uploaded_dataset_id" not in column_names(database_url, "datasets")
    downgrade(database_url, "0008_names_labels")
    assert current_revision(database_url) == "0008_names_labels"
    assert "job_attempts" not in table_names(database_url)
    assert "lease_owner" not in column_names(database_url, "forecast_batches")
    downgrade(database_url, "0003")
    assert current_revision(database_url) == "0003"
    assert "labels" not in column_names(database_url, "jobs")
    assert "name" not in column_names(database_url, "sweeps")
    downgrade(database_url, "0002")
    assert current_revision(database_url) == "0002"
    assert "resolved_spec" not in column_names(database_url, "jobs")
    downgrade(database_url, "0001")
    assert current_revision(database_url) == "0001"
    assert "sweeps" not in table_names(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == HEAD

    downgrade(database_url, "base")
    assert table_names(database_url) & TABLES == set()
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert TABLES <= table_names(database_url)
    assert current_revision(database_url) == HEAD


def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # would fail with "table already exists" if the version were lost
    assert current_revision(database_url) == HEAD


def test_models_match_the_migrations(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_indexes_and_constraints_exist(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        inspector = inspect(engine)
        job_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("jobs")}
        assert job_indexes["ix_jobs_tenant_id_status_created_at"] == [
            "tenant_id",
            "status",
            "created_at",
        ]
        metric_uniques = {
            u["name"]: u["column_names"] for u in inspector.get_unique_constraints("epoch_metrics")
        }
        assert metric_uniques["uq_epoch_metrics_job_id_epoch"] == ["job_id", "epoch"]
        metric_indexes = {i["name"]: i["column_names"]
                          for i in inspector.get_indexes("epoch_metrics")}
        assert metric_indexes["ix_epoch_metrics_job_id_val_loss"] == ["job_id", "val_loss"]
        job_uniques = {u["name"] for u in inspector.get_unique_constraints("jobs")}
        assert "uq_jobs_tenant_id_idempotency_key" in job_uniques
    finally:
        engine.dispose()


def test_postgres_url_is_a_real_postgresql_15(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("15.")
    upgrade(postgres_url)
    assert TABLES <= table_names(postgres_url)
