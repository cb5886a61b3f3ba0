"""Sweeps, warm starts, cross-validation, per-epoch BPTT insight and per-series forecast state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

jobs gains its sweep (trials are ordinary jobs, so every worker guarantee holds for them), the
job it was warm-started from, its validation score and its cross-validation scores;
epoch_metrics gains the epoch's BPTT insight; series_states keeps each training series' recent
values and final hidden state for forecasts that need no history from the client. Batch mode
rebuilds the jobs table on SQLite, which cannot add a foreign key to an existing table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add sweeps and series_states; extend jobs and epoch_metrics."""
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey("tenants.id", name=op.f("fk_sweeps_tenant_id_tenants"),
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("trials_total", sa.Integer, nullable=False),
        sa.Column("best_job_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')",
                           name=op.f("ck_sweeps_status")),
    )
    op.create_index(op.f("ix_sweeps_tenant_id_created_at"), "sweeps",
                    ["tenant_id", "created_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("trial", sa.Integer, nullable=True))
        batch.add_column(sa.Column("warm_start_job_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("score", sa.Float, nullable=True))
        batch.add_column(sa.Column("cross_validation", sa.JSON, nullable=True))
        batch.create_foreign_key(op.f("fk_jobs_sweep_id_sweeps"), "sweeps", ["sweep_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index(op.f("ix_jobs_sweep_id"), ["sweep_id"])
    with op.batch_alter_table("epoch_metrics") as batch:
        batch.add_column(sa.Column("insight", sa.JSON, nullable=True))
    op.create_table(
        "series_states",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", name=op.f("fk_series_states_job_id_jobs"),
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("series_id", sa.String(128), nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series_states")),
        sa.UniqueConstraint("job_id", "series_id", name=op.f("uq_series_states_job_id_series_id")),
    )


def downgrade() -> None:
    """Back to revision 0001."""
    op.drop_table("series_states")
    with op.batch_alter_table("epoch_metrics") as batch:
        batch.drop_column("insight")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index(op.f("ix_jobs_sweep_id"))
        batch.drop_constraint(op.f("fk_jobs_sweep_id_sweeps"), type_="foreignkey")
        for column in ("cross_validation", "score", "warm_start_job_id", "trial", "sweep_id"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_sweeps_tenant_id_created_at"), "sweeps")
    op.drop_table("sweeps")
