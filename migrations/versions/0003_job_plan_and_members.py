"""A job's resolved spec, its finished ensemble members and what a running job is doing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

jobs gains the spec resolved at submit (every choice the engine makes from the data, so the
job document shows the values used, not null; `spec` stays the request, which warm starts
merge with), a summary of each ensemble member that has finished (epochs, best epoch, why it
stopped) and the stage of a running job (training or cross-validation). All three are
nullable: jobs from before this revision have none, and readers fall back to `spec`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("resolved_spec", "members", "stage")


def upgrade() -> None:
    """Add the three columns to jobs."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("resolved_spec", sa.JSON, nullable=True))
        batch.add_column(sa.Column("members", sa.JSON, nullable=True))
        batch.add_column(sa.Column("stage", sa.String(32), nullable=True))


def downgrade() -> None:
    """Back to revision 0002."""
    with op.batch_alter_table("jobs") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
