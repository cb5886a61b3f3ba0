"""Data operations shared by the API, the workers and the CLI.

Each takes a session and keyword-only arguments, and leaves committing to the caller, so that
several operations can share one transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import ApiToken, EpochMetric, Tenant, utcnow

# Recognizable by secret scanners and by people; the random part carries 256 bits.
TOKEN_PREFIX = "bptt_"
TOKEN_RANDOM_BYTES = 32
DISPLAY_PREFIX_LENGTH = 12  # "bptt_" plus 7 random characters: enough to tell tokens apart

# The columns a metrics upsert replaces: everything but the row's identity.
_METRIC_COLUMNS = frozenset(
    c.name for c in EpochMetric.__table__.columns if c.name not in ("id", "job_id", "epoch")
)


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: `token` is the clear value, available only at this moment."""

    token: str
    record: ApiToken


def hash_token(token: str) -> str:
    """The hex SHA-256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tenant_by_name(session: Session, *, name: str) -> Tenant | None:
    """The tenant called `name`, if any."""
    return session.scalar(select(Tenant).where(Tenant.name == name))


def create_tenant(session: Session, *, name: str) -> Tenant:
    """Add a tenant called `name` (flushed, so its id is set)."""
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def create_token(session: Session, *, tenant: Tenant) -> IssuedToken:
    """Add a new API token for `tenant`; only its hash is stored, the clear token is returned."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
    record = ApiToken(
        tenant_id=tenant.id, token_hash=hash_token(token), prefix=token[:DISPLAY_PREFIX_LENGTH]
    )
    session.add(record)
    session.flush()
    return IssuedToken(token=token, record=record)


def tenant_for_token(session: Session, *, token: str) -> Tenant | None:
    """The tenant a clear bearer token belongs to, or None if unknown or revoked."""
    # Looking up by hash means no comparison ever runs on the secret itself, so there is no
    # timing side channel worth closing with compare_digest.
    return session.scalar(
        select(Tenant)
        .join(ApiToken, ApiToken.tenant_id == Tenant.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
    )


def upsert_epoch_metrics(session: Session, *, job_id: str, epoch: int, **values: Any) -> None:
    """Write one epoch's metrics, replacing the row a previous attempt wrote for that epoch."""
    unknown = set(values) - _METRIC_COLUMNS
    if unknown:
        raise TypeError(f"unknown epoch metric column(s): {', '.join(sorted(unknown))}")
    # Replace, not merge: columns not given go back to NULL, so nothing of an earlier attempt's
    # row survives. recorded_at is refreshed.
    row = {name: None for name in _METRIC_COLUMNS}
    row.update(values, recorded_at=values.get("recorded_at") or utcnow())
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert(EpochMetric)
    elif dialect == "sqlite":
        insert = sqlite.insert(EpochMetric)
    else:
        raise NotImplementedError(f"upsert_epoch_metrics: no upsert for dialect {dialect!r}")
    statement = insert.values(job_id=job_id, epoch=epoch, **row)
    statement = statement.on_conflict_do_update(
        index_elements=[EpochMetric.job_id, EpochMetric.epoch],
        set_={name: statement.excluded[name] for name in _METRIC_COLUMNS},
    )
    session.execute(statement)
