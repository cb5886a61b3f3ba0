"""Recovery: forecast batches claimed with leases as jobs are, and an audit of job attempts.

Revision ID: 0004_recovery
Revises: 0008_names_labels
Create Date: 2026-12-05

forecast_batches gains what a claim needs (attempts, lease owner and expiry, last enqueue),
so that a batch whose worker died is re-sent by the reaper and finished only by its current
owner. job_attempts records each claim of a job (owner, claimed, last seen, outcome): which
attempts lost their worker, and evidence that no two attempts of a job ever wrote at once.
Existing batches start with no lease and no enqueue time (the reaper re-sends a queued one).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_recovery"
down_revision = "0008_names_labels"
branch_labels = None
depends_on = None

BATCH_COLUMNS = ("attempts", "lease_owner", "lease_expires_at", "enqueued_at")


def upgrade() -> None:
    """Add the batch lease columns and the job_attempts table."""
    with op.batch_alter_table("forecast_batches") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, server_default=sa.text("0"),
                                   nullable=False))
        batch.add_column(sa.Column("lease_owner", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_forecast_batches_status_lease_expires_at"),
                           ["status", "lease_expires_at"])
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", name=op.f("fk_job_attempts_job_id_jobs"),
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_attempts")),
        sa.UniqueConstraint("job_id", "attempt", name=op.f("uq_job_attempts_job_id_attempt")),
        sa.CheckConstraint(
            "outcome IN ('succeeded', 'failed', 'cancelled', 'released', 'lost')",
            name=op.f("ck_job_attempts_outcome"),
        ),
    )


def downgrade() -> None:
    """Back to revision 0008_names_labels."""
    op.drop_table("job_attempts")
    with op.batch_alter_table("forecast_batches") as batch:
        batch.drop_index(op.f("ix_forecast_batches_status_lease_expires_at"))
        for column in reversed(BATCH_COLUMNS):
            batch.drop_column(column)
