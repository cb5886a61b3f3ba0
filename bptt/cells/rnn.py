"""Vanilla RNN layer kernels, PyTorch's nn.RNN: h' = act(W_ih x + b_ih + W_hh h + b_hh).

act is tanh, or relu when `relu` is true. Same kernel signature as the other cells (see lstm.py):
`gates` (T, B, H) holds the input projection, `aux`, `c0` and `dgates_h` are unused.
"""

import numpy as np
from numba import njit

from ._common import KERNEL, carve, tanh, total_dh, weight_gradients

GATES = 1


@njit(**KERNEL)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one RNN layer over x (T, B, I) from h0 (B, H), filling hs (T, B, H)."""
    T, B, I = x.shape
    H = h0.shape[1]
    zero = x.dtype.type(0)
    np.dot(x.reshape(T * B, I), w_ih.T, gates.reshape(T * B, H))  # all steps' input projection
    bias = b_ih + b_hh  # (H,)
    rec, at = carve(work, 0, B, H)
    w_hh_t, at = carve(work, at, H, H)  # contiguous W_hh^T: faster small per-step GEMMs
    w_hh_t[:] = w_hh.T
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]
        np.dot(h_prev, w_hh_t, rec)  # (B, H)
        for b in range(B):
            for j in range(H):
                a = gates[t, b, j] + rec[b, j] + bias[j]
                hs[t, b, j] = max(a, zero) if relu else tanh(a)


@njit(**KERNEL)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one RNN layer; contract as in lstm.backward."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    dh_next, at = carve(work, 0, B, H)
    dh_next[:] = 0
    dh, at = carve(work, at, B, H)  # dL/dh_t, both paths
    flow = work[at : at + H]  # scratch for total_dh
    at += H
    for t in range(T - 1, -1, -1):
        d_t = dgates[t]
        grad_flow[t] += total_dh(dh_out[t], dh_next, dh, flow)
        for b in range(B):
            for j in range(H):
                h = hs[t, b, j]
                if relu:
                    d_t[b, j] = dh[b, j] if h > zero else zero
                else:
                    d_t[b, j] = dh[b, j] * (one - h * h)
        if t > 0:
            np.dot(d_t, w_hh, dh_next)  # (B, H) @ (H, H)
    weight_gradients(x, h0, hs, dgates, dgates, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, need_dx,
                     work[at:])
