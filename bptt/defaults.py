"""Choices made from the data when the spec leaves them open (None).

The rule, in order:
- season m: `season_length`, else the season of `freq` (12 for monthly, 7 for daily, ...), else 1.
- input window L: max(8, 4·horizon, 4·m when m > 1), at most 256, and short enough that the
  shortest series still yields horizon + 4 windows; never below 1 window. (Four rather than two
  horizons and seasons: on benchmarks/accuracy.py's three synthetic seeds and real series it
  lowered mean MASE on every seed, 0.850 -> 0.817 on seed 0, and won El Nino back from
  seasonal naive; the windows cost twice the steps to train.)
- hidden size: 32, or 64 from 2,000 training windows up (more data supports a larger state).
- budget, in optimizer updates per member (training.max_steps): what the earlier rule of
  epochs gave (full passes enough for about 1,500 updates, within 30..300), at most 15,000;
  so a small problem trains as many updates as it did, and a default job's cost is bounded
  whatever the data size (on an M4-sized set 3,000 updates scored mean MASE 1.205, seasonal
  naive 1.079, and 15,000 scored 0.965). Validation every min(one pass's batches, 100)
  updates (training.eval_every; more when a max_steps given would make over 300 rounds): an
  epoch is such a round, and the resolved spec's epochs count them. Early stopping on the
  validation loss (patience 20 rounds) ends most fits sooner and keeps the best round's
  weights. A spec that sets epochs trains full passes.
- learning rate: 3e-3 for adam, adamw and rmsprop; 3e-2 for the sgd family.
- weight decay: the optimizer's own default (0.01 for adamw, as in PyTorch; else none).

- seasonality (spec.seasonality None): with a season (m > 1), "none", "additive" or (when a
  series is positive) "multiplicative", whichever classical forecast of its own kind (naive on
  the seasonally adjusted series, the season put back) has the lowest pooled relative MAE on
  the validation windows; the network then trains on the adjusted series
  (bptt.seasonality.choose_kind; README's accuracy section has the measurements).

After training, with validation windows (validation_fraction > 0), fit also chooses how
forecasts combine the network with an AR(1) reverting to the series' mean, the naive and the
seasonal naive forecast: convex weights, the mean over 100 Bayesian bootstrap draws of the
validation windows of the weight on a 0.05 grid with the lowest mean relative validation MAE over
the series, one set per model (bptt.combination says why, and why not one per series).
"""

import dataclasses
import math

from .optimizers import default_weight_decay
from .seasons import season_from_freq
from .spec import TrainingSpec

TARGET_UPDATES = 1500
MAX_DEFAULT_STEPS = 15_000  # updates per member, whatever the data size
MAX_EVAL_EVERY = 100  # updates between two validation evaluations by default


def season_of(spec: TrainingSpec) -> int:
    """The season length the spec implies (1: no seasonality)."""
    if spec.season_length:
        return spec.season_length
    if spec.freq:
        return season_from_freq(spec.freq) or 1
    return 1


def input_size_for(spec: TrainingSpec, shortest: int) -> int:
    """The input window: the spec's, or the rule's for a shortest series of `shortest` points."""
    if spec.window.input_size is not None:
        return spec.window.input_size
    h, m = spec.horizon, season_of(spec)
    wanted = min(256, max(8, 4 * h, 4 * m if m > 1 else 0))
    room = shortest - h - (h + 4) + 1  # the largest L that leaves horizon + 4 windows
    return max(1, min(wanted, room, shortest - h))


def resolve(spec: TrainingSpec, input_size: int, train_windows: int) -> TrainingSpec:
    """A copy of spec with every open choice made (see the module docstring)."""
    t = spec.training
    batches = max(1, math.ceil(train_windows / t.batch_size))
    budget = {}
    if t.epochs is None or t.max_steps is not None:  # a budget in updates
        steps = t.max_steps or min(MAX_DEFAULT_STEPS, _rule_epochs(batches) * batches)
        # (and no more than 300 rounds: a large max_steps given on little data)
        every = t.eval_every or max(min(batches, MAX_EVAL_EVERY), math.ceil(steps / 300))
        budget = {"max_steps": steps, "eval_every": every, "epochs": math.ceil(steps / every)}
    sgd_family = t.optimizer in ("sgd", "momentum", "nesterov")
    lr = t.learning_rate or (3e-2 if sgd_family else 3e-3)
    decay = default_weight_decay(t.optimizer) if t.weight_decay is None else t.weight_decay
    hidden = spec.model.hidden_size or (64 if train_windows >= 2000 else 32)
    return dataclasses.replace(
        spec,
        season_length=season_of(spec),
        model=dataclasses.replace(spec.model, hidden_size=hidden),
        window=dataclasses.replace(spec.window, input_size=input_size),
        training=dataclasses.replace(t, learning_rate=lr, weight_decay=decay, **budget),
    )


def _rule_epochs(batches: int) -> int:
    """Full passes enough for about TARGET_UPDATES updates, within 30..300."""
    return min(300, max(30, math.ceil(TARGET_UPDATES / batches)))
