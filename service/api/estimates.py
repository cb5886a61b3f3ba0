"""A job's estimate as stored and shown: what it costs, how long it should take on this
deployment's workers and, while it runs, how long it has left.

The expected seconds come from the estimated work (bptt.Cost) at the workers' measured kernel
speed (service.store.worker_speed), fixed at submit. The time left is measured: the seconds
the job has run so far, scaled by the share of its estimated work still to do, so that a job on
a slower or busier worker than its estimate assumed reads correctly after its first epoch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import bptt
from service.store.worker_speed import Speed

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def document(cost: bptt.Cost, speed: Speed) -> dict[str, Any]:
    """The estimate stored with a job (and shown in its document)."""
    rates = speed.speed
    cv = cost.cross_validation
    return {
        "flops": cost.flops,
        "peak_bytes": cost.peak_bytes,
        "updates": cost.updates,
        "seconds": cost.seconds(rates),
        # what the time left is computed from: one ensemble member's epoch (its updates, the
        # validation pass and insight), the rest of the main fit, the cross-validation
        "epoch_seconds": rates.seconds(cost.evaluation),
        "other_seconds": rates.seconds(cost.fixed),
        "cross_validation_seconds": cv.seconds(rates) if cv else 0.0,
        # an epoch's batches, to count progress within an epoch (the heartbeat's epoch_batches)
        "epoch_updates": _epoch_updates(cost),
        "speed": {**rates.to_dict(), "measurements": speed.measured,
                  "measured_at": speed.measured_at.isoformat() if speed.measured_at else None},
    }


def remaining_seconds(estimate: dict[str, Any] | None, *, status: str,
                      started_at: datetime | None, epochs_done: int, epochs_total: int | None,
                      stage: str | None, now: datetime, epoch_batches: int | None = None
                      ) -> float | None:
    """Seconds a job still needs: the whole estimate while queued; while running, the
    estimated work left times the job's own measured seconds per unit of estimated work done,
    counting the batches done in the epoch in progress (`epoch_batches`, as of the latest
    heartbeat); before any of that, the estimate less the time it has run, and None (unknown)
    once the job has run longer than that without reporting progress. None once it has ended
    or without an estimate."""
    if estimate is None or status not in ("queued", "running"):
        return None
    if status == "queued" or started_at is None:
        return estimate["seconds"]
    elapsed = max((now - started_at).total_seconds(), 0.0)
    epoch, other = estimate["epoch_seconds"], estimate["other_seconds"]
    training = (epochs_total or 0) * epoch + other
    if stage == "cross_validation":
        done = training
    else:
        batches = estimate.get("epoch_updates")  # absent from estimates before it was kept
        share = min(epoch_batches / batches, 1.0) if batches and epoch_batches else 0.0
        done = (epochs_done + share) * epoch
    left = training - done + estimate["cross_validation_seconds"]
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
