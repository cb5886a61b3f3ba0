"""Uploaded datasets on a regular grid: the frequency inferred from their ds is recorded.

Revision ID: 0010_dataset_calendar
Revises: 0006_cost
Create Date: 2026-12-05

A CSV upload's series are now placed on the grid of their frequency (a missing ds is a gap), as
inline CSV is; uploaded_datasets gains freq_inferred, the date frequency read from the ds when
the upload gave none. Each series' start and frequency go into the index (index_zlib), which
needs no column. Datasets stored before keep freq_inferred null, and their index has no
frequencies: their forecasts carry no ds.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_dataset_calendar"
down_revision = "0006_cost"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add uploaded_datasets.freq_inferred."""
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.add_column(sa.Column("freq_inferred", sa.String(16), nullable=True))


def downgrade() -> None:
    """Back to revision 0006_cost."""
    with op.batch_alter_table("uploaded_datasets") as batch:
        batch.drop_column("freq_inferred")
