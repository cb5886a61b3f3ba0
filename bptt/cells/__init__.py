"""Numba kernels for one recurrent layer over a whole batch, time-major (T, B, H).

Each cell module exposes GATES, forward and backward with one shared signature, so the
network code treats every cell alike.
"""

from types import ModuleType

# np.dot inside the kernels calls SciPy's BLAS. Loading it now, not at the first kernel call,
# lets threadpoolctl (and OPENBLAS_NUM_THREADS checks) see and cap its threads from the start.
import scipy.linalg.cython_blas  # noqa: F401

from . import gru, lstm, rnn

CELLS: dict[str, ModuleType] = {"rnn": rnn, "lstm": lstm, "gru": gru}
