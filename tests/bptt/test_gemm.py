"""The kernels' own GEMM (bptt/cells/_gemm.py) against np.dot, and the kernels built on it
against the same kernels built on np.dot (BPTT_REFERENCE_GEMM=1).

The micro-kernel covers every shape with two compiled tiles (MR × NR, and MR_NARROW rows by
one vector for panels no wider than a vector): rows past the batch's edge, columns past a
panel's edge (masked), operands with any row stride, A transposed, C written or accumulated.
The shapes below put each of those edges on both sides of a tile and a panel, in both tiles."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from bptt.cells import _gemm
from bptt.cells._gemm import (
    MR,
    MR_NARROW,
    NR,
    blocked_matmul,
    matmul,
    matmul_packed,
    pack,
    packed_shape,
)

ROOT = Path(__file__).resolve().parents[2]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


@njit(cache=False)
def _matmul(a, b, c, trans_a, accumulate):
    matmul(a, b, c, trans_a, accumulate)


@njit(cache=False)
def _matmul_packed(a, b, c, trans_a, accumulate, transposed, panels):
    pack(b, panels, transposed)
    matmul_packed(a, panels, c, trans_a, accumulate)


def _close(got, want, dtype):
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= TOL[dtype] * scale * 64, np.abs(got - want).max()


def _padded(rng, shape, dtype, pad):
    """A view of `shape` whose rows are `pad` elements further apart than their length."""
    whole = rng.normal(size=(shape[0], shape[1] + pad)).astype(dtype)
    return whole[:, : shape[1]]


SHAPES = [(1, 1, 1), (3, 5, 7), (MR, 4, NR), (MR + 1, 9, NR + 1), (2 * MR - 1, 33, 2 * NR - 3),
          (64, 64, 256), (13, 0, 6), (5, 130, 40),
          (2 * MR_NARROW + 3, 17, 12), (MR_NARROW, 6, NR + NR // 2), (MR_NARROW + 1, 9, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_matmul_matches_np_dot(dtype, m, k, n, trans_a, accumulate, pad):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = _padded(rng, (k, m) if trans_a else (m, k), dtype, pad)
    b = _padded(rng, (k, n), dtype, pad)
    c = _padded(rng, (m, n), dtype, pad)
    outside = c.base.copy()
    want = np.dot(a.T if trans_a else a, b) + (c if accumulate else 0)
    _matmul(a, b, c, trans_a, accumulate)
    _close(c, want, dtype)
    outside[:, :n] = c
    np.testing.assert_array_equal(c.base, outside)  # nothing written past the view's columns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_packed_matches_np_dot(dtype, m, k, n, transposed, accumulate):
    rng = np.random.default_rng(m + k + n)
    a = rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=(n, k) if transposed else (k, n)).astype(dtype)
    c = rng.normal(size=(m, n)).astype(dtype)
    want = np.dot(a, b.T if transposed else b) + (c if accumulate else 0)
    panels = np.full(packed_shape(dtype(0), k, n), np.nan, dtype)  # every used cell is written
    _matmul_packed(a, b, c, False, accumulate, transposed, panels)
    _close(c, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_matmul_matches_np_dot(dtype):
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(77, 300)).astype(dtype), rng.normal(size=(300, 90)).astype(dtype)
    c = np.empty((77, 90), dtype)
    blocked_matmul(a, b, c, np.empty(packed_shape(dtype(0), 128, 64), dtype))
    _close(c, a @ b, dtype)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize(("m", "k", "n"), [(0, 3, 4), (3, 3, 0), (3, 0, 4)])
def test_empty_products_leave_what_np_dot_leaves(m, k, n, accumulate):
    a, b = np.ones((m, k)), np.ones((k, n))
    c = np.full((m, n), 5.0)
    _matmul(a, b, c, False, accumulate)
    np.testing.assert_array_equal(c, (5.0 if accumulate else 0.0) + a @ b)
    c = np.full((m, n), 5.0)
    panels = np.empty(packed_shape(0.0, k, n))
    _matmul_packed(a, b, c, False, accumulate, False, panels)
    np.testing.assert_array_equal(c, (5.0 if accumulate else 0.0) + a @ b)


def test_matmul_refuses_mismatched_shapes():
    a, b, c = np.zeros((3, 4)), np.zeros((5, 6)), np.zeros((3, 6))
    with pytest.raises(ValueError, match="shapes"):
        _matmul(a, b, c, False, False)


# The kernels' GEMMs against np.dot's, through whole forward and backward passes: one network
# per cell with both input paths (folded few inputs below, a GEMM for many above), hidden sizes
# across a panel's edge, a batch across a tile's edge, and a nonzero start state (truncation).
REFERENCE_CASES = [("lstm", 2, 33), ("gru", 6, 40), ("rnn", 1, 31), ("lstm", 7, 2 * NR + 1)]
_SCRIPT = """
import json, sys
import numpy as np
from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss
out = {}
for cell, inputs, hidden in json.loads(sys.argv[1]):
    spec = NetworkSpec(cell=cell, input_size=inputs, hidden_size=hidden, num_layers=2,
                       output_size=3)
    rng = np.random.default_rng(11)
    params = init_parameters(spec, 2, np.float64)
    x = rng.normal(size=(9, 13, inputs))
    y = rng.normal(size=(6, 13, 3))
    result = loss_and_gradients(spec, params, x, y, make_loss("mse"), first_output=3,
                                truncate=(4, 6))
    out[f"{cell}-{inputs}-{hidden}"] = [result.loss] + result.grad.tolist()
print(json.dumps(out))
"""


def _start(reference: bool, cache: Path) -> subprocess.Popen:
    """A fresh process that compiles the kernels into `cache` (fast path, or np.dot's with
    `reference`) and prints the loss and gradients of REFERENCE_CASES as JSON."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop("BPTT_REFERENCE_GEMM", None)
    if reference:
        env["BPTT_REFERENCE_GEMM"] = "1"
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(REFERENCE_CASES)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def _gradients(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=1200)
    assert process.returncode == 0, err[-4000:]
    return json.loads(out.splitlines()[-1])


def test_kernels_match_the_np_dot_reference_path(tmp_path):
    """BPTT_REFERENCE_GEMM=1 builds the kernels with every product through np.dot; the fast
    path must give the same loss and gradients (float64, so only rounding differs)."""
    assert not _gemm.REFERENCE  # this process runs the fast path
    # both compile from nothing, one per core at once (each alone took about 17 s in CI)
    runs = [_start(False, tmp_path / "fast"), _start(True, tmp_path / "reference")]
    try:
        fast, reference = (_gradients(run) for run in runs)
    finally:
        for run in runs:
            run.kill()
    assert fast.keys() == reference.keys()
    differences = []
    for name in fast:
        ours, theirs = np.array(fast[name]), np.array(reference[name])
        differences.append(np.abs(ours - theirs).max())
        assert differences[-1] <= 1e-11 * max(1.0, np.abs(theirs).max()), name
    assert max(differences) > 0  # rounding differs somewhere: the reference path really ran
