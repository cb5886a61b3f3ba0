"""Small problems shared by the engine's tests: every cell, depth, truncation and loss."""

import itertools

import numpy as np

from bptt import NetworkSpec, init_parameters, make_loss

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
LAYERS = [1, 2]
TRUNCATIONS = [None, (3, 5)]  # full BPTT; k1 = 3 new steps per segment, k2 = 5 steps back
LOSSES = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {"delta": 0.5}),
    ("pinball", {"quantiles": (0.1, 0.5, 0.9)}),
    ("mse+pinball", {"quantiles": (0.1, 0.9)}),
]
STEPS, BATCH, INPUTS, HIDDEN, HORIZON, FIRST_OUTPUT = 9, 4, 2, 3, 2, 2

ALL = list(itertools.product(CELLS, LAYERS, TRUNCATIONS, LOSSES))


def case_id(case) -> str:
    (cell, act), layers, trunc, (loss, _) = case
    name = cell if cell != "rnn" else f"rnn_{act}"
    return f"{name}-L{layers}-{'full' if trunc is None else 'tbptt'}-{loss}"


def build(case, dtype=np.float64, dropout: float = 0.0, seed: int = 7):
    """(spec, params, x, y, loss) for one case; y has a missing target to exercise masking."""
    (cell, act), layers, _, (loss_name, options) = case
    loss = make_loss(loss_name, **options)
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=INPUTS, hidden_size=HIDDEN,
                       num_layers=layers, output_size=HORIZON * loss.outputs_per_target,
                       dropout=dropout)
    rng = np.random.default_rng(seed)
    params = init_parameters(spec, seed, dtype)
    x = rng.normal(size=(STEPS, BATCH, INPUTS)).astype(dtype)
    y = rng.normal(size=(STEPS - FIRST_OUTPUT, BATCH, HORIZON)).astype(dtype)
    y[0, 1, 1] = np.nan
    return spec, params, x, y, loss


# Networks with several inputs per step and head features: every cell and depth, full and
# truncated BPTT, input_size 3 and head_inputs 2 (the head reads concat(h_T, features)).
HEAD_INPUTS, WIDE_INPUTS = 2, 3
HEAD_CASES = list(itertools.product(CELLS, LAYERS, TRUNCATIONS, [LOSSES[0], LOSSES[4]]))


def build_with_head(case, dtype=np.float64, dropout: float = 0.0, seed: int = 11,
                    per_step: bool = True):
    """(spec, params, x, y, loss, features) for one of HEAD_CASES: as build, with
    WIDE_INPUTS inputs per step and HEAD_INPUTS head features, (K, B, E) one set per output
    step if `per_step`, else (B, E) shared by all of them."""
    (cell, act), layers, _, (loss_name, options) = case
    loss = make_loss(loss_name, **options)
    spec = NetworkSpec(cell=cell, nonlinearity=act, input_size=WIDE_INPUTS, hidden_size=HIDDEN,
                       num_layers=layers, output_size=HORIZON * loss.outputs_per_target,
                       head_inputs=HEAD_INPUTS, dropout=dropout)
    rng = np.random.default_rng(seed)
    params = init_parameters(spec, seed, dtype)
    x = rng.normal(size=(STEPS, BATCH, WIDE_INPUTS)).astype(dtype)
    y = rng.normal(size=(STEPS - FIRST_OUTPUT, BATCH, HORIZON)).astype(dtype)
    y[0, 1, 1] = np.nan
    shape = (STEPS - FIRST_OUTPUT, BATCH, HEAD_INPUTS) if per_step else (BATCH, HEAD_INPUTS)
    features = rng.normal(size=shape).astype(dtype)
    return spec, params, x, y, loss, features
