"""The kernels treat subnormal floats as zero (cells/_common.flush_subnormals), and leave the
caller's floating-point mode as it was."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss, predict

SMALLEST_NORMAL = np.finfo(np.float32).tiny  # 1.2e-38


def _gradients(cell, scale):
    """The float32 gradient of a loss whose head weights are `scale`: dL/dh reaches the layer
    at about that size."""
    spec = NetworkSpec(cell=cell, hidden_size=8, output_size=2)
    params = init_parameters(spec, 0)
    views = spec.layout.views(params)
    views["head.weight"][:] = scale
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4, 1)).astype(np.float32)
    y = rng.normal(size=(1, 4, 2)).astype(np.float32)
    result = loss_and_gradients(spec, params, x, y, make_loss("mse"))
    return spec.layout.views(result.grad)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_below_the_smallest_normal_float_are_zero(cell):
    fading = _gradients(cell, 1e-40)  # dL/dh itself subnormal
    assert not np.any(fading["weight_hh_l0"]) and not np.any(fading["bias_ih_l0"])
    small = _gradients(cell, 1e-25)  # small, still normal: kept
    assert np.all(np.isfinite(small["weight_hh_l0"])) and np.any(small["weight_hh_l0"])


def test_the_callers_arithmetic_keeps_its_subnormals():
    spec = NetworkSpec(cell="lstm", hidden_size=4, output_size=1)
    predict(spec, init_parameters(spec, 0), np.ones((5, 2, 1), np.float32))
    _gradients("gru", 1.0)
    halved = np.float32(SMALLEST_NORMAL) * np.float32(0.5)
    assert 0 < halved < SMALLEST_NORMAL
