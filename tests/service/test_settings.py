"""Settings: BPTT_* variables, documented defaults, errors that name the variable."""

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from service.settings import Settings


def test_defaults_put_everything_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"BPTT_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/bptt.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path.resolve()}/broker.db"
    assert settings.is_sqlite
    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.max_queued_jobs_per_tenant == 20


def test_empty_environment_uses_data_under_the_working_directory() -> None:
    settings = Settings.from_env({})
    assert settings.data_dir == (Path.cwd() / "data").resolve()


def test_variables_override_defaults() -> None:
    settings = Settings.from_env(
        {
            "BPTT_DATABASE_URL": "postgresql+psycopg://u@db/bptt",
            "BPTT_BROKER_URL": "redis://127.0.0.1:6379/0",
            "BPTT_MAX_EPOCHS": "50",
            "BPTT_MAX_POINTS": "2_000_000",
            "BPTT_SYNC_FORECAST_MAX_SERIES": " 7 ",
            "BPTT_LOG_LEVEL": "debug",
            "OTHER_MAX_EPOCHS": "1",  # another prefix is not ours
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@db/bptt"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert not settings.is_sqlite
    assert (settings.max_epochs, settings.max_points) == (50, 2_000_000)
    assert settings.sync_forecast_max_series == 7
    assert settings.log_level == "DEBUG"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPTT_MAX_HORIZON", "24")
    assert Settings.from_env().max_horizon == 24


def test_bad_values_name_every_variable() -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env(
            {"BPTT_MAX_SERIES": "lots", "BPTT_MAX_HIDDEN_SIZE": "0", "BPTT_LOG_LEVEL": "LOUD"}
        )
    message = str(caught.value)
    assert "BPTT_MAX_SERIES='lots': not an integer" in message
    assert "BPTT_MAX_HIDDEN_SIZE='0': must be at least 1" in message
    assert "BPTT_LOG_LEVEL" in message


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings.from_env({"BPTT_DATA_DIR": str(tmp_path)})
    with pytest.raises(FrozenInstanceError):
        settings.max_epochs = 5  # type: ignore[misc]


def test_direct_construction_derives_the_same_urls(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_epochs=3)
    assert settings == Settings.from_env({"BPTT_DATA_DIR": str(tmp_path), "BPTT_MAX_EPOCHS": "3"})
    assert settings.database_url.endswith("/bptt.db")
