"""bptt: recurrent networks trained by backpropagation through time, compiled with Numba."""

from .backprop import Gradients, loss_and_gradients
from .backtest import cross_validate
from .forecasting import forecast
from .forward import LayerState, dropout_masks, predict, zero_states
from .losses import make_loss
from .model import Model
from .network import NetworkSpec, ParameterLayout, init_parameters, parameter_shapes
from .spec import SpecError, TrainingSpec
from .trainer import (
    Callbacks,
    Checkpoint,
    EpochMetrics,
    FitResult,
    TrainingCancelled,
    fit,
    resolve_spec,
)
from .warmup import warm_kernels

__all__ = [
    "Callbacks",
    "Checkpoint",
    "EpochMetrics",
    "FitResult",
    "Model",
    "SpecError",
    "TrainingCancelled",
    "TrainingSpec",
    "cross_validate",
    "fit",
    "forecast",
    "Gradients",
    "LayerState",
    "NetworkSpec",
    "ParameterLayout",
    "dropout_masks",
    "init_parameters",
    "loss_and_gradients",
    "make_loss",
    "parameter_shapes",
    "predict",
    "resolve_spec",
    "warm_kernels",
    "zero_states",
]
