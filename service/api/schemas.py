"""Request and response bodies of the v1 API as pydantic models: validation and OpenAPI.

Requests are validated strictly (no "12" for 12, no true for 1, unknown fields refused); the
training-spec part of a job request is the engine's own `bptt.TrainingSpec`, validated by
`TrainingSpec.from_dict`, so the library and the API cannot drift apart. Responses are built
through these models, so what the API answers is what the document describes.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

import bptt
from service.store import epoch_shares
from service.store.tables import FORECAST_STATUSES, JOB_STATUSES, SWEEP_STATUSES

JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
ForecastStatus = Literal[FORECAST_STATUSES]  # type: ignore[valid-type]
SweepStatus = Literal[SWEEP_STATUSES]  # type: ignore[valid-type]
# Finite numbers only: NaN and Infinity are not JSON, and a gap is spelled null.
Number = Annotated[float, Field(allow_inf_nan=False)]
Value = Number | None


class StrictModel(BaseModel):
    """A request body: exact JSON types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    """A response body; NaN and infinities (a diverged loss) are written as null, valid JSON."""

    model_config = ConfigDict(ser_json_inf_nan="null")


# Names and labels: for people and for filtering lists, never read by training.
NAME_MAX_LENGTH = 128
MAX_LABELS = 16
LABEL_KEY_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 256
# Keys as Kubernetes and Prometheus write them: safe in a query (`label=k:v` splits at the
# first colon) and in the JSON paths the list filters are built from.
LABEL_KEY_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{LABEL_KEY_MAX_LENGTH - 1}}}$"
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters: names end up in tables and logs
RunName = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=_PRINTABLE,
                               description="A name for people; need not be unique.")]
LabelKey = Annotated[str, Field(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, Field(max_length=LABEL_VALUE_MAX_LENGTH, pattern=_PRINTABLE)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(
    max_length=MAX_LABELS,
    description=f"Up to {MAX_LABELS} labels: keys of 1-{LABEL_KEY_MAX_LENGTH} letters, digits, "
                f"`_`, `.` or `-` (starting with a letter or digit), values of up to "
                f"{LABEL_VALUE_MAX_LENGTH} characters. `GET /v1/jobs?label=key:value` filters "
                "by them.")]


# Covariates (bptt.covariates): declared once per job by kind, given on every series item.
COVARIATE_KINDS = ("static", "historical", "future")
MAX_COVARIATES = 32  # each is an input column (a category: one per value) of every step
COVARIATE_NAME_MAX_LENGTH = 64
# Names as CSV headers and the `covariates=name:kind,...` query write them: no comma, colon
# or space, so that both split cleanly.
COVARIATE_NAME_PATTERN = rf"^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{COVARIATE_NAME_MAX_LENGTH - 1}}}$"
CovariateKind = Literal[COVARIATE_KINDS]  # type: ignore[valid-type]
CovariateName = Annotated[str, Field(pattern=COVARIATE_NAME_PATTERN)]
CovariateKinds = Annotated[dict[CovariateName, CovariateKind], Field(
    max_length=MAX_COVARIATES,
    description="The covariates every series carries (in its own `covariates`), by name, and "
                "their kind: `static` (one value per series: a number, or a category as a "
                "string), `historical` (a value per step, known up to a forecast's origin) or "
                "`future` (a value per step, known ahead: a forecast must give the horizon's "
                "values in `future_covariates`). Names are 1-64 letters, digits, `_`, `.` or "
                "`-`.")]
# Checked by service.api.validation against the job's declaration and the item's length (its
# messages name the series and the covariate); the schema documents the shapes.
CovariateValue = Annotated[Any, WithJsonSchema({"anyOf": [
    {"type": "number"}, {"type": "string", "minLength": 1, "maxLength": 128},
    {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "null"}]}}]})]


class RunTags(StrictModel):
    """The name and labels of a job or sweep request."""

    name: RunName | None = None
    labels: Labels | None = None


class SeriesIn(StrictModel):
    """One time series of a request; null marks a gap."""

    id: str = Field(min_length=1, max_length=128)
    values: list[Value] = Field(min_length=1)
    start: str | None = Field(
        None, max_length=64,
        description="Timestamp of the first value: an integer, or an ISO 8601 date or time "
                    "(`2021-01`, `2021-01-04`, `2021-01-04T09:30`). With a frequency (this "
                    "series' `freq`, else the job's), the forecasts' `ds` continue from it; "
                    "without a start, values are numbered 1, 2, 3 ...")
    freq: str | None = Field(
        None, max_length=16,
        description="Spacing of the values: a pandas-style frequency (MS, ME, QS, QE-NOV, YS, "
                    "W-SUN, D, B, h, 15min, s, with multiples like 2MS) for a date `start`, or "
                    "an integer step for an integer one. Given on every series alike, it is "
                    "the job's `freq` when the request has none.")
    covariates: dict[str, CovariateValue] | None = Field(
        None, description="This series' value of each covariate the request declares (its "
                          "top-level `covariates`), by name: a static one's number or "
                          "category (a string, the same type on every series), a historical "
                          "or future one's list with a value (or null for a gap) for each of "
                          "`values`. Every series carries every declared covariate. In a "
                          "forecast request, every covariate the model was trained with.")


def _job_request_model() -> type[BaseModel]:
    """The job request: `series` plus every field of bptt.TrainingSpec, generated from it."""
    hints = typing.get_type_hints(bptt.TrainingSpec)
    fields: dict[str, Any] = {
        "series": (list[SeriesIn] | None, Field(None, min_length=1, description=(
            "The series, sent with the job (give this or dataset_id)."))),
        "dataset_id": (str | None, Field(None, min_length=1, max_length=36, description=(
            "An uploaded dataset (POST /v1/datasets) to train on instead of `series`; its "
            "frequency is the job's `freq` unless freq or season_length is given."))),
        "series_ids": (list[str] | None, Field(None, min_length=1, description=(
            "With dataset_id: train on these of its series only (default: all)."))),
        "name": (RunName | None, None), "labels": (Labels | None, None),
        "covariates": (CovariateKinds | None, None),
    }
    fields["warm_start"] = (str | None, Field(
        None, max_length=36,
        description="A succeeded job to continue from: its weights start this training, and "
                    "spec fields left out of this request are that job's."))
    for f in dataclasses.fields(bptt.TrainingSpec):
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(f.default))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hints[f.name], ...)
    return create_model(  # type: ignore[call-overload,no-any-return]
        "JobRequest",
        __config__=ConfigDict(extra="forbid"),
        __doc__="A training job: the series (or an uploaded dataset) and the training spec "
                "(validated by the engine).",
        **fields,
    )


# Documents the body only: POST /v1/jobs validates `series` with SeriesIn and the rest with
# bptt.TrainingSpec.from_dict (the engine's rules and messages).
JobRequest = _job_request_model()


class ForecastRequest(StrictModel):
    """Forecasts from a succeeded job's model (or a finished sweep's best trial); without
    `series`, of its training series. Give exactly one of job_id and sweep_id."""

    job_id: str | None = Field(None, min_length=1, max_length=36)
    sweep_id: str | None = Field(None, min_length=1, max_length=36,
                                 description="Forecast with the sweep's best trial's model.")
    series: list[SeriesIn] | None = Field(None, min_length=1)
    dataset_id: str | None = Field(None, min_length=1, max_length=36,
                                   description="Forecast the series of an uploaded dataset "
                                               "instead of sending them.")
    series_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        None, min_length=1, description="With dataset_id: only these of its series.")
    horizon: int | None = Field(None, ge=1, description="Default: the model's horizon.")
    quantiles: list[Number] | None = Field(None, description="Default: all trained quantiles.")
    future_covariates: dict[str, dict[str, list[Number]]] | None = Field(
        None, description="For a model trained with `future` covariates (and only then): each "
                          "one's values over the forecast steps, by covariate name and then by "
                          "series id, for every series forecast (the training series without "
                          "`series`); exactly `horizon` finite numbers each. Such a model "
                          "forecasts its whole horizon: its network reads the values at every "
                          "step of it. With a text/csv body, a query parameter holding this "
                          "object as JSON.")


class ErrorItem(ResponseModel):
    """One invalid field: where it is and what is wrong with it."""

    loc: list[str | int]
    msg: str


class ProblemOut(ResponseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = Field(None, description="Every invalid field.")


class MemberOut(ResponseModel):
    """An ensemble member that has finished training."""

    member: int = Field(description="1-based, as in `member 2/5`.")
    epochs: int = Field(description="Epochs it trained.")
    best_epoch: int | None = Field(
        description="Its epoch (counted within the member) whose weights the model keeps.")
    stopped: Literal["completed", "early_stopping"] = Field(
        description="completed: it trained its whole epoch budget; early_stopping: its "
                    "validation loss stopped improving first.")


class Progress(ResponseModel):
    """How far training is: over the whole job, and within the ensemble member it trains."""

    epochs_done: int = Field(description="Epochs trained, numbered across ensemble members as "
                                         "the metrics are.")
    epochs_total: int | None = Field(
        description="Epochs the job trains in all: the finished members' epochs plus the "
                    "budget of each member still to train. It shrinks when early stopping ends "
                    "a member and equals epochs_done once the job has succeeded.")
    member: int | None = Field(
        None, description="The ensemble member in training, 1-based (the last one once all "
                          "have finished); null for jobs without a resolved spec.")
    members: int | None = Field(None, description="Ensemble members in all.")
    member_epoch: int | None = Field(None, description="Epochs `member` has trained.")
    member_epochs: int | None = Field(None, description="Each member's epoch budget.")
    finished_members: list[MemberOut] = Field(
        default_factory=list, description="The members that have finished, and why each "
                                          "stopped.")
    stage: Literal["training", "cross_validation"] | None = Field(
        None, description="What a running job is doing (cross-validation is a second fit, on "
                          "the series cut back); null unless running.")
    remaining_seconds: float | None = Field(
        None, description="Seconds the job still needs: its expected duration while queued; "
                          "while it runs, the expected work left (the epochs left in the "
                          "budget at `estimate.epochs_share`) at the pace the job itself has "
                          "kept so far (epochs, and the batches of the epoch in progress as "
                          "of the latest heartbeat); null once it has ended, without an "
                          "estimate, or while a job that has outrun its estimate has reported "
                          "no progress.")


class KernelSpeedOut(ResponseModel):
    """The workers' kernel speed an estimate assumed (bptt.KernelSpeed)."""

    gflops: float = Field(description="GEMM work, 1e9 FLOPs per second.")
    gelements: float = Field(description="The kernels' elementwise gate work, 1e9 elements "
                                         "per second.")
    pass_seconds: float = Field(description="Fixed cost of one update or forward chunk.")
    measurements: int = Field(
        description="Worker measurements behind it (the median of the latest, each taken when "
                    "a worker process started); 0: the engine's default, before any worker of "
                    "this deployment had reported.")
    measured_at: datetime | None = Field(description="The latest of those measurements.")


class EstimateOut(ResponseModel):
    """What the job was estimated to cost when it was submitted (bptt.estimate_cost, from the
    series' lengths and the resolved spec): admission control refuses a job over the
    deployment's limits on these figures, which count every planned epoch. Early stopping
    usually ends members well before their budget: `seconds` is the duration to expect with
    it, `max_seconds` the bound."""

    flops: float = Field(description="GEMM FLOPs of every update, validation pass, insight, "
                                     "calibration and cross-validation, every planned epoch "
                                     "of every member.")
    peak_bytes: int = Field(description="Memory the job adds to its worker at its peak.")
    updates: int = Field(description="Optimizer updates of every ensemble member "
                                     "(cross-validation's fit included), every planned epoch.")
    seconds: float = Field(description="Expected duration on this deployment's workers, at "
                                       "their measured kernel speed (`speed`), a core to "
                                       "itself, with each member training `epochs_share` of "
                                       "its epochs.")
    max_seconds: float | None = Field(
        None, description="Duration if every planned epoch runs: what admission control "
                          "compares with the job time limit. Null for jobs from before it was "
                          "kept (their `seconds` is this bound).")
    epochs_share: float | None = Field(
        None, description="Share of the planned epochs `seconds` counts: the median of what "
                          f"the tenant's latest (up to {epoch_shares.RECENT}) succeeded jobs "
                          "with early stopping trained of theirs, of the same cell when at "
                          f"least {epoch_shares.MIN_JOBS} were, else of any cell, else "
                          f"{epoch_shares.PRIOR}; never fewer epochs than early stopping "
                          "allows (patience + 1). 1 without early stopping.")
    epochs_share_jobs: int | None = Field(
        None, description="Finished jobs `epochs_share` is the median of; 0: the prior "
                          f"{epoch_shares.PRIOR}, or no early stopping.")
    epoch_seconds: float = Field(description="Of `seconds`, one ensemble member's epoch (its "
                                             "batches, validation, insight and checkpoint).")
    other_seconds: float = Field(description="Of `seconds`, building windows, calibration "
                                             "and forecast states.")
    prepare_seconds: float | None = Field(
        None, description="Of `other_seconds`, what runs before the first update (building "
                          "windows, choosing the seasonality): the time left counts it as done "
                          "once training has started. Null for jobs from before it was kept.")
    cross_validation_seconds: float = Field(description="Of `seconds`, cross-validation.")
    epoch_updates: int | None = Field(
        None, description="Batches in one member's epoch: the time left counts the batches a "
                          "running job's latest heartbeat reported within its epoch.")
    speed: KernelSpeedOut


class UsageOut(ResponseModel):
    """What the job's latest attempt measured on its worker (beside `estimate`)."""

    seconds: float = Field(description="The attempt's duration, from claim to end.")
    cpu_seconds: float | None = Field(
        None, description="The worker process's CPU time in the attempt: below `seconds` when "
                          "the machine was busy with other work (the estimate assumes a core "
                          "of its own).")
    peak_bytes: int = Field(description="Memory it added to its worker at its peak: the "
                                        "process's peak resident size less its size when the "
                                        "attempt began.")
    peak_rss_bytes: int = Field(description="The worker process's peak resident size during "
                                            "the attempt.")


class DatasetInfo(ResponseModel):
    """The size of a job's data, and the uploaded dataset it came from (if it did)."""

    num_series: int
    num_points: int
    dataset_id: str | None = Field(None, description="The uploaded dataset the job trains on; "
                                                     "null when its series came with it.")


class EpochMetricsOut(ResponseModel):
    """One epoch of training; a loss or norm that was not finite (divergence) is null."""

    epoch: int
    attempt: int | None
    train_loss: float | None
    val_loss: float | None
    grad_norm: float | None = Field(description="Mean pre-clip global gradient norm.")
    max_grad_norm: float | None
    clip_fraction: float = Field(description="Share of the epoch's updates that were clipped.")
    learning_rate: float
    seconds: float
    recorded_at: datetime


class JobSummary(ResponseModel):
    """A job as listed: what a table of runs shows, read without a query per job."""

    id: str
    name: str | None = Field(None, description="As submitted (a trial: its sweep's name and "
                                               "trial number).")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="As submitted (a trial: its sweep's).")
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None = Field(
        None, description="From start to finish; null until the job has finished.")
    progress: Progress
    error: str | None
    cell: str | None = Field(None, description="model.cell of the spec the job trains with.")
    hidden_size: int | None = None
    num_layers: int | None = None
    horizon: int | None = None
    num_series: int | None = Field(None, description="Series in the job's dataset.")
    best_val_loss: float | None = Field(
        None, description="The lowest validation loss any epoch has reached so far (any "
                          "ensemble member); null before the first epoch or without "
                          "validation windows.")
    cv_mase: float | None = Field(None, description="Mean MASE of the job's cross-validation, "
                                                    "once it has one.")
    sweep_id: str | None = Field(None, description="The sweep this job is a trial of.")
    trial: int | None = Field(None, description="0-based trial index within its sweep.")
    score: float | None = Field(
        None, description="What sweeps rank by (lower is better): mean cross-validation MASE "
                          "for a cv_mase sweep's trial, else the members' mean best validation "
                          "loss. Set when the job succeeds.")
    estimate: EstimateOut | None = Field(
        None, description="The cost estimated at submit; null for jobs from before estimates.")


class JobOut(JobSummary):
    """A job: its status, progress, latest metrics and spec."""

    attempts: int
    cancel_requested: bool
    best_epoch: int | None
    latest_metrics: EpochMetricsOut | None
    dataset: DatasetInfo | None
    spec: bptt.TrainingSpec = Field(
        description="What the job trains with: the request with every choice left open made "
                    "from the data (input window, hidden size, epochs, learning rate, season).")
    requested_spec: bptt.TrainingSpec = Field(
        description="The spec as submitted (a warm start's merged with its earlier job's): "
                    "null where the choice was left to the data. A warm start from this job "
                    "takes these fields, so open choices are made again for its data.")
    warm_start_job_id: str | None = Field(None, description="The job this one continued from.")
    freq_inferred: str | None = Field(
        None, description="The frequency the service read from the series when the request "
                          "gave no `freq`: the one every series carries, or the spacing of a "
                          "CSV's ds. `spec.freq` then holds it, and the season and the "
                          "forecasts' dates follow from it; null when the request gave one or "
                          "the series have none.")
    cross_validation: dict[str, Any] | None = Field(
        None, description="Rolling-origin scores per window (bptt.CrossValidation.to_dict).")
    usage: UsageOut | None = Field(
        None, description="What its latest attempt measured, once that attempt has ended.")
    covariates: dict[str, CovariateKind] | None = Field(
        None, description="The covariates the job declared, by name, with their kinds, in the "
                          "order its model reads them; each training series carries their "
                          "values. Null for a job without covariates.")


class JobList(ResponseModel):
    """A page of jobs in the order asked for (newest first by default); pass `next_cursor` as
    `cursor`, with the same sort and filters, for the next page."""

    jobs: list[JobSummary]
    next_cursor: str | None


class MetricsPage(ResponseModel):
    """Per-epoch metrics after `since`; poll again with since=last_epoch."""

    job_id: str
    metrics: list[EpochMetricsOut]
    last_epoch: int
    has_more: bool


class GradFlow(ResponseModel):
    """Mean |dL/dh_t| per input step of one epoch (earliest step first)."""

    epoch: int
    values: list[float | None]


class ClipEpoch(ResponseModel):
    """Gradient norms (null when not finite) and clipping of one epoch."""

    epoch: int
    grad_norm: float | None
    max_grad_norm: float | None
    clip_fraction: float


class ClipSettings(ResponseModel):
    """The clipping the job trains with."""

    max_norm: float | None
    max_value: float | None


class InsightEpoch(ResponseModel):
    """What BPTT did in one epoch, on a fixed sample of training windows (bptt.insight)."""

    epoch: int
    memory_horizon: int = Field(description="Lag k at which mean |dL/dh_(T-k)| first falls "
                                            "below memory_threshold × its value at the output "
                                            "step: how far back the gradient reaches.")
    memory_threshold: float
    spectral_radius: list[dict[str, float | None]] = Field(
        description="Per layer, the spectral radius of each gate's H×H block of W_hh "
                    "(rnn: h; lstm: i, f, g, o; gru: r, z, n).")
    gate_saturation: list[dict[str, float | None]] = Field(
        description="Per layer and gate, the share of activations within 0.05 of a sigmoid's "
                    "0 or 1 (or of tanh's ±1); relu RNNs report dead units as h_dead.")
    truncation_cosine: float | None = Field(
        description="Cosine between the truncated-BPTT and the full-BPTT gradient on the "
                    "sample (null without truncation).")
    suggested_max_norm: float | None = Field(
        description="AutoClip's threshold: the 10th percentile of the epoch's pre-clip "
                    "gradient norms.")


class Diagnostics(ResponseModel):
    """Gradient flow through time, the clipping history and BPTT insight, per epoch after
    `since`."""

    job_id: str
    clip: ClipSettings
    grad_flow: list[GradFlow]
    clipping: list[ClipEpoch]
    insight: list[InsightEpoch] = Field(default_factory=list)
    last_epoch: int
    has_more: bool


class SeriesTailOut(ResponseModel):
    """The last values of one training series (null marks a gap)."""

    id: str
    values: list[float | None] = Field(description="The last `tail` values, oldest first.")
    length: int = Field(description="Values in the whole series.")
    start: str | None = Field(description="Label of the series' first value, as submitted.")
    freq: str | None
    covariates: dict[str, float | str | list[float | None]] | None = Field(
        None, description="Its covariates' values as submitted, a historical or future one's "
                          "cut to the same tail; null for a job without covariates.")


class SeriesPage(ResponseModel):
    """A page of a job's training series, each cut to its tail; more from `next_offset`."""

    job_id: str
    series: list[SeriesTailOut]
    num_series: int
    next_offset: int | None


class ForecastOut(ResponseModel):
    """Mean and quantile paths of one series, in its original units, with each step's ds."""

    id: str
    ds: list[str | int] | None = Field(
        None, description="Each step's timestamp: the series' dates stepped by its frequency "
                          "(`2021-02-01`, `2021-02-01T09:30:00`), or integers after an integer "
                          "ds (after 1, 2, ... n for a series without a start); null for a "
                          "dated series whose frequency nobody gave.")
    mean: list[float | None]
    quantiles: dict[str, list[float | None]] = Field(description='Keyed by quantile, e.g. "0.1".')


class ForecastResult(ResponseModel):
    """Forecasts of every requested series."""

    forecasts: list[ForecastOut]


class ForecastBatchOut(ResponseModel):
    """An asynchronous forecast batch; `result` once it succeeded."""

    id: str
    job_id: str
    status: ForecastStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: ForecastResult | None


class SweepRequest(StrictModel):
    """A search over job specs: each trial is a training job on the same series."""

    job: dict[str, Any] = Field(description="The base job request, exactly as POST /v1/jobs "
                                            "takes it (JobRequest): series and spec.")
    space: dict[str, Any] = Field(
        min_length=1, max_length=20,
        description="Dotted spec paths to a list of values, or (random search) to "
                    '{"uniform" | "log_uniform" | "int_uniform": [low, high]}, e.g. '
                    '{"model.hidden_size": [16, 32], "training.learning_rate": '
                    '{"log_uniform": [0.001, 0.01]}}.')
    strategy: Literal["grid", "random"] = "random"
    budget: int = Field(8, ge=1, description="Trials of a random search; the most a grid may "
                                             "have.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random search draws from this seed.")
    metric: Literal["val_loss", "cv_mase"] = Field(
        "val_loss", description="What picks the best trial (lower is better): the members' "
                                "mean best validation loss, or the mean MASE of the job's "
                                "cross-validation (then `job` must ask for cross_validation).")
    name: RunName | None = Field(None, description="A name for people; each trial is named "
                                                   "after it with its trial number (`name #3`).")
    labels: Labels | None = Field(None, description="Labels of the sweep, given to each trial "
                                                    "too (so label filters find them).")


class ObservationsIn(StrictModel):
    """New observations of one training series, appended after its last value."""

    values: list[Value] = Field(min_length=1, description="Oldest first; null marks a gap.")
    horizon: int | None = Field(None, ge=1, description="Default: the model's horizon.")
    quantiles: list[Number] | None = Field(None, description="Default: all trained ones.")
    covariates: dict[str, list[Value]] | None = Field(
        None, description="For a model trained with covariates (and only then): each of its "
                          "historical and future covariates' values at the appended steps, by "
                          "name, as many as `values` (null marks a gap). Static ones are the "
                          "series' own from training.")
    future_covariates: dict[str, list[Number]] | None = Field(
        None, description="For a model trained with future covariates (required then): each "
                          "one's values over the answer's forecast steps, by name, exactly the "
                          "model's horizon of finite numbers.")


class SeriesForecastOut(ResponseModel):
    """A training series' forecast from its stored state: the model's final hidden state after
    the series' latest window, updated by every append."""

    job_id: str
    series_id: str
    length: int = Field(description="Observations so far, the training ones included.")
    version: int = Field(description="Incremented by every append.")
    forecast: ForecastOut


class TrialOut(ResponseModel):
    """One trial of a sweep: its job, the settings it tried and how it scored."""

    job_id: str
    trial: int
    settings: dict[str, Any]
    status: JobStatus
    score: float | None
    progress: Progress
    error: str | None


class SweepOut(ResponseModel):
    """A sweep, its trials and, once they have all finished, the best of them."""

    id: str
    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    status: SweepStatus
    created_at: datetime
    finished_at: datetime | None
    strategy: str
    budget: int
    metric: str
    space: dict[str, Any]
    trials_total: int
    trials_finished: int
    best_job_id: str | None = Field(description="Set when the sweep has finished; "
                                                "POST /v1/forecasts with sweep_id uses it.")
    best_score: float | None
    trials: list[TrialOut]


class SweepList(ResponseModel):
    """A page of sweeps (without their trials), newest first."""

    sweeps: list[SweepOut]
    next_cursor: str | None


class LengthBin(ResponseModel):
    """Series whose length is in [min, max]."""

    min: int
    max: int
    series: int


class DatasetOut(ResponseModel):
    """An uploaded dataset: what it holds, described without reading its values."""

    id: str
    name: str | None = Field(description="The label it was uploaded with (`?name=`).")
    format: Literal["csv", "jsonl"]
    created_at: datetime
    num_series: int
    num_points: int = Field(description="Values over all series, gaps included.")
    num_gaps: int = Field(description="Values that are missing (empty y, null, or a "
                                      "timestamp without a row).")
    min_length: int
    max_length: int
    length_histogram: list[LengthBin] = Field(
        description="Series per length, in up to 10 bins of equal width.")
    frequency: str | None = Field(
        description="The frequency every series follows (a pandas-style alias: MS, QS, YS, "
                    "W-SUN, D, h, 15min, ...): given (`?freq=`, or `freq` on every JSON line) "
                    "or inferred from the ds; null otherwise (integer ds, or series that "
                    "disagree). It is a job's `freq` when the job gives none.")
    freq_inferred: str | None = Field(
        None, description="The date frequency read from a CSV's ds when `?freq=` was not "
                          "given (as a job's `freq_inferred`); null otherwise.")
    missing_timestamps: int | None = Field(
        description="Timestamps absent on a series' grid between its first and last ds: each "
                    "is a gap, as with inline CSV (counted in num_gaps too).")
    upload_bytes: int = Field(description="The body as received (compressed, if it was).")
    text_bytes: int = Field(description="Its text once decompressed.")
    stored_bytes: int = Field(description="What the database holds: compressed arrays and "
                                          "the index of ids and lengths.")
    covariates: list[str] = Field(
        default_factory=list,
        description="Its covariate columns (a CSV's columns beyond unique_id,ds,y, a JSON "
                    "line's `covariates`): numbers per point, which a job on the dataset "
                    "declares as historical or future (`covariates`: {name: kind}).")
    static_covariates: list[str] = Field(
        default_factory=list,
        description="The columns of the static table uploaded with it (one value per series, "
                    "a number or a category), which a job on the dataset declares static.")


class DatasetList(ResponseModel):
    """A page of datasets, newest first; pass `next_cursor` as `cursor` for the next page."""

    datasets: list[DatasetOut]
    next_cursor: str | None


class Health(ResponseModel):
    """A probe's answer."""

    status: str
    checks: dict[str, str] | None = None


REQUEST_MODELS: tuple[type[BaseModel], ...] = (JobRequest, ForecastRequest, SweepRequest,
                                                ObservationsIn)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ProblemOut,
    JobOut,
    JobList,
    MetricsPage,
    Diagnostics,
    SeriesPage,
    ForecastResult,
    ForecastBatchOut,
    SweepOut,
    SweepList,
    SeriesForecastOut,
    DatasetOut,
    DatasetList,
    Health,
)
