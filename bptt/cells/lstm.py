"""LSTM layer kernels, PyTorch's nn.LSTM equations and gate order (i, f, g, o).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g                        h' = o * tanh(c')

Every cell module shares one kernel signature so the network code is cell-agnostic:
`gates` (T, B, G*H) keeps the activated gates, `aux` (T, B, H) keeps the cell state c,
`hs` (T, B, H) the hidden state. `dgates_h` and `relu` are unused here.

Elementwise work goes row by row (one batch row b at a time), on 1-D slices of one gate block
each: the row a GEMM just wrote is still in L1, and unit-stride slices with 0-based loops are
what LLVM vectorises reliably (indices like row[H + j] or g4[t, b, q, j] made it emit slower
code). The kernels use BLAS through `gemm`, which writes into views and accumulates in place.
FMA contraction is the only fast-math flag: it rounds a·b + c once instead of twice.
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
    total_dh,
    weight_gradients,
)

GATES = 4
# Up to this many inputs, x_t·W_ihᵀ is added in the gate loop (I multiply-adds per gate value,
# from L1) instead of by a GEMM over all steps, which would write all T·B·4H pre-activations
# out to memory and read them back.
FOLD_INPUTS = 4
# From this hidden size the forward's GEMMs read W_hh directly rather than a copy of W_hh^T.
DIRECT_HIDDEN = 192
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one LSTM layer over x (T, B, I) from state (h0, c0), filling gates, aux=c and hs."""
    T, B, I = x.shape
    H = h0.shape[1]
    G = 4 * H
    one = x.dtype.type(1)
    half = x.dtype.type(0.5)
    zero = x.dtype.type(0)
    fold = I <= FOLD_INPUTS
    direct = H >= DIRECT_HIDDEN
    w_hh_t, at = hidden_weights(work, w_hh, direct)
    bias, at = summed_bias(work, at, b_ih, b_hh, G)
    w_ih_t, at = input_side(work, at, x, w_ih, gates, fold)
    zero_start = all_zero(h0)
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        c_prev = c0 if t == 0 else aux[t - 1]  # (B, H)
        g_t = gates[t]  # (B, 4H)
        # The recurrent projection goes straight into gates[t], added to the input projection.
        if t > 0 or not zero_start:
            recurrent_gemm(h_prev, w_hh, w_hh_t, 0, G, g_t, direct, 0.0 if fold else 1.0)
        elif fold:
            g_t[:] = 0
        for b in range(B):
            row = g_t[b]
            if fold:
                for i in range(1, I):
                    xi = x[t, b, i]
                    wi = w_ih_t[i]
                    for k in range(G):
                        row[k] += xi * wi[k]
            # σ(z) = ½ + ½·tanh(½z): every block is u + s·tanh(s·z), s = ½ (i, f, o) or 1 (g).
            # Two copies of the loop rather than a branch inside it, which stopped LLVM
            # vectorising it.
            if fold:
                x0 = x[t, b, 0]
                for q in range(4):
                    s = one if q == 2 else half
                    u = zero if q == 2 else half
                    lo = q * H
                    z = row[lo : lo + H]
                    bq = bias[lo : lo + H]
                    wq = w_ih_t[0, lo : lo + H]
                    for j in range(H):
                        z[j] = u + s * tanh(s * (z[j] + bq[j] + x0 * wq[j]))
            else:
                for q in range(4):
                    s = one if q == 2 else half
                    u = zero if q == 2 else half
                    lo = q * H
                    z = row[lo : lo + H]
                    bq = bias[lo : lo + H]
                    for j in range(H):
                        z[j] = u + s * tanh(s * (z[j] + bq[j]))
            gi = row[0:H]
            gf = row[H : 2 * H]
            gg = row[2 * H : 3 * H]
            go = row[3 * H : G]
            cp = c_prev[b]
            c = aux[t, b]
            h = hs[t, b]
            for j in range(H):
                c[j] = gf[j] * cp[j] + gi[j] * gg[j]
            # tanh gets a loop of its own: inside a loop with many streams LLVM vectorised badly.
            for j in range(H):
                h[j] = go[j] * tanh(c[j])


@njit(**KERNEL, **FAST)
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
    G = 4 * H
    one = x.dtype.type(1)
    dh_next, at = carve(work, 0, B, H)  # dL/dh_t through the recurrence from step t+1
    dc_next, at = carve(work, at, B, H)
    dh_next[:] = 0
    dc_next[:] = 0
    flow = work[at : at + H]  # scratch for total_dh
    at += H
    dh, at = carve(work, at, B, H)  # dL/dh_t, both paths
    tc = work[at : at + H]  # tanh(c_t) of one row, recomputed rather than stored
    at += H
    db = work[at : at + G]  # bias gradient (the same for b_ih and b_hh), summed while hot
    at += G
    db[:] = 0
    fold = I <= FOLD_INPUTS
    dw_ih_t, at = carve(work, at, I if fold else 0, G)  # dW_ih^T, summed while hot
    dw_ih_t[:] = 0
    for t in range(T - 1, -1, -1):
        c_prev = c0 if t == 0 else aux[t - 1]
        grad_flow[t] += total_dh(dh_out[t], dh_next, dh, flow)
        g_t = gates[t]
        d_t = dgates[t]
        for b in range(B):
            c = aux[t, b]
            for j in range(H):
                tc[j] = tanh(c[j])
            row = g_t[b]
            drow = d_t[b]
            gi = row[0:H]
            gf = row[H : 2 * H]
            gg = row[2 * H : 3 * H]
            go = row[3 * H : G]
            di = drow[0:H]
            df = drow[H : 2 * H]
            dg = drow[2 * H : 3 * H]
            do = drow[3 * H : G]
            cp = c_prev[b]
            dhb = dh[b]
            dcb = dc_next[b]
            for j in range(H):
                i = gi[j]
                f = gf[j]
                g = gg[j]
                o = go[j]
                tcj = tc[j]
                dc = dcb[j] + dhb[j] * o * (one - tcj * tcj)
                di[j] = dc * g * i * (one - i)
                df[j] = dc * cp[j] * f * (one - f)
                dg[j] = dc * i * (one - g * g)
                do[j] = dhb[j] * tcj * o * (one - o)
                dcb[j] = dc * f
            for k in range(G):
                db[k] += drow[k]
            if fold:
                for i in range(I):
                    xi = x[t, b, i]
                    acc = dw_ih_t[i]
                    for k in range(G):
                        acc[k] += xi * drow[k]
        if t > 0:
            gemm(d_t, w_hh, dh_next, False, False, 0.0)  # (B, 4H) @ (4H, H)
    weight_gradients(dgates, x, h0, hs, w_ih, dw_ih_t, db, fold, need_dx, dw_ih, dw_hh, db_ih,
                     db_hh, dx)
