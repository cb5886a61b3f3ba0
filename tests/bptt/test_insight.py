"""BPTT insight diagnostics: memory horizon, spectral radii, gate saturation, truncation cosine,
AutoClip suggestion, and the per-epoch JSON summary."""

import json

import numpy as np
import pytest

import bptt
from bptt import NetworkSpec, init_parameters, loss_and_gradients, make_loss
from bptt.insight import (
    epoch_insight,
    gate_saturation,
    memory_horizon,
    spectral_radii,
    suggest_clip,
    truncation_cosine,
)

# One shape for every network here: each new dtype/layout compiles Numba kernels.
STEPS, BATCH, HIDDEN = 12, 8, 8
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


def _network(cell: str, layers: int = 1, nonlinearity: str = "tanh", dtype=np.float32,
             seed: int = 0):
    spec = NetworkSpec(cell=cell, nonlinearity=nonlinearity, hidden_size=HIDDEN,
                       num_layers=layers)
    return spec, init_parameters(spec, seed, dtype)


def _batch(dtype=np.float32, seed: int = 1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(STEPS, BATCH, 1)).astype(dtype),
            rng.normal(size=(1, BATCH, 1)).astype(dtype))


def _plain(value) -> bool:
    """Whether value is built only of plain Python JSON types (no numpy scalars)."""
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or type(value) in (int, float, str, bool)


# memory_horizon


def test_memory_horizon_of_exponential_decay():
    # flow at lag k is 0.5**k: it first drops below 1% of lag 0 at k = 7 (0.5**7 = 0.0078)
    lags = np.arange(20)
    flow = (0.5 ** lags)[::-1]  # time order: the output step (lag 0) last
    assert memory_horizon(flow) == 7
    assert memory_horizon(flow, threshold=0.1) == 4  # 0.5**4 = 0.0625 < 0.1 <= 0.5**3
    assert memory_horizon(list(flow)) == 7


def test_memory_horizon_counts_lags_from_the_last_step():
    # Rising towards the end (as BPTT gives) has a horizon; the mirror image has none.
    rising = 0.3 ** np.arange(10)[::-1]
    assert memory_horizon(rising) == 4  # 0.3**4 = 0.0081
    assert memory_horizon(rising[::-1]) == 10


def test_memory_horizon_of_flat_and_zero_flow():
    assert memory_horizon(np.full(15, 0.2)) == 15
    assert memory_horizon(np.zeros(15)) == 0
    assert memory_horizon([]) == 0


def test_memory_horizon_of_real_truncated_gradient_is_the_window():
    # Truncated BPTT with k2 = 4 gives the top layer gradient on the last 4 steps only, so the
    # horizon is exactly 4 when grad_flow is read the way backprop lays it out.
    spec, params = _network("lstm")
    x, y = _batch()
    flow = loss_and_gradients(spec, params, x, y, make_loss("mse"), truncate=(2, 4)).grad_flow
    assert memory_horizon(flow[-1]) == 4
    full = loss_and_gradients(spec, params, x, y, make_loss("mse")).grad_flow
    assert memory_horizon(full[-1]) > 4


# spectral_radii


@pytest.mark.parametrize("scale", [0.5, 1.3])
def test_spectral_radius_of_scaled_orthogonal_rnn(scale):
    spec, params = _network("rnn", layers=2, dtype=np.float64)
    views = spec.layout.views(params)
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(HIDDEN, HIDDEN)))
    views["weight_hh_l0"][:] = scale * q
    views["weight_hh_l1"][:] = 0.0
    radii = spectral_radii(spec, params)
    assert radii[0] == {"h": pytest.approx(scale, rel=1e-9)}
    assert radii[1] == {"h": pytest.approx(0.0, abs=1e-12)}


def test_spectral_radius_of_lstm_gate_blocks():
    spec, params = _network("lstm", layers=1)
    w = spec.layout.views(params)["weight_hh_l0"]
    expected = {"i": 0.25, "f": 0.9, "g": 1.5, "o": 0.1}
    w[:] = 0.0
    for g, radius in enumerate(expected.values()):
        diag = np.linspace(-radius, radius / 3, HIDDEN)  # max |eigenvalue| = radius
        w[g * HIDDEN:(g + 1) * HIDDEN] = np.diag(diag)
    (radii,) = spectral_radii(spec, params)
    assert radii == pytest.approx(expected, rel=1e-6)


def test_spectral_radius_keys_per_cell():
    for cell, keys in [("rnn", ["h"]), ("lstm", ["i", "f", "g", "o"]), ("gru", ["r", "z", "n"])]:
        spec, params = _network(cell, layers=2)
        radii = spectral_radii(spec, params)
        assert [list(r) for r in radii] == [keys, keys]
        assert all(0 < v < 2 for r in radii for v in r.values())


# gate_saturation


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_huge_weights_saturate_every_gate(cell):
    spec, params = _network(cell, layers=2)
    params[:] = np.random.default_rng(2).normal(scale=30.0, size=params.shape)
    x, _ = _batch()
    saturation = gate_saturation(spec, params, 5 * x)
    assert len(saturation) == 2
    for layer in saturation:
        assert all(v > 0.9 for v in layer.values()), saturation


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_tiny_weights_saturate_nothing(cell):
    spec, params = _network(cell, layers=2)
    params *= 1e-3
    x, _ = _batch()
    saturation = gate_saturation(spec, params, x)
    expected = {"rnn": ["h"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}[cell]
    assert [list(layer) for layer in saturation] == [expected, expected]
    assert all(v == 0.0 for layer in saturation for v in layer.values()), saturation


@pytest.mark.parametrize("cell,drive,expected", [
    ("rnn", {0: 20.0}, {"h": 1.0}),
    ("lstm", {0: -20.0, 1: 20.0}, {"i": 1.0, "f": 1.0, "g": 0.0, "o": 0.0}),
    ("gru", {1: 20.0}, {"r": 0.0, "z": 1.0, "n": 0.0}),
])
def test_saturation_is_per_gate(cell, drive, expected):
    # Tiny weights, and only the gates in `drive` pushed hard by their bias: those saturate
    # (sigmoids at either end), the others stay in their linear range.
    spec, params = _network(cell)
    params *= 1e-3
    bias = spec.layout.views(params)["bias_hh_l0"]
    for gate, value in drive.items():
        bias[gate * HIDDEN:(gate + 1) * HIDDEN] = value
    x, _ = _batch()
    assert gate_saturation(spec, params, x) == [expected]


def test_relu_rnn_reports_dead_units():
    spec, params = _network("rnn", nonlinearity="relu")
    params *= 1e-3
    bias = spec.layout.views(params)["bias_ih_l0"]
    x, _ = _batch()
    bias[:] = -1.0  # every pre-activation negative: all units dead
    assert gate_saturation(spec, params, x) == [{"h_dead": 1.0}]
    bias[:] = 1.0  # every pre-activation positive: none dead
    assert gate_saturation(spec, params, x) == [{"h_dead": 0.0}]


# truncation_cosine


def _long_memory(cell: str):
    """A float64 one-layer network whose state carries far back in time."""
    spec, params = _network(cell, dtype=np.float64)
    views = spec.layout.views(params)
    if cell == "rnn":  # orthogonal recurrence: neither vanishing nor exploding
        q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(HIDDEN, HIDDEN)))
        views["weight_hh_l0"][:] = q
    elif cell == "lstm":  # forget gate open
        views["bias_hh_l0"][HIDDEN:2 * HIDDEN] = 4.0
    else:  # update gate mostly keeps the old state
        views["bias_hh_l0"][HIDDEN:2 * HIDDEN] = 2.0
    return spec, params


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncation_cosine_is_one_when_the_window_covers_the_sequence(cell):
    spec, params = _long_memory(cell)
    x, y = _batch(np.float64)
    loss = make_loss("mse")
    assert truncation_cosine(spec, params, x, y, loss, (STEPS, STEPS)) == pytest.approx(1, abs=1e-6)
    assert truncation_cosine(spec, params, x, y, loss, (3, STEPS + 4)) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_short_truncation_bends_the_gradient_of_a_long_memory(cell):
    spec, params = _long_memory(cell)
    x, y = _batch(np.float64)
    loss = make_loss("mse")
    short = truncation_cosine(spec, params, x, y, loss, (1, 1))
    longer = truncation_cosine(spec, params, x, y, loss, (4, 6))
    assert short < 0.95
    assert short < longer < 1.0 - 1e-6
    # y as (B, horizon) means the same targets
    assert truncation_cosine(spec, params, x, y[0], loss, (1, 1)) == short


def test_truncation_cosine_of_zero_gradients_is_one():
    spec, params = _network("rnn", dtype=np.float64)
    params[:] = 0.0  # the network predicts 0...
    x, y = _batch(np.float64)
    y[:] = 0.0  # ...which is exact: no gradient at all, truncated or not
    assert truncation_cosine(spec, params, x, y, make_loss("mse"), (1, 1)) == 1.0


# suggest_clip


@pytest.mark.parametrize("percentile", [10.0, 50.0, 90.0])
def test_suggest_clip_is_the_percentile_of_the_history(percentile):
    norms = np.random.default_rng(6).lognormal(size=137)
    suggested = suggest_clip(list(norms), percentile)
    assert type(suggested) is float
    assert suggested == np.percentile(norms, percentile)
    assert suggest_clip(norms) == np.percentile(norms, 10)


def test_suggest_clip_of_empty_history_is_none():
    assert suggest_clip([]) is None
    assert suggest_clip(np.array([])) is None


# epoch_insight


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell,nonlinearity", CELLS)
def test_epoch_insight_is_plain_json(cell, nonlinearity, layers):
    spec, params = _network(cell, layers, nonlinearity)
    x, y = _batch()
    loss = make_loss("mse")
    flow = loss_and_gradients(spec, params, x, y, loss).grad_flow[-1]
    norms = np.random.default_rng(7).lognormal(size=30).astype(np.float32)
    insight = epoch_insight(spec, params, x, y, loss, grad_flow=flow, norm_history=norms,
                            truncate=(3, 5))
    assert _plain(insight), insight
    assert json.loads(json.dumps(insight, allow_nan=False)) == insight
    assert set(insight) == {"memory_horizon", "memory_threshold", "spectral_radius",
                            "gate_saturation", "truncation_cosine", "suggested_max_norm"}
    assert len(insight["spectral_radius"]) == len(insight["gate_saturation"]) == layers
    assert 0 < insight["memory_horizon"] <= STEPS
    assert -1.0 <= insight["truncation_cosine"] < 1.0
    assert insight["suggested_max_norm"] == pytest.approx(float(np.percentile(norms, 10)))


def test_epoch_insight_skips_the_cosine_without_truncation():
    spec, params = _network("gru")
    x, y = _batch()
    loss = make_loss("mse")
    common = dict(grad_flow=[0.0] * STEPS, norm_history=[], threshold=0.05)
    for truncate in [None, (4, STEPS), (4, STEPS + 1)]:
        insight = epoch_insight(spec, params, x, y, loss, truncate=truncate, **common)
        assert insight["truncation_cosine"] is None
        assert insight["memory_horizon"] == 0
        assert insight["memory_threshold"] == 0.05
        assert insight["suggested_max_norm"] is None
        assert _plain(insight)


def test_fit_reports_insight_per_epoch_without_changing_the_training():
    rng = np.random.default_rng(3)
    t = np.arange(150)
    series = {f"s{i}": np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.1, t.size)
              for i in range(3)}
    spec = bptt.TrainingSpec.from_dict({
        "horizon": 4, "window": {"input_size": 24}, "model": {"cell": "lstm", "hidden_size": 8},
        "training": {"epochs": 3, "ensemble": 1, "truncate": [4, 8]}})
    plain = bptt.fit(series, spec=spec)
    seen = bptt.fit(series, spec=spec, callbacks=bptt.Callbacks(insight=True))
    assert np.array_equal(plain.model.members, seen.model.members)  # same weights, bit for bit
    assert all(m.insight is None for m in plain.history)
    for m in seen.history:
        insight = m.insight
        assert 1 <= insight["memory_horizon"] <= 8  # truncation bounds how far back it reaches
        assert set(insight["gate_saturation"][0]) == {"i", "f", "g", "o"}
        assert -1 <= insight["truncation_cosine"] <= 1
        assert insight["suggested_max_norm"] > 0
        json.dumps(insight, allow_nan=False)
