"""How much of their epoch budget a tenant's jobs with early stopping have trained: a new job's
expected duration (service.api.estimates) counts that share of its epochs, its upper bound all
of them.

The share of one finished job is the epochs its members trained over the epochs they were given
(ensemble x epochs), counted for jobs whose budget left early stopping room to end them early.
A new job expects the median share of the tenant's latest RECENT succeeded jobs with early
stopping and the same cell, when there are MIN_JOBS of them; else of any cell; else PRIOR.
The tenant's own jobs, because they are the comparable ones (the same kind of data and specs),
because they are read through the index GET /v1/jobs uses (tenant, status, created), and
because one tenant's training says nothing to another.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import bptt
from service.store.tables import Job

RECENT = 50  # finished jobs a share is the median of
MIN_JOBS = 5  # fewer than this: the share of a wider group, or PRIOR
SCAN = 4 * RECENT  # latest succeeded jobs read, of which those with early stopping count
# The share before a tenant has MIN_JOBS jobs to learn from. Default jobs (5 members of 300
# epochs, patience 20) on examples/store_sales.csv and the tests' synthetic series trained
# 0.15-0.63 of their budget, median 0.30 (README's first job 0.30); with a default job of 60
# epochs that trained them all, 0.36. Rather a little long than short: 0.35.
PRIOR = 0.35


@dataclass(frozen=True)
class EpochShare:
    """The share of its epoch budget a job is expected to train, and what it comes from."""

    share: float
    jobs: int  # finished jobs it is the median of; 0: PRIOR, or no early stopping (share 1)


@dataclass(frozen=True)
class EpochShares:
    """The shares of a tenant's latest finished jobs with early stopping, newest first."""

    latest: list[tuple[str, float]] = field(default_factory=list)  # (cell, share)

    def for_plan(self, plan: bptt.TrainingSpec) -> EpochShare:
        """What a job of this resolved plan is expected to train of its budget."""
        if plan.training.early_stopping_patience is None:
            return EpochShare(1.0, 0)
        same = [share for cell, share in self.latest if cell == plan.model.cell]
        for shares in (same[:RECENT], [share for _, share in self.latest][:RECENT]):
            if len(shares) >= MIN_JOBS:
                return EpochShare(statistics.median(shares), len(shares))
        return EpochShare(PRIOR, 0)


def recent(session: Session, *, tenant_id: int) -> EpochShares:
    """The shares of the tenant's latest succeeded jobs with early stopping."""
    rows = session.execute(
        select(Job.resolved_spec, Job.epochs_done)
        .where(Job.tenant_id == tenant_id, Job.status == "succeeded")
        .order_by(Job.created_at.desc()).limit(SCAN))
    latest = [(plan["model"]["cell"], share) for plan, epochs_done in rows
              if (share := _share(plan, epochs_done)) is not None]
    return EpochShares(latest)


def _share(plan: dict[str, Any] | None, epochs_done: int) -> float | None:
    """The share of its budget a finished job trained; None when early stopping could not
    end its members early (off, or a budget of no more than patience + 1 epochs: such a job
    trains every epoch, which says nothing of a longer budget), or for a job from before
    plans were stored."""
    training = (plan or {}).get("training") or {}
    patience, epochs = training.get("early_stopping_patience"), training.get("epochs")
    if patience is None or not epochs or epochs <= patience + 1:
        return None
    return min(epochs_done / (epochs * (training.get("ensemble") or 1)), 1.0)
