"""GRU layer kernels, PyTorch's nn.GRU equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Same kernel signature as the other cells (see lstm.py): `gates` (T, B, 3H) keeps r, z, n;
`aux` (T, B, H) keeps W_hn h + b_hn, which r multiplies. Because of that product the input-side
and hidden-side gate gradients differ in the n block, so backward fills both dgates (input side)
and dgates_h (hidden side).
"""

import numpy as np
from numba import njit

from ._common import KERNEL, carve, sigmoid, tanh, total_dh, weight_gradients

GATES = 3


@njit(**KERNEL)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one GRU layer over x (T, B, I) from h0 (B, H), filling gates, aux and hs."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    half = x.dtype.type(0.5)
    np.dot(x.reshape(T * B, I), w_ih.T, gates.reshape(T * B, 3 * H))  # all steps' input projection
    g4 = gates.reshape(T, B, 3, H)  # constant gate index: unit-stride streams (see lstm.py)
    rec, at = carve(work, 0, B, 3 * H)  # recurrent projection, reused every step
    r3 = rec.reshape(B, 3, H)
    bi = b_ih.reshape(3, H)
    bh = b_hh.reshape(3, H)
    w_hh_t, at = carve(work, at, H, 3 * H)  # contiguous W_hh^T: faster small per-step GEMMs
    w_hh_t[:] = w_hh.T
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]
        np.dot(h_prev, w_hh_t, rec)  # (B, 3H)
        g_t = gates[t]
        # Short single-purpose loops vectorise far better than one fused loop.
        for b in range(B):
            for k in range(2 * H):
                g_t[b, k] = sigmoid(g_t[b, k] + b_ih[k] + rec[b, k] + b_hh[k], half)
        for b in range(B):
            for j in range(H):
                hn = r3[b, 2, j] + bh[2, j]
                aux[t, b, j] = hn
                g4[t, b, 2, j] += bi[2, j] + g4[t, b, 0, j] * hn  # n's pre-activation
        # tanh gets a loop of its own: inside a loop with many streams LLVM vectorised badly.
        for b in range(B):
            for j in range(H):
                g4[t, b, 2, j] = tanh(g4[t, b, 2, j])
        for b in range(B):
            for j in range(H):
                z = g4[t, b, 1, j]
                hs[t, b, j] = (one - z) * g4[t, b, 2, j] + z * h_prev[b, j]


@njit(**KERNEL)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one GRU layer; contract as in lstm.backward, plus dgates_h."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    g4 = gates.reshape(T, B, 3, H)
    di4 = dgates.reshape(T, B, 3, H)
    dh4 = dgates_h.reshape(T, B, 3, H)
    dh_next, at = carve(work, 0, B, H)
    dh_next[:] = 0
    flow = work[at : at + H]  # scratch for total_dh
    at += H
    dh_direct, at = carve(work, at, B, H)  # the z * h path that skips W_hh
    dh, at = carve(work, at, B, H)  # dL/dh_t, both paths
    for t in range(T - 1, -1, -1):
        h_prev = h0 if t == 0 else hs[t - 1]
        grad_flow[t] += total_dh(dh_out[t], dh_next, dh, flow)
        for b in range(B):
            for j in range(H):
                r = g4[t, b, 0, j]
                z = g4[t, b, 1, j]
                n = g4[t, b, 2, j]
                dn = dh[b, j] * (one - z) * (one - n * n)
                dr = dn * aux[t, b, j] * r * (one - r)
                dz = dh[b, j] * (h_prev[b, j] - n) * z * (one - z)
                di4[t, b, 0, j] = dr
                di4[t, b, 1, j] = dz
                di4[t, b, 2, j] = dn
                dh4[t, b, 0, j] = dr
                dh4[t, b, 1, j] = dz
                dh4[t, b, 2, j] = dn * r
                dh_direct[b, j] = dh[b, j] * z
        if t > 0:
            np.dot(dgates_h[t], w_hh, dh_next)  # (B, 3H) @ (3H, H)
            dh_next += dh_direct
    weight_gradients(x, h0, hs, dgates, dgates_h, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, need_dx,
                     work[at:])
