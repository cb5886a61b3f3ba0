"""LSTM layer kernels, PyTorch's nn.LSTM equations and gate order (i, f, g, o).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g                        h' = o * tanh(c')

Every cell module shares one kernel signature so the network code is cell-agnostic:
`gates` (T, B, G*H) keeps the activated gates, `aux` (T, B, H) keeps the cell state c,
`hs` (T, B, H) the hidden state. `relu` is unused here.

Per step the recurrent GEMM h_{t-1}·W_hhᵀ writes straight into gates[t] (see _gemm.matmul);
elementwise work then goes row by row (one batch row b at a time), on 1-D slices of the row or
of one gate block: unit-stride slices with 0-based loops are what LLVM vectorises reliably
(indices like row[H + j] or g4[t, b, q, j] made it emit slower code). The backward does every
GEMM of a step right after that step's gate gradients, while they are in cache: dL/dh_{t-1},
dW_hh and, for many inputs, dW_ih and dx; so it keeps one step of gate gradients, not T. Arrays
are taken `unowned` so the row loops make no reference-count calls (see _common.unowned). FMA
contraction is the only fast-math flag: it rounds a·b + c once instead of twice.
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

GATES = 4
# Up to this many inputs, x_t·W_ihᵀ is added in the gate loop (I multiply-adds per gate value,
# from L1) instead of by a GEMM per step, whose K = I would be too short to fill the tiles.
FOLD_INPUTS = 4
FAST = {"fastmath": {"contract"}}


@njit(**KERNEL, **FAST)
def forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, aux, hs, relu, work):
    """Run one LSTM layer over x (T, B, I) from state (h0, c0), filling gates, aux=c and hs."""
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
    x, h0, c0, w_ih, w_hh = unowned(x), unowned(h0), unowned(c0), unowned(w_ih), unowned(w_hh)
    b_ih, b_hh, work = unowned(b_ih), unowned(b_hh), unowned(work)
    gates, aux, hs = unowned(gates), unowned(aux), unowned(hs)
    T, B, I = x.shape
    H = h0.shape[1]
    G = 4 * H
    one = x.dtype.type(1)
    half = x.dtype.type(0.5)
    zero = x.dtype.type(0)
    fold = I <= FOLD_INPUTS
    w_hh_p, at = packed(work, 0, w_hh, True)  # W_hh^T (H, 4H), packed
    if fold:  # W_ih^T (I, 4H), read row by row in the gate loop, or packed for its GEMM
        w_ih_t, at = transposed(work, at, w_ih)
        w_ih_p = w_hh_p
    else:
        w_ih_p, at = packed(work, at, w_ih, True)
        w_ih_t = w_ih
    bias, at = summed_bias(work, at, b_ih, b_hh, G)
    # σ(z) = ½ + ½·tanh(½z): every gate value is shift + scale·tanh(scale·z), with scale ½ and
    # shift ½ (i, f, o) or 1 and 0 (g). Kept per value, so that one loop runs over a row's 4H
    # values: one loop per gate block was 10 % slower at H = 32 and 20-25 % at H = 16, where a
    # block is only a few vectors long, and no faster from H = 64 on.
    scale, at = work[at : at + G], at + G
    shift, at = work[at : at + G], at + G
    for k in range(G):
        in_g = 2 * H <= k < 3 * H
        scale[k] = one if in_g else half
        shift[k] = zero if in_g else half
    zero_start = all_zero(h0)
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]  # (B, H)
        c_prev = c0 if t == 0 else aux[t - 1]  # (B, H)
        g_t = gates[t]  # (B, 4H)
        recur = t > 0 or not zero_start
        # The projections go straight into gates[t]: the recurrent one, after the input one
        # for many inputs (few are added in the gate loop).
        if not fold:
            matmul_packed(x[t], w_ih_p, g_t, False, False)
        if recur:
            matmul_packed(h_prev, w_hh_p, g_t, False, not fold)
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
            # Two copies of the loop rather than a branch inside it, which stopped LLVM
            # vectorising it.
            if fold:
                x0 = x[t, b, 0]
                w0 = w_ih_t[0]
                for k in range(G):
                    s = scale[k]
                    row[k] = shift[k] + s * tanh(s * (row[k] + bias[k] + x0 * w0[k]))
            else:
                for k in range(G):
                    s = scale[k]
                    row[k] = shift[k] + s * tanh(s * (row[k] + bias[k]))
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
    restore_fp_mode(mode)


@njit(**KERNEL, **FAST)
def backward(x, h0, c0, w_ih, w_hh, gates, aux, hs, dh_out, first, dx, dw_ih, dw_hh, db_ih,
             db_hh, grad_flow, relu, need_dx, work):
    """Backpropagate through one LSTM layer.

    dh_out (T, B, H) is dL/dh_t arriving from above (head or next layer), without the recurrence;
    its rows before `first` are zero and not read (the head reads only the last steps, and the
    caller need not clear the others). Writes dx (T, B, I) if need_dx; adds the parameter
    gradients into dw_ih, dw_hh, db_ih, db_hh (so truncated segments accumulate) and mean
    |dL/dh_t| into grad_flow (T,).
    """
    wide_vectors()
    mode = flush_subnormals()  # (restored at the end: see _common.flush_subnormals)
    x, h0, c0, w_ih, w_hh = unowned(x), unowned(h0), unowned(c0), unowned(w_ih), unowned(w_hh)
    gates, aux, hs, dh_out = unowned(gates), unowned(aux), unowned(hs), unowned(dh_out)
    dx, dw_ih, dw_hh, db_ih = unowned(dx), unowned(dw_ih), unowned(dw_hh), unowned(db_ih)
    db_hh, grad_flow, work = unowned(db_hh), unowned(grad_flow), unowned(work)
    T, B, I = x.shape
    H = h0.shape[1]
    G = 4 * H
    one = x.dtype.type(1)
    d_pad, at = carve_padded(work, 0, B, G)  # dL/d(pre-activations) of one step
    d_t = d_pad[:, 0:G]
    dh_next, at = carve(work, at, B, H)  # dL/dh_t through the recurrence from step t+1
    dc_next, at = carve(work, at, B, H)
    dh_next[:] = 0
    dc_next[:] = 0
    # |dL/dh_t| summed per unit for the gradient-flow diagnostic: a per-unit sum keeps the loop
    # free of a scalar float reduction, which LLVM would not vectorise.
    flow = work[at : at + H]
    at += H
    dc_row = work[at : at + H]  # dL/dc_t of one row
    at += H
    db = work[at : at + G]  # bias gradient (the same for b_ih and b_hh), summed while hot
    at += G
    db[:] = 0
    fold = I <= FOLD_INPUTS
    dw_ih_t, at = carve(work, at, I if fold else 0, G)  # dW_ih^T, summed while hot
    dw_ih_t[:] = 0
    w_hh_p, at = packed(work, at, w_hh, False)  # W_hh (4H, H), packed
    w_ih_p, at = packed(work, at, w_ih, False) if need_dx else (w_hh_p, at)
    zero_start = all_zero(h0)
    no_dh, at = carve(work, at, B, H)  # zeros, read for dh_out's rows before `first`
    no_dh[:] = 0
    for t in range(T - 1, -1, -1):
        dh_t = dh_out[t] if t >= first else no_dh
        c_prev = c0 if t == 0 else aux[t - 1]
        g_t = gates[t]
        flow[:] = 0
        for b in range(B):
            row = g_t[b]
            drow = d_pad[b, 0:G]
            gi = row[0:H]
            gf = row[H : 2 * H]
            gg = row[2 * H : 3 * H]
            go = row[3 * H : G]
            di = drow[0:H]
            df = drow[H : 2 * H]
            dg = drow[2 * H : 3 * H]
            do = drow[3 * H : G]
            c = aux[t, b]
            cp = c_prev[b]
            dho = dh_t[b]
            dhn = dh_next[b]
            dcb = dc_next[b]
            # The row's elementwise work streams through L2 (a step's gates and gradients do
            # not fit L1), so it goes in three loops of few streams each, not one of twelve,
            # which measured 15-30 % slower at H = 32-64. The first sums dL/dh_t's two paths
            # (from above and through the recurrence) and the flow, and recomputes tanh(c_t)
            # rather than reading a stored copy.
            for j in range(H):
                d = dho[j] + dhn[j]
                flow[j] += abs(d)
                o = go[j]
                tc = tanh(c[j])
                dc_row[j] = dcb[j] + d * o * (one - tc * tc)
                do[j] = d * tc * o * (one - o)
            for j in range(H):
                i = gi[j]
                g = gg[j]
                dc = dc_row[j]
                di[j] = dc * g * i * (one - i)
                dg[j] = dc * i * (one - g * g)
            for j in range(H):
                f = gf[j]
                dc = dc_row[j]
                df[j] = dc * cp[j] * f * (one - f)
                dcb[j] = dc * f
            for k in range(G):
                db[k] += drow[k]
            if fold:
                for i in range(I):
                    xi = x[t, b, i]
                    acc = dw_ih_t[i]
                    for k in range(G):
                        acc[k] += xi * drow[k]
        grad_flow[t] += flow.sum() / (B * H)
        h_prev = h0 if t == 0 else hs[t - 1]
        step_weight_gradients(d_t, h_prev, x[t], w_hh_p, w_ih_p, dw_hh, dw_ih, dh_next, dx[t],
                              t > 0, t > 0 or not zero_start, fold, need_dx)
    if fold:
        dw_ih += dw_ih_t.T
    for k in range(G):
        db_ih[k] += db[k]
        db_hh[k] += db[k]
    restore_fp_mode(mode)
