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

from ._common import sigmoid, weight_gradients

GATES = 4


@njit(cache=True)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu):
    """Run one LSTM layer over x (T, B, I) from state (h0, c0), filling gates, aux=c and hs."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    # The input projection of every step is one GEMM: (T*B, I) @ (I, 4H).
    np.dot(x.reshape(T * B, I), w_ih.T, gates.reshape(T * B, 4 * H))
    bias = b_ih + b_hh  # (4H,)
    rec = np.empty((B, 4 * H), x.dtype)  # recurrent projection, reused every step
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        c_prev = c0 if t == 0 else aux[t - 1]  # (B, H)
        np.dot(h_prev, w_hh.T, rec)  # (B, 4H)
        g_t = gates[t]
        for b in range(B):
            for j in range(H):
                i = sigmoid(g_t[b, j] + rec[b, j] + bias[j], one)
                f = sigmoid(g_t[b, H + j] + rec[b, H + j] + bias[H + j], one)
                g = np.tanh(g_t[b, 2 * H + j] + rec[b, 2 * H + j] + bias[2 * H + j])
                o = sigmoid(g_t[b, 3 * H + j] + rec[b, 3 * H + j] + bias[3 * H + j], one)
                c = f * c_prev[b, j] + i * g
                g_t[b, j] = i
                g_t[b, H + j] = f
                g_t[b, 2 * H + j] = g
                g_t[b, 3 * H + j] = o
                aux[t, b, j] = c
                hs[t, b, j] = o * np.tanh(c)


@njit(cache=True)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx):
    """Backpropagate through one LSTM layer.

    dh_out (T, B, H) is dL/dh_t arriving from above (head or next layer), without the recurrence.
    Writes dgates (T, B, 4H) = dL/d(pre-activations) and, if need_dx, dx (T, B, I); adds the
    parameter gradients into dw_ih, dw_hh, db_ih, db_hh (so truncated segments accumulate) and
    mean |dL/dh_t| into grad_flow (T,).
    """
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    dh_next = np.zeros((B, H), x.dtype)  # dL/dh_{t} through the recurrence from step t+1
    dc_next = np.zeros((B, H), x.dtype)
    for t in range(T - 1, -1, -1):
        c_prev = c0 if t == 0 else aux[t - 1]
        g_t = gates[t]
        d_t = dgates[t]
        flow = 0.0
        for b in range(B):
            for j in range(H):
                dh = dh_out[t, b, j] + dh_next[b, j]
                flow += abs(dh)
                i = g_t[b, j]
                f = g_t[b, H + j]
                g = g_t[b, 2 * H + j]
                o = g_t[b, 3 * H + j]
                tc = np.tanh(aux[t, b, j])
                dc = dc_next[b, j] + dh * o * (one - tc * tc)
                d_t[b, j] = dc * g * i * (one - i)
                d_t[b, H + j] = dc * c_prev[b, j] * f * (one - f)
                d_t[b, 2 * H + j] = dc * i * (one - g * g)
                d_t[b, 3 * H + j] = dh * tc * o * (one - o)
                dc_next[b, j] = dc * f
        grad_flow[t] += flow / (B * H)
        if t > 0:
            np.dot(d_t, w_hh, dh_next)  # (B, 4H) @ (4H, H)
    weight_gradients(x, h0, hs, dgates, dgates, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, need_dx)

