"""The training spec: every choice of a fit, with defaults, as one typed object.

The same object is what the HTTP API accepts as JSON (`TrainingSpec.from_dict`), so a library
user and a service user describe a job the same way. Fields left as None are chosen from the
data by `bptt.defaults`. Invalid input raises SpecError listing every problem with its location,
e.g. [{"loc": ["training", "epochs"], "msg": "must be at least 1"}].
"""

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

from .calendar import CalendarError, parse_freq
from .cells import CELLS
from .network import NONLINEARITIES
from .seasons import season_from_freq

CELL_NAMES = tuple(CELLS)  # "rnn", "lstm", "gru"
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "plateau")
SCALERS = ("standard", "robust", "minmax", "none")
SEASONALITIES = ("none", "additive", "multiplicative")  # bptt.seasonality's kinds
TRAINING_LOSSES = ("mse", "mae", "huber")  # quantiles add a pinball part on top (see fit)
CALENDAR_CHOICES = ("auto", "cyclic", "onehot", "off")  # bptt.calendar_inputs' encodings
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)  # the 80 % interval and the median


class SpecError(ValueError):
    """A spec failed validation; `errors` is a list of {"loc": [...], "msg": "..."}."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


@dataclass(frozen=True)
class ModelConfig:
    """The network: cell type and size."""

    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    hidden_size: int | None = None  # None: 32, or 64 for large data (see defaults)
    num_layers: int = 1
    dropout: float = 0.0  # between stacked layers, shared through time
    nonlinearity: str = "tanh"  # vanilla RNN only


@dataclass(frozen=True)
class WindowConfig:
    """How many past steps the network reads for one forecast."""

    input_size: int | None = None  # None: from horizon and season length (see defaults)


@dataclass(frozen=True)
class ClipConfig:
    """Gradient clipping; both None disables it."""

    max_norm: float | None = 1.0
    max_value: float | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation loop. Its budget is `max_steps` optimizer updates per ensemble member,
    on batches sampled balanced across series, with the validation loss evaluated every
    `eval_every` updates (early stopping and the schedule count these evaluations, "epochs"),
    or `epochs` full passes over the training windows, never both. Left open: chosen from the
    data, at most 15,000 updates."""

    # The budget: `epochs` full passes over the training windows, or `max_steps` optimizer
    # updates per member on batches sampled balanced across series, the validation loss
    # evaluated every `eval_every` updates (an "epoch" is then such a round). Neither given:
    # max_steps and eval_every chosen from the data (see defaults). A resolved spec carries
    # epochs = ceil(max_steps / eval_every) rounds besides them.
    epochs: int | None = None
    max_steps: int | None = None
    eval_every: int | None = None
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: 3e-3 (adam/adamw/rmsprop), 3e-2 (sgd family)
    # None: the optimizer's own default, as in PyTorch (0.01 for adamw, 0 for the others)
    weight_decay: float | None = None
    schedule: str = "plateau"  # on validation loss: halve after 8 epochs without progress
    loss: str = "mse"  # for the mean forecast; quantiles, if asked for, add a pinball part
    huber_delta: float = 1.0
    clip: ClipConfig = field(default_factory=ClipConfig)
    truncate: tuple[int, int] | None = None  # (k1, k2) for truncated BPTT; None: full BPTT
    validation_fraction: float = 0.1  # of each series' latest windows
    early_stopping_patience: int | None = 20  # epochs without validation progress; None: off
    seed: int = 0  # member k of the ensemble uses seed + k
    threads: int = 1
    ensemble: int = 5  # members trained from different seeds; forecasts take their median


@dataclass(frozen=True)
class CrossValidationConfig:
    """Rolling-origin backtesting (bptt.backtest.cross_validate): `windows` forecast origins,
    `step` points apart, the last one `horizon` points before each series' end."""

    windows: int = 3  # 1..20
    step: int | None = None  # None: the horizon (test windows side by side)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a fit needs besides the series themselves."""

    horizon: int
    season_length: int | None = None  # None: from freq, else no seasonality
    freq: str | None = None  # a pandas-style frequency ("MS", "D", "h", ...) to infer seasons
    # Prediction intervals by default: a forecast without its uncertainty invites over-trust,
    # and the pinball part costs little. () or None: the mean only.
    quantiles: tuple[float, ...] | None = DEFAULT_QUANTILES
    scaler: str = "standard"  # per series: standard, robust, minmax or none
    # The seasonality taken out of each series before scaling and put back after forecasting
    # (bptt.seasonality): "none", "additive" or "multiplicative" (log, on positive series).
    # None: chosen on the validation windows, and recorded in the model.
    seasonality: str | None = None
    # Calendar features of each step (month of the year, day of the week, hour of the day, as
    # the frequency resolves them) as known-future inputs (bptt.calendar_inputs): "cyclic"
    # (a sin, cos pair per cycle), "onehot" (a column per month, weekday, hour), "off", or
    # "auto": the default encoding where the series have date starts and a date frequency is
    # known, off where not. A trained model's spec holds what was used ("auto" resolved).
    calendar: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    cross_validation: CrossValidationConfig | None = None  # None: no backtest asked for

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingSpec":
        """Build and validate a spec from JSON-like data; unknown fields are errors."""
        errors: list[dict] = []
        spec = _build(cls, data, [], errors)
        if not errors:
            errors = spec.problems()
        if errors:
            raise SpecError(errors)
        return spec

    def to_dict(self) -> dict:
        """Plain JSON-ready data (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    def problems(self) -> list[dict]:
        """Every rule this spec breaks, as {"loc", "msg"} entries (empty when valid)."""
        out: list[dict] = []

        def check(ok: bool, loc: list, msg: str) -> None:
            if not ok:
                out.append({"loc": loc, "msg": msg})

        m, w, t = self.model, self.window, self.training
        check(self.horizon >= 1, ["horizon"], "must be at least 1")
        check(self.season_length is None or self.season_length >= 1, ["season_length"],
              "must be at least 1")
        if self.freq is not None:
            # a calendar frequency (an integer step is a series' grid, not a season)
            check(season_from_freq(self.freq) is not None and _is_calendar_freq(self.freq),
                  ["freq"], f"unknown frequency {self.freq!r}")
        if self.quantiles:
            qs = list(self.quantiles)
            check(all(0 < q < 1 for q in qs) and qs == sorted(set(qs)),
                  ["quantiles"], "must be distinct, increasing and strictly between 0 and 1")
        check(self.scaler in SCALERS, ["scaler"], f"must be one of {list(SCALERS)}")
        check(self.seasonality is None or self.seasonality in SEASONALITIES, ["seasonality"],
              f"must be one of {list(SEASONALITIES)} or null")
        check(self.calendar in CALENDAR_CHOICES, ["calendar"],
              f"must be one of {list(CALENDAR_CHOICES)}")
        check(m.cell in CELLS, ["model", "cell"], f"must be one of {sorted(CELLS)}")
        check(m.hidden_size is None or m.hidden_size >= 1, ["model", "hidden_size"],
              "must be at least 1")
        check(m.num_layers >= 1, ["model", "num_layers"], "must be at least 1")
        check(0 <= m.dropout < 1, ["model", "dropout"], "must be in [0, 1)")
        check(m.nonlinearity in NONLINEARITIES, ["model", "nonlinearity"],
              f"must be one of {list(NONLINEARITIES)}")
        check(w.input_size is None or w.input_size >= 1, ["window", "input_size"],
              "must be at least 1")
        check(t.epochs is None or t.epochs >= 1, ["training", "epochs"], "must be at least 1")
        check(t.max_steps is None or t.max_steps >= 1, ["training", "max_steps"],
              "must be at least 1")
        check(t.eval_every is None or t.eval_every >= 1, ["training", "eval_every"],
              "must be at least 1")
        out.extend(_budget_problems(t))
        check(t.batch_size >= 1, ["training", "batch_size"], "must be at least 1")
        check(t.optimizer in OPTIMIZERS, ["training", "optimizer"],
              f"must be one of {list(OPTIMIZERS)}")
        check(t.learning_rate is None or (math.isfinite(t.learning_rate) and t.learning_rate > 0),
              ["training", "learning_rate"], "must be a positive number")
        check(t.weight_decay is None or (math.isfinite(t.weight_decay) and t.weight_decay >= 0),
              ["training", "weight_decay"], "must be zero or positive")
        check(t.schedule in SCHEDULES, ["training", "schedule"],
              f"must be one of {list(SCHEDULES)}")
        check(t.loss in TRAINING_LOSSES, ["training", "loss"],
              f"must be one of {list(TRAINING_LOSSES)}")
        check(math.isfinite(t.huber_delta) and t.huber_delta > 0, ["training", "huber_delta"],
              "must be a positive number")
        for name in ("max_norm", "max_value"):
            value = getattr(t.clip, name)
            check(value is None or (math.isfinite(value) and value > 0),
                  ["training", "clip", name], "must be a positive number or null")
        if t.truncate is not None:
            check(len(t.truncate) == 2 and 1 <= t.truncate[0] <= t.truncate[1],
                  ["training", "truncate"], "must be [k1, k2] with 1 <= k1 <= k2")
        check(0 <= t.validation_fraction < 1, ["training", "validation_fraction"],
              "must be in [0, 1)")
        check(t.early_stopping_patience is None or t.early_stopping_patience >= 1,
              ["training", "early_stopping_patience"], "must be at least 1 or null")
        check(0 <= t.seed < 2**63, ["training", "seed"], "must be a non-negative integer")
        check(1 <= t.threads <= 256, ["training", "threads"], "must be between 1 and 256")
        check(1 <= t.ensemble <= 100, ["training", "ensemble"], "must be between 1 and 100")
        cv = self.cross_validation
        if cv is not None:
            check(1 <= cv.windows <= 20, ["cross_validation", "windows"],
                  "must be between 1 and 20")
            check(cv.step is None or cv.step >= 1, ["cross_validation", "step"],
                  "must be at least 1 or null")
        return out


def _budget_problems(t: TrainingConfig) -> list[dict]:
    """epochs (full passes) and max_steps (updates) are two ways to set one budget: give one.
    Both are accepted only as a resolved spec writes them, with eval_every and epochs the
    number of evaluation rounds the updates make."""
    if t.max_steps is None or t.epochs is None or t.max_steps < 1:
        if t.eval_every is not None and t.epochs is not None and t.max_steps is None:
            return [{"loc": ["training", "eval_every"],
                     "msg": "goes with max_steps: with epochs, validation runs after each "
                            "full pass"}]
        return []
    if t.eval_every is not None and t.eval_every >= 1 and \
            t.epochs == math.ceil(t.max_steps / t.eval_every):
        return []
    return [{"loc": ["training", "max_steps"],
             "msg": "give epochs (full passes) or max_steps (optimizer updates), not both"}]


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls, data, loc: list, errors: list):
    """Instantiate dataclass `cls` from `data`, type-checking every field against its hint."""
    if not isinstance(data, dict):
        errors.append({"loc": loc, "msg": "must be an object"})
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            errors.append({"loc": [*loc, name], "msg": "unknown field"})
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _coerce(hints[name], data[name], [*loc, name], errors)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append({"loc": [*loc, name], "msg": "field required"})
    if any(e["loc"][: len(loc)] == loc for e in errors):
        return None
    return cls(**values)


def _coerce(hint, value, loc: list, errors: list):
    """Check `value` against a type hint (int, float, str, bool, tuples, Optional, dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, loc, errors)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, loc, errors)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            errors.append({"loc": loc, "msg": "must be a list"})
            return None
        item = args[0]
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            items = [_coerce(item, v, [*loc, i], errors) for i, v in enumerate(value)]
        elif len(value) != len(args):
            errors.append({"loc": loc, "msg": f"must have {len(args)} items"})
            return None
        else:
            items = [_coerce(a, v, [*loc, i], errors) for i, (a, v) in enumerate(zip(args, value,
                                                                                   strict=True))]
        return tuple(items)
    if hint is bool:
        if not isinstance(value, bool):
            errors.append({"loc": loc, "msg": "must be true or false"})
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append({"loc": loc, "msg": "must be an integer"})
        return value
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            errors.append({"loc": loc, "msg": "must be a finite number"})
            return value
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            errors.append({"loc": loc, "msg": "must be a string"})
        return value
    raise TypeError(f"unsupported type hint {hint!r}")  # a bug in this module, not bad input


def _is_calendar_freq(text: str) -> bool:
    """Whether bptt.calendar reads `text` as a date frequency (its ds can then be stepped)."""
    try:
        return parse_freq(text).unit != "step"
    except CalendarError:
        return False
