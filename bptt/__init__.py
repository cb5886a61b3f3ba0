"""bptt: recurrent networks trained by backpropagation through time, compiled with Numba."""

from .backprop import Gradients, loss_and_gradients
from .forward import LayerState, dropout_masks, predict, zero_states
from .losses import make_loss
from .network import NetworkSpec, ParameterLayout, init_parameters, parameter_shapes
from .warmup import warm_kernels

__all__ = [
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
    "warm_kernels",
    "zero_states",
]
