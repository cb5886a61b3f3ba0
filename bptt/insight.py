"""BPTT insight: per-epoch diagnostics of how a network uses, and is trained through, time.

Meant to be computed at the end of an epoch on one sample batch: how far back the gradient
reaches (memory horizon), how contractive each recurrent gate block is (spectral radii), how
many gate activations sit in the flat tails of their nonlinearity (saturation), how much
truncated BPTT bends the gradient (cosine to the full-BPTT gradient), and a clipping threshold
from the history of gradient norms (AutoClip). Arrays are time-major as everywhere in bptt.
"""

import math
from collections.abc import Sequence

import numpy as np

from .backprop import loss_and_gradients
from .forward import run_window, zero_states
from .network import NetworkSpec
from .parallel import single_threaded_blas

# Gate blocks of weight_hh_l{k} / of the gates cache, in PyTorch's order.
GATE_NAMES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
TANH_GATES = {"h", "g", "n"}  # the rest are sigmoids


def memory_horizon(grad_flow: Sequence[float] | np.ndarray, threshold: float = 0.01) -> int:
    """Effective memory horizon: how many steps back the gradient signal reaches.

    `grad_flow` is mean |dL/dh_t| of the top layer per input step t = 0..T-1, in time order, as
    backprop's Gradients.grad_flow[-1] and EpochMetrics.grad_flow give it: the last entry is the
    step the head reads (lag 0). Returns the smallest lag k with
    grad_flow[T-1-k] < threshold * grad_flow[T-1]; T if the signal never falls that low, 0 when
    there is no signal at the output step at all.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    flow = np.asarray(grad_flow, dtype=np.float64)
    if flow.ndim != 1:
        raise ValueError(f"grad_flow must be one value per time step, got shape {flow.shape}")
    steps = len(flow)
    if steps == 0 or not flow[-1] > 0:  # no gradient at the output: nothing to measure against
        return 0
    by_lag = flow[::-1]  # by_lag[k] = grad_flow[T-1-k]
    below = np.flatnonzero(by_lag < threshold * flow[-1])
    return int(below[0]) if len(below) else steps


def spectral_radii(network: NetworkSpec, params: np.ndarray) -> list[dict[str, float]]:
    """Per layer, max |eigenvalue| of each H×H gate block of weight_hh_l{k}.

    Keys per cell: RNN "h"; LSTM "i", "f", "g", "o"; GRU "r", "z", "n". A radius well below 1
    means that block alone forgets quickly; well above 1, it can blow signals up.
    """
    views = network.layout.views(params)
    hidden = network.hidden_size
    radii = []
    with single_threaded_blas():  # tiny matrices: BLAS threads would only spin (see parallel.py)
        for k in range(network.num_layers):
            w = np.asarray(views[f"weight_hh_l{k}"], dtype=np.float64)
            radii.append({
                name: float(np.max(np.abs(np.linalg.eigvals(w[g * hidden:(g + 1) * hidden]))))
                for g, name in enumerate(GATE_NAMES[network.cell])
            })
    return radii


def gate_saturation(network: NetworkSpec, params: np.ndarray, x: np.ndarray, *,
                    margin: float = 0.05) -> list[dict[str, float]]:
    """Per layer and gate, the fraction of activations over the batch x (T, B, I) that saturate.

    Sigmoid gates count when below `margin` or above 1 - margin; tanh gates (LSTM g, GRU n, tanh
    RNN h) when |value| > 1 - margin. A relu RNN reports its dead (exactly zero) units as
    "h_dead". The forward runs from zero states without dropout, as inference does.
    """
    if not 0.0 < margin < 0.5:
        raise ValueError(f"margin must be in (0, 0.5), got {margin}")
    x = np.ascontiguousarray(x, dtype=params.dtype)
    views = network.layout.views(params)
    with single_threaded_blas():
        caches = run_window(network, views, x, zero_states(network, x.shape[1], params.dtype),
                            [None] * network.num_layers)
    # The caches live in per-thread scratch buffers that the next forward overwrites.
    snapshots = [(c.gates.copy(), c.hs.copy()) for c in caches]
    low, high = margin, 1.0 - margin
    result = []
    for gates, hs in snapshots:
        if network.cell == "rnn":
            # The RNN's gates cache is only W_ih x (no bias, no recurrence, not activated);
            # the activation itself is hs.
            if network.relu:
                result.append({"h_dead": _fraction(hs == 0)})
            else:
                result.append({"h": _fraction(np.abs(hs) > high)})
            continue
        # LSTM and GRU caches hold the activated gates, blocks in PyTorch order.
        blocks = gates.reshape(*gates.shape[:2], network.gates, network.hidden_size)
        layer = {}
        for g, name in enumerate(GATE_NAMES[network.cell]):
            a = blocks[:, :, g]
            layer[name] = _fraction(np.abs(a) > high if name in TANH_GATES
                                    else (a < low) | (a > high))
        result.append(layer)
    return result


def _fraction(flags: np.ndarray) -> float:
    return float(np.count_nonzero(flags) / flags.size) if flags.size else 0.0


def truncation_cosine(network: NetworkSpec, params: np.ndarray, x: np.ndarray, y: np.ndarray,
                      loss, truncate: tuple[int, int], head_features=None) -> float:
    """Cosine similarity between the truncated-BPTT gradient (truncate = (k1, k2)) and the
    full-BPTT gradient on the same batch: 1 means truncation costs nothing in direction.

    x (T, B, I) and y (1, B, horizon) as loss_and_gradients takes them with the head on the last
    step; y (B, horizon) is accepted too; head_features (B, E) for a network with head inputs.
    No dropout. 1.0 when both gradients are zero, 0.0 when only one is.
    """
    y = np.asarray(y)
    if y.ndim == 2:
        y = y[None]
    full = loss_and_gradients(network, params, x, y, loss,
                              head_features=head_features).grad.astype(np.float64)
    cut = loss_and_gradients(network, params, x, y, loss, truncate=truncate,
                             head_features=head_features).grad
    cut = cut.astype(np.float64)
    # Plain sums, not np.dot: a BLAS call would wake BLAS's threads (see clipping.global_norm).
    norms = math.sqrt(np.sum(full * full)) * math.sqrt(np.sum(cut * cut))
    if norms == 0.0:
        return 1.0 if not full.any() and not cut.any() else 0.0
    return float(np.clip(np.sum(full * cut) / norms, -1.0, 1.0))


def suggest_clip(norms: Sequence[float] | np.ndarray, percentile: float = 10.0) -> float | None:
    """A max_norm for gradient clipping: the `percentile`-th percentile of every pre-clip global
    gradient norm seen so far, None before any.

    This is AutoClip (P. Seetharaman, G. Wichern, B. Pardo, J. Le Roux, "AutoClip: Adaptive
    Gradient Clipping for Source Separation Networks", IEEE MLSP 2020, arXiv:2007.14469), where
    p = 10 worked best; the history is every update's norm, not per-epoch means.
    """
    values = np.asarray(norms, dtype=np.float64)
    if values.size == 0:
        return None
    return float(np.percentile(values, percentile))


def epoch_insight(network: NetworkSpec, params: np.ndarray, x: np.ndarray, y: np.ndarray, loss,
                  *, grad_flow: Sequence[float] | np.ndarray,
                  norm_history: Sequence[float] | np.ndarray,
                  truncate: tuple[int, int] | None = None, threshold: float = 0.01,
                  head_features: np.ndarray | None = None) -> dict:
    """All insight diagnostics for one epoch, as a JSON-ready dict of plain Python values.

    x, y: one sample batch (see truncation_cosine); grad_flow: the top layer's mean |dL/dh_t| per
    step (EpochMetrics.grad_flow); norm_history: every pre-clip gradient norm so far; truncate:
    the (k1, k2) training uses. "truncation_cosine" is None when training uses full BPTT or
    k2 >= T, where truncation changes nothing. head_features (B, E): the sample's, for a
    network with head inputs.
    """
    steps = np.asarray(x).shape[0]
    cosine = None
    if truncate is not None and int(truncate[1]) < steps:
        cosine = truncation_cosine(network, params, x, y, loss, truncate,
                                   head_features=head_features)
    return {
        "memory_horizon": memory_horizon(grad_flow, threshold),
        "memory_threshold": float(threshold),
        "spectral_radius": spectral_radii(network, params),
        "gate_saturation": gate_saturation(network, params, x),
        "truncation_cosine": cosine,
        "suggested_max_norm": suggest_clip(norm_history),
    }
