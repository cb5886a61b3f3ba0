"""Celery's prefork pool, made to survive a pool process killed while it held a queue's lock.

Without an event loop (kombu's SQLAlchemy transport, the embedded broker, has none) Celery
runs billiard's plain Pool: every pool process reads its jobs from one shared pipe, under one
shared lock, and an idle process waits for the next job *holding* that lock. SIGKILL it (the
OOM killer, an operator, a chaos test) and the lock is never released: the replacement process
waits for it forever, the job handed to the pool is never read, and the worker, its one
prefetched message unacknowledged, never takes another (celery/celery#2011). Results go back
the same way, under a second lock, for a few microseconds per result.

Here each pool process notes its pid in shared memory while it holds either lock, and when
the pool cleans up after a process that died, it releases the locks that process held, before
it starts the replacement. With Redis (an event loop) Celery uses its AsynPool instead, which
gives every process pipes of its own, and none of this applies.
"""

from __future__ import annotations

import logging
import os

from billiard import pool as billiard_pool
from billiard.queues import SimpleQueue
from celery.concurrency import prefork

log = logging.getLogger(__name__)


class _LockNotingQueue(SimpleQueue):
    """A SimpleQueue whose readers and writers note, in shared memory, which process holds
    its read lock and its write lock, so that locks left by a dead process can be released.
    For fork only, as Celery's pool starts its processes (no spawn pickling)."""

    def __init__(self, *, ctx):
        super().__init__(ctx=ctx)
        self._reader_pid = ctx.Value("i", 0, lock=False)
        self._writer_pid = ctx.Value("i", 0, lock=False)

    def get_payload(self):
        with self._rlock:
            self._reader_pid.value = os.getpid()
            try:
                return self._reader.recv_bytes()
            finally:
                self._reader_pid.value = 0

    def send_payload(self, value):
        with self._wlock:
            self._writer_pid.value = os.getpid()
            try:
                self._writer.send_bytes(value)
            finally:
                self._writer_pid.value = 0

    def release_locks_of(self, pid: int) -> list[str]:
        """Release the locks a dead process `pid` held; the names of those released."""
        released = []
        for name, holder, lock in (("read", self._reader_pid, self._rlock),
                                   ("write", self._writer_pid, self._wlock)):
            if pid and holder.value == pid:
                holder.value = 0
                lock.release()
                released.append(name)
        return released


class RepairingPool(billiard_pool.Pool):
    """billiard's Pool with lock-noting queues, released after a process dies holding one."""

    def _setup_queues(self):
        # As billiard_pool.Pool._setup_queues, with the queues above.
        self._inqueue = _LockNotingQueue(ctx=self._ctx)
        self._outqueue = _LockNotingQueue(ctx=self._ctx)
        self._quick_put = self._inqueue._writer.send
        self._quick_get = self._outqueue._reader.recv

        def _poll_result(timeout):
            if self._outqueue._reader.poll(timeout):
                return True, self._quick_get()
            return False, None
        self._poll_result = _poll_result

    def process_flush_queues(self, worker):
        """Called for each pool process that exited, before its replacement starts."""
        super().process_flush_queues(worker)
        for queue, direction in ((self._inqueue, "job"), (self._outqueue, "result")):
            for lock in queue.release_locks_of(worker.pid):
                log.warning("pool process %s died holding the %s queue's %s lock: released",
                            worker.pid, direction, lock)


class TaskPool(prefork.TaskPool):
    """Celery's prefork pool (worker_pool = "workers.pool:TaskPool"), with RepairingPool
    where Celery runs without an event loop."""

    BlockingPool = RepairingPool
