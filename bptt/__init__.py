"""bptt: recurrent networks trained by backpropagation through time, compiled with Numba.

Everything a program needs is here, in `__all__`; the submodules are the engine's own rooms.
The service (service/, workers/) uses the engine only through these names.
"""

from .backprop import Gradients, loss_and_gradients
from .backtest import (
    CrossValidation,
    check_cross_validation,
    check_cross_validation_lengths,
    cross_validate,
)
from .calendar import (
    CalendarError,
    Freq,
    OffGrid,
    SpacingEvidence,
    format_timestamp,
    future_stamps,
    grid_positions,
    grid_positions_of_keys,
    infer_freq,
    key_timestamp,
    parse_freq,
    parse_timestamp,
    shift_timestamp,
    timestamp_key,
)
from .calendar_inputs import resolve_calendar
from .cost import Cost, Work, covariate_widths, estimate_cost, expected_epochs, input_widths
from .data import DataError, as_series
from .defaults import input_size_for
from .errors import NonFiniteError
from .forward import LayerState, dropout_masks, predict, zero_states
from .inference import forecast, forecast_arrays, resolve_forecast_request
from .losses import make_loss
from .model import Model
from .network import (
    NONLINEARITIES,
    NetworkSpec,
    ParameterLayout,
    init_parameters,
    parameter_shapes,
)
from .spec import (
    CALENDAR_CHOICES,
    CELL_NAMES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULES,
    SEASONALITIES,
    TRAINING_LOSSES,
    SpecError,
    TrainingSpec,
)
from .speed import DEFAULT_KERNEL_SPEED, KernelSpeed, measure_kernel_speed
from .state import SeriesState, append_observations, forecast_state, initial_states
from .trainer import (
    Callbacks,
    Checkpoint,
    EpochMetrics,
    FinishedMember,
    FitResult,
    TrainingCancelled,
    fit,
    resolve_spec,
)
from .warmup import default_compile_processes, warm_kernels
from .workspace import release_scratch

__all__ = [
    # training and forecasting
    "Callbacks",
    "Checkpoint",
    "EpochMetrics",
    "FinishedMember",
    "FitResult",
    "Model",
    "TrainingCancelled",
    "TrainingSpec",
    "cross_validate",
    "CrossValidation",
    "fit",
    "forecast",
    "forecast_arrays",
    "resolve_forecast_request",
    "resolve_spec",
    "resolve_calendar",
    "input_size_for",
    "warm_kernels",
    "default_compile_processes",
    "release_scratch",
    # what a job will cost, and how fast this machine runs the kernels
    "Cost",
    "DEFAULT_KERNEL_SPEED",
    "KernelSpeed",
    "Work",
    "covariate_widths",
    "estimate_cost",
    "input_widths",
    "expected_epochs",
    "measure_kernel_speed",
    # input and its checks
    "as_series",
    "check_cross_validation",
    "check_cross_validation_lengths",
    "DataError",
    "NonFiniteError",
    "SpecError",
    # the spec's choices
    "CALENDAR_CHOICES",
    "CELL_NAMES",
    "NONLINEARITIES",
    "OPTIMIZERS",
    "SCALERS",
    "SEASONALITIES",
    "SCHEDULES",
    "TRAINING_LOSSES",
    # timestamps: frequencies, the regular grid, inference, stepping forward (bptt.calendar)
    "CalendarError",
    "Freq",
    "OffGrid",
    "SpacingEvidence",
    "format_timestamp",
    "future_stamps",
    "grid_positions",
    "grid_positions_of_keys",
    "infer_freq",
    "key_timestamp",
    "parse_freq",
    "parse_timestamp",
    "shift_timestamp",
    "timestamp_key",
    # per-series forecast state
    "SeriesState",
    "append_observations",
    "forecast_state",
    "initial_states",
    # the engine's pieces
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
    "zero_states",
]
