"""Forward pass of a whole network over a window of time steps, and inference.

Arrays are time-major: x (T, B, I), hidden states (T, B, H). A window keeps, per layer, what the
backward kernels need (`LayerCache`); its length is what truncated BPTT bounds. The head reads
the top layer's last hidden state and, with head inputs, the window's head features (B, E)
(see network.py).
"""

from dataclasses import dataclass

import numpy as np

from .cells import CELLS
from .cells._common import work_size
from .network import NetworkSpec, check_inputs, checked_head_features
from .parallel import chunk_bounds, run_chunks, single_threaded_blas
from .workspace import scratch

PREDICT_CHUNK = 1024  # rows predict runs at once by default (its batch_chunk)
_UNUSED = {}  # per dtype: a tiny array standing in for caches a cell does not use


def _unused(dtype) -> np.ndarray:
    if dtype not in _UNUSED:
        _UNUSED[dtype] = np.zeros((1, 1, 1), dtype)
    return _UNUSED[dtype]


@dataclass
class LayerState:
    """Recurrent state of one layer between windows: h and, for LSTM, c, each (B, H)."""

    h: np.ndarray
    c: np.ndarray


@dataclass
class LayerCache:
    """What one layer's forward kept for its backward, for a window of W steps."""

    inputs: np.ndarray  # (W, B, I): the layer's input (after dropout for layers above the first)
    start: LayerState  # state before the window's first step
    gates: np.ndarray  # (W, B, G*H)
    aux: np.ndarray  # (W, B, H): LSTM cell state, GRU W_hn h + b_hn, unused for RNN
    hs: np.ndarray  # (W, B, H)
    lstm: bool  # whether aux is a cell state to carry into the next window

    def state_after(self, step: int) -> LayerState:
        """State after window step `step` (-1: the window's starting state), copied."""
        if step < 0:
            return self.start
        h = self.hs[step].copy()
        c = self.aux[step].copy() if self.lstm else h
        return LayerState(h, c)


def zero_states(spec: NetworkSpec, batch: int, dtype) -> list[LayerState]:
    """All-zero initial state for every layer, as PyTorch uses when h0 is not given."""
    states = []
    for _ in range(spec.num_layers):
        h = np.zeros((batch, spec.hidden_size), dtype)
        states.append(LayerState(h, np.zeros_like(h) if spec.cell == "lstm" else h))
    return states


def dropout_masks(spec: NetworkSpec, batch: int, rng: np.random.Generator, dtype) -> list:
    """One (B, H) inverted-dropout mask per layer above the first, shared by all time steps.

    Sharing the mask through time (variational dropout, Gal & Ghahramani 2016) keeps the masks
    O(B·H) whatever the sequence length, so truncated windows of one sequence see the same mask.
    """
    if spec.dropout == 0.0:
        return [None] * spec.num_layers
    keep = 1.0 - spec.dropout
    masks = [None]
    for _ in range(1, spec.num_layers):
        kept = rng.random((batch, spec.hidden_size)) < keep
        masks.append((kept / keep).astype(dtype))
    return masks


def run_window(spec: NetworkSpec, views: dict, x: np.ndarray, states: list[LayerState],
               masks: list) -> list[LayerCache]:
    """Run every layer over x (W, B, I) from `states`; return each layer's cache."""
    cell = CELLS[spec.cell]
    steps, batch, _ = x.shape
    gh = spec.gates * spec.hidden_size
    caches = []
    inputs = x
    for k in range(spec.num_layers):
        if k > 0:
            below = caches[-1].hs  # (W, B, H)
            inputs = below
            if masks[k] is not None:
                inputs = scratch(("inputs", k), below.shape, x.dtype)
                np.multiply(below, masks[k][None], out=inputs)
        shape = (steps, batch, spec.hidden_size)
        gates = scratch(("gates", k), (steps, batch, gh), x.dtype)
        hs = scratch(("hs", k), shape, x.dtype)
        aux = scratch(("aux", k), shape, x.dtype) if spec.cell != "rnn" else _unused(x.dtype)
        state = states[k]
        work = scratch(("work",), (work_size(batch, spec.hidden_size, gh, inputs.shape[2]),),
                       x.dtype)
        cell.forward(inputs, state.h, state.c, views[f"weight_ih_l{k}"], views[f"weight_hh_l{k}"],
                     views[f"bias_ih_l{k}"], views[f"bias_hh_l{k}"], gates, aux, hs, spec.relu,
                     work)
        caches.append(LayerCache(inputs, state, gates, aux, hs, spec.cell == "lstm"))
    return caches


def head_output(views: dict, top: np.ndarray, head_features: np.ndarray | None) -> np.ndarray:
    """The head on the top layer's hidden states top (N, H) and, with head inputs, the head
    features (N, E): concat(top, head_features) @ head.weight^T + head.bias, (N, O)."""
    if head_features is None:
        return top @ views["head.weight"].T + views["head.bias"]
    return np.concatenate([top, head_features], axis=1) @ views["head.weight"].T + views[
        "head.bias"]


def predict(spec: NetworkSpec, params: np.ndarray, x: np.ndarray,
            states: list[LayerState] | None = None, batch_chunk: int = PREDICT_CHUNK,
            threads: int = 1, *, head_features: np.ndarray | None = None):
    """Head output after the last step of x (T, B, I): returns (outputs (B, O), final states).

    `head_features` (B, E) are the features the head reads besides the last hidden state, for a
    network with spec.head_inputs = E > 0 (None otherwise). Runs the batch in chunks of at most
    `batch_chunk` rows, so the per-step caches stay bounded for very large batches, spread over
    `threads` threads.
    """
    x = np.ascontiguousarray(x, dtype=params.dtype)
    check_inputs(spec, x)
    steps, batch, _ = x.shape
    extra = checked_head_features(spec, head_features, batch, params.dtype)
    views = spec.layout.views(params)

    def chunk(lo: int, hi: int):
        if states is None:
            start = zero_states(spec, hi - lo, params.dtype)
        else:
            start = [LayerState(np.ascontiguousarray(s.h[lo:hi]), np.ascontiguousarray(s.c[lo:hi]))
                     for s in states]
        caches = run_window(spec, views, np.ascontiguousarray(x[:, lo:hi]), start,
                            [None] * spec.num_layers)
        top = caches[-1].hs[-1]  # (b, H)
        out = head_output(views, top, None if extra is None else extra[lo:hi])  # (b, O)
        return out, [cache.state_after(steps - 1) for cache in caches]

    pieces = max(threads, -(-batch // batch_chunk))  # enough chunks for both limits
    bounds = chunk_bounds(batch, pieces)
    with single_threaded_blas():
        results = run_chunks(chunk, bounds, workers=threads)
    outputs = np.concatenate([out for out, _ in results])
    finals = [LayerState(np.concatenate([st[k].h for _, st in results]),
                         np.concatenate([st[k].c for _, st in results]))
              for k in range(spec.num_layers)]
    return outputs, finals
