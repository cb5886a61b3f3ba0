"""Uploaded datasets: series stored once as compressed arrays, referenced by jobs.

Revision ID: 0009_datasets
Revises: 0004_recovery
Create Date: 2026-12-04

uploaded_datasets describes each upload (sizes, gaps, lengths, frequency) and holds its index
(series ids, start labels, lengths); uploaded_dataset_chunks holds the values, consecutive
series per chunk as compressed float64 arrays. A job's row in datasets now holds either its
series (as before) or a reference to an uploaded dataset and the subset of series it uses.

Downgrading deletes the jobs that train on an uploaded dataset (revision 0004 cannot hold them:
a job's series were required), then the two tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_datasets"
down_revision = "0004_recovery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create uploaded_datasets and its chunks; let a job's datasets row refer to one."""
    op.create_table(
        "uploaded_datasets",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "tenant_id",
            sa.Integer,
            sa.ForeignKey("tenants.id", name=op.f("fk_uploaded_datasets_tenant_id_tenants"),
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("num_series", sa.Integer, nullable=False),
        sa.Column("num_points", sa.BigInteger, nullable=False),
        sa.Column("num_gaps", sa.BigInteger, nullable=False),
        sa.Column("min_length", sa.Integer, nullable=False),
        sa.Column("max_length", sa.Integer, nullable=False),
        sa.Column("frequency", sa.String(16), nullable=True),
        sa.Column("missing_timestamps", sa.BigInteger, nullable=True),
        sa.Column("length_histogram", sa.JSON, nullable=False),
        sa.Column("index_zlib", sa.LargeBinary, nullable=False),
        sa.Column("lengths_zlib", sa.LargeBinary, nullable=False),
        sa.Column("upload_bytes", sa.BigInteger, nullable=False),
        sa.Column("text_bytes", sa.BigInteger, nullable=False),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_datasets")),
    )
    op.create_index(op.f("ix_uploaded_datasets_tenant_id_created_at"), "uploaded_datasets",
                    ["tenant_id", "created_at"])
    op.create_table(
        "uploaded_dataset_chunks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column(
            "dataset_id",
            sa.String(36),
            sa.ForeignKey("uploaded_datasets.id",
                          name=op.f("fk_uploaded_dataset_chunks_dataset_id_uploaded_datasets"),
                          ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("first_series", sa.Integer, nullable=False),
        sa.Column("num_series", sa.Integer, nullable=False),
        sa.Column("num_points", sa.Integer, nullable=False),
        sa.Column("values_zlib", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_dataset_chunks")),
        sa.UniqueConstraint("dataset_id", "chunk",
                            name=op.f("uq_uploaded_dataset_chunks_dataset_id_chunk")),
    )
    with op.batch_alter_table("datasets") as batch:
        batch.alter_column("series_zlib", existing_type=sa.LargeBinary, nullable=True)
        batch.add_column(sa.Column("uploaded_dataset_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("series_ids_zlib", sa.LargeBinary, nullable=True))
        batch.create_index(op.f("ix_datasets_uploaded_dataset_id"), ["uploaded_dataset_id"])
        batch.create_check_constraint(
            op.f("ck_datasets_one_source"),
            "(series_zlib IS NULL) <> (uploaded_dataset_id IS NULL)")


def downgrade() -> None:
    """Back to revision 0004 (the jobs of uploaded datasets go: see the module docstring)."""
    op.execute("DELETE FROM jobs WHERE id IN "
               "(SELECT job_id FROM datasets WHERE uploaded_dataset_id IS NOT NULL)")
    # SQLite enforces foreign keys per connection (db.py turns them on): remove the rows the
    # cascade would have removed, in case it did not.
    op.execute("DELETE FROM datasets WHERE uploaded_dataset_id IS NOT NULL")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_constraint(op.f("ck_datasets_one_source"), type_="check")
        batch.drop_index(op.f("ix_datasets_uploaded_dataset_id"))
        batch.drop_column("series_ids_zlib")
        batch.drop_column("uploaded_dataset_id")
        batch.alter_column("series_zlib", existing_type=sa.LargeBinary, nullable=False)
    op.drop_table("uploaded_dataset_chunks")
    op.drop_index(op.f("ix_uploaded_datasets_tenant_id_created_at"), "uploaded_datasets")
    op.drop_table("uploaded_datasets")
