"""Data operations on a real database: tokens, the metrics upsert, cascades, UTC timestamps."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.store import repository
from service.store.codec import compress_json, decompress_json
from service.store.db import make_engine, upgrade
from service.store.tables import ApiToken, Checkpoint, Dataset, EpochMetric, Job, Tenant

from .conftest import settings_for

METRICS = {
    "attempt": 1,
    "train_loss": 0.5,
    "val_loss": 0.6,
    "grad_norm": 1.5,
    "max_grad_norm": 3.0,
    "clip_fraction": 0.25,
    "learning_rate": 0.005,
    "seconds": 0.1,
    "grad_flow": [0.1, 0.2, 0.3],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated database: SQLite in tmp_path, or the shared PostgreSQL one."""
    if request.param == "sqlite":
        url = settings_for(tmp_path / "data").database_url
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    result = make_engine(url)
    yield result
    result.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def unique(prefix: str) -> str:
    """A tenant name no other test uses (the PostgreSQL database is shared by the run)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_job(session: Session, **fields: object) -> Job:
    """A new tenant and a queued job of it."""
    tenant = repository.create_tenant(session, name=unique("t"))
    job = Job(tenant_id=tenant.id, spec={"horizon": 3}, **fields)
    session.add(job)
    session.flush()
    return job


def test_tokens_are_stored_hashed_and_find_their_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name=unique("acme"))
        issued = repository.create_token(session, tenant=tenant)
        other = repository.create_token(session, tenant=tenant)
    assert issued.token.startswith("bptt_") and len(issued.token) > 40
    assert issued.token != other.token
    with sessions() as session:
        stored = session.get(ApiToken, issued.record.id)
        assert stored is not None
        assert stored.token_hash == repository.hash_token(issued.token)
        assert issued.token not in (stored.token_hash, stored.prefix)
        assert issued.token.startswith(stored.prefix)
        found = repository.tenant_for_token(session, token=issued.token)
        assert found is not None and found.id == tenant.id
        assert repository.tenant_for_token(session, token=issued.token + "x") is None
        assert repository.tenant_for_token(session, token="") is None


def test_a_revoked_token_finds_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name=unique("revoked"))
        issued = repository.create_token(session, tenant=tenant)
        issued.record.revoked = True
    with sessions() as session:
        assert repository.tenant_for_token(session, token=issued.token) is None


def test_a_retried_epoch_replaces_its_row(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        job_id = new_job(session).id
        repository.upsert_epoch_metrics(session, job_id=job_id, epoch=1, **METRICS)
        repository.upsert_epoch_metrics(session, job_id=job_id, epoch=2, **METRICS)
    with sessions.begin() as session:
        # The second attempt redoes epoch 2 without a validation loss.
        retried = {**METRICS, "attempt": 2, "train_loss": 0.25}
        del retried["val_loss"]
        repository.upsert_epoch_metrics(session, job_id=job_id, epoch=2, **retried)
    with sessions() as session:
        rows = session.scalars(
            select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch)
        ).all()
    assert [(r.epoch, r.attempt, r.train_loss) for r in rows] == [(1, 1, 0.5), (2, 2, 0.25)]
    assert rows[1].val_loss is None  # replaced, not merged
    assert rows[1].grad_flow == [0.1, 0.2, 0.3]
    assert rows[1].recorded_at.tzinfo is not None


def test_upsert_refuses_unknown_columns(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(TypeError, match="trian_loss"):
        repository.upsert_epoch_metrics(session, job_id="x", epoch=1, trian_loss=1.0)


def test_deleting_a_job_deletes_its_data(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        job_id = new_job(session).id
        repository.upsert_epoch_metrics(session, job_id=job_id, epoch=1, **METRICS)
        session.add(Checkpoint(job_id=job_id, epoch=1, attempt=1, data=b"\x00" * 16))
        session.add(
            Dataset(job_id=job_id, series_zlib=compress_json([]), num_series=0, num_points=0)
        )
    with sessions.begin() as session:
        session.execute(delete(Job).where(Job.id == job_id))
    with sessions() as session:
        for model in (EpochMetric, Checkpoint, Dataset):
            count = session.scalar(
                select(func.count()).select_from(model).where(model.job_id == job_id)
            )
            assert count == 0, model.__tablename__


def test_idempotency_keys_are_unique_per_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = new_job(session, idempotency_key="k1")
        new_job(session, idempotency_key="k1")  # another tenant: allowed
        session.add(Job(tenant_id=first.tenant_id, spec={}))  # no key: never collides
        session.add(Job(tenant_id=first.tenant_id, spec={}))
    with sessions() as session:
        session.add(Job(tenant_id=first.tenant_id, spec={}, idempotency_key="k1"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_job_status_is_constrained(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(IntegrityError, match="ck_jobs_status"):
        new_job(session, status="exploded")


def test_timestamps_come_back_in_utc(sessions: sessionmaker[Session]) -> None:
    paris = timezone(timedelta(hours=1))
    lease = datetime(2025, 1, 2, 13, 0, tzinfo=paris)
    with sessions.begin() as session:
        job_id = new_job(session, lease_expires_at=lease).id
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.lease_expires_at == lease
        assert job.lease_expires_at.utcoffset() == timedelta(0)
        assert job.created_at.tzinfo is not None
        # Comparison in SQL works across the conversion (what the reaper relies on).
        expired = session.scalars(
            select(Job.id).where(Job.id == job_id, Job.lease_expires_at < datetime.now(UTC))
        ).all()
        assert expired == [job_id]


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(Exception, match="naive datetime"):
        new_job(session, started_at=datetime(2025, 1, 1))


def test_tenants_names_are_unique(sessions: sessionmaker[Session]) -> None:
    name = unique("dup")
    with sessions.begin() as session:
        repository.create_tenant(session, name=name)
    with sessions() as session:
        with pytest.raises(IntegrityError):
            repository.create_tenant(session, name=name)
    with sessions() as session:
        assert repository.tenant_by_name(session, name=name) is not None
        count = select(func.count()).select_from(Tenant).where(Tenant.name == name)
        assert session.scalar(count) == 1


def test_compressed_json_round_trips_and_refuses_nan() -> None:
    series = [{"id": "a", "values": [1.5, None, 3.0]}, {"id": "ü", "values": []}]
    data = compress_json(series)
    assert isinstance(data, bytes) and data[:1] == b"\x78"  # a zlib stream, not a pickle
    assert decompress_json(data) == series
    with pytest.raises(ValueError):
        compress_json([float("nan")])
