"""Pieces shared by the cell kernels: fast activations, BLAS GEMM into views, scratch carving.

Every kernel is compiled with error_model="numpy": Python's error model checks each division for
a zero divisor, and that branch stops LLVM from vectorising the gate loops. With numpy's model a
division by zero gives inf/nan, which the training step catches as a non-finite loss.

float32 kernels use a branch-free rational tanh that LLVM vectorises, and sigmoids through it
(libm's scalar expf/tanhf made the gate loops several times slower than the GEMMs); float64
kernels use libm, so gradient checks run at full precision.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.linalg import ensure_blas

# nogil: batch chunks run in parallel Python threads (see parallel.py).
KERNEL = {"cache": True, "error_model": "numpy", "nogil": True}


def tanh(x):
    """tanh(x); in float32 kernels a vectorisable rational fit, max abs error 3.5e-7."""
    return np.tanh(x)


@overload(tanh, inline="always")
def _tanh(x):
    if x != types.float32:
        return lambda x: np.tanh(x)

    def tanh32(x):
        # Odd/even minimax rational fit on [-9, 9] (as in Eigen's fast tanh); |tanh| rounds
        # to 1 in float32 beyond 9.
        x = min(max(x, np.float32(-9)), np.float32(9))
        x2 = x * x
        p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
        p = x2 * p + np.float32(-8.60467152213735e-11)
        p = x2 * p + np.float32(5.12229709037114e-08)
        p = x2 * p + np.float32(1.48572235717979e-05)
        p = x2 * p + np.float32(6.37261928875436e-04)
        p = x2 * p + np.float32(4.89352455891786e-03)
        q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
        q = x2 * q + np.float32(2.26843463243900e-03)
        q = x2 * q + np.float32(4.89352518554385e-03)
        return x * p / q

    return tanh32


def work_size(batch: int, hidden: int, gate_width: int, inputs: int) -> int:
    """Elements of the `work` scratch a forward or backward kernel carves its buffers from.

    Kernels take their per-call buffers from `work` rather than allocating them: buffers above
    malloc's mmap threshold were mapped and faulted in afresh on every call.
    """
    forward = batch * gate_width + gate_width * hidden
    backward = 6 * batch * hidden + hidden + gate_width * (inputs + hidden + 1)
    return max(forward, backward)


@njit(inline="always", **KERNEL)
def carve(work, at, rows, cols):
    """A (rows, cols) view of work[at:], and the offset just past it."""
    return work[at : at + rows * cols].reshape(rows, cols), at + rows * cols


@njit(inline="always", **KERNEL)
def total_dh(dh_out_t, dh_next, dh, flow):
    """dh = dL/dh_t through both paths (from above and through the recurrence); returns its mean
    absolute value, the gradient-flow diagnostic. `flow` (H,) is scratch: summing per unit keeps
    the loop free of a scalar float reduction, which LLVM would not vectorise."""
    B, H = dh.shape
    for b in range(B):
        for j in range(H):
            dh[b, j] = dh_out_t[b, j] + dh_next[b, j]
    flow[:] = 0
    for b in range(B):
        for j in range(H):
            flow[j] += abs(dh[b, j])
    return flow.sum() / (B * H)


@intrinsic
def _xxgemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major c = alpha·op(a)·op(b) + beta·c through Numba's own BLAS entry point, the
    `numba_xxgemm` that np.dot calls (SciPy's sgemm/dgemm); returns nonzero if BLAS is missing."""
    if not (isinstance(c, types.Array) and a.dtype == b.dtype == c.dtype
            and c.dtype in (types.float32, types.float64)):
        return None
    sig = types.intc(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        ensure_blas()
        tys = sig.args
        dtype = tys[11].dtype
        char = ir.IntType(8)
        intp = context.get_value_type(types.intp)
        voidp = cgutils.voidptr_t
        fnty = ir.FunctionType(ir.IntType(32), [char, char, char, intp, intp, intp, voidp, voidp,
                                                intp, voidp, intp, voidp, voidp, intp])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")

        def integer(i):
            return context.cast(builder, args[i], tys[i], types.intp)

        def scalar(i):  # BLAS takes alpha and beta by pointer
            value = context.cast(builder, args[i], tys[i], dtype)
            return builder.bitcast(cgutils.alloca_once_value(builder, value), voidp)

        def data(i):
            array = context.make_array(tys[i])(context, builder, args[i])
            return builder.bitcast(array.data, voidp)

        kind = ir.Constant(char, ord("s" if dtype == types.float32 else "d"))
        return builder.call(fn, (kind, builder.trunc(integer(0), char),
                                 builder.trunc(integer(1), char), integer(2), integer(3),
                                 integer(4), scalar(5), data(6), integer(7), data(8), integer(9),
                                 scalar(10), data(11), integer(12)))

    return sig, codegen


@njit(inline="always", **KERNEL)
def _leading(a):
    """BLAS leading dimension of a row-major 2-D array or view: its row stride in elements."""
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError("gemm needs unit-stride rows")
    if a.shape[0] > 1:
        return a.strides[0] // a.itemsize
    return max(a.shape[1], 1)  # a single row: BLAS checks only that ld >= columns


@njit(inline="always", **KERNEL)
def gemm(a, b, c, trans_a, trans_b, beta):
    """c = op(a) @ op(b) + beta·c in place (op(a) = a.T if trans_a), for 2-D arrays or views with
    unit-stride rows and any row stride. Unlike np.dot it writes into views, accumulates with
    beta = 1 and never copies an operand. BLAS is column-major: the row-major c = op(a)·op(b)
    is the column-major cᵀ = op(b)ᵀ·op(a)ᵀ, so b goes first."""
    k = a.shape[0] if trans_a else a.shape[1]
    status = _xxgemm(84 if trans_b else 78, 84 if trans_a else 78,  # 'T' or 'N'
                     c.shape[1], c.shape[0], k, 1.0, b, _leading(b), a, _leading(a), beta, c,
                     _leading(c))
    if status != 0:
        raise RuntimeError("no BLAS gemm (np.dot's, from SciPy) could be loaded")


@njit(inline="always", **KERNEL)
def all_zero(a):
    """Whether the 2-D array a is all zeros (as a zero initial state is): a GEMM with it can be
    skipped. Stops at the first nonzero, so it costs little either way."""
    for r in range(a.shape[0]):
        for k in range(a.shape[1]):
            if a[r, k] != 0:
                return False
    return True


@intrinsic
def unowned(typingctx, a):
    """The array `a` as a view that holds no reference to its memory (a null meminfo).

    A view a kernel takes (a row, a gate block) increfs its array's memory through a call to
    NRT_incref, and decrefs it when it dies. Numba's pass that prunes those pairs gives up once
    more than about three vectorised loops lie between them, and the calls left in a row loop
    cost more than the loops' arithmetic at small H (each call also spills and reloads the
    vector registers holding the tanh constants). Views of an unowned array carry the null
    reference, whose reference-count calls Numba drops. Only for arrays that the caller keeps
    alive for the whole kernel call (its arguments); never return one from a kernel.
    """
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = context.make_array(a)(context, builder, args[0])
        out = context.make_array(a)(context, builder)
        for field in ("data", "shape", "strides", "nitems", "itemsize"):
            setattr(out, field, getattr(src, field))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()

    return a(a), codegen


@njit(**KERNEL)
def weight_gradients(dgates, x, h0, hs, w_ih, dw_ih_t, db, fold, need_dx, dw_ih, dw_hh, db_ih,
                     db_hh, dx):
    """After a backward pass over all steps: dW_hh as one accumulating GEMM (step 0 reads the
    initial state, skipped when it is zero), dW_ih from the gate loops' running sum (fold) or
    one GEMM, both biases from the running sum db, and dx when wanted. For cells whose gate
    gradients are the same on the input and the hidden side (RNN, LSTM)."""
    T, B, G = dgates.shape
    H, I = hs.shape[2], x.shape[2]
    d2 = dgates.reshape(T * B, G)
    if not all_zero(h0):
        gemm(dgates[0], h0, dw_hh, True, False, 1.0)
    if T > 1:
        gemm(d2[B:], hs[: T - 1].reshape((T - 1) * B, H), dw_hh, True, False, 1.0)
    if fold:
        dw_ih += dw_ih_t.T
    else:
        gemm(d2, x.reshape(T * B, I), dw_ih, True, False, 1.0)
    for k in range(G):
        db_ih[k] += db[k]
        db_hh[k] += db[k]
    if need_dx:
        gemm(d2, w_ih, dx.reshape(T * B, I), False, False, 0.0)  # (T*B, G) @ (G, I)


@njit(inline="always", **KERNEL)
def hidden_weights(work, w_hh, direct):
    """(W_hh^T as a contiguous copy carved from work, next free offset). Per-step GEMMs against
    that copy ran faster up to H = 128; from about DIRECT_HIDDEN units OpenBLAS is faster
    reading W_hh itself transposed, so then nothing is copied (an empty carve)."""
    G, H = w_hh.shape
    w_hh_t, at = carve(work, 0, 0 if direct else H, G)
    if not direct:
        w_hh_t[:] = w_hh.T
    return w_hh_t, at


@njit(inline="always", **KERNEL)
def summed_bias(work, at, b_ih, b_hh, n):
    """(b_ih[:n] + b_hh[:n] carved from work at `at`, next free offset): the gate biases that
    are only ever added together, summed once per call rather than once per step."""
    bias = work[at : at + n]
    for k in range(n):
        bias[k] = b_ih[k] + b_hh[k]
    return bias, at + n


@njit(inline="always", **KERNEL)
def input_side(work, at, x, w_ih, gates, fold):
    """The forward's input projection, set up once per call; returns (W_ih^T, next offset).
    fold (at most FOLD_INPUTS inputs): W_ih^T is copied into work for the gate loops, which add
    x_t·W_ihᵀ themselves. Otherwise every step's projection is one GEMM, (T*B, I) @ (I, G),
    written into gates, and the copy is empty."""
    T, B, I = x.shape
    G = w_ih.shape[0]
    w_ih_t, at = carve(work, at, I if fold else 0, G)
    if fold:
        w_ih_t[:] = w_ih.T
    else:
        gemm(x.reshape(T * B, I), w_ih, gates.reshape(T * B, G), False, True, 0.0)
    return w_ih_t, at


@njit(inline="always", **KERNEL)
def recurrent_gemm(h, w_hh, w_hh_t, lo, hi, out, direct, beta):
    """out = h @ W_hh[lo:hi].T + beta·out, from W_hh itself or its copy (see hidden_weights)."""
    if direct:
        gemm(h, w_hh[lo:hi], out, False, True, beta)
    else:
        gemm(h, w_hh_t[:, lo:hi], out, False, False, beta)
