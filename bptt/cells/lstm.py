"""LSTM layer kernels, PyTorch's nn.LSTM equations and gate order (i, f, g, o).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g                        h' = o * tanh(c')

Every cell module shares one kernel signature so the network code is cell-agnostic:
`gates` (T, B, G*H) keeps the activated gates, `aux` (T, B, H) keeps the cell state c,
`hs` (T, B, H) the hidden state. `dgates_h` and `relu` are unused here.
"""

import numpy as np
from numba import njit

from ._common import KERNEL, carve, tanh, total_dh, weight_gradients

GATES = 4


@njit(**KERNEL)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one LSTM layer over x (T, B, I) from state (h0, c0), filling gates, aux=c and hs."""
    T, B, I = x.shape
    H = h0.shape[1]
    # The input projection of every step is one GEMM: (T*B, I) @ (I, 4H).
    np.dot(x.reshape(T * B, I), w_ih.T, gates.reshape(T * B, 4 * H))
    # Gate blocks addressed as g4[t, b, gate, j]: a constant gate index lets LLVM see four
    # unit-stride streams, where offsets like [b, 2 * H + j] made it emit slower code.
    g4 = gates.reshape(T, B, 4, H)
    bias = b_ih + b_hh  # (4H,)
    # σ(z) = ½ + ½·tanh(½z), so one tanh loop over all four gate blocks activates them:
    # act = shift + scale·tanh(scale·z), with scale ½ for i, f, o and 1 for g. A single uniform
    # loop vectorises far better than four differently-shaped ones.
    scale = np.full(4 * H, 0.5, x.dtype)
    scale[2 * H : 3 * H] = 1
    shift = np.full(4 * H, 0.5, x.dtype)
    shift[2 * H : 3 * H] = 0
    rec, at = carve(work, 0, B, 4 * H)  # recurrent projection, reused every step
    w_hh_t, at = carve(work, at, H, 4 * H)  # contiguous W_hh^T: faster small per-step GEMMs
    w_hh_t[:] = w_hh.T
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        c_prev = c0 if t == 0 else aux[t - 1]  # (B, H)
        np.dot(h_prev, w_hh_t, rec)  # (B, 4H)
        g_t = gates[t]
        for b in range(B):
            for k in range(4 * H):
                s = scale[k]
                g_t[b, k] = shift[k] + s * tanh(s * (g_t[b, k] + rec[b, k] + bias[k]))
        for b in range(B):
            for j in range(H):
                aux[t, b, j] = g4[t, b, 1, j] * c_prev[b, j] + g4[t, b, 0, j] * g4[t, b, 2, j]
        # tanh gets a loop of its own: inside a loop with many streams LLVM vectorised badly.
        for b in range(B):
            for j in range(H):
                hs[t, b, j] = g4[t, b, 3, j] * tanh(aux[t, b, j])


@njit(**KERNEL)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one LSTM layer.

    dh_out (T, B, H) is dL/dh_t arriving from above (head or next layer), without the recurrence.
    Writes dgates (T, B, 4H) = dL/d(pre-activations) and, if need_dx, dx (T, B, I); adds the
    parameter gradients into dw_ih, dw_hh, db_ih, db_hh (so truncated segments accumulate) and
    mean |dL/dh_t| into grad_flow (T,).
    """
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    g4 = gates.reshape(T, B, 4, H)
    d4 = dgates.reshape(T, B, 4, H)
    dh_next, at = carve(work, 0, B, H)  # dL/dh_t through the recurrence from step t+1
    dc_next, at = carve(work, at, B, H)
    dh_next[:] = 0
    dc_next[:] = 0
    flow = work[at : at + H]  # scratch for total_dh
    at += H
    dh, at = carve(work, at, B, H)  # dL/dh_t, both paths
    tc, at = carve(work, at, B, H)  # tanh(c_t), recomputed rather than stored
    for t in range(T - 1, -1, -1):
        c_prev = c0 if t == 0 else aux[t - 1]
        grad_flow[t] += total_dh(dh_out[t], dh_next, dh, flow)
        # Short single-purpose loops: each vectorises, where one fused loop did not.
        for b in range(B):
            for j in range(H):
                tc[b, j] = tanh(aux[t, b, j])
        for b in range(B):
            for j in range(H):
                i = g4[t, b, 0, j]
                f = g4[t, b, 1, j]
                g = g4[t, b, 2, j]
                o = g4[t, b, 3, j]
                dc = dc_next[b, j] + dh[b, j] * o * (one - tc[b, j] * tc[b, j])
                d4[t, b, 0, j] = dc * g * i * (one - i)
                d4[t, b, 1, j] = dc * c_prev[b, j] * f * (one - f)
                d4[t, b, 2, j] = dc * i * (one - g * g)
                d4[t, b, 3, j] = dh[b, j] * tc[b, j] * o * (one - o)
                dc_next[b, j] = dc * f
        if t > 0:
            np.dot(dgates[t], w_hh, dh_next)  # (B, 4H) @ (4H, H)
    weight_gradients(x, h0, hs, dgates, dgates, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, need_dx,
                     work[at:])
