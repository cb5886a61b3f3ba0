"""estimate_cost: the counts follow the kernels, the plan and the arrays a fit really builds.

How close the estimates come to measured time and peak memory is benchmarks/cost.py's to show
(no timings are asserted here)."""

import math
import threading

import numpy as np
import pytest

import bptt
from bptt import Callbacks, NetworkSpec, TrainingSpec, estimate_cost
from bptt.cost import bptt_steps, forward_work, step_work
from bptt.data import index_windows, window_counts
from bptt.trainer import VALIDATION_CAP, capped_validation

LENGTHS = [120, 150, 90]


def _spec(**fields) -> TrainingSpec:
    base = {"horizon": 6, "season_length": 12, "model": {"hidden_size": 8},
            "training": {"epochs": 4, "batch_size": 16, "ensemble": 2}}
    for key, value in fields.items():
        section, _, name = key.partition("__")
        if name:
            base.setdefault(section, {})[name] = value
        else:
            base[section] = value
    return TrainingSpec.from_dict(base)


def _series(lengths=LENGTHS, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {f"s{i}": 10 + np.sin(np.arange(n) / 2) + rng.normal(0, .1, n)
            for i, n in enumerate(lengths)}


def test_a_training_step_counts_the_gemms_as_benchmarks_kernels_does():
    network = NetworkSpec(cell="lstm", hidden_size=8, num_layers=2, output_size=6)
    g, h, steps, batch = 32, 8, 10, 4  # 4 gates x 8
    forward = 2 * steps * batch * g * (1 + h) + 2 * steps * batch * g * (h + h)
    backward = (2 * steps * batch * g * (2 * h + 1)  # layer 0: dgates·W_hh, dW_hh, dW_ih
                + 2 * steps * batch * g * (2 * h + 2 * h))  # layer 1: and dx
    head = 6 * batch * h * 6
    work = step_work(network, steps, batch)
    assert work.flops == forward + backward + head
    assert work.passes == 1
    assert forward_work(network, steps, batch).flops == forward + 2 * batch * h * 6


def test_truncated_bptt_runs_every_segment_forward_and_the_last_window_backward():
    # T = 10, (k1, k2) = (3, 5): windows [0, 3), [1, 6), [4, 9), [5, 10) forward
    assert bptt_steps(10, (3, 5)) == (3 + 5 + 5 + 5, 5)
    assert bptt_steps(10, None) == (10, 10)
    assert bptt_steps(4, (8, 8)) == (4, 4)


def test_updates_and_evaluations_follow_the_resolved_plan():
    spec = _spec()
    cost = estimate_cost(spec, LENGTHS)
    plan = bptt.resolve_spec(LENGTHS, spec)
    train, val = window_counts(LENGTHS, plan.window.input_size, 6, 0.1)
    assert (cost.train_windows, cost.val_windows) == (train, val)
    assert cost.updates == 4 * math.ceil(train / 16) * 2  # epochs x batches x members
    assert cost.evaluations == 4 * 2
    assert cost.flops == pytest.approx(cost.work.flops)
    assert cost.cross_validation is None
    speed = bptt.KernelSpeed(gflops=10.0, gelements=1.0, pass_seconds=1e-4)
    assert cost.seconds(speed) == pytest.approx(speed.seconds(cost.work))
    # the training dominates: epochs x members of (updates, a validation pass)
    assert cost.evaluation.flops * cost.evaluations > 0.9 * cost.flops


def test_each_driver_of_the_cost_moves_it_the_way_the_kernels_do():
    base = estimate_cost(_spec(), LENGTHS)
    wider = estimate_cost(_spec(model__hidden_size=32), LENGTHS)
    assert 10 < wider.flops / base.flops < 16  # the recurrent GEMMs grow with H²
    assert estimate_cost(_spec(training__ensemble=4), LENGTHS).flops == pytest.approx(
        2 * base.flops, rel=0.01)
    assert estimate_cost(_spec(training__epochs=8), LENGTHS).updates == 2 * base.updates
    bigger = estimate_cost(_spec(training__batch_size=128), LENGTHS)
    assert bigger.memory["caches"] > 2 * base.memory["caches"]  # caches grow with the batch
    assert bigger.flops == pytest.approx(base.flops, rel=0.05)  # the same windows per epoch
    held = estimate_cost(_spec(), LENGTHS, input_bytes=10**6)
    assert held.peak_bytes == base.peak_bytes + 10**6
    checked = estimate_cost(_spec(), LENGTHS, callbacks=Callbacks(insight=True,
                                                                  on_checkpoint=print))
    insight = estimate_cost(_spec(), LENGTHS, callbacks=Callbacks(insight=True))
    # insight adds FLOPs and memory; checkpoints nothing that grows with the epochs (they carry
    # no history), and their copies are counted with the weights
    assert checked.flops == insight.flops > base.flops
    assert checked.evaluation == insight.evaluation and checked.memory == insight.memory
    assert insight.memory["weights"] > base.memory["weights"]  # the insight in the history


def test_cross_validation_adds_a_fit_on_the_series_cut_at_its_first_cutoff():
    spec = _spec(cross_validation={"windows": 3, "step": 6})
    cost = estimate_cost(spec, LENGTHS)
    plain = estimate_cost(_spec(), LENGTHS)
    cut = [n - 6 - 2 * 6 for n in LENGTHS]
    alone = estimate_cost(_spec(), cut)
    assert cost.cross_validation is not None
    assert cost.cross_validation.updates == alone.updates
    assert cost.updates == plain.updates + alone.updates
    assert cost.flops > plain.flops + alone.flops  # and a forecast from every origin


def test_a_share_of_the_epochs_costs_that_share_of_the_training_within_early_stoppings_bounds():
    # 600 epochs of which members are expected to train 30 %: 180 epochs of each member, in
    # the fit and in the cross-validation's fit alike; the rest of the work is as it was
    spec = _spec(training={"epochs": 600, "batch_size": 16, "ensemble": 2},
                 cross_validation={"windows": 2, "step": 6})
    bound, share = estimate_cost(spec, LENGTHS), estimate_cost(spec, LENGTHS, epochs_share=0.3)
    assert share.evaluations == 2 * 180 and bound.evaluations == 2 * 600
    assert share.updates == pytest.approx(0.3 * bound.updates)
    assert share.cross_validation.evaluations == 2 * 180
    assert share.fixed == bound.fixed and share.peak_bytes <= bound.peak_bytes
    speed = bptt.DEFAULT_KERNEL_SPEED
    assert 0.25 * bound.seconds(speed) < share.seconds(speed) < 0.35 * bound.seconds(speed)
    assert estimate_cost(spec, LENGTHS, epochs_share=1.0) == bound

    plan = bptt.resolve_spec(LENGTHS, spec).training  # patience 20 by default
    assert plan.epochs == 600 and bptt.expected_epochs(plan, 0.3) == 180
    # a budget shorter than 300 evaluations is expected to run as far as one of 300 would
    shorter = TrainingSpec.from_dict({**spec.to_dict(), "training": {"epochs": 200}}).training
    assert bptt.expected_epochs(shorter, 0.3) == 90
    assert bptt.expected_epochs(shorter, 0.8) == 200  # or to its end
    assert bptt.expected_epochs(plan, 0.01) == 21  # the first epoch, then 20 without progress
    short = TrainingSpec.from_dict({**spec.to_dict(), "training": {"epochs": 15}}).training
    assert bptt.expected_epochs(short, 0.01) == 15  # never more than the budget
    off = TrainingSpec.from_dict({**spec.to_dict(), "training": {
        "epochs": 200, "early_stopping_patience": None}}).training
    assert bptt.expected_epochs(off, 0.3) == 200  # nothing stops a member early
    assert estimate_cost(_spec(training={"epochs": 200, "ensemble": 2,
                                         "early_stopping_patience": None}),
                         LENGTHS, epochs_share=0.3).evaluations == 2 * 200


def test_the_windows_estimate_is_what_the_fit_keeps_of_them():
    # the stored series and the index and the capped validation set: never the training
    # windows, and calibration's validation windows only a chunk at a time (counted with it)
    spec = _spec()
    plan = bptt.resolve_spec(LENGTHS, spec)
    scaled = [v / 10 for v in _series().values()]
    train, val = index_windows(scaled, plan.window.input_size, 6, 0.1)
    data = train.data
    kept = sum(a.nbytes for a in (data.values, data.filled, data.mean, data.offsets))
    kept += sum(a.nbytes for w in (train, val) for a in (w.series, w.start))
    built = capped_validation(val).all()
    kept += sum(a.nbytes for a in (built.x, built.y, built.series, built.level, built.mean))
    assert estimate_cost(spec, LENGTHS).memory["windows"] == kept


def test_a_budget_in_updates_costs_its_updates_whatever_the_windows():
    spec = TrainingSpec.from_dict({"horizon": 6, "model": {"hidden_size": 8},
                                   "training": {"max_steps": 250, "eval_every": 100,
                                                "ensemble": 2}})
    small, large = estimate_cost(spec, LENGTHS), estimate_cost(spec, [5000] * 2000)
    assert small.updates == large.updates == 2 * 250 and small.evaluations == 2 * 3
    # the same updates, the validation pass on at most VALIDATION_CAP windows
    assert large.evaluation.flops < 2 * small.evaluation.flops * VALIDATION_CAP / 100
    default = estimate_cost(TrainingSpec(horizon=6), [5000] * 2000)
    assert default.updates == 5 * 15_000 and default.evaluations == 5 * 150


def test_the_caches_estimate_is_what_the_kernels_keep():
    spec = _spec(model__hidden_size=64, model__num_layers=2, model__cell="gru",
                 training__batch_size=64)
    kept = {}

    def fit_in_a_fresh_thread() -> None:  # scratch buffers are per thread: only this fit's
        from bptt import workspace
        bptt.fit(_series(), spec=spec)
        kept["bytes"] = sum(b.nbytes for b in workspace._local.buffers.values())

    thread = threading.Thread(target=fit_in_a_fresh_thread)
    thread.start()
    thread.join()
    estimated = estimate_cost(spec, LENGTHS).memory["caches"]
    assert kept["bytes"] <= estimated <= 1.2 * kept["bytes"]  # plus the batch's own copies


def test_the_kernel_speed_is_measured_as_three_positive_rates():
    bptt.warm_kernels((np.float32,))
    speed = bptt.measure_kernel_speed(seconds_per_step=0.01)
    assert all(isinstance(v, float) and v > 0 and math.isfinite(v)
               for v in speed.to_dict().values())


def test_input_widths_are_those_of_the_network_fit_trains():
    """Calendar columns (daily dates: cyclic), a historical and a future covariate per step; at
    the head the calendar, a static number, a category's two values and its unknown, and the
    future covariate at each of the 5 horizon steps."""
    from bptt.trainer import _prepare

    lengths = {"a": 60, "b": 80}
    steps = {k: np.arange(n, dtype=float) for k, n in lengths.items()}
    series = [{"id": k, "values": list(5 + np.sin(t)), "start": "2024-01-01", "freq": "D"}
              for k, t in steps.items()]
    covariates = {
        "temp": {"kind": "historical", "values": {k: list(np.cos(t)) for k, t in steps.items()}},
        "promo": {"kind": "future", "values": {k: list((t % 7 == 0) * 1.0) for k, t in
                                               steps.items()}},
        "region": {"kind": "static", "values": {"a": "north", "b": "south"}},
        "size": {"kind": "static", "values": {"a": 1.0, "b": 3.0}}}
    spec = TrainingSpec.from_dict({"horizon": 5, "calendar": "cyclic",
                                   "model": {"hidden_size": 8}, "training": {"epochs": 2}})
    plan = bptt.resolve_spec(list(lengths.values()), spec)
    network = _prepare(series, None, spec, covariates=covariates)[0].network

    widths = bptt.input_widths(plan, lengths, series, covariates)

    assert widths == (network.input_size - 1, network.head_inputs)
    calendar = widths[0] - 2
    assert calendar > 0 and widths[1] == calendar + 1 + 3 + 5
    assert bptt.input_widths(plan, lengths, series) == (calendar, calendar)
    with pytest.raises(bptt.SpecError):  # as fit refuses a cyclic calendar without dates
        bptt.input_widths(plan, lengths)
    plain = estimate_cost(spec, lengths.values())
    wide = estimate_cost(spec, lengths.values(), extra=widths)
    assert wide.flops > plain.flops and wide.peak_bytes > plain.peak_bytes


def test_covariate_widths_count_as_input_widths_does_without_the_values():
    lengths = {"a": 30, "b": 40, "c": 30}
    covariates = {
        "temp": {"kind": "historical", "values": {k: [1.0] * n for k, n in lengths.items()}},
        "promo": {"kind": "future", "values": {k: [0.0, 1.0] * (n // 2)
                                               for k, n in lengths.items()}},
        "region": {"kind": "static", "values": {"a": "north", "b": "south", "c": "north"}},
        "size": {"kind": "static", "values": {"a": 1.0, "b": 2.0, "c": 3.0}}}
    plan = bptt.resolve_spec(list(lengths.values()), _spec(calendar="off"))
    kinds = {name: c["kind"] for name, c in covariates.items()}

    assert bptt.covariate_widths(kinds, plan.horizon, {"region": 2}) == bptt.input_widths(
        plan, lengths, (), covariates) == (2, 3 + 1 + plan.horizon)
