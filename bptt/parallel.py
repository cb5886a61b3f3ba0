"""Batch parallelism: a batch is split into one chunk of rows per thread.

Rows of a batch never interact in a recurrent network, so each thread runs the ordinary serial
kernels on its own rows and the parameter gradients are summed in a fixed order afterwards. The
kernels are compiled with nogil=True, so plain Python threads run them in parallel. BLAS is held
to one thread meanwhile: the per-step GEMMs are far too small to share (OpenBLAS's own threads
made them several times slower), and the threads here already fill the cores. A given thread
count always gives bit-identical results.

Both the pool and the BLAS limit are process-wide, and a threaded server (the API answers
forecasts on several request threads) enters them from many threads at once: each is guarded
by a lock, and the BLAS limit is counted, set by the first thread in and lifted by the last out.

OpenBLAS (0.3.30 and 0.3.31, as numpy and scipy ship it) ignores a call that raises its thread
count when the limit was set from another thread that is still alive: the first thread in may
leave last-but-one and live on, and BLAS would then stay at one thread for good. So one thread
of our own makes every set and every restore, on behalf of whichever thread asks. Once the
main thread has set a count itself (threadpoolctl around a whole fit, as a benchmark does), the
other threads are ignored instead: the limit is then set from the main thread when it is the one
asking.
"""

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

MIN_ROWS_PER_THREAD = 8  # below this a thread's per-step GEMMs cost more than they save

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0

_blas_lock = threading.Lock()
_blas: ThreadpoolController | None = None
_blas_limit: Any = None  # threadpoolctl's limiter while any thread is inside single_threaded_blas
_blas_users = 0  # threads inside single_threaded_blas now
_blas_caller: ThreadPoolExecutor | None = None  # the one thread that sets and lifts the limit
_blas_set_on_main = False  # the limit had to be set on the main thread (see single_threaded_blas)


def _on_the_blas_thread(call: Callable[[], Any]) -> Any:
    """Run `call` on the BLAS-control thread and return its result (the caller holds
    _blas_lock)."""
    global _blas_caller
    if _blas_caller is None:
        _blas_caller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blas-limit")
    return _blas_caller.submit(call).result()


def chunk_bounds(rows: int, threads: int) -> list[tuple[int, int]]:
    """Split `rows` into at most `threads` contiguous, nearly equal, non-empty chunks."""
    chunks = max(1, min(int(threads), rows // MIN_ROWS_PER_THREAD))
    edges = [round(rows * k / chunks) for k in range(chunks + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def run_chunks(work: Callable[[int, int], object], bounds: list[tuple[int, int]],
               workers: int | None = None) -> list:
    """[work(lo, hi) for each chunk], on `workers` threads at once (default: one per chunk;
    one: here, in order). With fewer workers than chunks each takes the next chunk as it
    finishes one, so that a thread the machine holds back does not keep the other waiting at
    every round. A chunk's result does not depend on which thread ran it."""
    workers = min(workers or len(bounds), len(bounds))
    if workers <= 1:
        return [work(lo, hi) for lo, hi in bounds]
    results: list = [None] * len(bounds)
    order = iter(range(len(bounds)))
    taking = threading.Lock()

    def drain() -> None:
        while True:
            with taking:
                k = next(order, None)
            if k is None:
                return
            results[k] = work(*bounds[k])

    # Submitted under the lock: a pool replaced by a larger one is shut down only after every
    # caller that got it has handed it its work (which it still runs to the end).
    with _pool_lock:
        pool = _pool_of_at_least(workers)
        futures = [pool.submit(drain) for _ in range(workers)]
    for future in futures:
        future.result()
    return results


def _pool_of_at_least(size: int) -> ThreadPoolExecutor:
    """The process's pool, replaced by a larger one when `size` threads are wanted (the caller
    holds _pool_lock). One pool at a time: a replaced pool's threads end once their work is."""
    global _pool, _pool_size
    if _pool is None or _pool_size < size:
        old = _pool
        _pool, _pool_size = ThreadPoolExecutor(max_workers=size, thread_name_prefix="bptt"), size
        if old is not None:
            old.shutdown(wait=False)
    return _pool


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Hold BLAS to one thread for the duration (see the module docstring for why).

    The limit is process-wide: the first thread in sets it, the last thread out restores what
    was there before, so that no thread leaves while another still relies on it.
    """
    global _blas_limit, _blas_users, _blas_set_on_main
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit, _blas_set_on_main = _limit_blas_to_one_thread()
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:  # (None: nothing was set)
                if _blas_set_on_main and threading.current_thread() is threading.main_thread():
                    _blas_limit.restore_original_limits()
                else:  # (set on the main thread, lifted elsewhere, it may stay at one thread)
                    _on_the_blas_thread(_blas_limit.restore_original_limits)
                _blas_limit, _blas_set_on_main = None, False


def _limit_blas_to_one_thread() -> tuple[Any, bool]:
    """Set BLAS to one thread: threadpoolctl's limiter to restore later (None where BLAS ran
    one thread already), and whether it was set on the main thread. The caller holds
    _blas_lock."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    if _blas_held():
        # The caller's own limit, OPENBLAS_NUM_THREADS=1 or one core: nothing to set, and no
        # hand-off to the control thread, which costs about 40 µs with threadpoolctl's calls,
        # at every step of a caller that runs train_step in a loop of its own.
        return None, False
    limit = _on_the_blas_thread(lambda: _blas.limit(limits=1, user_api="blas"))
    if not _blas_held() and threading.current_thread() is threading.main_thread():
        # The main thread set a count itself before (threadpoolctl around a fit, say), and
        # OpenBLAS now ignores every other thread: set it from here instead.
        _on_the_blas_thread(limit.restore_original_limits)
        return _blas.limit(limits=1, user_api="blas"), True
    return limit, False


def _blas_held() -> bool:
    """Whether every BLAS library reports one thread now. Where the limit could not be set
    from any thread of ours (another thread set a count first), BLAS keeps its own threads:
    slower with several training threads, never wrong."""
    return all(lib.num_threads == 1 for lib in _blas.select(user_api="blas").lib_controllers)


def _after_fork_in_child() -> None:
    """A forked child (a Celery or gunicorn worker) has only the forking thread: the locks may
    have been held by threads that no longer exist, and the pool's threads are gone."""
    global _pool_lock, _pool, _pool_size, _blas_lock, _blas_limit, _blas_users, _blas_caller
    global _blas_set_on_main
    _pool_lock, _pool, _pool_size = threading.Lock(), None, 0
    _blas_lock, _blas_limit, _blas_users, _blas_set_on_main = threading.Lock(), None, 0, False
    _blas_caller = None


os.register_at_fork(after_in_child=_after_fork_in_child)
