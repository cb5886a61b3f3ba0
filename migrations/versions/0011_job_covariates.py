"""Jobs with covariates: the kinds a job declared are kept with it.

Revision ID: 0011_job_covariates
Revises: 0010_dataset_calendar
Create Date: 2026-12-04

A job request may declare covariates ({name: "static" | "historical" | "future"}); each of its
series items carries their values, kept in the job's stored series (datasets.series_zlib) as
sent. jobs.covariates holds the declaration, null for a job without covariates (every job from
before).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_job_covariates"
down_revision = "0010_dataset_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add jobs.covariates."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("covariates", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Back to revision 0010_dataset_calendar."""
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("covariates")
