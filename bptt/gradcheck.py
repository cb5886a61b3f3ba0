"""Gradient checks: central finite differences against the analytic BPTT gradient.

For truncated BPTT the analytic gradient is not the gradient of the loss but of a surrogate in
which the state entering each backward window is a constant (computed with the weights being
differentiated at, `anchor`). `surrogate_loss` evaluates exactly that, with forward passes only,
so finite differences of it check the truncated backward kernels too.
"""

from collections.abc import Callable

import numpy as np

from .backprop import loss_and_gradients
from .forward import head_output, run_window, zero_states
from .network import NetworkSpec, checked_head_features


def numerical_gradient(f: Callable[[np.ndarray], float], params: np.ndarray,
                       eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(θ+εe_i) − f(θ−εe_i)) / 2ε for every parameter."""
    grad = np.zeros(params.shape, np.float64)
    probe = params.copy()
    for i in range(params.size):
        probe[i] = params[i] + eps
        up = f(probe)
        probe[i] = params[i] - eps
        down = f(probe)
        probe[i] = params[i]
        grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖): a scale-free distance that ignores isolated tiny entries."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - b) / scale)


def surrogate_loss(spec: NetworkSpec, params: np.ndarray, anchor: np.ndarray, x: np.ndarray,
                   y: np.ndarray, loss, *, first_output: int | None = None,
                   truncate: tuple[int, int] | None = None, mask: np.ndarray | None = None,
                   dropout_masks: list | None = None,
                   head_features: np.ndarray | None = None) -> float:
    """The loss whose exact gradient truncated BPTT computes at params == anchor."""
    steps, batch, _ = x.shape
    t0 = steps - 1 if first_output is None else first_output
    extra = checked_head_features(spec, head_features, batch, params.dtype, steps - t0)
    k1, k2 = truncate or (steps, steps)
    known = np.isfinite(y) if mask is None else (np.asarray(mask, bool) & np.isfinite(y))
    count = int(known.sum()) * loss.outputs_per_target
    masks = dropout_masks or [None] * spec.num_layers
    views, anchor_views = spec.layout.views(params), spec.layout.views(anchor)
    total = 0.0
    for seg_start in range(0, steps, k1):
        seg_end = min(seg_start + k1, steps)
        win_start = max(0, seg_end - k2)
        out_start = max(seg_start, t0)
        if out_start >= seg_end:
            continue
        state = zero_states(spec, batch, params.dtype)
        if win_start > 0:  # the state entering the window, held at the anchor's value
            prefix = run_window(spec, anchor_views, x[:win_start], state, masks)
            state = [c.state_after(win_start - 1) for c in prefix]
        top = run_window(spec, views, x[win_start:seg_end], state, masks)[-1].hs
        h = top[out_start - win_start :].reshape(-1, spec.hidden_size)
        rows = slice(out_start - t0, seg_end - t0)
        features = None if extra is None else extra[rows].reshape(len(h), -1)
        pred = head_output(views, h, features)
        value, _ = loss.sum_and_grad(pred, y[rows].reshape(len(h), -1),
                                     known[rows].reshape(len(h), -1))
        total += value
    return total / max(count, 1)


def check_gradients(spec: NetworkSpec, params: np.ndarray, x: np.ndarray, y: np.ndarray, loss,
                    eps: float = 1e-6, **options) -> dict[str, float]:
    """Relative error between analytic and finite-difference gradients, per named parameter
    and overall ("*"). Use float64 parameters."""
    analytic = loss_and_gradients(spec, params, x, y, loss, **options).grad
    numeric = numerical_gradient(
        lambda p: surrogate_loss(spec, p, params, x, y, loss, **options), params, eps)
    errors = {"*": relative_error(analytic, numeric)}
    a_views, n_views = spec.layout.views(analytic), spec.layout.views(numeric)
    for name in a_views:
        errors[name] = relative_error(a_views[name], n_views[name])
    return errors
