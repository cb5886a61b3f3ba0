"""Numba kernels for one recurrent layer over a whole batch, time-major (T, B, H).

Each cell module exposes GATES, forward and backward with one shared signature, so the
network code treats every cell alike.
"""

from types import ModuleType

from . import gru, lstm, rnn

CELLS: dict[str, ModuleType] = {"rnn": rnn, "lstm": lstm, "gru": gru}
