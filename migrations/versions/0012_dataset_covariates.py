"""Uploaded datasets with covariates: numbers per point stored beside the values, and a static
table.

Revision ID: 0012_dataset_covariates
Revises: 0011_job_covariates
Create Date: 2026-12-04

A dataset upload may carry covariate columns (a CSV's columns beyond unique_id,ds,y, a JSON
line's "covariates"). uploaded_datasets.covariate_columns names them; each chunk keeps its
points' columns in uploaded_dataset_chunks.covariates_zlib, compressed as its values are. Both
are null for a dataset without covariates (every dataset from before). A static table given
at upload (one value per series of each static covariate) is uploaded_datasets.static_columns
(its names) and static_zlib (the values, compressed JSON in storage order); null without one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_dataset_covariates"
down_revision = "0011_job_covariates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uploaded_datasets.covariate_columns, static_columns and static_zlib, and
    uploaded_dataset_chunks.covariates_zlib."""
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.add_column(sa.Column("covariate_columns", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("static_columns", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("static_zlib", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("uploaded_dataset_chunks") as batch:
        batch.add_column(sa.Column("covariates_zlib", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Back to revision 0011_job_covariates."""
    with op.batch_alter_table("uploaded_dataset_chunks") as batch:
        batch.drop_column("covariates_zlib")
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.drop_column("static_zlib")
        batch.drop_column("static_columns")
        batch.drop_column("covariate_columns")
