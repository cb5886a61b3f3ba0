"""Vanilla RNN layer kernels, PyTorch's nn.RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh).

act is tanh, or relu when `relu` is true. Same kernel signature as the other cells (see lstm.py):
`gates` (T, B, H) holds the input projection W_ih x (no bias), `aux` and `c0` are unused.

The kernels follow lstm.py's layout: per-step GEMMs straight into views (the recurrent
projection lands in hs[t] and is activated there), elementwise work row by row on unit-stride
slices, the input projection folded into the row loop for few inputs, bias and input-weight
gradients summed row by row while hot, and a backward step's GEMMs done while its gradients are
in cache. Arrays are taken `unowned` so the row loops make no reference-count calls (see
_common.unowned).
"""

from numba import njit

from ._common import (
    KERNEL,
    all_zero,
    carve,
    carve_padded,
    flush_subnormals,
    matmul_packed,
    packed,
    restore_fp_mode,
    step_weight_gradients,
    summed_bias,
    tanh,
    transposed,
    unowned,
    wide_vectors,
)

GATES = 1
# Up to this many inputs, W_ih x is computed in the row loop instead of by a GEMM per step
# (see lstm.py).
FOLD_INPUTS = 4
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one RNN layer over x (T, B, I) from h0 (B, H), filling gates and hs (T, B, H)."""
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    b_ih, b_hh, work = unowned(b_ih), unowned(b_hh), unowned(work)
    gates, hs = unowned(gates), unowned(hs)
    T, B, I = x.shape
    H = h0.shape[1]
    zero = x.dtype.type(0)
    fold = I <= FOLD_INPUTS
    w_hh_p, at = packed(work, 0, w_hh, True)  # W_hh^T (H, H), packed
    if fold:  # W_ih^T (I, H), read row by row in the row loop, or packed for its GEMM
        w_ih_t, at = transposed(work, at, w_ih)
        w_ih_p = w_hh_p
    else:
        w_ih_p, at = packed(work, at, w_ih, True)
        w_ih_t = w_ih
    bias, at = summed_bias(work, at, b_ih, b_hh, H)
    zero_start = all_zero(h0)
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        h_t = hs[t]
        if not fold:
            matmul_packed(x[t], w_ih_p, gates[t], False, False)
        # The recurrent projection goes straight into hs[t], activated in place below.
        if t > 0 or not zero_start:
            matmul_packed(h_prev, w_hh_p, h_t, False, False)
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
    restore_fp_mode(mode)


@njit(**KERNEL, **FAST)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, first, dx, dw_ih, dw_hh, db_ih,
             db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one RNN layer; contract as in lstm.backward."""
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    hs, dh_out, dx = unowned(hs), unowned(dh_out), unowned(dx)
    dw_ih, dw_hh, db_ih, db_hh = unowned(dw_ih), unowned(dw_hh), unowned(db_ih), unowned(db_hh)
    grad_flow, work = unowned(grad_flow), unowned(work)
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    d_pad, at = carve_padded(work, 0, B, H)  # dL/d(pre-activation) of one step
    d_t = d_pad[:, 0:H]
    dh_next, at = carve(work, at, B, H)  # dL/dh_t through the recurrence from step t+1
    dh_next[:] = 0
    flow = work[at : at + H]  # mean |dL/dh_t|, summed per unit (see lstm.backward)
    at += H
    db = work[at : at + H]  # the bias gradient (the same for b_ih and b_hh), summed while hot
    at += H
    db[:] = 0
    fold = I <= FOLD_INPUTS
    dw_ih_t, at = carve(work, at, I if fold else 0, H)  # dW_ih^T, summed while hot
    dw_ih_t[:] = 0
    w_hh_p, at = packed(work, at, w_hh, False)  # W_hh (H, H), packed
    w_ih_p, at = packed(work, at, w_ih, False) if need_dx else (w_hh_p, at)
    zero_start = all_zero(h0)
    no_dh, at = carve(work, at, B, H)  # zeros, read for dh_out's rows before `first`
    no_dh[:] = 0
    for t in range(T - 1, -1, -1):
        dh_t = dh_out[t] if t >= first else no_dh
        flow[:] = 0
        for b in range(B):
            dho = dh_t[b]
            dhn = dh_next[b]
            h = hs[t, b]
            dg = d_pad[b, 0:H]
            # dL/dh_t through both paths (from above and the recurrence), then through the
            # activation.
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
        h_prev = h0 if t == 0 else hs[t - 1]
        step_weight_gradients(d_t, h_prev, x[t], w_hh_p, w_ih_p, dw_hh, dw_ih, dh_next, dx[t],
                              t > 0, t > 0 or not zero_start, fold, need_dx)
    if fold:
        dw_ih += dw_ih_t.T
    for j in range(H):
        db_ih[j] += db[j]
        db_hh[j] += db[j]
    restore_fp_mode(mode)
