"""What a worker enforces on each training attempt, whatever the job's estimate said: a soft time
limit and a memory ceiling. Past either, the job fails with the limit named, and the worker
process lives on to train the next job.

- Time is checked between batches, from the trainer's cancel check: a running Numba kernel
  cannot be interrupted, and a signal (Celery's soft time limit) raises in whatever Python line
  runs when it lands, a database write included.
- Memory: for the attempt, RLIMIT_DATA is set to the process's current data size plus the
  ceiling. The kernel enforces it when memory is allocated, so an array past the ceiling raises
  MemoryError in the job's own stack, which the attempt turns into the job's failure, before
  the allocation could take the machine's memory and bring the OOM killer onto the worker. It
  counts private writable memory (heap and anonymous mappings: every array), not the shared
  libraries and Numba's compiled code that RLIMIT_AS would charge to a job. A look at the RSS
  between batches would see neither one oversized allocation nor the windows a fit builds
  before its first batch.
The attempt's seconds and peak memory are measured too (the peak from the kernel's high-water
mark of the resident size, reset when the attempt starts), for the job document's `usage`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import time
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store.tables import Job

try:
    import resource
except ImportError:  # not a Unix: no ceiling, as the module docstring's mechanism needs one
    resource = None  # type: ignore[assignment]

MIB = 2**20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
log = logging.getLogger(__name__)


class LimitExceeded(Exception):
    """The attempt went over the job time limit; str() is the job's error."""


class AttemptLimits:
    """The limits of one attempt, and what it measured (a context manager around training)."""

    def __init__(self, settings: Settings) -> None:
        self.time_limit = settings.job_time_limit_seconds
        self.ceiling = settings.job_memory_ceiling
        self.began = self.cpu_began = self.rss_before = 0.0
        self._saved: tuple[int, int] | None = None

    def __enter__(self) -> AttemptLimits:
        self.began, self.cpu_began = time.monotonic(), time.process_time()
        _reset_peak()
        self.rss_before = _status("VmRSS") or 0
        data = _status("VmData")
        if resource is not None and data is not None:
            self._saved = resource.getrlimit(resource.RLIMIT_DATA)
            hard = self._saved[1]
            wanted = data + self.ceiling
            soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None and resource is not None:
            resource.setrlimit(resource.RLIMIT_DATA, self._saved)
            self._saved = None

    def check_time(self) -> None:
        """Raise LimitExceeded once the attempt has run past the time limit."""
        if time.monotonic() - self.began > self.time_limit:
            raise LimitExceeded(f"exceeded the job time limit of {self.time_limit} s "
                                "(BPTT_JOB_TIME_LIMIT_SECONDS)")

    def memory_error(self) -> str:
        """The job's error when an allocation failed under the ceiling."""
        return (f"exceeded the memory ceiling of {self.ceiling // MIB} MiB "
                "(BPTT_JOB_MEMORY_CEILING)")

    def usage(self) -> dict | None:
        """{"seconds", "cpu_seconds", "peak_bytes", "peak_rss_bytes"} of the attempt so far
        (None where /proc is missing). CPU seconds beside wall seconds say how much of the
        attempt's time went to other work on a shared machine."""
        peak = _status("VmHWM")
        if peak is None:
            return None
        return {"seconds": round(time.monotonic() - self.began, 3),
                "cpu_seconds": round(time.process_time() - self.cpu_began, 3),
                "peak_bytes": max(int(peak - self.rss_before), 0), "peak_rss_bytes": peak}


def record_usage(sessions: sessionmaker[Session], job_id: str, attempt: int,
                 usage: dict | None) -> None:
    """Store what the attempt measured on its job, unless a later attempt has claimed it."""
    if usage is None:
        return
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id, Job.attempts == attempt)
                        .values(usage=usage).execution_options(synchronize_session=False))
        session.commit()


def _status(field: str) -> int | None:
    """A size from /proc/self/status, in bytes (None where there is no /proc)."""
    try:
        found = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def _reset_peak() -> None:
    """Restart the process's peak resident size from its current size (Linux 4.0+)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        log.debug("cannot reset the peak resident size: usage reports the process's peak")


def return_freed_memory() -> None:
    """Give the memory a finished attempt freed back to the system (glibc's malloc_trim).
    glibc keeps freed heap memory, and after a large array is freed it serves arrays up to
    that size from the heap too: without this a worker stays at its largest job's size, and
    the next attempt's peak (usage.peak_bytes) reads as nothing new."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim, or no way to
        log.debug("malloc_trim unavailable")
