"""The losses and the head's part of a training step, compiled.

A training step used to run its head and loss as a dozen numpy calls between the cell kernels:
about 45 us of a 740 us step at a default fit's size (32 units, batch 32, mean and quantiles),
all of it holding the GIL, so that ensemble members training on two threads took turns there.
Here they are two kernels:

- `loss_terms`: the sum of a loss over predictions and its gradient, for every loss of
  bptt.losses (one implementation: those classes call it).
- `head_backward`: the head's forward pass, the loss, and the head's backward pass (its weight
  and bias gradients, and dL/dh for the cell's backward kernel), in one call.

A loss is described by (point, delta, levels): the point forecast's loss (NO_POINT, MSE, MAE or
HUBER, with Huber's delta), then the quantile levels of the pinball loss (none for a point loss
alone). With both, each target has 1 + Q outputs, the point forecast first, and each part is
weighted to be its own mean (bptt.losses.MeanAndQuantiles).
"""

import numpy as np
from numba import njit

from ._common import KERNEL, NR, carve, matmul, matmul_packed, packed

NO_POINT, MSE, MAE, HUBER = 0, 1, 2, 3


@njit(inline="always", **KERNEL)
def _add(total, error, term):
    """(total + term, the running rounding error): one step of Neumaier's summation."""
    new = total + term
    if abs(total) >= abs(term):
        error += (total - new) + term
    else:
        error += (term - new) + total
    return new, error


@njit(**KERNEL)
def loss_terms(pred, target, mask, point, delta, levels, grad):
    """The loss summed over every known target, in float64; its gradient d sum / d pred is
    written to grad (N, O), which may be pred itself.

    pred (N, O) with O = h * (P + Q) (P = 1 with a point loss), target and mask (N, h); a
    target whose mask is False counts nothing and gets a zero gradient (it may be NaN).
    """
    N, h = target.shape
    Q = levels.size
    dt = pred.dtype.type
    zero, one, two, half, d = dt(0), dt(1), dt(2), dt(0.5), dt(delta)
    per = (0 if point == NO_POINT else 1) + Q
    both = point != NO_POINT and Q > 0
    weight_point = dt(1 + Q) if both else one
    weight_quantile = dt((1 + Q) / Q) if both else one
    # Compensated sums (Neumaier) over the rows: gradient checks difference these sums at
    # steps of 1e-6, so their rounding error becomes the checks' noise. Within a row, its few
    # terms are summed plainly: one compensated chain through every term was a dependency
    # chain the CPU could not overlap (0.18 ms for 4,096 rows of 12).
    point_sum, point_error = 0.0, 0.0
    quantile_sum, quantile_error = 0.0, 0.0
    for n in range(N):
        row_point, row_quantile = 0.0, 0.0
        for j in range(h):
            known = mask[n, j]
            y = target[n, j] if known else zero
            at = j * per
            if point != NO_POINT:
                r = pred[n, at] - y if known else zero
                if point == MSE:
                    row_point += float(r) * float(r)
                    g = r * two
                elif point == MAE:
                    row_point += abs(float(r))
                    g = np.sign(r)
                elif abs(r) < d:  # Huber, inside
                    row_point += float(half * r * r)
                    g = r
                else:  # Huber, outside
                    row_point += float(d * (abs(r) - half * d))
                    g = d * np.sign(r)
                grad[n, at] = g * weight_point
                at += 1
            for i in range(Q):
                g = zero
                if known:
                    r = y - pred[n, at + i]  # pinball: q·r above the target, (q − 1)·r below
                    g = (one if r <= zero else zero) - levels[i]
                    row_quantile -= float(r) * float(g)
                grad[n, at + i] = g * weight_quantile
        point_sum, point_error = _add(point_sum, point_error, row_point)
        quantile_sum, quantile_error = _add(quantile_sum, quantile_error, row_quantile)
    point_sum += point_error
    quantile_sum += quantile_error
    if both:
        return point_sum * (1 + Q) + quantile_sum * (1 + Q) / Q
    return point_sum + quantile_sum


@njit(**KERNEL)
def head_backward(top, extra, head_w, head_b, target, mask, count, point, delta, levels, work,
                  grad_w, grad_b, dh):
    """Head forward, loss and head backward for N rows; returns the loss sum (float64).

    The head reads concat(top (N, H), extra (N, E)) (E may be 0) through head_w (O, H + E) and
    head_b (O,). The loss's gradient is divided by `count` (the counted target elements of the
    whole batch, as the step's loss is their mean); grad_w and grad_b get the head's gradients
    added, and dh (N, H) is set to dL/dtop. work: head_work_size elements at least.
    """
    N, H = top.shape
    E = extra.shape[1]
    O = head_b.size
    dpred, at = carve(work, 0, N, O)  # the predictions, then their gradient
    w_h, at = packed(work, at, head_w[:, :H], True)  # W_h^T (H, O)
    matmul_packed(top, w_h, dpred, False, False)
    if E:
        w_e, at = packed(work, at, head_w[:, H:], True)
        matmul_packed(extra, w_e, dpred, False, True)
    for n in range(N):
        p = dpred[n]
        for o in range(O):
            p[o] += head_b[o]
    total = loss_terms(dpred, target, mask, point, delta, levels, dpred)
    scale = dpred.dtype.type(count)
    for n in range(N):
        p = dpred[n]
        for o in range(O):
            p[o] /= scale
            grad_b[o] += p[o]
    matmul(dpred, top, grad_w[:, :H], True, True)  # (O, N) @ (N, H)
    if E:
        matmul(dpred, extra, grad_w[:, H:], True, True)
    matmul(dpred, head_w[:, :H], dh, False, False)  # (N, O) @ (O, H)
    return total


def head_work_size(rows: int, hidden: int, features: int, outputs: int) -> int:
    """Elements of head_backward's `work`: the predictions, and W_h^T and W_e^T packed (in
    panels of float32's width, NR: float64's are narrower, so this is enough for both)."""
    panels = -(-outputs // NR) * NR
    return rows * outputs + panels * (hidden + features)
