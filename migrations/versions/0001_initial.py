"""Initial schema: tenants, tokens, jobs and everything a job produces.

Revision ID: 0001
Revises:
Create Date: 2025-11-27

Every table, column and constraint is written out here rather than taken from the models, so
this revision stays what it was when later revisions change the models. Constraint names follow
the naming convention of service/models.py; op.f() marks them as final.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def timestamp(name: str, nullable: bool = False) -> sa.Column:
    """A UTC timestamp column (service.store.tables.UTCDateTime stores this type)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def job_fk(table: str) -> sa.Column:
    """A job_id column whose rows go away with their job."""
    return sa.Column(
        "job_id",
        sa.String(36),
        sa.ForeignKey("jobs.id", name=op.f(f"fk_{table}_job_id_jobs"), ondelete="CASCADE"),
        nullable=False,
    )


def tenant_fk(table: str) -> sa.Column:
    """A tenant_id column whose rows go away with their tenant."""
    return sa.Column(
        "tenant_id",
        sa.Integer,
        sa.ForeignKey(
            "tenants.id", name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
        ),
        nullable=False,
    )


def upgrade() -> None:
    """Create every table of the first version of the service."""
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("name", name=op.f("uq_tenants_name")),
    )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, nullable=False),
        tenant_fk("api_tokens"),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        timestamp("created_at"),
        sa.Column("revoked", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_tenant_id"), "api_tokens", ["tenant_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        tenant_fk("jobs"),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), server_default="queued", nullable=False),
        timestamp("created_at"),
        timestamp("enqueued_at", nullable=True),
        timestamp("started_at", nullable=True),
        timestamp("finished_at", nullable=True),
        sa.Column("attempts", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        timestamp("lease_expires_at", nullable=True),
        sa.Column("cancel_requested", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("epochs_done", sa.Integer, server_default=sa.text("0"), nullable=False),
        sa.Column("epochs_total", sa.Integer, nullable=True),
        sa.Column("best_epoch", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_jobs_status"),
        ),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_jobs_tenant_id_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_jobs_tenant_id_status_created_at"),
        "jobs",
        ["tenant_id", "status", "created_at"],
    )
    op.create_index(
        op.f("ix_jobs_status_lease_expires_at"), "jobs", ["status", "lease_expires_at"]
    )

    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, nullable=False),
        job_fk("datasets"),
        sa.Column("series_zlib", sa.LargeBinary, nullable=False),
        sa.Column("num_series", sa.Integer, nullable=False),
        sa.Column("num_points", sa.Integer, nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("job_id", name=op.f("uq_datasets_job_id")),
    )

    op.create_table(
        "epoch_metrics",
        sa.Column("id", sa.Integer, nullable=False),
        job_fk("epoch_metrics"),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=True),
        sa.Column("train_loss", sa.Float, nullable=False),
        sa.Column("val_loss", sa.Float, nullable=True),
        sa.Column("grad_norm", sa.Float, nullable=False),
        sa.Column("max_grad_norm", sa.Float, nullable=False),
        sa.Column("clip_fraction", sa.Float, nullable=False),
        sa.Column("learning_rate", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("grad_flow", sa.JSON, nullable=True),
        timestamp("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epoch_metrics")),
        # The upsert's conflict target: a retried epoch replaces its row.
        sa.UniqueConstraint("job_id", "epoch", name=op.f("uq_epoch_metrics_job_id_epoch")),
    )

    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, nullable=False),
        job_fk("checkpoints"),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
        sa.UniqueConstraint("job_id", name=op.f("uq_checkpoints_job_id")),
    )

    op.create_table(
        "models",
        sa.Column("id", sa.Integer, nullable=False),
        job_fk("models"),
        sa.Column("weights", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("model_card", sa.JSON, nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("job_id", name=op.f("uq_models_job_id")),
    )

    op.create_table(
        "forecast_batches",
        sa.Column("id", sa.String(36), nullable=False),
        tenant_fk("forecast_batches"),
        job_fk("forecast_batches"),
        sa.Column("status", sa.String(16), server_default="queued", nullable=False),
        sa.Column("request_zlib", sa.LargeBinary, nullable=False),
        sa.Column("result_zlib", sa.LargeBinary, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        timestamp("created_at"),
        timestamp("started_at", nullable=True),
        timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_batches")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_forecast_batches_status"),
        ),
    )
    op.create_index(
        op.f("ix_forecast_batches_tenant_id_created_at"),
        "forecast_batches",
        ["tenant_id", "created_at"],
    )
    op.create_index(op.f("ix_forecast_batches_job_id"), "forecast_batches", ["job_id"])


def downgrade() -> None:
    """Drop every table, children before parents."""
    op.drop_index(op.f("ix_forecast_batches_job_id"), table_name="forecast_batches")
    op.drop_index(op.f("ix_forecast_batches_tenant_id_created_at"), table_name="forecast_batches")
    op.drop_table("forecast_batches")
    op.drop_table("models")
    op.drop_table("checkpoints")
    op.drop_table("epoch_metrics")
    op.drop_table("datasets")
    op.drop_index(op.f("ix_jobs_status_lease_expires_at"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_tenant_id_status_created_at"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_api_tokens_tenant_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("tenants")
