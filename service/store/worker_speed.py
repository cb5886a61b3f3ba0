"""The workers' measured kernel speed: each worker process times its kernels when it starts and
records it here; at submit the API turns a job's estimated work into seconds with it.

The API takes the median of the latest few measurements of workers that train with its thread
count: one measurement taken while a neighbour compiled or trained can be far off, and workers of
one deployment are one class of machine. Before any worker has reported, the engine's default
(bptt.DEFAULT_KERNEL_SPEED, measured on the machine the project is tested on) stands in.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import bptt
from service.store.tables import WorkerCalibration, utcnow

RECENT = 8  # measurements the median is taken over
KEEP = 200  # rows kept: every worker start adds one; older ones are deleted as new ones arrive


@dataclass(frozen=True)
class Speed:
    """The kernel speed estimates use, and where it comes from."""

    speed: bptt.KernelSpeed
    measured: int  # worker measurements behind it; 0: the engine's default
    measured_at: datetime | None  # the latest of them


def record(session: Session, *, worker: str, threads: int, speed: bptt.KernelSpeed) -> None:
    """Add one worker's measurement (flushed; the caller commits), dropping the oldest rows."""
    session.add(WorkerCalibration(worker=worker, threads=threads, gflops=speed.gflops,
                                  gelements=speed.gelements, pass_seconds=speed.pass_seconds,
                                  measured_at=utcnow()))
    session.flush()
    newest = select(WorkerCalibration.id).order_by(WorkerCalibration.id.desc()).limit(KEEP)
    session.execute(delete(WorkerCalibration).where(WorkerCalibration.id.not_in(newest)))


def current(session: Session, *, threads: int) -> Speed:
    """The median of the latest RECENT measurements at `threads` engine threads, else the
    engine's default."""
    rows = list(session.scalars(
        select(WorkerCalibration).where(WorkerCalibration.threads == threads)
        .order_by(WorkerCalibration.measured_at.desc(), WorkerCalibration.id.desc())
        .limit(RECENT)))
    if not rows:
        return Speed(bptt.DEFAULT_KERNEL_SPEED, 0, None)
    speed = bptt.KernelSpeed(gflops=statistics.median(r.gflops for r in rows),
                             gelements=statistics.median(r.gelements for r in rows),
                             pass_seconds=statistics.median(r.pass_seconds for r in rows))
    return Speed(speed, len(rows), rows[0].measured_at)
