"""Batch parallelism: a batch is split into one chunk of rows per thread.

Rows of a batch never interact in a recurrent network, so each thread runs the ordinary serial
kernels on its own rows and the parameter gradients are summed in a fixed order afterwards. The
kernels are compiled with nogil=True, so plain Python threads run them in parallel. BLAS is held
to one thread meanwhile: the per-step GEMMs are far too small to share (OpenBLAS's own threads
made them several times slower), and the threads here already fill the cores. A given thread
count always gives bit-identical results.
"""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

MIN_ROWS_PER_THREAD = 8  # below this a thread's per-step GEMMs cost more than they save

_pool: ThreadPoolExecutor | None = None
_pool_owner: tuple[int, int] | None = None  # (pid, size): a forked worker builds its own pool
_blas: ThreadpoolController | None = None


def chunk_bounds(rows: int, threads: int) -> list[tuple[int, int]]:
    """Split `rows` into at most `threads` contiguous, nearly equal, non-empty chunks."""
    chunks = max(1, min(int(threads), rows // MIN_ROWS_PER_THREAD))
    edges = [round(rows * k / chunks) for k in range(chunks + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def run_chunks(work: Callable[[int, int], object], bounds: list[tuple[int, int]]) -> list:
    """work(lo, hi) for every chunk, in parallel threads when there is more than one chunk."""
    if len(bounds) == 1:
        return [work(*bounds[0])]
    global _pool, _pool_owner
    pid, size = _pool_owner or (None, 0)
    if _pool is None or pid != os.getpid() or size < len(bounds):
        _pool = ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="bptt")
        _pool_owner = (os.getpid(), len(bounds))
    return list(_pool.map(lambda b: work(*b), bounds))


@contextmanager
def single_threaded_blas():
    """Hold BLAS to one thread for the duration (see the module docstring for why)."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    with _blas.limit(limits=1, user_api="blas"):
        yield
