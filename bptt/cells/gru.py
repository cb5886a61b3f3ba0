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

from ._common import sigmoid, weight_gradients

GATES = 3


@njit(cache=True)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu):
    """Run one GRU layer over x (T, B, I) from h0 (B, H), filling gates, aux and hs."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    np.dot(x.reshape(T * B, I), w_ih.T, gates.reshape(T * B, 3 * H))  # all steps' input projection
    rec = np.empty((B, 3 * H), x.dtype)
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]
        np.dot(h_prev, w_hh.T, rec)  # (B, 3H)
        g_t = gates[t]
        for b in range(B):
            for j in range(H):
                r = sigmoid(g_t[b, j] + b_ih[j] + rec[b, j] + b_hh[j], one)
                z = sigmoid(g_t[b, H + j] + b_ih[H + j] + rec[b, H + j] + b_hh[H + j], one)
                hn = rec[b, 2 * H + j] + b_hh[2 * H + j]
                n = np.tanh(g_t[b, 2 * H + j] + b_ih[2 * H + j] + r * hn)
                g_t[b, j] = r
                g_t[b, H + j] = z
                g_t[b, 2 * H + j] = n
                aux[t, b, j] = hn
                hs[t, b, j] = (one - z) * n + z * h_prev[b, j]


@njit(cache=True)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx):
    """Backpropagate through one GRU layer; contract as in lstm.backward, plus dgates_h."""
    T, B, I = x.shape
    H = h0.shape[1]
    one = x.dtype.type(1)
    dh_next = np.zeros((B, H), x.dtype)
    dh_direct = np.empty((B, H), x.dtype)  # the z * h path that skips W_hh
    for t in range(T - 1, -1, -1):
        h_prev = h0 if t == 0 else hs[t - 1]
        g_t = gates[t]
        di_t = dgates[t]
        dh_t = dgates_h[t]
        flow = 0.0
        for b in range(B):
            for j in range(H):
                dh = dh_out[t, b, j] + dh_next[b, j]
                flow += abs(dh)
                r = g_t[b, j]
                z = g_t[b, H + j]
                n = g_t[b, 2 * H + j]
                dn = dh * (one - z) * (one - n * n)
                dr = dn * aux[t, b, j] * r * (one - r)
                dz = dh * (h_prev[b, j] - n) * z * (one - z)
                di_t[b, j] = dr
                di_t[b, H + j] = dz
                di_t[b, 2 * H + j] = dn
                dh_t[b, j] = dr
                dh_t[b, H + j] = dz
                dh_t[b, 2 * H + j] = dn * r
                dh_direct[b, j] = dh * z
        grad_flow[t] += flow / (B * H)
        if t > 0:
            np.dot(dh_t, w_hh, dh_next)  # (B, 3H) @ (3H, H)
            dh_next += dh_direct
    weight_gradients(x, h0, hs, dgates, dgates_h, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, need_dx)
