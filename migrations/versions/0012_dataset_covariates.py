"""Uploaded datasets with covariate columns: numbers per point stored beside the values.

Revision ID: 0012_dataset_covariates
Revises: 0011_job_covariates
Create Date: 2026-12-04

A dataset upload may carry covariate columns (a CSV's columns beyond unique_id,ds,y, a JSON
line's "covariates"). uploaded_datasets.covariate_columns names them; each chunk keeps its
points' columns in uploaded_dataset_chunks.covariates_zlib, compressed as its values are. Both
are null for a dataset without covariates (every dataset from before).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_dataset_covariates"
down_revision = "0011_job_covariates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uploaded_datasets.covariate_columns and uploaded_dataset_chunks.covariates_zlib."""
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.add_column(sa.Column("covariate_columns", sa.JSON(), nullable=True))
    with op.batch_alter_table("uploaded_dataset_chunks") as batch:
        batch.add_column(sa.Column("covariates_zlib", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Back to revision 0011_job_covariates."""
    with op.batch_alter_table("uploaded_dataset_chunks") as batch:
        batch.drop_column("covariates_zlib")
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.drop_column("covariate_columns")
