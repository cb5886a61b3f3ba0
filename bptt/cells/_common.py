"""Pieces shared by the cell kernels: fast activations, scratch carving, per-step GEMM helpers,
the floating-point mode (subnormals flushed to zero).

Every kernel is compiled with error_model="numpy": Python's error model checks each division for
a zero divisor, and that branch stops LLVM from vectorising the gate loops. With numpy's model a
division by zero gives inf/nan, which the training step catches as a non-finite loss.

float32 kernels use a branch-free rational tanh that LLVM vectorises, and sigmoids through it
(libm's scalar expf/tanhf made the gate loops several times slower than the GEMMs); float64
kernels use libm, so gradient checks run at full precision.
"""

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._gemm import KERNEL, NR, matmul, matmul_packed, pack, packed_shape

# KERNEL: nogil because batch chunks run in parallel Python threads (see parallel.py).
__all__ = ["KERNEL", "matmul", "matmul_packed"]


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
    malloc's mmap threshold were mapped and faulted in afresh on every call. The forward holds
    W_hh^T, W_ih^T, summed biases and (the LSTM's) gate scales and shifts; the backward one
    step's gate gradients (two sets for the GRU), dL/dh and dL/dc rows and the bias and
    input-weight sums.
    """
    forward = gate_width * (hidden + inputs + 3) + NR * (hidden + inputs) + hidden
    backward = (batch * (2 * gate_width + 4 * hidden + 2 * PAD) + 3 * hidden
                + gate_width * (hidden + 2 * inputs + 2 * NR + 2))
    return max(forward, backward)


@njit(inline="always", **KERNEL)
def carve(work, at, rows, cols):
    """A (rows, cols) view of work[at:], and the offset just past it."""
    return work[at : at + rows * cols].reshape(rows, cols), at + rows * cols


# Elements added to the row stride of a padded carve (one 64-byte line of float32).
PAD = 16


@njit(inline="always", **KERNEL)
def carve_padded(work, at, rows, cols):
    """(a (rows, cols + PAD) carve whose first cols columns are the array wanted, next offset):
    rows PAD elements further apart than their length. One step's gate gradients are the A
    operand of dW_hh += d_tᵀ·h_{t-1}, read down their columns: with rows 4H floats apart (a
    power of two) every row falls in the same L1 cache set, and at H = 256 that GEMM ran at
    about 170 instead of 207 GFLOP/s. Take rows as padded[b, 0:cols] (Numba types that slice
    as contiguous, and its loops vectorise; padded[:, 0:cols][b] would not be)."""
    return carve(work, at, rows, cols + PAD)


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
def wide_vectors(typingctx):
    """Let LLVM vectorise the calling kernel's loops with the CPU's widest vectors.

    On AVX-512 CPUs LLVM's tuning prefers 256-bit vectors for the loops it vectorises itself
    (to spare the clock on older Xeons), so the gate loops ran 8 float32 lanes wide while the
    GEMM's tiles, written with explicit vectors, ran 16. The function attribute
    prefer-vector-width = 512 lifts that for this kernel only (clang's -mprefer-vector-width);
    measured on the engine's steps it took 2-12 % off the forward kernels. llvmlite knows only
    enum attributes by name, so the string attribute goes into its set directly."""

    def codegen(context, builder, sig, args):
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


# MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits
_FLUSH_SUBNORMALS = 0x8040
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _mxcsr(builder, name: str, slot) -> None:
    """Call llvm.x86.sse.stmxcsr or ldmxcsr on the 32-bit slot."""
    byte_pointer = ir.IntType(8).as_pointer()
    function = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer]), name)
    builder.call(function, [builder.bitcast(slot, byte_pointer)])


@intrinsic
def flush_subnormals(typingctx):
    """Treat subnormal floats as zero in this thread until restore_fp_mode(the value returned).

    Gradients fading through a long window reach values below float32's smallest normal
    (1.2e-38), and every operation on such a subnormal takes a microcode assist of a hundred
    cycles or more. On the weekly CO2 series (input windows of 208 steps) a fifth of the LSTM
    backward calls of a default fit ran 10 to 25 times their median time; a backward fed
    gradients of 1e-30 ran 60 times slower than one fed gradients of 1. Flushed to zero, such
    values change nothing a float32 network can represent of its gradient. The mode is the
    thread's (MXCSR), so each kernel sets it on entry and restores it before it returns:
    numpy in the caller keeps IEEE arithmetic. A no-op off x86."""

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        if not _X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        _mxcsr(builder, "llvm.x86.sse.stmxcsr", slot)
        saved = builder.load(slot)
        builder.store(builder.or_(saved, ir.Constant(i32, _FLUSH_SUBNORMALS)), slot)
        _mxcsr(builder, "llvm.x86.sse.ldmxcsr", slot)
        return saved

    return types.uint32(), codegen


@intrinsic
def restore_fp_mode(typingctx, saved):
    """Put back the floating-point mode flush_subnormals returned."""

    def codegen(context, builder, sig, args):
        if _X86:
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.none(saved), codegen


@intrinsic
def unowned(typingctx, a):
    """The array `a` as a view that holds no reference to its memory (a null meminfo).

    A view a kernel takes (a row, a gate block) increfs its array's memory through a call to
    NRT_incref, and decrefs it when it dies. Numba's pass that prunes those pairs gives up once
    more than about three vectorised loops lie between them, and the calls left in a row loop
    cost more than the loops' arithmetic at small H (each call also spills and reloads the
    vector registers holding the tanh constants). Views of an unowned array carry the null
    reference, whose reference-count calls Numba drops.

    Why this is safe, and must stay so: a kernel calls unowned only on its own arguments, at
    its top. Its caller (Python) holds a reference to every argument until the call returns,
    so their memory outlives the kernel; and the unowned arrays and every view taken of them
    are the kernel's locals: no kernel returns one, stores one in a global or a container, or
    hands one to code that keeps it. So none outlives the call that made it. (The GEMM gets
    raw data addresses, _gemm.address, under the same rule.)
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




@njit(inline="always", **KERNEL)
def transposed(work, at, w):
    """(w.T as a contiguous copy carved from work at `at`, next free offset). The forward's
    GEMMs read weights as B operands, whose rows must run along the gates: W_hh^T and W_ih^T.
    Copied once per call, for T steps of use."""
    rows, cols = w.shape
    w_t, at = carve(work, at, cols, rows)
    for i in range(rows):
        for j in range(cols):
            w_t[j, i] = w[i, j]
    return w_t, at


@njit(inline="always", **KERNEL)
def packed(work, at, b, transposed):
    """(B packed into panels for matmul_packed, carved from work at `at`; next free offset).
    B is b, or b.T if `transposed`. Weights are packed once per call, for T steps of use."""
    k = b.shape[1] if transposed else b.shape[0]
    n = b.shape[0] if transposed else b.shape[1]
    count, k, width = packed_shape(work.dtype.type(0), k, n)
    size = count * k * width
    panels = work[at : at + size].reshape(count, k, width)
    pack(b, panels, transposed)
    return panels, at + size


@njit(inline="always", **KERNEL)
def summed_bias(work, at, b_ih, b_hh, n):
    """(b_ih[:n] + b_hh[:n] carved from work at `at`, next free offset): the gate biases that
    are only ever added together, summed once per call rather than once per step."""
    bias = work[at : at + n]
    for k in range(n):
        bias[k] = b_ih[k] + b_hh[k]
    return bias, at + n


@njit(inline="always", **KERNEL)
def step_weight_gradients(d_t, h_prev, x_t, w_hh_p, w_ih_p, dw_hh, dw_ih, dh_next, dx_t,
                          recurrent, read_h, fold, need_dx):
    """The GEMMs of one backward step, while d_t (B, G) = dL/d(pre-activations) is hot:
    dL/dh_{t-1} = d_t @ W_hh into dh_next (when `recurrent`: there is a step before), and
    dW_hh += d_t^T @ h_{t-1} (when `read_h`: h_{t-1} is not the all-zero initial state); for inputs
    that the gate loops do not fold, dW_ih += d_t^T @ x_t; dx_t = d_t @ W_ih when wanted. W_hh
    and W_ih come packed (w_hh_p, w_ih_p: see packed)."""
    if recurrent:
        matmul_packed(d_t, w_hh_p, dh_next, False, False)  # (B, G) @ (G, H)
    if read_h:
        matmul(d_t, h_prev, dw_hh, True, True)  # (G, B) @ (B, H)
    if not fold:
        matmul(d_t, x_t, dw_ih, True, True)  # (G, B) @ (B, I)
    if need_dx:
        matmul_packed(d_t, w_ih_p, dx_t, False, False)  # (B, G) @ (G, I)
