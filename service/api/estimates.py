"""A job's estimate as stored and shown: what it costs, how long it should take on this
deployment's workers and, while it runs, how long it has left.

Seconds come from the estimated work (bptt.Cost) at the workers' measured kernel speed
(service.store.worker_speed), fixed at submit, twice: the upper bound, every planned epoch of
every member (what admission control checks), and the expected duration, the share of the
epochs that the tenant's comparable jobs actually trained before early stopping ended them
(service.store.epoch_shares). The time left is measured: the seconds the job has run so far,
scaled by its expected work still to do over its work done, so that a job on a slower or
busier worker than its estimate assumed reads correctly after its first epoch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bptt
from service.store.epoch_shares import EpochShare
from service.store.worker_speed import Speed

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def document(bound: bptt.Cost, expected: bptt.Cost, speed: Speed,
             share: EpochShare) -> dict[str, Any]:
    """The estimate stored with a job (and shown in its document): the costs of the upper
    bound, every planned epoch (`bound`), and the seconds of the `expected` run, the same job
    whose members train `share` of their epochs (bptt.estimate_cost's epochs_share)."""
    rates = speed.speed
    cv = expected.cross_validation
    return {
        "flops": bound.flops,
        "peak_bytes": bound.peak_bytes,
        "updates": bound.updates,
        "seconds": expected.seconds(rates),
        "max_seconds": bound.seconds(rates),
        # the share in effect: early stopping cannot end a member before patience + 1 epochs
        "epochs_share": expected.evaluations / bound.evaluations,
        "epochs_share_jobs": share.jobs,
        # what the time left is computed from, of the expected run: one ensemble member's
        # epoch (its updates, the validation pass, insight, checkpoint), the rest of the main
        # fit, the cross-validation
        "epoch_seconds": rates.seconds(expected.evaluation),
        "other_seconds": rates.seconds(expected.fixed),
        # of other_seconds, what runs before the first update (windows, the seasonality's
        # choice): done once training has started
        "prepare_seconds": rates.seconds(expected.prepare),
        "cross_validation_seconds": cv.seconds(rates) if cv else 0.0,
        # an epoch's batches, to count progress within an epoch (the heartbeat's epoch_batches)
        "epoch_updates": _epoch_updates(bound),
        "speed": {**rates.to_dict(), "measurements": speed.measured,
                  "measured_at": speed.measured_at.isoformat() if speed.measured_at else None},
    }


def remaining_seconds(estimate: dict[str, Any] | None, *, status: str,
                      started_at: datetime | None, epochs_done: int, epochs_total: int | None,
                      stage: str | None, now: datetime, epoch_batches: int | None = None
                      ) -> float | None:
    """Seconds a job still needs: the expected duration while queued; while running, the
    expected work left times the job's own measured seconds per unit of estimated work done,
    counting the batches done in the epoch in progress (`epoch_batches`, as of the latest
    heartbeat); before any of that, the expected duration less the time it has run, and None
    (unknown) once the job has run longer than that without reporting progress. None once it
    has ended or without an estimate.

    Each epoch left in the budget (`epochs_total` less those done: the finished members'
    unused epochs are out of it) counts at the expected share (`epochs_share`), as at submit:
    when the members still training will stop is not known."""
    if estimate is None or status not in ("queued", "running"):
        return None
    if status == "queued" or started_at is None:
        return estimate["seconds"]
    elapsed = max((now - started_at).total_seconds(), 0.0)
    epoch, other = estimate["epoch_seconds"], estimate["other_seconds"]
    epochs_share = estimate.get("epochs_share", 1.0)  # absent from estimates before issue 17
    if stage == "cross_validation":
        done, left = epochs_done * epoch + other, 0.0
    else:
        batches = estimate.get("epoch_updates")  # absent from estimates before it was kept
        partial = min(epoch_batches / batches, 1.0) if batches and epoch_batches else 0.0
        done = (epochs_done + partial) * epoch
        # what ran before the first update is done once there is progress: counted as left,
        # its seconds made the pace of the first epochs look slow (124.9 s said at half-way
        # of a 1,000-series job that had 16.2 s left)
        prepare = estimate.get("prepare_seconds", 0.0) if done > 0 else 0.0
        done += prepare
        budget_left = max((epochs_total or 0) - epochs_done - partial, 0.0)
        left = budget_left * epochs_share * epoch + other - prepare
    left += estimate["cross_validation_seconds"]
    if done <= 0:  # no progress known yet: the estimate, counted down while it lasts
        return estimate["seconds"] - elapsed if elapsed < estimate["seconds"] else None
    return left * elapsed / done


def show_bytes(value: float) -> str:
    """1.5 GiB, 512 MiB, ... (binary units)."""
    unit = 0
    while value >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.3g} {_BYTE_UNITS[unit]}"


def show_seconds(value: float) -> str:
    """45 s, 12 min, 3.2 h, 4.1 days."""
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min")):
        if value >= 2 * size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} s"


def _epoch_updates(cost: bptt.Cost) -> int:
    """Batches in one epoch of one member of the main fit (cross-validation's fit apart)."""
    cv = cost.cross_validation.updates if cost.cross_validation else 0
    return max((cost.updates - cv) // max(cost.evaluations, 1), 1)
