"""End to end against the peer users would pick: bptt's defaults against neuralforecast's LSTM,
GRU and RNN, on benchmarks/accuracy.py's real and synthetic groups, in one run.

Groups: `real` (accuracy.py's real datasets: one fit per dataset, as each has its own season
and horizon) and each of accuracy.py's synthetic groups (`trend+season`, `ar2`,
`level shifts`, `mult. season`: one fit each). Every method fits one global model per dataset
on all its series and forecasts the held-out horizon: the last h points of every series (with
--origins N, the N rolling origins of accuracy.py, whose scores are averaged per series). A
group's seconds are the wall time of fitting and forecasting all its datasets (per origin);
its MASE is the mean over its series, MASE as accuracy.py computes it.

- bptt: its defaults, as accuracy.py's fit_bptt runs them: only horizon, season length and
  quantiles (0.1, 0.5, 0.9) set, plus training.threads when --threads is above 1.
- nf LSTM / GRU / RNN, default: neuralforecast's documented defaults (read from the model
  classes at run time and printed), with Lightning's progress bar, logger and checkpoints off.
- nf LSTM / GRU / RNN, best: the best setting of a 2 x 2 x 2 grid over input size, encoder
  hidden size and max_steps, chosen per dataset on a validation split of the training data
  (fit on all but the last h training points, lowest mean MASE on those h), then refitted on
  the whole training data. The seconds are the chosen setting's fit and forecast only; the
  grid search's own time is printed beside it. The setting chosen per dataset is printed.
- nf best: per dataset, whichever of the three best-of-grid models has the lowest validation
  MASE: the setting a user tuning neuralforecast this way would run.

Target (issue 21): bptt's default is at least 5x faster than neuralforecast's best setting, at
equal or better mean MASE, in every group. The verdict is printed against nf best and, more
strictly, against each model's best-of-grid.

Threads: torch.set_num_threads(n) for neuralforecast; training.threads = n for bptt; and
threadpoolctl holds every BLAS and OpenMP pool of the process (numpy's, scipy's, torch's) to n
while that thread count runs. Kernels are compiled and torch warmed up before timing.

    python benchmarks/peers.py                 # every group, 1 thread (long: about an hour
                                               # per group on a loaded 2-core machine)
    python benchmarks/peers.py --groups real ar2 --threads 1 2
    python benchmarks/peers.py --quick         # smoke run: nile and 2 short series, tiny steps
    python benchmarks/peers.py --groups real --datasets co2 nile  # part of a group

Numbers depend on the machine and its load (printed): rerun it rather than trust a copy.
"""

import argparse
import inspect
import logging
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from accuracy import full_synthetic, mase, real, seen_at
from threadpoolctl import threadpool_limits

import bptt

try:
    import neuralforecast
    import neuralforecast.models
    import pandas as pd
    import torch
    from neuralforecast import NeuralForecast
except ImportError:  # reported by main: pip install -e '.[bench]'
    neuralforecast = None

QUANTILES = (0.1, 0.5, 0.9)  # what accuracy.py's fit_bptt asks bptt for
NF_MODELS = ("LSTM", "GRU", "RNN")
# The documented defaults worth writing down (the rest: neuralforecast's signature).
SHOWN_DEFAULTS = ("input_size", "encoder_n_layers", "encoder_hidden_size", "decoder_hidden_size",
                  "decoder_layers", "max_steps", "learning_rate", "batch_size",
                  "windows_batch_size", "scaler_type", "loss", "early_stop_patience_steps")
# The grid: input size as a multiple of the horizon (the default, -1, means 3 h), encoder
# hidden size (neuralforecast's defaults are 128 for LSTM and RNN, 200 for GRU) and max_steps
# (default 1000). Both a near-default and a small, fast corner: the target is against the best
# setting, fast or slow.
GRID = {"input_size": (2, 4), "encoder_hidden_size": (32, 128), "max_steps": (200, 1000)}
QUICK_GRID = {"input_size": (2, 4), "encoder_hidden_size": (16, 32), "max_steps": (5, 10)}
QUICK_DEFAULT_STEPS = 10  # --quick replaces the default 1000 steps
TRAINER = {"enable_progress_bar": False, "logger": False, "enable_model_summary": False,
           "enable_checkpointing": False, "accelerator": "cpu", "devices": 1}
SPEEDUP = 5.0


@dataclass
class Run:
    """One method's fits over a group's datasets: seconds (per origin) and MASE per series."""

    seconds: float = 0.0
    mase: dict[str, list[float]] = field(default_factory=dict)  # series -> one per origin
    settings: list[str] = field(default_factory=list)  # one per dataset

    def mean_mase(self) -> float:
        """Mean over series of each series' mean over the origins (NaN if any failed)."""
        values = [float(np.mean(v)) for v in self.mase.values()]
        return float(np.mean(values)) if values else math.nan


# ---------------------------------------------------------------- the methods


def fit_bptt(train: dict[str, np.ndarray], h: int, m: int, threads: int = 1
             ) -> dict[str, np.ndarray]:
    """bptt's defaults (horizon, season length and quantiles set) on all series at once."""
    spec = {"horizon": h, "season_length": m, "quantiles": list(QUANTILES)}
    if threads > 1:
        spec["training"] = {"threads": threads}
    result = bptt.fit(train, spec=bptt.TrainingSpec.from_dict(spec))
    return {f["id"]: np.asarray(f["mean"]) for f in bptt.forecast(result.model)}


def fit_nf(train: dict[str, np.ndarray], h: int, m: int, model: str, setting: dict
           ) -> dict[str, np.ndarray]:
    """One neuralforecast model, its defaults but for `setting`, on all series at once (the
    season length m is not one of its arguments: the networks learn it from the windows)."""
    frame = pd.concat([pd.DataFrame({"unique_id": name, "ds": np.arange(len(y)), "y": y})
                       for name, y in train.items()], ignore_index=True)
    network = getattr(neuralforecast.models, model)(h=h, **setting, **TRAINER)
    fitted = NeuralForecast(models=[network], freq=1)
    fitted.fit(frame)
    out = fitted.predict().sort_values(["unique_id", "ds"])
    return {name: rows[model].to_numpy(float) for name, rows in out.groupby("unique_id")}


def timed(fit: Callable, train: dict[str, np.ndarray], h: int, m: int
          ) -> tuple[dict[str, np.ndarray], float, str]:
    """Forecasts, wall seconds and an error note ('' when it worked; no forecasts if not)."""
    start = time.perf_counter()
    try:
        forecasts, note = fit(train, h, m), ""
    except Exception as error:  # one failing fit must not end the run; it is reported
        forecasts, note = {}, f"{type(error).__name__}: {error}"
    return forecasts, time.perf_counter() - start, note


def score(forecasts: dict, train: dict, test: dict, m: int) -> dict[str, float]:
    """MASE per series (NaN where a forecast is missing)."""
    return {name: mase(test[name], forecasts[name], train[name], m) if name in forecasts
            else math.nan for name in train}


def grid_settings(grid: dict, h: int) -> list[dict]:
    """Every setting of the grid, input sizes as multiples of h made absolute."""
    return [{"input_size": k * h, "encoder_hidden_size": hidden, "max_steps": steps}
            for k in grid["input_size"] for hidden in grid["encoder_hidden_size"]
            for steps in grid["max_steps"]]


def choose(model: str, series: dict[str, np.ndarray], h: int, m: int, grid: dict
           ) -> tuple[dict | None, float, float]:
    """The grid setting with the lowest mean MASE on the validation split (each series' last
    h training points), its validation MASE and the search's seconds."""
    fit_part = {name: y[:-h] for name, y in series.items()}
    held = {name: y[-h:] for name, y in series.items()}
    best, best_mase, seconds = None, math.inf, 0.0
    for setting in grid_settings(grid, h):
        forecasts, spent, note = timed(partial(fit_nf, model=model, setting=setting),
                                       fit_part, h, m)
        seconds += spent
        value = float(np.mean(list(score(forecasts, fit_part, held, m).values())))
        log(f"    grid {model} {describe(setting)}: validation MASE {value:.3f}, "
            f"{spent:.1f} s {note}")
        if value < best_mase:  # NaN (a failed fit) never wins
            best, best_mase = setting, value
    return best, best_mase, seconds


# ---------------------------------------------------------------- one group


@dataclass
class Choice:
    """A dataset's chosen grid setting for one model."""

    dataset: str
    model: str
    setting: dict | None
    validation_mase: float
    search_seconds: float


def run_group(datasets: list, origins: int, threads: int, grid: dict, default_steps: int | None
              ) -> tuple[dict[str, Run], list[Choice]]:
    """Fit and score every method on a group's datasets; the runs by method and the choices."""
    methods = [f"nf {x} {kind}" for kind in ("default", "best") for x in NF_MODELS]
    runs = {method: Run() for method in ["bptt default", *methods, "nf best"]}
    choices = []
    for dataset in datasets:
        h, m = dataset.h, dataset.m
        # Chosen once per dataset, on data before every held-out horizon (the earliest
        # origin's training part), and used at every origin.
        earliest = {name: seen_at(y, h, origins, 0)[:-h] for name, y in dataset.series.items()}
        chosen, validation = {}, {}
        for model in NF_MODELS:
            setting, value, seconds = choose(model, earliest, h, m, grid)
            chosen[model], validation[model] = setting, value  # inf when every fit failed
            choices.append(Choice(dataset.name, model, setting, value, seconds))
        overall = min(NF_MODELS, key=validation.__getitem__)
        defaults = {} if default_steps is None else {"max_steps": default_steps}
        fits = {"bptt default": partial(fit_bptt, threads=threads)}
        for model in NF_MODELS:
            fits[f"nf {model} default"] = partial(fit_nf, model=model, setting=defaults)
            fits[f"nf {model} best"] = partial(fit_nf, model=model,
                                               setting=chosen[model] or defaults)
        for k in range(origins):
            seen = {name: seen_at(y, h, origins, k) for name, y in dataset.series.items()}
            train = {name: y[:-h] for name, y in seen.items()}
            test = {name: y[-h:] for name, y in seen.items()}
            for method, fit in fits.items():
                forecasts, seconds, note = timed(fit, train, h, m)
                scores = score(forecasts, train, test, m)
                log(f"  {dataset.name} origin {k + 1}/{origins} {method}: {seconds:.1f} s, "
                    f"mean MASE {np.mean(list(scores.values())):.3f} {note}")
                targets = [method] + (["nf best"] if method == f"nf {overall} best" else [])
                for target in targets:
                    runs[target].seconds += seconds / origins
                    for name, value in scores.items():
                        runs[target].mase.setdefault(name, []).append(value)
        for model in NF_MODELS:
            runs[f"nf {model} best"].settings.append(describe(chosen[model]))
            runs[f"nf {model} default"].settings.append(
                "defaults" if default_steps is None else f"defaults, max_steps {default_steps}")
        runs["nf best"].settings.append(f"{overall}: {describe(chosen[overall])}")
        runs["bptt default"].settings.append("defaults")
    return runs, choices


def describe(setting: dict | None) -> str:
    """A grid setting in a few words."""
    if setting is None:
        return "none (every grid fit failed)"
    return (f"input {setting['input_size']}, hidden {setting['encoder_hidden_size']}, "
            f"steps {setting['max_steps']}")


# ---------------------------------------------------------------- report


def say(*lines: str) -> None:
    """Lines of the report on stdout, flushed (a long run's log shows them as they come)."""
    print(*lines, sep="\n", flush=True)


def log(line: str) -> None:
    """Progress on stderr, so that stdout holds the tables alone."""
    print(line, file=sys.stderr, flush=True)


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table cell; n/a for NaN."""
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def fmt_seconds(value: float) -> str:
    """Seconds for a table cell: tenths, or milliseconds below one second (a --quick fit of a
    few steps takes less than a twentieth of one, which tenths would print as 0.0)."""
    return fmt(value, 1 if value >= 1 else 3)


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    """CPU model, cores and library versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"neuralforecast {neuralforecast.__version__}, torch {torch.__version__}, "
            f"numpy {np.__version__}")


def grid_text(grid: dict) -> str:
    """The grid in words."""
    sizes = ", ".join(f"{k}h" for k in grid["input_size"])
    hidden = ", ".join(map(str, grid["encoder_hidden_size"]))
    steps = ", ".join(map(str, grid["max_steps"]))
    return (f"input_size in {{{sizes}}} x encoder_hidden_size in {{{hidden}}} x max_steps in "
            f"{{{steps}}}")


def defaults_table() -> list[str]:
    """neuralforecast's documented defaults of each model, read from its signatures."""
    lines = ["| model | " + " | ".join(SHOWN_DEFAULTS) + " |",
             "|---|" + "---|" * len(SHOWN_DEFAULTS)]
    for model in NF_MODELS:
        params = inspect.signature(getattr(neuralforecast.models, model)).parameters
        cells = [str(params[name].default) if name in params else "-" for name in SHOWN_DEFAULTS]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines + ["", "input_size -1 is 3 x horizon (neuralforecast's docstring); no early "
                        "stopping and no validation split by default; random_seed 1."]


GROUP_HEAD = ["| group | threads | method | seconds (fit + forecast) | mean MASE | setting |",
              "|---|---|---|---|---|---|"]


def group_rows(group: str, threads: int, runs: dict[str, Run]) -> list[str]:
    """A group's rows: per method its seconds, mean MASE and setting (per dataset)."""
    lines = []
    for method, run in runs.items():
        settings = sorted(set(run.settings))
        setting = settings[0] if len(settings) == 1 else (
            "per dataset: " + "; ".join(run.settings))
        lines.append(f"| {group} | {threads} | {method} | {fmt_seconds(run.seconds)} | "
                     f"{fmt(run.mean_mase())} | {setting} |")
    return lines


def choice_table(choices: list[tuple[int, Choice]]) -> list[str]:
    """The setting chosen per dataset and model, its validation MASE and the search's time."""
    lines = ["| dataset | threads | model | chosen setting | validation MASE | grid seconds |",
             "|---|---|---|---|---|---|"]
    for threads, c in choices:
        lines.append(f"| {c.dataset} | {threads} | {c.model} | {describe(c.setting)} | "
                     f"{fmt(c.validation_mase)} | {fmt(c.search_seconds, 1)} |")
    return lines


def verdict(results: list[tuple[str, int, dict[str, Run]]]) -> list[str]:
    """The target, per group: bptt >= 5x faster than nf best at equal or better mean MASE."""
    lines = ["| group | threads | bptt s | nf best s | speed-up | bptt MASE | nf best MASE | "
             "target met | also against every model's best |", "|---|" + "---|" * 8]
    every = True
    for group, threads, runs in results:
        b = runs["bptt default"]
        met = _beats(b, runs["nf best"])
        strict = all(_beats(b, runs[f"nf {x} best"]) for x in NF_MODELS)
        every = every and met
        nf = runs["nf best"]
        lines.append(f"| {group} | {threads} | {fmt_seconds(b.seconds)} | "
                     f"{fmt_seconds(nf.seconds)} | "
                     f"{fmt(nf.seconds / b.seconds, 1)}x | {fmt(b.mean_mase())} | "
                     f"{fmt(nf.mean_mase())} | {'yes' if met else 'no'} | "
                     f"{'yes' if strict else 'no'} |")
    lines += ["", f"Target (bptt's default >= {SPEEDUP:g}x faster than neuralforecast's best "
                  f"setting at equal or better mean MASE, in every group): "
                  f"{'met' if every else 'not met'}"]
    return lines


def _beats(bptt_run: Run, nf_run: Run) -> bool:
    b, n = bptt_run.mean_mase(), nf_run.mean_mase()
    fast = nf_run.seconds >= SPEEDUP * bptt_run.seconds
    return math.isfinite(b) and (not math.isfinite(n) or b <= n) and fast


# ---------------------------------------------------------------- main


def groups(seed: int, quick: bool) -> dict[str, list]:
    """The groups by name: accuracy.py's synthetic groups (quick: 2 series each), then `real`
    (quick: nile alone). Synthetic first: one fit each, where `real` has one per dataset."""
    out = {}
    for dataset in full_synthetic(seed):
        if quick:
            dataset.series = dict(list(dataset.series.items())[:2])
        out[dataset.name] = [dataset]
    return out | {"real": real(quick)}


def warm_up() -> None:
    """Compile (or load) bptt's kernels and run torch once, so that timings exclude both."""
    y = 50 + 10 * np.sin(np.arange(80) * 2 * np.pi / 12)
    fit_bptt({"warm": y}, 4, 12, 1)
    fit_nf({"warm": y}, 4, 12, "RNN", {"max_steps": 2})


def quiet() -> None:
    """Lightning's banners and neuralforecast's warnings would bury the progress lines."""
    warnings.simplefilter("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; exit status 1 if any fit failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="few series (nile; 2 per synthetic group), neuralforecast with "
                             "tiny steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic series")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="thread counts to run at, one after another (default 1)")
    parser.add_argument("--groups", nargs="+",
                        help="groups to run (default: all, the synthetic ones first; "
                             "--quick: real, i.e. nile)")
    parser.add_argument("--datasets", nargs="+",
                        help="only these datasets of the chosen groups (e.g. part of `real`, "
                             "to split a long run over processes: its rows are then that "
                             "part's)")
    parser.add_argument("--origins", type=int, default=1,
                        help="rolling origins per series, as accuracy.py's (default 1: the last "
                             "h points)")
    args = parser.parse_args(argv)
    if neuralforecast is None:
        print("neuralforecast is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    available = groups(args.seed, args.quick)
    chosen = args.groups or (["real"] if args.quick else list(available))
    unknown = [g for g in chosen if g not in available]
    if unknown:
        parser.error(f"unknown groups {unknown}; choose from {list(available)}")
    if args.datasets:
        names = {d.name for g in chosen for d in available[g]}
        if missing := set(args.datasets) - names:
            parser.error(f"unknown datasets {sorted(missing)}; the groups have {sorted(names)}")
        available = {g: [d for d in available[g] if d.name in args.datasets] for g in chosen}
        chosen = [g for g in chosen if available[g]]
    grid = QUICK_GRID if args.quick else GRID
    default_steps = QUICK_DEFAULT_STEPS if args.quick else None

    quiet()
    began, load_before = time.perf_counter(), load()
    torch.set_num_interop_threads(1)  # Lightning on CPU runs one op at a time
    say(f"## End to end against neuralforecast (seed {args.seed}, {args.origins} origin(s)"
        f"{', quick' if args.quick else ''})\n")
    say(f"Machine: {machine()}. Load average (1/5/15 min) at the start: {load_before}.\n")
    say("neuralforecast's documented defaults (the `nf ... default` rows"
        f"{f'; --quick runs {QUICK_DEFAULT_STEPS} steps' if args.quick else ''}):\n")
    say(*defaults_table())
    say(f"\nGrid (`nf ... best` rows): {grid_text(grid)}, the other arguments at their "
        "defaults; chosen per dataset and model by mean MASE on the last h points of the "
        "training part, then refitted on all of it. `nf best`: per dataset, the model whose "
        "chosen setting has the lowest validation MASE. Seconds: per origin, all of a group's "
        "datasets; the grid search's seconds are in the table after this one.\n")
    say(*GROUP_HEAD)  # rows follow as groups finish, so that a stopped run still shows them
    results, choices = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            warm_up()
            for group in chosen:
                log(f"{group}, {threads} thread(s); load {load()}")
                runs, picked = run_group(available[group], args.origins, threads, grid,
                                         default_steps)
                results.append((group, threads, runs))
                choices += [(threads, c) for c in picked]
                say(*group_rows(group, threads, runs))

    say(f"\nLoad average (1/5/15 min) at the end: {load()}.")
    say("\n### Settings chosen on the validation split\n")
    say(*choice_table(choices))
    say("\n### Verdict\n")
    say(*verdict(results))
    say(f"\nTotal wall time: {time.perf_counter() - began:.1f} s")
    failed = [r for _, _, runs in results for r in runs.values()
              if not math.isfinite(r.mean_mase())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
