"""Analytic BPTT gradients against central finite differences, in float64."""

import tracemalloc

import numpy as np
import pytest

from bptt import NetworkSpec, dropout_masks, init_parameters, loss_and_gradients, make_loss
from bptt.gradcheck import check_gradients, relative_error

from .cases import ALL, FIRST_OUTPUT, HEAD_CASES, build, build_with_head, case_id


@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_gradients_match_finite_differences(case):
    spec, params, x, y, loss = build(case, dropout=0.3 if case[1] == 2 else 0.0)
    masks = dropout_masks(spec, x.shape[1], np.random.default_rng(3), np.float64)
    errors = check_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                             truncate=case[2], dropout_masks=masks)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("per_step", [True, False], ids=["features_per_step", "features_shared"])
@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_gradients_with_several_inputs_and_head_features_match_finite_differences(case,
                                                                                  per_step):
    spec, params, x, y, loss, features = build_with_head(
        case, dropout=0.3 if case[1] == 2 else 0.0, per_step=per_step)
    masks = dropout_masks(spec, x.shape[1], np.random.default_rng(3), np.float64)
    errors = check_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                             truncate=case[2], dropout_masks=masks, head_features=features)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-6, f"{worst}: relative error {errors[worst]:.2e}"
    # the head features' own columns of the head carry gradient
    head = spec.layout.views(loss_and_gradients(
        spec, params, x, y, loss, first_output=FIRST_OUTPUT, truncate=case[2],
        dropout_masks=masks, head_features=features).grad)["head.weight"]
    assert np.abs(head[:, spec.hidden_size:]).min() > 0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncation_changes_the_gradient_and_full_window_does_not(cell):
    spec, params, x, y, loss = build(((cell, "tanh"), 2, None, ("mse", {})))
    full = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT)
    steps = x.shape[0]
    whole = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                               truncate=(steps, steps))
    short = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT,
                               truncate=(2, 2))
    assert np.array_equal(full.grad, whole.grad)
    assert short.loss == pytest.approx(full.loss, rel=1e-12)  # truncation never changes the loss
    assert relative_error(short.grad, full.grad) > 1e-3


def test_gradient_flow_is_per_layer_and_step():
    spec, params, x, y, loss = build((("lstm", "tanh"), 2, None, ("mse", {})))
    result = loss_and_gradients(spec, params, x, y, loss, first_output=FIRST_OUTPUT)
    assert result.grad_flow.shape == (2, x.shape[0])
    assert np.all(result.grad_flow > 0)


def _peak_bytes(steps: int, truncate) -> int:
    spec = NetworkSpec(cell="lstm", hidden_size=32)
    params = init_parameters(spec, 0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, 16, 1)).astype(np.float32)
    y = rng.normal(size=(1, 16, 1)).astype(np.float32)
    tracemalloc.start()
    loss_and_gradients(spec, params, x, y, make_loss("mse"), truncate=truncate)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - x.nbytes


def test_truncated_memory_grows_with_k2_not_with_length():
    short, long = _peak_bytes(256, (32, 32)), _peak_bytes(2048, (32, 32))
    assert long < 1.2 * short  # 8x the steps, same window
    full_short, full_long = _peak_bytes(256, None), _peak_bytes(2048, None)
    assert full_long > 6 * full_short  # while full BPTT keeps every step
    assert _peak_bytes(2048, (128, 128)) > 3 * long  # and the window is what counts
