"""Batch chunks on several threads give the serial answer, and repeat it bit for bit."""

import numpy as np
import pytest

from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss, predict
from bptt.gradcheck import relative_error
from bptt.parallel import chunk_bounds


def test_chunks_cover_the_batch_without_overlap():
    assert chunk_bounds(64, 2) == [(0, 32), (32, 64)]
    assert chunk_bounds(10, 4) == [(0, 10)]  # too few rows to be worth a second thread
    bounds = chunk_bounds(101, 3)
    assert bounds[0][0] == 0 and bounds[-1][1] == 101
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_threads_match_serial_and_repeat_exactly(cell):
    spec = NetworkSpec(cell=cell, input_size=2, hidden_size=16, num_layers=2, output_size=3)
    params = init_parameters(spec, 0, np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 37, 2))
    y = rng.normal(size=(5, 37, 3))
    y[1, 3, 0] = np.nan
    loss = make_loss("huber")
    kw = dict(first_output=15, truncate=(4, 8))
    serial = loss_and_gradients(spec, params, x, y, loss, **kw)
    parallel = loss_and_gradients(spec, params, x, y, loss, threads=3, **kw)
    again = loss_and_gradients(spec, params, x, y, loss, threads=3, **kw)
    assert parallel.loss == pytest.approx(serial.loss, rel=1e-12)
    assert relative_error(parallel.grad, serial.grad) < 1e-12
    assert relative_error(parallel.grad_flow, serial.grad_flow) < 1e-12
    assert np.array_equal(parallel.grad, again.grad)
    one, _ = predict(spec, params, x)
    many, states = predict(spec, params, x, threads=2, batch_chunk=10)
    assert relative_error(many, one) < 1e-12 and states[0].h.shape == (37, 16)
