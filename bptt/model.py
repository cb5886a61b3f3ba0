"""A trained forecaster: network weights plus everything needed to use them on raw series.

Saved as one safetensors file: the network's PyTorch-named weights, each training series' last
input window ("tails", so its forecast needs no history from the caller), and a JSON model card
with the resolved training spec and the per-series scalers.
"""

import json
from dataclasses import dataclass

import numpy as np

from .data import Scaler
from .network import NetworkSpec
from .serialization import from_safetensors, load_model, model_card, to_safetensors
from .spec import TrainingSpec

TAILS = "series.tails"  # (S, L) scaled, gap-filled last input window of each training series


@dataclass
class Model:
    """Network, weights and data handling of one fit."""

    spec: TrainingSpec  # resolved: no open choices left
    network: NetworkSpec
    params: np.ndarray  # (P,) float32
    series_ids: list[str]
    scalers: list[Scaler]  # one per training series, same order as series_ids
    tails: np.ndarray  # (S, L) scaled, gap-filled last input window per training series

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.spec.quantiles or ()

    def card(self) -> dict:
        """The model card: what the network is and how its inputs and outputs are scaled."""
        outputs = 1 + len(self.quantiles)
        return {
            "horizon": self.horizon,
            "quantiles": list(self.quantiles),
            "outputs_per_step": outputs,
            "output_layout": "index = step * outputs_per_step + k; k = 0 is the mean, "
                             "k = 1.. the quantiles in order",
            "input_features": ["value, scaled per series, minus the window's last value"],
            "output_scaling": "add the window's last scaled value, then invert the series' scaler",
            "training_spec": self.spec.to_dict(),
            "series": [{"id": i, "scaler": s.to_dict()} for i, s in
                       zip(self.series_ids, self.scalers, strict=True)],
        }

    def to_bytes(self) -> bytes:
        """Safetensors bytes: weights under PyTorch names, tails, and the card in metadata."""
        tensors = dict(self.network.layout.views(self.params))
        tensors[TAILS] = np.asarray(self.tails, np.float64)
        card = {**model_card(self.network), **self.card()}
        return to_safetensors(tensors, {"model_card": json.dumps(card), "format": "pt"})

    @classmethod
    def from_bytes(cls, data: bytes) -> "Model":
        """Rebuild a Model from to_bytes' output."""
        tensors, metadata = from_safetensors(data)
        tails = tensors.pop(TAILS)
        network, params, card = load_model(
            to_safetensors(tensors, metadata))  # the network part alone, validated by name
        spec = TrainingSpec.from_dict(card["training_spec"])
        scalers = [Scaler(**s["scaler"]) for s in card["series"]]
        return cls(spec, network, params, [s["id"] for s in card["series"]], scalers, tails)

