"""What a fit will cost before it runs: FLOPs, peak memory and updates, from the spec and the
series' lengths alone (as bptt.resolve_spec), following the engine's own kernels.

- FLOPs are the GEMMs' multiply-adds x 2, counted as benchmarks/kernels.py counts them: per layer
  and step the input projection and the recurrent GEMM forward; dgates·W_hh, dW_hh, dW_ih (and
  dx above the first layer) backward; the head on the last step. The gate loops' elementwise
  work is counted apart, in gate elements, and each update or forward chunk as one pass
  (bptt.speed turns the three into seconds).
- A fit's work: every update's step (an epoch is a full pass's batches, or with a budget in
  updates the spec's training.eval_every of them), a validation pass per epoch on the capped
  validation set (with Callbacks.insight also
  the epoch's insight: a forward on a sample, the eigenvalues of every gate block, for
  truncated BPTT two more gradients), building the windows, choosing the seasonality, and the
  calibration after training (two forward passes and the combination's grid of weights);
  cross-validation adds its own fit on the series cut at the first cutoff (open choices made
  again for them, as cross_validate does) and a forecast from every origin.
- Memory at the peak: the series (float64, parsed and scaled, and stored flat for the windows
  to be gathered from), the windows' index, the capped validation set (never the training
  windows: batches are gathered; calibration gathers the validation windows a chunk at a time
  and keeps their residuals),
  the per-step caches workspace.scratch keeps (gates,
  hidden and cell states and their gradients, for a batch of the window's steps; for forward
  passes, forward.predict's chunks of 1,024 rows), the weights with optimizer state,
  checkpoints and finished members, and the epochs' metrics the fit keeps (FitResult.history).
Early stopping can only make a fit cheaper: by default the estimate is of the whole budget (the
bound admission control needs); with `epochs_share`, of a fit whose members train that share of
their epochs (expected_epochs), which is what a fit with early stopping usually costs.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import calendar_inputs
from .calibration import CALIBRATION_CHUNK
from .cells._common import work_size
from .combination import BAGGED_WINDOWS, DRAWS, GRID_BLOCK, has_seasonal_naive, weight_grid
from .covariates import DYNAMIC, UNKNOWN
from .covariates import declare as declare_covariates
from .data import window_counts
from .forward import PREDICT_CHUNK
from .network import NetworkSpec
from .spec import TrainingConfig, TrainingSpec
from .trainer import (
    INSIGHT_SAMPLE,
    VALIDATION_CAP,
    Callbacks,
    _network_for,
    epoch_updates,
    resolve_spec,
)

BYTES = 4  # float32: what fit trains in
# What a fit's first run touches besides its arrays (LAPACK's eigenvalue routines, allocator
# arenas of numpy's temporaries): 5-6 MiB measured on the smallest jobs.
FIT_BYTES = 6 * 2**20
SERIES_BYTES = 16  # per point: the parsed float64 series and its scaled copy
STORED_BYTES = 24  # per point: data.SeriesArrays' values, gap-filled values and running mean
# per point and extra column: data.ExtraInputs' float32 column, and its float64 encoding before
EXTRA_BYTES = 12
INDEX_BYTES = 12  # per window: data.WindowIndex's series (int32) and start (int64)
EIGEN_FLOPS = 25  # x n^3: LAPACK's eigenvalues of a nonsymmetric n x n block (Hessenberg + QR)
BACKWARD_ELEMENTS = 2  # gate elements visited backward per element forward (derivative, dh)
# What one window's step costs a layer's kernel whatever its width, in gate elements: the loop
# and tile edges around each row (products are padded to 16-column panels). Fitted with
# benchmarks/cost.py --fit-rates: without it, hidden sizes of 4-16 ran 2-5x their estimate.
ROW_ELEMENTS = 32
# What an epoch costs besides its kernels, in passes (bptt.speed's fixed cost of one kernel
# pass, 110 us by default): shuffling, the epoch's metrics, the schedule and early stopping, in
# Python. Measured about 1.1 ms an epoch (a 5-member RNN 16 on two short series: 0.32 s of CPU
# for 150 epochs whose kernels were estimated at 0.15 s), which made tiny jobs 2x their estimate.
EPOCH_PASSES = 10
# Calibration's grid search of the combination's weights (bptt.combination.WeightScores):
# per candidate, validation window and step about 7.7 ns of CPU (13 gate elements' worth), and
# 7 us per candidate and chunk of windows besides; 1,771 candidates when seasonal naive is a
# partner, 231 otherwise. Choosing the seasonality on the validation windows
# (bptt.seasonality.choose_kind) costs about 75 us a window, in Python. Measured by CPU time
# (load 3-4): a 1,000-series job with max_steps 200 ran 2.3x its estimate without these.
GRID_ELEMENTS, GRID_PASSES, CHOOSE_KIND_PASSES = 13, 0.065, 0.7
# Per epoch in the fit's history: its EpochMetrics, grad_flow as Python floats (32 bytes per
# input step), and with Callbacks.insight the insight dict (measured: 620 bytes an epoch
# besides grad_flow, 2,000 with insight). Checkpoints carry none of it (issue 15, item 5).
HISTORY_BYTES_PER_STEP, HISTORY_BYTES_PER_EPOCH, INSIGHT_BYTES_PER_EPOCH = 32, 620, 1400
# Copies of the weights alive at once while training: weights, gradient, optimizer state (2),
# best weights, a checkpoint's copies of these (4) and its safetensors bytes (4), and the
# caller's copy of those bytes; plus, per member, the finished weights three times over
# (the list, the checkpoint's bytes, the caller's copy).
WEIGHT_COPIES, WEIGHT_COPIES_PER_MEMBER = 16, 3


@dataclass(frozen=True)
class Work:
    """Countable work: GEMM FLOPs, gate elements of the elementwise loops, and passes."""

    flops: float = 0.0
    elements: float = 0.0
    passes: float = 0.0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.flops + other.flops, self.elements + other.elements,
                    self.passes + other.passes)

    def __mul__(self, times: float) -> "Work":
        return Work(self.flops * times, self.elements * times, self.passes * times)

    __rmul__ = __mul__


@dataclass(frozen=True)
class Cost:
    """What one fit (and its cross-validation, if the spec asks for one) will cost."""

    flops: float  # every GEMM FLOP of the job
    peak_bytes: int  # memory the job adds to its process at its peak
    updates: int  # optimizer updates of every member, cross-validation's fit included
    evaluations: int  # validation passes (epochs) of every member of the main fit
    train_windows: int
    val_windows: int
    evaluation: Work  # one member, from one evaluation to the next: an epoch, its validation,
    # insight and checkpoint (the average over the fit)
    fixed: Work  # building the windows, calibration, forecast states
    cross_validation: "Cost | None"  # its fit and its forecasts from every origin
    memory: dict[str, int] = field(default_factory=dict)  # the peak's parts
    # of `fixed`, what runs before the first update: building the windows, choosing the
    # seasonality (a job's time left counts it as done once training has started)
    prepare: Work = field(default_factory=Work)

    @property
    def work(self) -> Work:
        """All of the job's work."""
        total = self.evaluation * self.evaluations + self.fixed
        return total + self.cross_validation.work if self.cross_validation else total

    def seconds(self, speed) -> float:
        """Expected seconds at a bptt.speed.KernelSpeed."""
        return speed.seconds(self.work)

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        out = dataclasses.asdict(self)
        out["cross_validation"] = self.cross_validation and self.cross_validation.to_dict()
        return out


def estimate_cost(spec: TrainingSpec, lengths: Iterable[int], *,
                  plan: TrainingSpec | None = None, callbacks: Callbacks | None = None,
                  input_bytes: int = 0, forecast_states: bool = False,
                  epochs_share: float = 1.0, extra: tuple[int, int] = (0, 0)) -> Cost:
    """The Cost of fit(series, spec=spec, callbacks=callbacks) on series of these lengths,
    with its cross-validation (cross_validate(series, spec=spec)) when spec.cross_validation
    is set.

    `spec` is the request, open choices allowed; `plan` the spec the fit trains with when it is
    not resolve_spec(lengths, spec) (a warm start's). Of `callbacks`, what costs counts:
    insight every epoch (a checkpoint's copies are counted with the weights, fit or not: its
    size does not grow with the epochs). `input_bytes`: what the caller holds for the series
    meanwhile (e.g. parsed JSON), added to the memory. `forecast_states`: bptt.initial_states
    follows the fit. `epochs_share`: the share of its epoch budget each member (of the fit and
    of the cross-validation's) is expected to train, see expected_epochs; 1, every epoch.
    `extra`: (input columns per step besides the value, head inputs) of the network, as
    input_widths gives them for the fit's calendar and covariates; (0, 0), values alone.
    Raises SpecError or DataError as resolve_spec does.
    """
    lengths = list(lengths)
    plan = plan or resolve_spec(lengths, spec)
    callbacks = callbacks or Callbacks()
    cost = _fit_cost(_sharing(plan, epochs_share), lengths, input_bytes, callbacks.insight,
                     forecast_states, extra)
    if spec.cross_validation is None:
        return cost
    cv = _cross_validation_cost(spec, plan, lengths, input_bytes, epochs_share, extra)
    memory = max(cost.memory, cv.memory, key=lambda parts: sum(parts.values()))
    return dataclasses.replace(cost, flops=cost.flops + cv.flops,
                               peak_bytes=max(cost.peak_bytes, cv.peak_bytes),
                               updates=cost.updates + cv.updates, cross_validation=cv,
                               memory=memory)


def input_widths(plan: TrainingSpec, lengths: Mapping[str, int], dates: Sequence = (),
                 covariates=None) -> tuple[int, int]:
    """(input columns per step besides the value, head inputs) of the network that
    fit(series, spec=plan, covariates=covariates) trains: estimate_cost's `extra`. `lengths`:
    each series' id and length, in the series' order; `dates`: their items as fit takes them
    ({"start", "freq"} are read; none: no dates), without reading a value.

    Per step: the calendar's columns (plan.calendar, from the series' dates, as fit chooses)
    and one per dynamic covariate. At the head: the calendar's columns of the first forecast
    step, the static covariates' columns (a number's one, a category's one per value met and
    the unknown one) and every future covariate at every horizon step. The covariates are
    checked as fit checks them (DataError)."""
    dates = calendar_inputs.series_dates(list(dates))
    dates += [calendar_inputs.SeriesDates(None, None)] * (len(lengths) - len(dates))
    calendar, _ = calendar_inputs.choose(plan.calendar, plan.freq, dates, list(lengths.values()))
    dated = 0 if calendar is None else calendar.columns
    declared = declare_covariates(covariates, lengths)
    steps, head = covariate_widths({c.name: c.kind for c in declared}, plan.horizon, {
        c.name: len(set(c.values.values()) - {UNKNOWN}) for c in declared if c.categorical})
    return dated + steps, dated + head


def covariate_widths(kinds: Mapping[str, str], horizon: int,
                     categories: Mapping[str, int]) -> tuple[int, int]:
    """(input columns per step, head inputs) that covariates of these kinds ({name: kind})
    add to a network: a column per dynamic one; at the head, a static number's one input, a
    static category's one per category met (`categories`: name -> how many) and its unknown
    one, and every future one at each of the `horizon` steps (bptt.covariates)."""
    dynamic = sum(kind in DYNAMIC for kind in kinds.values())
    future = sum(kind == "future" for kind in kinds.values())
    static = sum(categories[name] + 1 if name in categories else 1
                 for name, kind in kinds.items() if kind == "static")
    return dynamic, static + horizon * future


# Early stopping ends a member when it stops improving, which happens after about as many
# evaluations whatever the budget: on examples/store_sales.csv members stopped at 75-78
# evaluations of budgets of 100 and 300 alike. A share of the epochs, learned from (or, before
# any, assumed for) default budgets of up to 300 evaluations, is therefore taken of at least
# that many: a shorter budget is expected to run as far as a default one would, or to its end.
# As a plain share of the budget, a 100-evaluation job was expected to train 35 and trained 78
# ("took 3s of ~1s").
SHARE_OF_AT_LEAST = 300


def expected_epochs(training: TrainingConfig, share: float) -> int:
    """The epochs a member trains when early stopping ends members after `share` of their
    budget on the whole (of SHARE_OF_AT_LEAST epochs for a shorter budget): never fewer than
    early stopping allows (the first epoch sets the best loss, `patience` epochs without
    progress follow), never more than the budget; the whole budget without early stopping."""
    assert training.epochs is not None, "a resolved plan's training"
    if training.early_stopping_patience is None:
        return training.epochs
    least = min(training.epochs, training.early_stopping_patience + 1)
    trained = round(share * max(training.epochs, SHARE_OF_AT_LEAST))
    return max(least, min(training.epochs, trained))


def _sharing(plan: TrainingSpec, share: float) -> TrainingSpec:
    """The plan with the epochs its members are expected to train (expected_epochs)."""
    if share >= 1:
        return plan
    epochs = expected_epochs(plan.training, share)
    return dataclasses.replace(plan, training=dataclasses.replace(plan.training, epochs=epochs))


def planned_updates(plan: TrainingSpec, train_windows: int) -> tuple[int, int]:
    """(updates, validation passes) of one member of a resolved spec: its max_steps, or the
    epochs' batches (the epochs its members are expected to train, see _sharing)."""
    t = plan.training
    updates = t.epochs * epoch_updates(t, train_windows)
    return (updates if t.max_steps is None else min(updates, t.max_steps)), t.epochs


def forward_work(network: NetworkSpec, steps: int, rows: int) -> Work:
    """One forward pass (forward.predict) over `rows` windows of `steps` steps."""
    g, h = network.gates * network.hidden_size, network.hidden_size
    flops = elements = 0.0
    for k in range(network.num_layers):
        inputs = network.input_size if k == 0 else h
        flops += 2 * steps * rows * g * (inputs + h)  # x·W_ihᵀ and h·W_hhᵀ per step
        elements += steps * rows * (g + ROW_ELEMENTS)
    # the head on the last hidden state and the head inputs beside it
    flops += 2 * rows * (h + network.head_inputs) * network.output_size
    return Work(flops, elements, math.ceil(rows / PREDICT_CHUNK))


def step_work(network: NetworkSpec, steps: int, batch: int,
              truncate: tuple[int, int] | None = None) -> Work:
    """One training step (train_step: forward, BPTT full or truncated, clipping, optimizer)
    on a batch of windows of `steps` steps, the head on the last step."""
    forward, backward = bptt_steps(steps, truncate)
    g, h = network.gates * network.hidden_size, network.hidden_size
    flops = elements = 0.0
    for k in range(network.num_layers):
        inputs = network.input_size if k == 0 else h
        flops += 2 * forward * batch * g * (inputs + h)
        # dgates·W_hh, dW_hh, dW_ih, and dx = dgates·W_ih above the first layer
        flops += 2 * backward * batch * g * (2 * h + inputs + (inputs if k else 0))
        elements += (forward + BACKWARD_ELEMENTS * backward) * batch * (g + ROW_ELEMENTS)
    # the head forward and dW_head over the hidden state and the head inputs, dh
    flops += 2 * batch * (2 * (h + network.head_inputs) + h) * network.output_size
    elements += 4 * network.layout.size  # the gradient norm, clipping and the optimizer
    return Work(flops, elements, 1)


def bptt_steps(steps: int, truncate: tuple[int, int] | None) -> tuple[int, int]:
    """(steps run forward, steps run backward) of one window, as backprop._accumulate walks
    it: truncated BPTT runs every k1-step segment forward from k2 steps back and, with the
    head on the last step only, backward through the last window alone."""
    if truncate is None:
        return steps, steps
    k1, k2 = truncate
    forward, start = 0, 0
    while start < steps:
        end = min(start + k1, steps)
        forward += end - max(0, end - k2)
        start = end
    return forward, min(k2, steps)


def _fit_cost(plan: TrainingSpec, lengths: list[int], input_bytes: int, insight: bool,
              forecast_states: bool, extra: tuple[int, int] = (0, 0)) -> Cost:
    """The Cost of one fit of a resolved spec (no cross-validation)."""
    network = _network_for(plan, *extra)
    t, steps, horizon = plan.training, plan.window.input_size, plan.horizon
    train, val = window_counts(lengths, steps, horizon, t.validation_fraction)
    updates, evaluations = planned_updates(plan, train)
    checked = min(val, VALIDATION_CAP)
    if t.max_steps is None:  # full passes
        batch = min(t.batch_size, max(train, 1))
        full, rest = divmod(train, batch)
        epoch = step_work(network, steps, batch, t.truncate) * full
        if rest:
            epoch += step_work(network, steps, rest, t.truncate)
    else:  # sampled batches, eval_every of them a round (the last may be shorter)
        batch = t.batch_size
        epoch = step_work(network, steps, batch, t.truncate) * (updates / evaluations)
    if checked:
        epoch += forward_work(network, steps, checked)
    if insight:
        epoch += _insight_work(network, steps, min(INSIGHT_SAMPLE, train), t.truncate)
    epoch += Work(passes=EPOCH_PASSES)
    members = t.ensemble
    points = sum(lengths)
    built = (val + checked) * (steps + horizon)  # training windows are gathered per batch
    prepare = Work(elements=10 * points + 6 * built + 2 * train, passes=len(lengths) / 10)
    if val and plan.seasonality is None and (plan.season_length or 1) > 1:  # choose_kind
        prepare += Work(passes=CHOOSE_KIND_PASSES * val)
    fixed = prepare
    if val:  # calibration: the members over the validation windows twice, a grid of weights
        fixed += forward_work(network, steps, val) * (2 * members)
        grid = len(weight_grid(seasonal=has_seasonal_naive(plan.season_length or 1, steps)))
        chunks = math.ceil(val / CALIBRATION_CHUNK)
        fixed += Work(elements=GRID_ELEMENTS * grid * val * horizon,
                      passes=GRID_PASSES * grid * chunks)
        if val <= BAGGED_WINDOWS:  # the weights bagged over DRAWS draws (combination.fitted)
            fixed += Work(elements=3 * DRAWS * grid * val)
    if forecast_states:
        fixed += forward_work(network, steps, len(lengths)) * members
    epochs = members * evaluations
    history = epochs * (HISTORY_BYTES_PER_STEP * steps + HISTORY_BYTES_PER_EPOCH
                        + INSIGHT_BYTES_PER_EPOCH * insight)
    memory = _memory(plan, network, lengths, (train, val, checked), input_bytes, history, extra)
    total = epoch * epochs + fixed
    return Cost(total.flops, sum(memory.values()), updates * members, epochs,
                train, val, epoch, fixed, None, memory, prepare)


def _insight_work(network: NetworkSpec, steps: int, sample: int,
                  truncate: tuple[int, int] | None) -> Work:
    """bptt.insight.epoch_insight on `sample` windows."""
    blocks = network.num_layers * network.gates
    work = forward_work(network, steps, sample) + Work(
        flops=blocks * EIGEN_FLOPS * network.hidden_size**3, passes=blocks)
    if truncate is not None and truncate[1] < steps:  # the truncated and the full gradient
        work += step_work(network, steps, sample) + step_work(network, steps, sample, truncate)
    return work


def _cross_validation_cost(spec: TrainingSpec, plan: TrainingSpec, lengths: list[int],
                           input_bytes: int, epochs_share: float,
                           extra: tuple[int, int] = (0, 0)) -> Cost:
    """The cross-validation's fit, on the series cut at the first cutoff, and its forecasts.
    Meanwhile the main fit's model and the whole series (parsed again) are held too."""
    cv = spec.cross_validation
    stride = cv.step or spec.horizon
    cut = [n - spec.horizon - (cv.windows - 1) * stride for n in lengths]
    cut_plan = resolve_spec(cut, dataclasses.replace(spec, cross_validation=None))
    model = _weights_bytes(plan, extra) + len(lengths) * plan.window.input_size * 8
    held = input_bytes + model + 8 * sum(lengths)
    fit = _fit_cost(_sharing(cut_plan, epochs_share), cut, held, insight=False,
                    forecast_states=False, extra=extra)
    forecasts = forward_work(_network_for(cut_plan, *extra), cut_plan.window.input_size,
                             len(lengths)) * (cv.windows * cut_plan.training.ensemble)
    return dataclasses.replace(fit, flops=fit.flops + forecasts.flops,
                               fixed=fit.fixed + forecasts)


def _weights_bytes(plan: TrainingSpec, extra: tuple[int, int] = (0, 0)) -> int:
    """The finished model's weights: every member's."""
    return _network_for(plan, *extra).layout.size * BYTES * plan.training.ensemble


def _memory(plan: TrainingSpec, network: NetworkSpec, lengths: list[int],
            windows: tuple[int, int, int], input_bytes: int, history: int,
            extra: tuple[int, int] = (0, 0)) -> dict[str, int]:
    """The parts of the peak: training, then calibrating on every validation window built
    (training, validation and capped validation `windows`)."""
    t, steps, horizon = plan.training, plan.window.input_size, plan.horizon
    train, val, checked = windows
    columns, head = extra
    # a window gathered: its values and targets, its steps' extra columns and its head inputs
    span = steps + horizon + steps * columns + head
    data = SERIES_BYTES * sum(lengths)
    # the stored series and the index; the capped validation set and (for calibration) every
    # validation window built, x and y float32 and series, level, mean 8 bytes each
    stored = (STORED_BYTES + EXTRA_BYTES * columns) * sum(lengths) + 8 * (len(lengths) + 1)
    kept = stored + INDEX_BYTES * (train + val) + checked * (span * BYTES + 24)
    outputs = network.output_size
    quantiles = outputs // horizon - 1
    # calibration (bptt.calibration), a chunk of validation windows at a time: the chunk, every
    # member's outputs and their median, paths and the weight grid's arrays; besides, every
    # window's residuals (float64, h x Q) and whether its targets are known, and the grid's
    # exact sums (of the few binary exponents the MAE ratios take)
    chunk = min(val, CALIBRATION_CHUNK)
    calibration = chunk * (span * BYTES + 24 + plan.training.ensemble * outputs * BYTES * 2
                           + horizon * (quantiles + 1) * 8 * 3 + horizon * 8 * 4
                           + GRID_BLOCK * 8 * 6)
    calibration += val * horizon * (quantiles * 8 + 1) + len(weight_grid(seasonal=True)) * 64 * 16
    if val <= BAGGED_WINDOWS:  # bagged weights: three (windows, draws) arrays
        calibration += val * DRAWS * 8 * 3
    weights = network.layout.size * BYTES * (WEIGHT_COPIES
                                             + WEIGHT_COPIES_PER_MEMBER * t.ensemble)
    rows = min(max(val, len(lengths), min(INSIGHT_SAMPLE, train), 1), PREDICT_CHUNK)
    batch = t.batch_size if t.max_steps is not None else min(t.batch_size, max(train, 1))
    caches = _cache_bytes(network, steps, batch, rows, t.truncate)
    return {"input": input_bytes, "series": data, "fit": FIT_BYTES, "windows": kept,
            "caches": caches, "weights": weights + history, "calibration": calibration}


def _cache_bytes(network: NetworkSpec, steps: int, batch: int, rows: int,
                 truncate: tuple[int, int] | None) -> int:
    """workspace.scratch's buffers once training (`batch` windows of the BPTT window's steps)
    and forward passes (chunks of `rows` windows of `steps` steps) have both run: each role's
    buffer is as large as its largest use."""
    g, h = network.gates, network.hidden_size
    window = steps if truncate is None else min(truncate[1], steps)
    train, infer = window * batch * h, steps * rows * h  # one (W, B, H) block each
    states = 2 if network.cell != "rnn" else 1  # hs, and aux: the LSTM's c, the GRU's W_hn h
    layers = network.num_layers
    size = layers * (g + states) * max(train, infer)  # gates, hs, aux per layer
    size += train  # dh_top (the kernels keep one step's gate gradients, in `work`)
    size += (layers - 1) * train * (2 if network.dropout else 1)  # dx (and dropped inputs)
    size += batch * (network.output_size + 2 * steps)  # head output, the batch and its transpose
    gh = g * h  # the kernels' own scratch, carved from one buffer per thread
    size += max(work_size(b, h, gh, h if layers > 1 else network.input_size)
                for b in (batch, rows))
    return size * BYTES
