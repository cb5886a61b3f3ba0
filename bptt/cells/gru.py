"""GRU layer kernels, PyTorch's nn.GRU equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Same kernel signature as the other cells (see lstm.py): `gates` (T, B, 3H) keeps r, z, n (after
their nonlinearities); `aux` (T, B, H) keeps W_hn h + b_hn, which r multiplies. Because of that
product the input-side and hidden-side gate gradients differ in the n block: backward keeps,
per step, the hidden side's (dr, dz, dn·r) in d_h (B, 3H) and the input side's dn in d_in
(B, H) (the input side's r and z gradients are d_h's, and its GEMMs read them there).

The kernels are laid out as lstm.py's: per-step GEMMs straight into views, elementwise work
row by row on unit-stride slices of one gate block, the input projection folded into the gate
loop for few inputs, bias and input-weight gradients summed row by row while hot, a backward
step's GEMMs done while its gradients are in cache, and FMA contraction as the only fast-math
flag. Every array is taken `unowned`, so that the views the row loops take make no
reference-count calls (see _common.unowned).
"""

from numba import njit

from ._common import (
    KERNEL,
    all_zero,
    carve,
    carve_padded,
    flush_subnormals,
    matmul,
    matmul_packed,
    packed,
    restore_fp_mode,
    summed_bias,
    tanh,
    transposed,
    unowned,
    wide_vectors,
)

GATES = 3
# Up to this many inputs, W_ih x is added in the gate loop instead of by a GEMM per step
# (see lstm.py).
FOLD_INPUTS = 4
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one GRU layer over x (T, B, I) from h0 (B, H), filling gates, aux and hs."""
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
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
    # W_hh^T (H, 3H) packed, its r and z blocks apart from its n block for the GEMMs without
    # folded inputs; W_ih^T (I, 3H), read row by row in the gate loop, or packed for its GEMM.
    if fold:
        w_hh_p, at = packed(work, 0, w_hh, True)
        w_hn_p = w_hh_p
        w_ih_t, at = transposed(work, at, w_ih)
        w_ih_p = w_hh_p
    else:
        w_hh_p, at = packed(work, 0, w_hh[0:H2], True)
        w_hn_p, at = packed(work, at, w_hh[H2:G], True)
        w_ih_p, at = packed(work, at, w_ih, True)
        w_ih_t = w_ih
    b_rz, at = summed_bias(work, at, b_ih, b_hh, H2)  # r's and z's two biases (n's apart)
    b_in = b_ih[H2:G]
    b_hn = b_hh[H2:G]
    # With folded inputs: b_in + W_in x less its first input's term, which the gate loop adds.
    # That is b_in itself for one input; for more it is summed per row.
    x_n = work[at : at + H]
    at += H
    # A loop, not x_n[:] = b_in: a slice assignment from an array makes Numba compile its
    # shape-mismatch message (string formatting), about 1.5 s of CPU on a cold start.
    for j in range(H):
        x_n[j] = b_in[j]
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
                matmul_packed(h_prev, w_hh_p, g_t, False, False)
            else:
                g_t[:] = 0
        else:
            # The input projection of all three blocks; r's and z's recurrent blocks add to
            # theirs and W_hn h goes to aux.
            matmul_packed(x[t], w_ih_p, g_t, False, False)
            if recur:
                matmul_packed(h_prev, w_hh_p, g_t[:, 0:H2], False, True)
                matmul_packed(h_prev, w_hn_p, a_t, False, False)
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
                    for j in range(H):
                        x_n[j] = b_in[j]
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
    restore_fp_mode(mode)


@njit(**KERNEL, **FAST)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, first, dx, dw_ih, dw_hh, db_ih,
             db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one GRU layer; contract as in lstm.backward."""
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
    x, h0, w_ih, w_hh = unowned(x), unowned(h0), unowned(w_ih), unowned(w_hh)
    gates, aux, hs, dh_out = unowned(gates), unowned(aux), unowned(hs), unowned(dh_out)
    dx, dw_ih, dw_hh, db_ih = unowned(dx), unowned(dw_ih), unowned(dw_hh), unowned(db_ih)
    db_hh, grad_flow, work = unowned(db_hh), unowned(grad_flow), unowned(work)
    T, B, I = x.shape
    H = h0.shape[1]
    H2 = 2 * H
    G = 3 * H
    one = x.dtype.type(1)
    d_h_pad, at = carve_padded(work, 0, B, G)  # one step's hidden-side (dr, dz, dn·r)
    d_in_pad, at = carve_padded(work, at, B, H)  # and the input side's dn
    d_h = d_h_pad[:, 0:G]
    d_in = d_in_pad[:, 0:H]
    dh_next, at = carve(work, at, B, H)  # dL/dh_t through the recurrence from step t+1
    dh_next[:] = 0
    flow = work[at : at + H]  # |dL/dh_t| summed per unit, as in lstm.backward
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
    w_hh_p, at = packed(work, at, w_hh, False)  # W_hh (3H, H), packed
    # W_ih's r and z blocks and its n block (2H, I) and (H, I), packed, for dx
    w_irz_p, at = packed(work, at, w_ih[0:H2], False) if need_dx else (w_hh_p, at)
    w_in_p, at = packed(work, at, w_ih[H2:G], False) if need_dx else (w_hh_p, at)
    zero_start = all_zero(h0)
    no_dh, at = carve(work, at, B, H)  # zeros, read for dh_out's rows before `first`
    no_dh[:] = 0
    for t in range(T - 1, -1, -1):
        dh_t = dh_out[t] if t >= first else no_dh
        h_prev = h0 if t == 0 else hs[t - 1]
        flow[:] = 0
        for b in range(B):
            row = gates[t, b]
            gr = row[0:H]
            gz = row[H:H2]
            gn = row[H2:G]
            drow = d_h_pad[b, 0:G]
            dr = drow[0:H]
            dz = drow[H:H2]
            dnh = drow[H2:G]
            dni = d_in_pad[b, 0:H]
            hn = aux[t, b]
            hp = h_prev[b]
            dho = dh_t[b]
            dhn = dh_next[b]
            # dL/dh_t through both paths (from above and the recurrence) and its flow, then
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
            if fold:  # the input side: dr and dz from d_h, dn from d_in
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
        # The step's GEMMs while its gradients are in cache (as _common.step_weight_gradients,
        # with the input side split into d_h's r and z blocks and d_in's n block).
        if t > 0:
            matmul_packed(d_h, w_hh_p, dh_next, False, True)  # += (B, 3H) @ (3H, H)
        if t > 0 or not zero_start:
            matmul(d_h, h_prev, dw_hh, True, True)  # += (3H, B) @ (B, H)
        if not fold:
            matmul(d_h[:, 0:H2], x[t], dw_ih[0:H2], True, True)
            matmul(d_in, x[t], dw_ih[H2:G], True, True)
        if need_dx:  # (B, 3H) @ (3H, I), in the same two blocks
            matmul_packed(d_h[:, 0:H2], w_irz_p, dx[t], False, False)
            matmul_packed(d_in, w_in_p, dx[t], False, True)
    if fold:
        dw_ih += dw_ih_t.T
    for k in range(H2):
        db_ih[k] += db_h[k]
    for j in range(H):
        db_ih[H2 + j] += db_n[j]
    for k in range(G):
        db_hh[k] += db_h[k]
    restore_fp_mode(mode)
