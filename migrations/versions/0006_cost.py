"""What a job costs: its estimate at submit and its measured use; the workers' measured speed.

Revision ID: 0006_cost
Revises: 0004_recovery
Create Date: 2026-12-04

jobs gains the estimate made at submit (bptt.estimate_cost: FLOPs, peak memory, updates, and
the expected seconds at the workers' measured speed) and what its last attempt measured (seconds,
peak memory), and the batches done in the epoch in progress (the heartbeat's, for the time
left). worker_calibrations keeps each worker process's timing of its kernels at start
(bptt.measure_kernel_speed), from which the API turns estimates into seconds. All new columns
are nullable: jobs from before this revision have neither.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_cost"
down_revision = "0009_datasets"
branch_labels = None
depends_on = None

COLUMNS = (("estimate", sa.JSON), ("usage", sa.JSON), ("epoch_batches", sa.Integer))


def upgrade() -> None:
    """Add the job columns and the calibrations table."""
    with op.batch_alter_table("jobs") as batch:
        for column, kind in COLUMNS:
            batch.add_column(sa.Column(column, kind, nullable=True))
    op.create_table(
        "worker_calibrations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("threads", sa.Integer, nullable=False),
        sa.Column("gflops", sa.Float, nullable=False),
        sa.Column("gelements", sa.Float, nullable=False),
        sa.Column("pass_seconds", sa.Float, nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_calibrations")),
    )
    op.create_index(op.f("ix_worker_calibrations_measured_at"), "worker_calibrations",
                    ["measured_at"])


def downgrade() -> None:
    """Back to revision 0009_datasets."""
    op.drop_index(op.f("ix_worker_calibrations_measured_at"), table_name="worker_calibrations")
    op.drop_table("worker_calibrations")
    with op.batch_alter_table("jobs") as batch:
        for column, _ in reversed(COLUMNS):
            batch.drop_column(column)
