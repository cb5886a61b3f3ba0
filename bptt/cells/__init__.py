"""Numba kernels for one recurrent layer over a whole batch, time-major (T, B, H).

Each cell module exposes GATES, forward and backward with one shared signature, so the
network code treats every cell alike.
"""

import hashlib
from pathlib import Path
from types import ModuleType

# np.dot inside njit code calls SciPy's BLAS: the kernels only in their reference path
# (_gemm.REFERENCE). Loading it now, not at a first call, lets threadpoolctl (and
# OPENBLAS_NUM_THREADS checks) see and cap its threads from the start.
import scipy.linalg.cython_blas  # noqa: F401

from . import _gemm, gru, lstm, rnn

CELLS: dict[str, ModuleType] = {"rnn": rnn, "lstm": lstm, "gru": gru}


def _drop_stale_cache() -> None:
    """Clear the kernels' on-disk cache when any source file in this package changed.

    Numba checks only a cached function's own file, so a kernel would go on running old code
    compiled in from _common.py after _common.py changed. A stamp of all the sources here makes
    such a cache start afresh instead. The stamp also covers the compile-time choice of GEMM
    (_gemm.REFERENCE), which Numba bakes into the compiled code as a constant.
    """
    here = Path(__file__).parent
    digest = hashlib.sha256(f"reference gemm {_gemm.REFERENCE}".encode())
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    cache = getattr(lstm.forward, "_cache", None)
    cache_dir = Path(getattr(cache, "_cache_path", here / "__pycache__"))
    stamp = cache_dir / "bptt-cells.stamp"
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name in CELLS.keys() | {"_common", "_gemm", "_head"}:
            for stale in cache_dir.glob(f"{name}.*.nb[ic]"):
                stale.unlink()
        stamp.write_text(digest.hexdigest())
    except OSError:  # a read-only install: Numba then caches elsewhere or not at all
        pass


_drop_stale_cache()
