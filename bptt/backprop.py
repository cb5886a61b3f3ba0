"""Loss and gradient of a network by backpropagation through time, full or truncated.

The head is applied at every step from `first_output` to the end (the last step only by default:
one direct multi-horizon forecast per window). Truncated BPTT with (k1, k2) walks the sequence in
segments of k1 new steps; after each segment it backpropagates the losses of those k1 steps
through the last k2 steps (k2 ≥ k1) and stops there, treating the state k2 steps back as a
constant. Only one window of at most k2 steps is held in memory at a time, so memory grows with
k2, not with the sequence length. Gradients of all segments are summed into one gradient before
any weight changes; full BPTT is the case k1 = k2 = T.
"""

from dataclasses import dataclass

import numpy as np

from .cells import CELLS
from .cells._common import work_size
from .cells._head import head_backward, head_work_size
from .forward import LayerCache, LayerState, run_window, zero_states
from .losses import levels
from .network import NetworkSpec, check_inputs, checked_head_features
from .parallel import chunk_bounds, run_chunks, single_threaded_blas
from .workspace import scratch


@dataclass
class Gradients:
    """Result of one forward + backward pass over a batch."""

    loss: float  # mean loss over every counted target element
    grad: np.ndarray  # (P,) dL/dθ in the same flat layout as the parameters
    grad_flow: np.ndarray  # (L, T) mean |dL/dh_t| per layer and time step, summed over windows


def loss_and_gradients(spec: NetworkSpec, params: np.ndarray, x: np.ndarray, y: np.ndarray,
                       loss, *, mask: np.ndarray | None = None, first_output: int | None = None,
                       truncate: tuple[int, int] | None = None,
                       dropout_masks: list | None = None,
                       states: list[LayerState] | None = None, threads: int = 1,
                       head_features: np.ndarray | None = None) -> Gradients:
    """Mean loss and its gradient for inputs x (T, B, I) and targets y (K, B, horizon).

    K = T - first_output target sets, one per output step; `mask` (K, B, horizon) marks the
    known targets (NaN targets are masked automatically). `truncate` = (k1, k2) or None for full
    BPTT. `dropout_masks` come from forward.dropout_masks (None: no dropout). `threads` > 1
    splits the batch across threads (see parallel.py). `head_features`, for a network with
    head inputs (E = spec.head_inputs > 0; None otherwise), are what the head reads besides
    the hidden state: (B, E) for every output step, or (K, B, E) one set per output step. Their
    gradient reaches head.weight[:, H:] only (they are inputs, not parameters).
    """
    x = np.ascontiguousarray(x, dtype=params.dtype)
    check_inputs(spec, x)
    steps, batch, _ = x.shape
    t0 = steps - 1 if first_output is None else int(first_output)
    if not 0 <= t0 < steps:
        raise ValueError(f"first_output must be in [0, {steps}), got {t0}")
    y = np.asarray(y, dtype=params.dtype)
    horizon = spec.output_size // loss.outputs_per_target
    if y.shape != (steps - t0, batch, horizon):
        raise ValueError(f"targets must have shape {(steps - t0, batch, horizon)}, got {y.shape}")
    known = np.isfinite(y) if mask is None else (np.asarray(mask, bool) & np.isfinite(y))
    extra = checked_head_features(spec, head_features, batch, params.dtype, steps - t0)
    k1, k2 = (steps, steps) if truncate is None else (int(truncate[0]), int(truncate[1]))
    if not 1 <= k1 <= k2:
        raise ValueError(f"truncation needs 1 <= k1 <= k2, got ({k1}, {k2})")
    count = int(known.sum()) * loss.outputs_per_target
    masks = dropout_masks if dropout_masks is not None else [None] * spec.num_layers
    state = zero_states(spec, batch, params.dtype) if states is None else [
        LayerState(np.ascontiguousarray(s.h), np.ascontiguousarray(s.c)) for s in states]

    bounds = chunk_bounds(batch, threads)
    if len(bounds) == 1:  # the whole batch on this thread: no slices, copies or pool
        grad = np.zeros_like(params)
        grad_flow = np.zeros((spec.num_layers, steps))
        total = _accumulate(spec, params, x, y, known, loss, count, t0, (k1, k2), masks, state,
                            extra, grad, grad_flow)
        return Gradients(total / max(count, 1), grad, grad_flow)

    def chunk(lo: int, hi: int):
        rows = slice(lo, hi)
        grad = np.zeros_like(params)
        flow = np.zeros((spec.num_layers, steps))
        total = _accumulate(
            spec, params, np.ascontiguousarray(x[:, rows]), y[:, rows], known[:, rows], loss,
            count, t0, (k1, k2), [None if m is None else m[rows] for m in masks],
            [LayerState(np.ascontiguousarray(s.h[rows]), np.ascontiguousarray(s.c[rows]))
             for s in state], None if extra is None else extra[:, rows], grad, flow)
        return total, grad, flow * (hi - lo) / batch

    # The step's kernels call no BLAS (but for the tests' reference GEMM) and raise no numpy
    # warnings: the limit is for the threads' sake (see parallel.py), and errstate for the sums
    # below, which a diverging network overflows on its way to a non-finite loss.
    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
        parts = run_chunks(chunk, bounds)
    total, grad, grad_flow = parts[0]
    for part_total, part_grad, part_flow in parts[1:]:  # fixed order: repeatable sums
        total += part_total
        grad += part_grad
        grad_flow += part_flow
    return Gradients(total / max(count, 1), grad, grad_flow)


def _accumulate(spec: NetworkSpec, params, x, y, known, loss, count: int, t0: int,
                truncate: tuple[int, int], masks, state, extra, grad, grad_flow) -> float:
    """Run the segments of (truncated) BPTT over one chunk of rows, adding into grad and
    grad_flow; return the chunk's loss sum (the caller divides it by `count`). `extra`: the
    head features (K, B, E) per output step, or None."""
    steps = x.shape[0]
    k1, k2 = truncate
    views = spec.layout.views(params)
    grad_views = spec.layout.views(grad)
    total = 0.0
    seg_start = 0
    while seg_start < steps:
        seg_end = min(seg_start + k1, steps)
        win_start = max(0, seg_end - k2)  # the state entering this window is held constant
        caches = run_window(spec, views, x[win_start:seg_end], state, masks)
        out_start = max(seg_start, t0)
        if out_start < seg_end and count > 0:
            rows = slice(out_start - win_start, seg_end - win_start)
            targets = slice(out_start - t0, seg_end - t0)
            total += _backward_window(spec, views, grad_views, caches, masks, rows, loss,
                                      y[targets], known[targets],
                                      None if extra is None else extra[targets], count,
                                      grad_flow[:, win_start:seg_end])
        next_end = min(seg_end + k1, steps)
        next_start = max(0, next_end - k2)
        state = [c.state_after(next_start - win_start - 1) for c in caches]
        seg_start = seg_end
    return total


def _backward_window(spec: NetworkSpec, views, grad_views, caches: list[LayerCache], masks,
                     rows: slice, loss, y, known, extra, count: int, grad_flow) -> float:
    """Head + loss on window rows `rows`, then backprop through the window; returns loss sum.
    `extra`: the head features (K, B, E) of those rows' output steps, or None."""
    cell = CELLS[spec.cell]
    top = caches[-1].hs[rows]  # (K, B, H)
    k, batch, hidden = top.shape
    head_w = views["head.weight"]
    # (W, B, H): dL/dh_t from above, zero off the output rows; the output rows are written by
    # the head kernel (often they are all of the window's rows), and the cell's kernel is told
    # that the rows before them are zero rather than reading them (`first`)
    dh_out = scratch(("dh_top",), caches[-1].hs.shape, top.dtype)
    dh_out[rows.stop :] = 0
    value = head_and_loss(top.reshape(k * batch, hidden),
                          None if extra is None else extra.reshape(k * batch, -1),
                          head_w, views["head.bias"], grad_views["head.weight"],
                          grad_views["head.bias"], y.reshape(k * batch, -1),
                          known.reshape(k * batch, -1), count, loss,
                          dh_out[rows].reshape(k * batch, hidden))
    first = rows.start
    for layer in range(spec.num_layers - 1, -1, -1):
        c = caches[layer]
        # layer 0's dx is not wanted: the kernel is told so and never writes it
        dx = scratch(("dx", layer), c.inputs.shape, top.dtype) if layer > 0 else c.inputs
        gh = c.gates.shape[2]
        work = scratch(("work",), (work_size(batch, hidden, gh, c.inputs.shape[2]),), top.dtype)
        cell.backward(c.inputs, c.start.h, c.start.c, views[f"weight_ih_l{layer}"],
                      views[f"weight_hh_l{layer}"], c.gates, c.aux, c.hs, dh_out, first, dx,
                      grad_views[f"weight_ih_l{layer}"], grad_views[f"weight_hh_l{layer}"],
                      grad_views[f"bias_ih_l{layer}"], grad_views[f"bias_hh_l{layer}"],
                      grad_flow[layer], spec.relu, layer > 0, work)
        if layer > 0:
            dh_out = dx  # (W, B, H)
            if masks[layer] is not None:
                with np.errstate(over="ignore", invalid="ignore"):  # (a diverging network)
                    dh_out = dx * masks[layer][None]
            first = 0
    return value


def head_and_loss(top: np.ndarray, extra: np.ndarray | None, head_w: np.ndarray,
                  head_b: np.ndarray, grad_w: np.ndarray, grad_b: np.ndarray, y: np.ndarray,
                  known: np.ndarray, count: int, loss, dh: np.ndarray) -> float:
    """The head on N rows of top (N, H) [and head features extra (N, E)], the loss against
    targets y (N, h) where known, and the head's backward (cells/_head.head_backward): adds
    the head's gradients into grad_w and grad_b, sets dh (N, H) to dL/dtop, returns the loss
    sum. Every array goes to the kernel C-contiguous, so it is compiled once per dtype."""
    dtype = top.dtype
    rows, hidden = top.shape
    extra = np.empty((rows, 0), dtype) if extra is None else np.ascontiguousarray(extra, dtype)
    point, delta, quantiles = loss.terms
    work = scratch(("head",), (head_work_size(rows, hidden, extra.shape[1], len(head_b)),), dtype)
    return head_backward(np.ascontiguousarray(top), extra, head_w, head_b,
                         np.ascontiguousarray(y), np.ascontiguousarray(known), count, point,
                         delta, levels(quantiles, dtype), work, grad_w, grad_b, dh)
