"""Admission control on cost: every job's compute, memory and duration are estimated at submit
(bptt.estimate_cost, from the series' lengths and the resolved spec, as the worker will run it)
and a job over a limit is refused with 422 naming the fields that drive it, the estimate beside
the limit. Sweeps are checked trial by trial, each trial as the job it becomes. The limits bound
the worst case, every planned epoch; the job's expected duration, with early stopping, is
estimated beside it for people (service.api.estimates).

What drives a cost is found by asking the estimator again with one field at a time put back to
its default: a field whose own value multiplies the estimate by DRIVER_FACTOR or more is named,
with that factor. When even the defaults would be over the limit, the data itself is named.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import bptt
from service.api import estimates
from service.settings import Settings
from service.store.epoch_shares import EpochShares
from service.store.worker_speed import Speed

# What a worker holds for a job's series besides the engine's own arrays: the stored JSON
# parsed into lists of Python floats (32 bytes a value), the float64 copy the forecast states
# are computed from (8) and, while it is decoded, the JSON text (about 8).
INPUT_BYTES_PER_POINT = 48

# What a worker does each epoch besides the fit: it stores the epoch's metrics row and the
# checkpoint in one fenced transaction (workers/attempts.py). About 3 ms an epoch on the
# embedded SQLite store (benchmarks/cost.py: a 150-epoch RNN 16 took 0.7 s of CPU in the
# worker against 0.32 s in a bare fit), counted as kernel passes (about 100 us each) so that it
# joins the estimate's seconds; it is no kernel work, so it scales only roughly with the speed.
STORE_WORK_PER_EPOCH = bptt.Work(passes=30)

# Fields that multiply a job's cost, each with the value it is compared at: its default (None:
# the engine's choice from the data).
DRIVERS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("window", "input_size"), None),
    (("model", "hidden_size"), None),
    (("model", "num_layers"), 1),
    (("training", "batch_size"), 32),
    (("training", "ensemble"), 5),
    (("training", "epochs"), None),
    (("training", "max_steps"), None),
    (("cross_validation",), None),
)
DRIVER_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class Limit:
    """One limit on a job's cost: its name in messages, its setting, how to read and show it."""

    what: str
    setting: str

    def value(self, cost: bptt.Cost, speed: bptt.KernelSpeed) -> float:
        if self.setting == "max_job_flops":
            return cost.flops
        if self.setting == "max_job_memory":
            return cost.peak_bytes
        return cost.seconds(speed)

    def show(self, value: float) -> str:
        if self.setting == "max_job_flops":
            return f"{value:.3g} FLOPs"
        if self.setting == "max_job_memory":
            return estimates.show_bytes(value)
        return estimates.show_seconds(value)


@dataclasses.dataclass(frozen=True)
class JobInputs:
    """What a job's steps hold besides the series' lengths: `per_point`, the values each step
    holds in the stored series (its own and its dynamic covariates'); `extra`, the network's
    input columns per step besides the value and its head inputs (bptt.input_widths: the
    calendar's and the covariates')."""

    per_point: int = 1
    extra: tuple[int, int] = (0, 0)


LIMITS = (Limit("compute", "max_job_flops"), Limit("peak memory", "max_job_memory"),
          Limit("duration on these workers", "job_time_limit_seconds"))


def job_cost(spec: bptt.TrainingSpec, lengths: list[int],
             plan: bptt.TrainingSpec | None = None, epochs_share: float = 1.0, *,
             inputs: JobInputs = JobInputs()) -> bptt.Cost:
    """What the job will cost a worker, as a worker runs it: insight and a checkpoint every
    epoch, forecast states after, the series held as parsed JSON meanwhile; every planned epoch
    or, with `epochs_share`, that share of each member's (bptt.expected_epochs). `inputs`: what
    each step holds (its covariates' values, held as the values are) and the network's extra
    inputs."""
    callbacks = bptt.Callbacks(insight=True, on_checkpoint=lambda _: None)
    cost = bptt.estimate_cost(spec, lengths, plan=plan, callbacks=callbacks,
                              input_bytes=INPUT_BYTES_PER_POINT * inputs.per_point * sum(lengths),
                              forecast_states=True, epochs_share=epochs_share,
                              extra=inputs.extra)
    return dataclasses.replace(cost, evaluation=cost.evaluation + STORE_WORK_PER_EPOCH)


def admit(spec: bptt.TrainingSpec, plan: bptt.TrainingSpec, lengths: list[int],
          settings: Settings, speed: Speed, shares: EpochShares, *,
          spec_loc: tuple[str, ...] = (), inputs: JobInputs = JobInputs()
          ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the estimate to store with the job, []) when the job is within every limit, else
    (None, errors naming what drives it, located under `spec_loc`). `shares`: what the
    tenant's jobs trained of their epochs, for the expected duration; `inputs`: what each
    step holds (job_cost)."""
    # the evaluation rounds of a budget in updates, when the request says how often (left
    # open, bptt makes at most 300 of them)
    if spec.training.eval_every is not None and plan.training.epochs > settings.max_epochs:
        t = plan.training
        return None, [{"loc": [*spec_loc, "training", "eval_every"],
                       "msg": f"max_steps {t.max_steps} evaluated every {t.eval_every} updates "
                              f"make {t.epochs} evaluation rounds, more than "
                              f"{settings.max_epochs}: evaluate less often"}]
    cost = job_cost(spec, lengths, plan, inputs=inputs)
    over = [(limit, limit.value(cost, speed.speed)) for limit in LIMITS
            if limit.value(cost, speed.speed) > getattr(settings, limit.setting)]
    if not over:
        share = shares.for_plan(plan)
        expected = (job_cost(spec, lengths, plan, share.share, inputs=inputs)
                    if share.share < 1 else cost)
        return estimates.document(cost, expected, speed, share), []
    return None, _drivers(spec, lengths, settings, speed.speed, over, spec_loc, inputs)


def summary(errors: list[dict[str, Any]]) -> str:
    """The detail of a refusal: the first reason, and the fields named."""
    fields = ", ".join(".".join(map(str, e["loc"])) for e in errors)
    return f"The job's estimated cost is over a limit ({errors[0]['msg']}). Named: {fields}."


def _drivers(spec: bptt.TrainingSpec, lengths: list[int], settings: Settings,
             speed: bptt.KernelSpeed, over: list[tuple[Limit, float]],
             spec_loc: tuple[str, ...], inputs: JobInputs) -> list[dict[str, Any]]:
    """One error per field that drives an exceeded limit (and the data, if the defaults would
    exceed it too), each with the estimate, the limit and the field's own factor."""
    # without a warm start's sizes: what the fields themselves change
    fresh = _cost_of(spec.to_dict(), lengths, inputs)
    assert fresh is not None  # the spec itself was valid
    messages: dict[tuple[str, ...], str] = {}
    for path, default in DRIVERS:
        data = _with(spec.to_dict(), path, default)
        other = None if data == spec.to_dict() else _cost_of(data, lengths, inputs)
        if other is None:
            continue
        driven = [(limit, value, limit.value(fresh[0], speed)
                   / max(limit.value(other[0], speed), 1e-300)) for limit, value in over]
        driven = [(limit, value, factor) for limit, value, factor in driven
                  if factor >= DRIVER_FACTOR]
        if driven:
            factors = _and([f"{factor:.3g}x" for _, _, factor in driven])
            them = "it" if len(driven) == 1 else "them"
            estimates = _over([(limit, value) for limit, value, _ in driven], settings)
            messages[path] = (f"{estimates}; {_value(fresh, path)} makes {them} {factors} "
                              f"what {_value(other, path)} would")
    reset = spec.to_dict()  # every named field at its default: is the data alone too much?
    for path, default in DRIVERS:
        if path in messages:
            _with(reset, path, default)
    defaults = _cost_of(reset, lengths, inputs)
    still = [(limit, value) for limit, value in over if defaults is None
             or limit.value(defaults[0], speed) > getattr(settings, limit.setting)]
    if still:
        which = "even with the named fields at their defaults" if messages else "for this data"
        dynamic = inputs.per_point - 1
        covariates = (f" with {dynamic} dynamic covariate{'s' * (dynamic > 1)}"
                      if dynamic else "")
        messages[("series",)] = (f"{_over(still, settings)} {which}: {len(lengths)} series, "
                                 f"{sum(lengths)} values{covariates}, "
                                 f"{fresh[0].train_windows} training windows")
    return [{"loc": [*((*spec_loc, *path) if path != ("series",) else path)], "msg": text}
            for path, text in messages.items()]


def _over(over: list[tuple[Limit, float]], settings: Settings) -> str:
    """`estimated compute 3e+17 FLOPs is over the limit of 1e+15 FLOPs (BPTT_MAX_JOB_FLOPS)`,
    or several estimates with their limits."""
    def limit_of(limit: Limit) -> tuple[str, str]:
        return limit.show(getattr(settings, limit.setting)), f"BPTT_{limit.setting.upper()}"

    if len(over) == 1:
        limit, value = over[0]
        shown, name = limit_of(limit)
        return f"estimated {limit.what} {limit.show(value)} is over the limit of {shown} ({name})"
    return "estimated " + _and([
        f"{limit.what} {limit.show(value)} (limit {', '.join(limit_of(limit))})"
        for limit, value in over]) + " are over their limits"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _with(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """`data` (a spec as a dict, changed in place) with the field at `path` set to value."""
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _cost_of(data: dict[str, Any], lengths: list[int], inputs: JobInputs
             ) -> tuple[bptt.Cost, dict[str, Any]] | None:
    """(cost, plan as a dict) of a variant spec; None if it is not a valid job on this data."""
    try:
        spec = bptt.TrainingSpec.from_dict(data)
        return (job_cost(spec, lengths, inputs=inputs),
                bptt.resolve_spec(lengths, spec).to_dict())
    except (bptt.SpecError, bptt.DataError):
        return None


def _value(variant: tuple[bptt.Cost, dict[str, Any]], path: tuple[str, ...]) -> str:
    """How a field reads in a message: its value in the plan the cost was made for."""
    plan = variant[1]
    if path == ("cross_validation",):
        return "cross-validation" if plan["cross_validation"] else "no cross-validation"
    return f"{path[-1]} {plan[path[0]][path[1]]}"
