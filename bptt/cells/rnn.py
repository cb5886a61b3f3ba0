"""Vanilla RNN layer kernels, PyTorch's nn.RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh).

act is tanh, or relu when `relu` is true. Same kernel signature as the other cells (see lstm.py):
`gates` (T, B, H) holds the input projection W_ih x (no bias), `aux`, `c0` and `dgates_h` are
unused.

The kernels follow lstm.py's layout: BLAS through `gemm` straight into views (the recurrent
projection lands in hs[t] and is activated there), elementwise work row by row on unit-stride
slices, the input projection folded into the row loop for few inputs, and bias and input-weight
gradients summed row by row while hot. Arrays are taken `unowned` so the row loops make no
reference-count calls (see _common.unowned).
"""

from numba import njit

from ._common import (
    KERNEL,
    all_zero,
    carve,
    gemm,
    hidden_weights,
    input_side,
    recurrent_gemm,
    summed_bias,
    tanh,
    unowned,
    weight_gradients,
)

GATES = 1
# Up to this many inputs, W_ih x is computed in the row loop instead of by a GEMM over all steps
# (see lstm.py).
FOLD_INPUTS = 4
# From this hidden size the forward's GEMMs read W_hh directly rather than a copy of W_hh^T
# (for the RNN's square W_hh the two measured about the same from there on).
DIRECT_HIDDEN = 192
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one RNN layer over x (T, B, I) from h0 (B, H), filling gates and hs (T, B, H)."""
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    b_ih, b_hh, work = unowned(b_ih), unowned(b_hh), unowned(work)
    gates, hs = unowned(gates), unowned(hs)
    T, B, I = x.shape
    H = h0.shape[1]
    zero = x.dtype.type(0)
    fold = I <= FOLD_INPUTS
    direct = H >= DIRECT_HIDDEN
    w_hh_t, at = hidden_weights(work, w_hh, direct)
    bias, at = summed_bias(work, at, b_ih, b_hh, H)
    w_ih_t, at = input_side(work, at, x, w_ih, gates, fold)
    zero_start = all_zero(h0)
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        h_t = hs[t]
        # The recurrent projection goes straight into hs[t], activated in place below.
        if t > 0 or not zero_start:
            recurrent_gemm(h_prev, w_hh, w_hh_t, 0, H, h_t, direct, 0.0)
        else:
            h_t[:] = 0
        for b in range(B):
            g = gates[t, b]
            h = h_t[b]
            if fold:  # W_ih x into the gates cache, while the row is in L1
                x0 = x[t, b, 0]
                w0 = w_ih_t[0]
                for j in range(H):
                    g[j] = x0 * w0[j]
                for i in range(1, I):
                    xi = x[t, b, i]
                    wi = w_ih_t[i]
                    for j in range(H):
                        g[j] += xi * wi[j]
            # Two copies of the loop rather than a branch inside it (see lstm.py).
            if relu:
                for j in range(H):
                    h[j] = max(h[j] + g[j] + bias[j], zero)
            else:
                for j in range(H):
                    h[j] = tanh(h[j] + g[j] + bias[j])


@njit(**KERNEL, **FAST)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one RNN layer; contract as in lstm.backward."""
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    hs, dh_out, dgates, dx = unowned(hs), unowned(dh_out), unowned(dgates), unowned(dx)
    dw_ih, dw_hh, db_ih, db_hh = unowned(dw_ih), unowned(dw_hh), unowned(db_ih), unowned(db_hh)
    grad_flow, work = unowned(grad_flow), unowned(work)
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    dh_next, at = carve(work, 0, B, H)  # dL/dh_t through the recurrence from step t+1
    dh_next[:] = 0
    flow = work[at : at + H]  # mean |dL/dh_t|, summed per unit (see total_dh)
    at += H
    db = work[at : at + H]  # the bias gradient (the same for b_ih and b_hh), summed while hot
    at += H
    db[:] = 0
    fold = I <= FOLD_INPUTS
    dw_ih_t, at = carve(work, at, I if fold else 0, H)  # dW_ih^T, summed while hot
    dw_ih_t[:] = 0
    for t in range(T - 1, -1, -1):
        d_t = dgates[t]
        flow[:] = 0
        for b in range(B):
            dho = dh_out[t, b]
            dhn = dh_next[b]
            h = hs[t, b]
            dg = d_t[b]
            # dL/dh_t through both paths (as total_dh), then through the activation.
            if relu:
                for j in range(H):
                    d = dho[j] + dhn[j]
                    flow[j] += abs(d)
                    g = d if h[j] > zero else zero
                    dg[j] = g
                    db[j] += g
            else:
                for j in range(H):
                    d = dho[j] + dhn[j]
                    flow[j] += abs(d)
                    hj = h[j]
                    g = d * (one - hj * hj)
                    dg[j] = g
                    db[j] += g
            if fold:
                for i in range(I):
                    xi = x[t, b, i]
                    acc = dw_ih_t[i]
                    for j in range(H):
                        acc[j] += xi * dg[j]
        grad_flow[t] += flow.sum() / (B * H)
        if t > 0:
            gemm(d_t, w_hh, dh_next, False, False, 0.0)  # (B, H) @ (H, H)
    weight_gradients(dgates, x, h0, hs, w_ih, dw_ih_t, db, fold, need_dx, dw_ih, dw_hh, db_ih,
                     db_hh, dx)
