"""The kernels' own matrix product: a register-blocked micro-kernel that Numba generates.

The per-step GEMMs of a recurrent layer are small (batch × hidden × 4·hidden). OpenBLAS, as
numpy and SciPy ship it, spends a fixed cost on every call (argument checks, packing both
operands) and on this machine runs its Haswell (AVX2) kernels on an AVX-512 core, so at these
shapes it reached about half the core's FMA rate. The micro-kernel here keeps an MR × NR tile
of C in vector registers, and per step of k broadcasts MR values of A and multiplies them with
NR/VL vectors of a row of B: MR·NR/VL independent fused multiply-adds, enough to keep both FMA
pipes busy. It reads A and B where they lie (any row stride; A also transposed) and writes (or
adds into) views in place; a B that is used for many products (a weight matrix, T steps) is
packed once into contiguous panels of NR columns first (`pack`, `matmul_packed`).

`tile` emits that loop directly as LLVM vector IR through llvmlite: the only way to have Numba
keep a tile of accumulators in registers (a loop over a local array is not promoted). Vectors
are VL lanes wide, 16 float32 on a CPU with AVX-512 (8 otherwise), and LLVM compiles them for
whatever the target CPU is. Columns past the edge of C use masked loads and stores, rows past it
re-read the last row and are not stored, so any shape works with one compiled tile (a second,
one vector wide, serves narrow panels: see MR_NARROW).

`gemm` drives the tiles over a whole product and is compiled once per dtype: it takes data
addresses, not arrays, so views of every layout share one compilation. Its operands must stay
alive for the call: callers pass views of their own arguments or scratch, which they hold.
Nothing here calls BLAS or Numba's private BLAS bindings.

With BPTT_REFERENCE_GEMM=1 in the environment when bptt is imported, `matmul` computes every
product with np.dot instead (allocating, slow): the reference that tests compare the fast path
against. The cells' cache stamp includes the setting, so switching it recompiles.
"""

import os

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic, overload

REFERENCE = os.environ.get("BPTT_REFERENCE_GEMM", "") == "1"

KERNEL = {"cache": True, "error_model": "numpy", "nogil": True}


def _target_features() -> str:
    """The CPU features Numba compiles for (NUMBA_CPU_FEATURES, else the host's)."""
    if config.CPU_FEATURES:
        return config.CPU_FEATURES
    from llvmlite import binding

    return binding.get_host_cpu_features().flatten()


AVX512 = "+avx512f" in _target_features()
VL = 16 if AVX512 else 8  # float32 lanes per vector register; float64 has half as many
# The register tile: MR rows of A × NV vectors of B's row. AVX-512 has 32 vector registers:
# 8 × 2 uses 16 accumulators, 2 for B and 1 for the broadcast. With 16 registers (AVX2), 6 × 2.
# MR = 8 divides the usual batches (64, or 32 per thread on two threads) and NR = 2·VL = 32
# float32 the usual hidden sizes (32 to 256); other sizes leave one tile row or panel partly
# used per product. Measured at the per-step shapes, 8 × 2 ran as fast as 6 × 4 and 4 × 4.
MR = 8 if AVX512 else 4
NV = 2
# A panel of at most one vector's columns (an output of few values, a small hidden size, the
# last columns of a product) gets a tile one vector wide and twice as tall: the 8 × 2 tile
# would leave half its accumulators or more on padding. Same sums in the same order.
MR_NARROW = 2 * MR


@intrinsic
def address(typingctx, a):
    """The data address of array `a` as an integer. No reference is taken: the address is valid
    only while the caller holds `a`, and is used only within the call it is passed to."""
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, context.get_value_type(types.intp))

    return types.intp(a), codegen


@intrinsic
def plain(typingctx, value):
    """`value` typed as a plain integer or boolean, not as the literal it may be at a call site.
    gemm is a function of its own (not inlined), and Numba compiles a function once per distinct
    argument types: passing constants such as 1 or False as they are made it compile gemm for
    each combination of them (8 versions instead of 2)."""
    plain_type = types.unliteral(value)

    def codegen(context, builder, sig, args):
        return context.cast(builder, args[0], sig.args[0], sig.return_type)

    return plain_type(value), codegen


@intrinsic
def any_layout(typingctx, a):
    """Array `a` typed with layout "A" (any strides) rather than "C" or "F": the same array.

    A function called with a C-contiguous array and with a strided view of the same dtype and
    rank is compiled twice, once per layout. The matrix products take rows and views of both
    kinds; passed through any_layout (and their flags through `plain`) they are compiled once
    per dtype, which took about a second off each dtype's cold compile (5 versions of
    matmul_packed and 1 of matmul for float32 before)."""
    if not isinstance(a, types.Array):
        return None
    general = a.copy(layout="A")

    def codegen(context, builder, sig, args):
        return impl_ret_borrowed(context, builder, sig.return_type, args[0])

    return general(a), codegen


def _splat(builder, value, vector):
    """A vector with every lane `value`."""
    lanes = vector.count
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                 ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(one, one, mask)


@intrinsic
def tile(typingctx, mr, nv, witness, k, a, a_rs, a_ks, b, b_ks, c, c_rs, m, n, accumulate):
    """C[r, 0:n] (+)= Σ_k A[r·a_rs + k·a_ks] · B[k·b_ks + 0:n] for rows r < m of one MR × NR tile.

    a, b and c are data addresses; strides are in elements; `witness` is a scalar of the element
    type (float32 or float64); mr and nv must be literals (MR ≤ mr rows, nv vectors wide).
    Requires 1 ≤ m ≤ mr and 1 ≤ n ≤ nv·lanes; k may be 0.
    """
    if not (isinstance(mr, types.IntegerLiteral) and isinstance(nv, types.IntegerLiteral)):
        return None
    if witness not in (types.float32, types.float64):
        return None
    rows, vectors = mr.literal_value, nv.literal_value
    sig = types.void(mr, nv, witness, k, a, a_rs, a_ks, b, b_ks, c, c_rs, m, n, accumulate)

    def codegen(context, builder, sig, args):
        intp = context.get_value_type(types.intp)
        (k, a, a_rs, a_ks, b, b_ks, c, c_rs, m, n) = (
            context.cast(builder, value, ty, types.intp)
            for value, ty in zip(args[3:13], sig.args[3:13], strict=True))
        accumulate = context.cast(builder, args[13], sig.args[13], types.boolean)
        f32 = witness == types.float32
        scalar = ir.FloatType() if f32 else ir.DoubleType()
        lanes = VL if f32 else VL // 2
        vector = ir.VectorType(scalar, lanes)
        size = 4 if f32 else 8
        ptr = scalar.as_pointer()
        vptr = vector.as_pointer()
        bits = ir.VectorType(ir.IntType(1), lanes)
        i32 = ir.IntType(32)
        name = f"v{lanes}f{32 if f32 else 64}"
        module = builder.module
        fma = cgutils.get_or_insert_function(
            module, ir.FunctionType(vector, [vector, vector, vector]), f"llvm.fma.{name}")
        load = cgutils.get_or_insert_function(
            module, ir.FunctionType(vector, [vptr, i32, bits, vector]),
            f"llvm.masked.load.{name}.p0")
        store = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [vector, vptr, i32, bits]),
            f"llvm.masked.store.{name}.p0")
        align = ir.Constant(i32, size)

        def const(value):
            return ir.Constant(intp, value)

        def element(base, index):  # pointer to element `index` of the array at address base
            return builder.inttoptr(builder.add(base, builder.mul(index, const(size))), ptr)

        # Rows past m read row m - 1 (valid memory) and are never stored.
        last = builder.sub(m, const(1))
        a_rows = [builder.mul(builder.select(builder.icmp_signed("<", const(r), m), const(r),
                                             last), a_rs) for r in range(rows)]
        lane_ids = ir.Constant(ir.VectorType(intp, lanes), [const(x) for x in range(lanes)])

        def edge_masks():  # lanes < n of each vector; made where used: with AVX2 a mask takes a
            # vector register, and masks live across the whole-tile loop made it spill
            return [builder.icmp_signed("<", lane_ids,
                                        _splat(builder, builder.sub(n, const(v * lanes)),
                                               ir.VectorType(intp, lanes)))
                    for v in range(vectors)]

        zero = ir.Constant(vector, None)
        width = const(vectors * lanes)
        full = builder.icmp_signed("==", n, width)

        def vector_at(base, index):
            return builder.bitcast(element(base, index), vptr)

        def load_b(where, v, masks):
            if masks:
                return builder.call(load, [where, align, masks[v], zero])
            return builder.load(where, align=size)

        # Two copies of the k loop: plain vector loads for a whole tile, masked ones for the
        # last panel of a product whose width NR does not divide. (A masked load costs as
        # much as a plain one with AVX-512, but on AVX2 CPUs it is a slower instruction.)
        entry = builder.block
        done = builder.append_basic_block("tile.done")
        ends = []
        sums_of = []
        start = builder.append_basic_block("tile.start")
        heads = [builder.append_basic_block(f"tile.head.{kind}") for kind in ("full", "edge")]
        loops = [builder.append_basic_block(f"tile.loop.{kind}") for kind in ("full", "edge")]
        builder.cbranch(builder.icmp_signed(">", k, const(0)), start, done)
        builder.position_at_end(start)
        builder.cbranch(full, heads[0], heads[1])
        for head, loop, masked in zip(heads, loops, (False, True), strict=True):
            builder.position_at_end(head)
            masks = edge_masks() if masked else None
            builder.branch(loop)
            builder.position_at_end(loop)
            step = builder.phi(intp)
            step.add_incoming(const(0), head)
            accs = []
            for _ in range(rows * vectors):
                acc = builder.phi(vector)
                acc.add_incoming(zero, head)
                accs.append(acc)
            b_row = builder.mul(step, b_ks)
            b_vectors = [load_b(vector_at(b, builder.add(b_row, const(v * lanes))), v, masks)
                         for v in range(vectors)]
            a_col = builder.mul(step, a_ks)
            sums = []
            for r in range(rows):
                value = builder.load(element(a, builder.add(a_rows[r], a_col)))
                broadcast = _splat(builder, value, vector)
                for v in range(vectors):
                    sums.append(builder.call(fma, [broadcast, b_vectors[v],
                                                   accs[r * vectors + v]]))
            following = builder.add(step, const(1))
            body_end = builder.block
            step.add_incoming(following, body_end)
            for acc, total in zip(accs, sums, strict=True):
                acc.add_incoming(total, body_end)
            builder.cbranch(builder.icmp_signed("<", following, k), loop, done)
            ends.append(body_end)
            sums_of.append(sums)

        builder.position_at_end(done)
        results = []
        for r in range(rows * vectors):
            result = builder.phi(vector)
            result.add_incoming(zero, entry)
            for body_end, sums in zip(ends, sums_of, strict=True):
                result.add_incoming(sums[r], body_end)
            results.append(result)
        with builder.if_else(full) as (whole, edge):
            for block, masked in ((whole, False), (edge, True)):
                with block:
                    masks = edge_masks() if masked else None
                    for r in range(rows):
                        with builder.if_then(builder.icmp_signed("<", const(r), m)):
                            c_row = builder.mul(const(r), c_rs)
                            for v in range(vectors):
                                where = vector_at(c, builder.add(c_row, const(v * lanes)))
                                old = load_b(where, v, masks)
                                value = results[r * vectors + v]
                                total = builder.select(accumulate, builder.fadd(old, value),
                                                       value)
                                if masks:
                                    builder.call(store, [total, where, align, masks[v]])
                                else:
                                    builder.store(total, where, align=size)
        return context.get_dummy_value()

    return sig, codegen


def _size(witness):
    """Bytes of one element of the witness's type."""


@overload(_size, inline="always")
def _size_impl(witness):
    size = 4 if witness == types.float32 else 8
    return lambda witness: size


NR = NV * VL  # float32 columns of a tile (float64: half as many)


def panel_width(witness):
    """Columns of one tile, NR, for the witness's type: the width of a packed panel."""


@overload(panel_width, inline="always")
def _panel_width_impl(witness):
    width = NR if witness == types.float32 else NR // 2
    return lambda witness: width


@njit(**KERNEL)
def gemm(witness, m, n, k, a, a_rs, a_ks, b, b_ks, b_ps, c, ldc, accumulate):
    """C (m × n, row stride ldc) (+)= A · B over data addresses: A[i, p] at a + i·a_rs + p·a_ks;
    B's panel of columns [j, j + NR) starts at b + (j / NR)·b_ps, its rows b_ks apart (b_ps =
    NR, b_ks = row stride for a row-major B; b_ps = k·NR, b_ks = NR for packed panels). Column
    panels outside, row tiles inside, so one panel of B stays in L1 while every row tile passes
    over it."""
    size = _size(witness)
    width = panel_width(witness)
    for j in range(0, n, width):
        cols = min(width, n - j)
        panel = b + (j // width) * b_ps * size
        if cols <= width // NV:
            for i in range(0, m, MR_NARROW):
                tile(MR_NARROW, 1, witness, k, a + i * a_rs * size, a_rs, a_ks, panel, b_ks,
                     c + (i * ldc + j) * size, ldc, min(MR_NARROW, m - i), cols, accumulate)
        else:
            for i in range(0, m, MR):
                tile(MR, NV, witness, k, a + i * a_rs * size, a_rs, a_ks, panel, b_ks,
                     c + (i * ldc + j) * size, ldc, min(MR, m - i), cols, accumulate)


@njit(inline="always", **KERNEL)
def _leading(a):
    """Row stride in elements of a 2-D array or view whose rows are unit-stride."""
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError("matmul needs unit-stride rows")
    if a.shape[0] > 1:
        return a.strides[0] // a.itemsize
    return max(a.shape[1], 1)


@njit(inline="always", **KERNEL)
def _reference(a, b, c, trans_a, accumulate):
    """matmul through np.dot on contiguous copies: the plain reference for the fast path."""
    left = np.ascontiguousarray(a.T) if trans_a else np.ascontiguousarray(a)
    product = np.dot(left, np.ascontiguousarray(b))
    if accumulate:
        c += product
    else:
        c[:] = product


@njit(inline="always", **KERNEL)
def _empty_product(c, k, accumulate):
    """True when c (m × n) already is what an m × k by k × n product leaves, as it is when any
    of m, n, k is zero (and c is zeroed for k = 0 unless accumulating): no GEMM to run."""
    if c.shape[0] == 0 or c.shape[1] == 0:
        return True
    if k == 0:
        if not accumulate:
            c[:] = 0
        return True
    return False


@njit(inline="always", **KERNEL)
def matmul(a, b, c, trans_a, accumulate):
    """c = op(a) @ b, or c += op(a) @ b if accumulate, in place; op(a) = a.T if trans_a.

    a, b and c are 2-D arrays or views with unit-stride rows and any row stride (a and b must
    not overlap c). Unlike np.dot it writes into views, accumulates, and never copies.
    """
    _matmul(any_layout(a), any_layout(b), any_layout(c), plain(trans_a), plain(accumulate))


@njit(**KERNEL)
def _matmul(a, b, c, trans_a, accumulate):
    """matmul, compiled once per dtype (see any_layout)."""
    m, n = c.shape
    k = b.shape[0]
    if (a.shape[1] if trans_a else a.shape[0]) != m or b.shape[1] != n or (
            (a.shape[0] if trans_a else a.shape[1]) != k):
        raise ValueError("matmul: shapes do not match")
    if _empty_product(c, k, accumulate):
        return
    if REFERENCE:
        _reference(a, b, c, trans_a, accumulate)
        return
    lda = _leading(a)
    a_rs, a_ks = (1, lda) if trans_a else (lda, 1)
    gemm(c.dtype.type(0), m, n, k, address(a), plain(a_rs), plain(a_ks), address(b), _leading(b),
         plain(panel_width(c.dtype.type(0))), address(c), _leading(c), plain(accumulate))


@njit(inline="always", **KERNEL)
def packed_shape(witness, k, n):
    """Shape (panels, k, NR) of B (k × n) packed into panels of NR columns for `witness`'s type."""
    width = panel_width(witness)
    return (n + width - 1) // width, k, width


@njit(inline="always", **KERNEL)
def pack(b, panels, transposed):
    """Copy B into `panels` (from packed_shape), zero past its last column: panel p holds
    columns [p·NR, (p + 1)·NR) of B, row after row, so a tile reads it as one contiguous run.
    B is b (k × n), or b.T if `transposed` (b is then n × k, e.g. W_hh for B = W_hh^T).

    A weight matrix read in place has rows a power of two apart (4H floats for W_hh^T): every
    row of a panel then falls in the same L1 cache set, the panel does not stay in L1 between
    row tiles, and at H = 256 the tiles ran at about 165 instead of 210 GFLOP/s."""
    count, k, width = panels.shape
    n = b.shape[0] if transposed else b.shape[1]
    if count:  # no panels for n = 0 (and nothing to pack)
        panels[count - 1] = 0
    for p in range(count):
        lo = p * width
        hi = min(lo + width, n)
        if transposed:
            for j in range(lo, hi):
                row = b[j]
                for q in range(k):
                    panels[p, q, j - lo] = row[q]
        else:
            for q in range(k):
                src = b[q, lo:hi]
                dst = panels[p, q]
                for j in range(hi - lo):
                    dst[j] = src[j]


@njit(inline="always", **KERNEL)
def matmul_packed(a, panels, c, trans_a, accumulate):
    """matmul(a, B, c, trans_a, accumulate) for B (k × c.shape[1]) packed by `pack`."""
    _matmul_packed(any_layout(a), panels, any_layout(c), plain(trans_a), plain(accumulate))


@njit(**KERNEL)
def _matmul_packed(a, panels, c, trans_a, accumulate):
    """matmul_packed, compiled once per dtype (see any_layout)."""
    m, n = c.shape
    count, k, width = panels.shape
    if (a.shape[1] if trans_a else a.shape[0]) != m or n > count * width or (
            (a.shape[0] if trans_a else a.shape[1]) != k):
        raise ValueError("matmul_packed: shapes do not match")
    if _empty_product(c, k, accumulate):
        return
    if REFERENCE:
        dense = np.empty((k, count * width), c.dtype)
        for p in range(count):
            dense[:, p * width : (p + 1) * width] = panels[p]
        _reference(a, dense[:, :n], c, trans_a, accumulate)
        return
    lda = _leading(a)
    a_rs, a_ks = (1, lda) if trans_a else (lda, 1)
    gemm(c.dtype.type(0), m, n, k, address(a), plain(a_rs), plain(a_ks), address(panels),
         plain(width), k * width, address(c), _leading(c), plain(accumulate))


@njit(**KERNEL)
def blocked_matmul(a, b, c, panels):
    """c = a @ b for large C-contiguous float32 or float64 matrices, blocked for the caches: B
    in chunks of KC rows packed into panels of NR columns that stay in L2, and MR rows of A
    (KC long) kept in L1 while they pass over every panel. The kernels never need it (their
    products are small);
    benchmarks/kernels.py measures the engine's GEMM peak with it. `panels` is scratch of
    packed_shape(·, KC, NC), which sets the block sizes."""
    m, k = a.shape
    n = b.shape[1]
    count, kc_max, width = panels.shape
    nc_max = count * width
    size = a.itemsize
    lda, ldc = a.strides[0] // size, c.strides[0] // size
    witness = c.dtype.type(0)
    for jc in range(0, n, nc_max):
        nc = min(nc_max, n - jc)
        for pc in range(0, k, kc_max):
            kc = min(kc_max, k - pc)
            pack(b[pc : pc + kc, jc : jc + nc], panels[:, :kc], False)
            for i in range(0, m, MR):
                for p in range((nc + width - 1) // width):
                    tile(MR, NV, witness, kc, address(a) + (i * lda + pc) * size, lda, 1,
                         address(panels) + p * kc_max * width * size, width,
                         address(c) + (i * ldc + jc + p * width) * size, ldc, min(MR, m - i),
                         min(width, nc - p * width), pc > 0)
