"""A trained forecaster: network weights plus everything needed to use them on raw series.

A model is an ensemble of networks of one shape trained from different seeds; its outputs are the
members' median. Saved as one safetensors file: member 0's weights under PyTorch's names (so
`load_state_dict` takes them as they are), the other members' under "member.<k>.<name>", each
training series' last input window ("tails", so its forecast needs no history from the caller),
and a JSON model card with the resolved training spec and the per-series scalers.
"""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from .calendar_inputs import CalendarInputs, off_card
from .combination import Combination
from .covariates import Encoder
from .data import Scaler
from .forward import predict
from .network import NetworkSpec
from .seasonality import Seasonality
from .serialization import from_safetensors, load_model, model_card, to_safetensors
from .spec import TrainingSpec

# What the one input column of a model trained on values alone holds (card "input_features").
VALUE_FEATURE = ("value, seasonally adjusted (see seasonality; none without it), scaled per "
                 "series, minus the window's last value")
TAILS = "series.tails"  # (S, L) scaled, gap-filled last input window of each training series
OFFSETS = "quantiles.offsets"  # (h, Q) conformal shifts of the quantile outputs
COVARIATE_TAILS = "covariates.tails"  # (S, L, C) training series' last window of covariates
COVARIATE_STATIC = "covariates.static"  # (S, E) training series' static covariate columns


def members_median(outputs: list[np.ndarray]) -> np.ndarray:
    """np.median(outputs, axis=0), to the bit, NaN where any member gave NaN. For an odd
    count it is the middle value, found by bubbling the largest to the end (count // 2 + 1
    passes of elementwise minimum and maximum): np.median's partition along the members' axis
    took 0.8 s for 48,000 series' outputs, this 0.05 s. A NaN spreads to both sides of every
    exchange it meets, and reaches the middle by the last pass (np.median gives NaN too)."""
    count = len(outputs)
    if count % 2 == 0:
        return np.median(outputs, axis=0)
    values = [np.array(out) for out in outputs]
    for last in range(count - 1, count // 2 - 1, -1):  # the largest of 0..last to `last`
        for i in range(last):
            low = np.minimum(values[i], values[i + 1])
            np.maximum(values[i], values[i + 1], out=values[i + 1])
            values[i] = low
    return values[count // 2]


@dataclass
class Model:
    """Network, weights and data handling of one fit."""

    spec: TrainingSpec  # resolved: no open choices left
    network: NetworkSpec
    members: np.ndarray  # (K, P) float32: one flat parameter vector per ensemble member
    series_ids: list[str]
    scalers: list[Scaler]  # one per training series, same order as series_ids
    tails: np.ndarray  # (S, L) scaled, gap-filled last input window per training series
    # (h, Q) shifts added to the quantile outputs, in scaled units, from conformal calibration
    # on the validation windows (zeros: not calibrated)
    quantile_offsets: np.ndarray | None = None
    # how forecasts combine the network with classical forecasts (naive, seasonal naive, mean
    # reverting), fitted on the validation windows (bptt.combination); None: the network alone
    # (and older files)
    combination: Combination | None = None
    # the seasonality taken out of each series before scaling and put back after forecasting
    # (bptt.seasonality); None: none (and older files)
    seasonality: Seasonality | None = None
    # what each input column of a step holds, in order (None: the value alone), and what each
    # head feature is (None: the network has none); both go into the model card
    input_features: list[str] | None = None
    head_features: list[str] | None = None
    # the calendar columns after the value and at the head (bptt.calendar_inputs), which
    # forecasts recompute from each series' dates; None: none, for the reason `calendar_note`
    # gives (the card says it)
    calendar: CalendarInputs | None = None
    calendar_note: str = ""
    # how covariates become inputs (bptt.covariates: their kinds, categories and per-series
    # scalers), and for the training series their covariate columns over the last input window
    # (S, L, dynamic covariates) and their static columns (S, static columns); None: none
    covariates: Encoder | None = None
    covariate_tails: np.ndarray | None = None
    covariate_static: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.calendar is not None or self.covariates is not None:
            steps, head = self._extra_feature_names()
            if self.input_features is None:
                self.input_features = [VALUE_FEATURE] + steps
            if self.head_features is None:
                self.head_features = head
            elif self.covariates is not None and list(self.head_features) != head:
                # a file of an earlier bptt, whose head read the future covariates otherwise
                raise ValueError("the model's head features are not those this bptt builds "
                                 f"({self.head_features!r}, not {head!r}): refit the model")
        if self.input_features is None and self.network.input_size == 1:
            self.input_features = [VALUE_FEATURE]
        if self.head_features is None and self.network.head_inputs == 0:
            self.head_features = []
        for name, size in (("input_features", self.network.input_size),
                           ("head_features", self.network.head_inputs)):
            described = getattr(self, name)
            if described is None or len(described) != size:
                raise ValueError(f"{name} must describe each of the network's {size} columns, "
                                 f"got {described!r}")
        if self.quantile_offsets is None:
            self.quantile_offsets = np.zeros((self.horizon, len(self.quantiles)))
        if self.seasonality is None:
            self.seasonality = Seasonality.none(len(self.series_ids),
                                                self.spec.season_length or 1)

    def quantile_paths(self, x: np.ndarray, threads: int = 1,
                       head_features: np.ndarray | None = None) -> np.ndarray:
        """(B, h, 1 + Q) scaled, centred paths for inputs x (L, B, input_size) (and, for a
        network with head inputs, head_features (B, E)): the mean first, then the calibrated
        quantiles, sorted so that they never cross (with a combination: the heads' raw
        quantiles, which `shifted` calibrates and sorts once they are combined)."""
        return self.calibrated_paths(self.predict_scaled(x, threads, head_features))

    def calibrated_paths(self, out: np.ndarray) -> np.ndarray:
        """(B, h, 1 + Q) paths from head outputs (B, O): quantiles calibrated and sorted, unless
        the model has a combination: then `shifted` does both once they are combined (the
        conformal offsets are fitted on combined paths, and belong to the quantile heads)."""
        out = out.astype(np.float64)
        paths = out.reshape(out.shape[0], self.horizon, 1 + len(self.quantiles))
        return paths if self.combination is not None else self.shifted(paths)

    def _extra_feature_names(self) -> tuple[list[str], list[str]]:
        """(the step columns after the value, the head features), in data.ExtraInputs' order:
        calendar, then covariates."""
        steps, head = [], []
        if self.calendar is not None:
            steps += [f"calendar {n}" for n in self.calendar.names]
            head += [f"calendar {n} of the first forecast step" for n in self.calendar.names]
        if self.covariates is not None:
            steps += [f"covariate {n}, scaled per series" for n in self.covariates.dynamic]
            head += [f"static covariate {n}" for n in self.covariates.static_names()]
            head += [f"covariate {n} at forecast step {s + 1}, scaled per series, minus its "
                     "value at the window's last step"
                     for s in range(self.spec.horizon) for n in self.covariates.future]
        return steps, head

    def shifted(self, paths: np.ndarray) -> np.ndarray:
        """Paths (B, h, 1 + Q) with the conformal offsets added to the quantiles, sorted."""
        paths[:, :, 1:] = np.sort(paths[:, :, 1:] + self.quantile_offsets, axis=2)
        return paths

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.spec.quantiles or ()

    @property
    def params(self) -> np.ndarray:
        """Member 0's weights: the network PyTorch loads from the file's unprefixed names."""
        return self.members[0]

    def predict_scaled(self, x: np.ndarray, threads: int = 1,
                       head_features: np.ndarray | None = None) -> np.ndarray:
        """The members' median head output (B, O) for centred, scaled inputs x
        (L, B, input_size) and head features (B, E) (None: the network has no head inputs)."""
        outputs = [predict(self.network, p, x, threads=threads, head_features=head_features)[0]
                   for p in self.members]
        return outputs[0] if len(outputs) == 1 else members_median(outputs)

    def card(self) -> dict:
        """The model card: what the network is and how its inputs and outputs are scaled."""
        outputs = 1 + len(self.quantiles)
        return {
            "horizon": self.horizon,
            "quantiles": list(self.quantiles),
            "ensemble": len(self.members),
            "ensemble_rule": "median of the members' outputs; member 0 under PyTorch names",
            "outputs_per_step": outputs,
            "output_layout": "index = step * outputs_per_step + k; k = 0 is the mean, "
                             "k = 1.. the quantiles in order",
            "inputs": "x (window_length, series, input_size), time-major: column k of step t is "
                      "input_features[k] at the window's step t; head features (series, "
                      "head_inputs): column k is head_features[k]; the head reads "
                      "concat(the top layer's last hidden state, head features)",
            "input_features": list(self.input_features),
            "head_features": list(self.head_features),
            "output_scaling": "add the window's last scaled value, invert the series' scaler, "
                              "then the seasonality's transform (if any)",
            "quantile_calibration": "quantile k at step s gets quantiles.offsets[s, k] added "
                                    "(split-conformal shifts from the validation windows)",
            "calendar": (self.calendar.card() if self.calendar is not None
                         else off_card(self.calendar_note or "not given to this model")),
            "covariates": None if self.covariates is None else self.covariates.to_dict(),
            "training_spec": self.spec.to_dict(),
            "series": [{"id": i, "scaler": s.to_dict()} for i, s in
                       zip(self.series_ids, self.scalers, strict=True)],
        }

    def to_bytes(self) -> bytes:
        """Safetensors bytes: weights under PyTorch names, tails, and the card in metadata."""
        tensors = dict(self.network.layout.views(self.members[0]))
        for k, member in enumerate(self.members[1:], start=1):
            tensors.update({f"member.{k}.{n}": v
                            for n, v in self.network.layout.views(member).items()})
        tensors[TAILS] = np.asarray(self.tails, np.float64)
        tensors[OFFSETS] = np.asarray(self.quantile_offsets, np.float64)
        card = {**model_card(self.network), **self.card()}
        if self.combination is not None:
            tensors.update(self.combination.tensors())
            card["combination"] = self.combination.card()
        if self.covariates is not None:
            tensors[COVARIATE_TAILS] = np.asarray(self.covariate_tails, np.float32)
            tensors[COVARIATE_STATIC] = np.asarray(self.covariate_static, np.float32)
        if self.seasonality.active:
            tensors.update(self.seasonality.tensors())
            card["seasonality"] = self.seasonality.card()
        return to_safetensors(tensors, {"model_card": json.dumps(card), "format": "pt"})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """Rebuild a Model from to_bytes' output."""
        tensors, metadata = from_safetensors(data)
        tails = tensors.pop(TAILS)
        offsets = tensors.pop(OFFSETS)
        combination = Combination.pop_tensors(tensors)
        covariate_tails = tensors.pop(COVARIATE_TAILS, None)
        covariate_static = tensors.pop(COVARIATE_STATIC, None)
        card = json.loads(metadata.get("model_card", "{}"))
        seasonality = Seasonality.pop(tensors, card, len(card.get("series", [])))
        extra = {n: tensors.pop(n) for n in list(tensors) if n.startswith("member.")}
        # member 0 alone is a plain bptt network file: load_model checks every name and shape
        network, first, card = load_model(to_safetensors(tensors, metadata))
        members = [first]
        for k in range(1, card.get("ensemble", 1)):
            prefix = f"member.{k}."
            members.append(network.layout.flatten(
                {n[len(prefix):]: v for n, v in extra.items() if n.startswith(prefix)}))
        spec = TrainingSpec.from_dict(card["training_spec"])
        calendar = card.get("calendar") or off_card("a file written before calendar features")
        if "calendar" not in card["training_spec"]:  # such a file: its network has none
            spec = dataclasses.replace(spec, calendar="off")
        scalers = [Scaler(**s["scaler"]) for s in card["series"]]
        return cls(spec, network, np.stack(members), [s["id"] for s in card["series"]], scalers,
                   tails, offsets, combination=combination, seasonality=seasonality,
                   input_features=card.get("input_features"),
                   head_features=card.get("head_features"),
                   calendar=CalendarInputs.from_card(calendar),
                   calendar_note=calendar.get("why", ""),
                   covariates=(None if card.get("covariates") is None
                               else Encoder.from_dict(card["covariates"])),
                   covariate_tails=covariate_tails, covariate_static=covariate_static)

