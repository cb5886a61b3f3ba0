"""GRU layer kernels, PyTorch's nn.GRU equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Same kernel signature as the other cells (see lstm.py): `gates` (T, B, 3H) keeps r, z, n (after
their nonlinearities); `aux` (T, B, H) keeps W_hn h + b_hn, which r multiplies. Because of that
product the input-side and hidden-side gate gradients differ in the n block: backward fills
dgates_h (T, B, 3H) with the hidden side's (dr, dz, dn·r) and only the n block of dgates with
the input side's dn (the input side's r and z blocks are dgates_h's, and its GEMMs read them
there).

The kernels are laid out as lstm.py's: BLAS through `gemm` straight into views, elementwise work
row by row on unit-stride slices of one gate block, the input projection folded into the gate
loop for few inputs, bias and input-weight gradients summed row by row while hot, and FMA
contraction as the only fast-math flag. Every array is taken `unowned`, so that the views the
row loops take make no reference-count calls (see _common.unowned).
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
)

GATES = 3
# Up to this many inputs, W_ih x is added in the gate loop instead of by a GEMM over all steps
# (see lstm.py).
FOLD_INPUTS = 4
# From this hidden size the forward's GEMMs read W_hh directly rather than a copy of W_hh^T
# (measured as for the LSTM: the copy is faster below it).
DIRECT_HIDDEN = 192
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one GRU layer over x (T, B, I) from h0 (B, H), filling gates, aux and hs."""
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    b_ih, b_hh, work = unowned(b_ih), unowned(b_hh), unowned(work)
    gates, aux, hs = unowned(gates), unowned(aux), unowned(hs)
    T, B, I = x.shape
    H = h0.shape[1]
    H2 = 2 * H
    G = 3 * H
    one = x.dtype.type(1)
    half = x.dtype.type(0.5)
    fold = I <= FOLD_INPUTS
    direct = H >= DIRECT_HIDDEN
    w_hh_t, at = hidden_weights(work, w_hh, direct)
    b_rz, at = summed_bias(work, at, b_ih, b_hh, H2)  # r's and z's two biases (n's apart)
    b_in = b_ih[H2:G]
    b_hn = b_hh[H2:G]
    # With folded inputs: b_in + W_in x less its first input's term, which the gate loop adds.
    # That is b_in itself for one input; for more it is summed per row.
    x_n = work[at : at + H]
    at += H
    x_n[:] = b_in
    w_ih_t, at = input_side(work, at, x, w_ih, gates, fold)
    zero_start = all_zero(h0)  # then step 0's recurrent projection is zero: no GEMM
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        g_t = gates[t]  # (B, 3H)
        a_t = aux[t]  # (B, H)
        recur = t > 0 or not zero_start
        if fold:
            # One GEMM writes all three blocks of W_hh h into gates[t]; the gate loop moves the
            # n block's to aux.
            if recur:
                recurrent_gemm(h_prev, w_hh, w_hh_t, 0, G, g_t, direct, 0.0)
            else:
                g_t[:] = 0
        else:
            # r's and z's blocks add to their input projections; W_hn h goes to aux.
            if recur:
                recurrent_gemm(h_prev, w_hh, w_hh_t, 0, H2, g_t[:, 0:H2], direct, 1.0)
                recurrent_gemm(h_prev, w_hh, w_hh_t, H2, G, a_t, direct, 0.0)
            else:
                a_t[:] = 0
        for b in range(B):
            row = g_t[b]
            rz = row[0:H2]
            r = row[0:H]
            n = row[H2:G]
            hn = a_t[b]
            # σ(z) = ½ + ½·tanh(½z); r and z are adjacent, so one loop activates both. The
            # n loop also stores W_hn h + b_hn to aux: one pass fewer over the row.
            if fold:
                if I > 1:
                    x_n[:] = b_in
                for i in range(1, I):
                    xi = x[t, b, i]
                    wi = w_ih_t[i]
                    for k in range(H2):
                        rz[k] += xi * wi[k]
                    win = wi[H2:G]
                    for j in range(H):
                        x_n[j] += xi * win[j]
                x0 = x[t, b, 0]
                w0 = w_ih_t[0]
                w0n = w0[H2:G]
                for k in range(H2):
                    rz[k] = half + half * tanh(half * (rz[k] + b_rz[k] + x0 * w0[k]))
                for j in range(H):
                    a = n[j] + b_hn[j]
                    hn[j] = a
                    n[j] = tanh(x_n[j] + x0 * w0n[j] + r[j] * a)
            else:
                for k in range(H2):
                    rz[k] = half + half * tanh(half * (rz[k] + b_rz[k]))
                for j in range(H):
                    a = hn[j] + b_hn[j]
                    hn[j] = a
                    n[j] = tanh(n[j] + b_in[j] + r[j] * a)
            z = row[H:H2]
            hp = h_prev[b]
            h = hs[t, b]
            for j in range(H):
                zj = z[j]
                h[j] = (one - zj) * n[j] + zj * hp[j]


@njit(**KERNEL, **FAST)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, dgates, dgates_h,
             dx, dw_ih, dw_hh, db_ih, db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one GRU layer; contract as in lstm.backward, except that dgates
    gets only its n block (see the module docstring)."""
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    gates, aux, hs, dh_out = unowned(gates), unowned(aux), unowned(hs), unowned(dh_out)
    dgates, dgates_h, dx = unowned(dgates), unowned(dgates_h), unowned(dx)
    dw_ih, dw_hh, db_ih, db_hh = unowned(dw_ih), unowned(dw_hh), unowned(db_ih), unowned(db_hh)
    grad_flow, work = unowned(grad_flow), unowned(work)
    T, B, I = x.shape
    H = h0.shape[1]
    H2 = 2 * H
    G = 3 * H
    one = x.dtype.type(1)
    dh_next, at = carve(work, 0, B, H)  # dL/dh_t through the recurrence from step t+1
    dh_next[:] = 0
    flow = work[at : at + H]  # |dL/dh_t| summed per unit, as in total_dh
    at += H
    db_h = work[at : at + G]  # b_hh's gradient, which is also b_ih's in the r and z blocks
    at += G
    db_n = work[at : at + H]  # b_in's gradient
    at += H
    db_h[:] = 0
    db_n[:] = 0
    fold = I <= FOLD_INPUTS
    dw_ih_t, at = carve(work, at, I if fold else 0, G)  # dW_ih^T, summed while hot
    dw_ih_t[:] = 0
    for t in range(T - 1, -1, -1):
        h_prev = h0 if t == 0 else hs[t - 1]
        flow[:] = 0
        for b in range(B):
            row = gates[t, b]
            gr = row[0:H]
            gz = row[H:H2]
            gn = row[H2:G]
            drow = dgates_h[t, b]
            dr = drow[0:H]
            dz = drow[H:H2]
            dnh = drow[H2:G]
            dni = dgates[t, b, H2:G]
            hn = aux[t, b]
            hp = h_prev[b]
            dho = dh_out[t, b]
            dhn = dh_next[b]
            # dL/dh_t through both paths (total_dh's work, done here in the same pass), then
            # the gates; dh_next[b] becomes the z·h path, to which the GEMM below adds the
            # path through W_hh.
            for j in range(H):
                d = dho[j] + dhn[j]
                flow[j] += abs(d)
                r = gr[j]
                z = gz[j]
                n = gn[j]
                dn = d * (one - z) * (one - n * n)
                dni[j] = dn
                dnh[j] = dn * r
                dr[j] = dn * hn[j] * r * (one - r)
                dz[j] = d * (hp[j] - n) * z * (one - z)
                dhn[j] = d * z
            for k in range(G):
                db_h[k] += drow[k]
            for j in range(H):
                db_n[j] += dni[j]
            if fold:  # the input side: dr and dz from dgates_h, dn from dgates
                drz = drow[0:H2]
                for i in range(I):
                    xi = x[t, b, i]
                    acc = dw_ih_t[i]
                    acc_rz = acc[0:H2]
                    acc_n = acc[H2:G]
                    for k in range(H2):
                        acc_rz[k] += xi * drz[k]
                    for j in range(H):
                        acc_n[j] += xi * dni[j]
        grad_flow[t] += flow.sum() / (B * H)
        if t > 0:
            gemm(dgates_h[t], w_hh, dh_next, False, False, 1.0)  # += (B, 3H) @ (3H, H)
    # The weight gradients of all steps as single GEMMs, accumulated in place.
    dh2 = dgates_h.reshape(T * B, G)
    di2 = dgates.reshape(T * B, G)
    if not all_zero(h0):
        gemm(dgates_h[0], h0, dw_hh, True, False, 1.0)  # step 0 reads the initial state
    if T > 1:
        gemm(dh2[B:], hs[: T - 1].reshape((T - 1) * B, H), dw_hh, True, False, 1.0)
    x2 = x.reshape(T * B, I)
    if fold:
        dw_ih += dw_ih_t.T
    else:  # the input side: r's and z's blocks from dgates_h, n's from dgates
        gemm(dh2[:, 0:H2], x2, dw_ih[0:H2], True, False, 1.0)
        gemm(di2[:, H2:G], x2, dw_ih[H2:G], True, False, 1.0)
    for k in range(H2):
        db_ih[k] += db_h[k]
    for j in range(H):
        db_ih[H2 + j] += db_n[j]
    for k in range(G):
        db_hh[k] += db_h[k]
    if need_dx:  # (T*B, 3H) @ (3H, I), in the same two blocks
        dx2 = dx.reshape(T * B, I)
        gemm(dh2[:, 0:H2], w_ih[0:H2], dx2, False, False, 0.0)
        gemm(di2[:, H2:G], w_ih[H2:G], dx2, False, False, 1.0)
