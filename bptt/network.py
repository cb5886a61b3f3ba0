"""Network shape, parameter layout and initialisation.

A network is a stack of `num_layers` recurrent layers of one cell type and a dense head that reads
the top layer's hidden state. All parameters live in one flat vector (so clipping and optimizers
are single array operations); `ParameterLayout.views` cuts it into PyTorch-named, PyTorch-shaped
views: weight_ih_l{k} (G*H, I_k), weight_hh_l{k} (G*H, H), bias_ih_l{k} and bias_hh_l{k} (G*H,),
then head.weight (O, H + E) and head.bias (O,), where G is the number of gates (1 RNN, 4 LSTM,
3 GRU) and E = head_inputs.

Inputs come in two places. Per time step, x (T, B, input_size) feeds the first layer: the series'
values and whatever else changes along the window (calendar features, historical covariates).
Per window, `head_inputs` features (B, E) go straight to the head, which reads
concat(h_T, head_features): head.weight[:, :H] multiplies the top layer's last hidden state and
head.weight[:, H:] the head features, in their order. Static covariates (one value per series)
and the future-known covariates over the forecast horizon, flattened, belong there:
- a static feature is constant over time: fed at every step it would cost an input projection
  per step (G·H multiply-adds each) and backpropagation through time for the same information,
  and the network would have to learn to carry it in its state;
- at the head it shifts each horizon step's output directly (its own weight per output);
- the known future values of a covariate lie after the window: the encoder has no time steps to
  take them in, while the head, which forecasts each horizon step at once, can read the value
  at each of those steps.
neuralforecast's RNN model gives its MLP decoder the future exogenous values over the horizon
the same way (its static features it appends to the input of every step, the cost above). What
the head gives up: it is linear in its features, so a static feature shifts the forecast but
cannot change how the recurrence reads the series; a feature that must can still go into x as a
column repeated over the window. With head_inputs = 0 (the default) the layout, and so every
saved file, is what it always was.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .cells import CELLS

NONLINEARITIES = ("tanh", "relu")


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a recurrent network: stacked cells plus a dense head on the last hidden state."""

    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    input_size: int = 1  # features per time step
    hidden_size: int = 32
    num_layers: int = 1
    output_size: int = 1  # head width: horizon × outputs per step (e.g. number of quantiles)
    head_inputs: int = 0  # features per window the head reads besides h_T (see the docstring)
    nonlinearity: str = "tanh"  # vanilla RNN only: "tanh" or "relu", as nn.RNN
    dropout: float = 0.0  # on the input of every layer but the first, while training

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, not {self.cell!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}")
        for name in ("input_size", "hidden_size", "num_layers", "output_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if int(self.head_inputs) < 0:
            raise ValueError("head_inputs must be at least 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def gates(self) -> int:
        """Gate blocks per layer: 1 for RNN, 4 for LSTM, 3 for GRU."""
        return CELLS[self.cell].GATES

    @property
    def relu(self) -> bool:
        """Whether the vanilla RNN uses relu instead of tanh."""
        return self.cell == "rnn" and self.nonlinearity == "relu"

    @cached_property
    def layout(self) -> "ParameterLayout":
        """Where each named parameter sits in the flat vector."""
        return ParameterLayout(parameter_shapes(self))


def parameter_shapes(spec: NetworkSpec) -> list[tuple[str, tuple[int, ...]]]:
    """PyTorch names and shapes of every parameter, in nn.RNN/LSTM/GRU order, head last."""
    gh = spec.gates * spec.hidden_size
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for k in range(spec.num_layers):
        inputs = spec.input_size if k == 0 else spec.hidden_size
        shapes += [
            (f"weight_ih_l{k}", (gh, inputs)),
            (f"weight_hh_l{k}", (gh, spec.hidden_size)),
            (f"bias_ih_l{k}", (gh,)),
            (f"bias_hh_l{k}", (gh,)),
        ]
    shapes += [
        ("head.weight", (spec.output_size, spec.hidden_size + spec.head_inputs)),
        ("head.bias", (spec.output_size,)),
    ]
    return shapes


class ParameterLayout:
    """Offsets of named parameters inside one flat vector."""

    def __init__(self, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
        self.shapes = dict(shapes)
        self.offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name, shape in shapes:
            stop = start + int(np.prod(shape))
            self.offsets[name] = (start, stop)
            start = stop
        self.size = start

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views into `flat` (no copies: writing a view writes the vector)."""
        if flat.shape != (self.size,):
            raise ValueError(f"expected a flat vector of {self.size} parameters, got {flat.shape}")
        return {n: flat[a:b].reshape(self.shapes[n]) for n, (a, b) in self.offsets.items()}

    def flatten(self, tensors: dict[str, np.ndarray], dtype=np.float32) -> np.ndarray:
        """Pack named arrays (e.g. a state dict) into a new flat vector, checking every shape."""
        missing = set(self.shapes) - set(tensors)
        unknown = set(tensors) - set(self.shapes)
        if missing or unknown:
            raise ValueError(f"parameters missing {sorted(missing)}, unexpected {sorted(unknown)}")
        flat = np.empty(self.size, dtype)
        for name, view in self.views(flat).items():
            value = np.asarray(tensors[name])
            if value.shape != view.shape:
                raise ValueError(f"{name}: expected shape {view.shape}, got {value.shape}")
            view[...] = value
        return flat


def init_parameters(spec: NetworkSpec, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """PyTorch's default initialisation: every parameter ~ U(-1/√H, 1/√H), H = hidden size,
    except head.weight ~ U(-1/√(H + E), 1/√(H + E)), nn.Linear's bound for its fan-in H + E.

    Every parameter is drawn with the bound 1/√H first and head.weight rescaled after, so a
    network without head inputs (E = 0) gets the very numbers it always got from a seed.
    """
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(spec.hidden_size)
    params = rng.uniform(-bound, bound, spec.layout.size)
    if spec.head_inputs:
        head = spec.layout.views(params)["head.weight"]
        head *= np.sqrt(spec.hidden_size / (spec.hidden_size + spec.head_inputs))
    return params.astype(dtype)


def checked_head_features(spec: NetworkSpec, head_features, batch: int, dtype,
                          steps: int | None = None) -> np.ndarray | None:
    """head_features as the head reads them: None for a network without head inputs, else a
    (B, E) array of `dtype`, or with `steps` given (several output steps) (steps, B, E), a
    (B, E) array standing for every step. ValueError, naming the shapes, for anything else."""
    if spec.head_inputs == 0:
        if head_features is not None:
            raise ValueError("head_features given, but the network has no head inputs "
                             "(head_inputs = 0)")
        return None
    if head_features is None:
        raise ValueError(f"the network's head reads {spec.head_inputs} head features per "
                         f"window: pass head_features of shape ({batch}, {spec.head_inputs})")
    features = np.asarray(head_features, dtype=dtype)
    wanted = [(batch, spec.head_inputs)]
    if steps is not None:
        wanted.append((steps, batch, spec.head_inputs))
    if features.shape not in wanted:
        raise ValueError(f"head_features must have shape {' or '.join(map(str, wanted))}, "
                         f"got {features.shape}")
    if steps is not None and features.ndim == 2:
        features = np.broadcast_to(features, wanted[1])
    return features


def check_inputs(spec: NetworkSpec, x: np.ndarray) -> None:
    """ValueError unless x is (T, B, input_size) with at least one step."""
    if x.ndim != 3 or x.shape[2] != spec.input_size or x.shape[0] < 1:
        raise ValueError(f"inputs must have shape (steps, batch, {spec.input_size}) with at "
                         f"least one step, got {x.shape}")
