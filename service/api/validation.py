"""Every check a request passes before anything is stored: types, the engine's rules, our limits.

Errors are collected as {"loc": [...], "msg": ...} and raised together as one ValidationProblem,
so a client fixes everything at once and a refused request leaves no row and no message behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

import bptt
from bptt import (
    CalendarError,
    DataError,
    as_series,
    check_cross_validation_lengths,
    grid_positions,
    input_size_for,
    parse_freq,
    parse_timestamp,
)
from service.api import covariate_checks, forecast_covariates
from service.api.bodies import JsonConstant
from service.api.problems import ValidationProblem
from service.api.schemas import (
    LABEL_KEY_MAX_LENGTH,
    LABEL_VALUE_MAX_LENGTH,
    ForecastRequest,
    RunTags,
    SeriesIn,
)
from service.settings import Settings
from service.store.dataset_rows import DatasetSelection
from service.store.plans import with_series_freq

MAX_LAYERS = 4  # stacked recurrent layers; deeper RNNs barely help forecasting and cost linearly
MAX_QUANTILES = 20  # each one widens the dense head by `horizon` outputs
MAX_ERRORS = 50  # a bad 10,000-series body could name every value; the first ones suffice
_MESSAGES = {"extra_forbidden": "unknown field", "missing": "field required"}
_SERIES = TypeAdapter(list[SeriesIn])


@dataclass(frozen=True)
class TrainingRequest:
    """A job request that passed every check: the spec and the series as they will be stored
    (`series` inline, or `dataset`: a selection of an uploaded dataset's series)."""

    spec: bptt.TrainingSpec
    series: list[dict[str, Any]]  # [] with a dataset
    num_points: int
    name: str | None = None
    labels: dict[str, str] | None = None
    dataset: DatasetSelection | None = None
    # the declared covariates by name: their kinds, in declaration order (each series item
    # carries its values); None without covariates
    covariates: dict[str, str] | None = None

    @property
    def ids(self) -> list[str]:
        return self.dataset.ids if self.dataset else [s["id"] for s in self.series]

    @property
    def lengths(self) -> list[int]:
        return self.dataset.lengths if self.dataset else [len(s["values"]) for s in self.series]


def training_request(data: Any, settings: Settings, *, spec_loc: tuple[str, ...] = (),
                     dataset: DatasetSelection | None = None) -> TrainingRequest:
    """Validate a job request (`series` + TrainingSpec fields); `spec_loc` prefixes spec errors.
    With `dataset` (read from the request's dataset_id), the series are that selection."""
    if not isinstance(data, dict):
        raise ValidationProblem([{"loc": ["body"], "msg": "must be a JSON object"}])
    fields = dict(data)
    errors: list[dict[str, Any]] = []
    tags = run_tags(fields, errors, loc=spec_loc)
    before = len(errors)
    kinds = covariate_checks.declared_kinds(fields, errors, loc=spec_loc)
    declaration_ok = len(errors) == before  # else every item's covariates would read undeclared
    if dataset is not None:
        errors += covariate_checks.dataset_errors(kinds, dataset.covariates, dataset.static,
                                                  loc=spec_loc)
        return _dataset_request(fields, dataset, settings, spec_loc, tags, errors, kinds)
    if "series" not in fields:
        errors.append({"loc": ["series"], "msg": "field required (or give dataset_id)"})
        series = None
    else:
        series = _series(fields.pop("series"), settings, errors,
                         covariate_checks.values_per_point(kinds))
        if series is not None and declaration_ok:
            errors += covariate_checks.series_errors(series, kinds)
    spec = _checked_spec(fields, settings, spec_loc, errors)
    ids = [s.id for s in series] if series is not None else []
    lengths = [len(s.values) for s in series] if series is not None else []
    if spec is not None and series is not None and not errors:
        # checked as the job will train: with the frequency its series give, if any
        checked = with_series_freq(spec, [s.model_dump(exclude_none=True) for s in series])
        errors += _long_enough(checked, ids, lengths, "series")
        if not errors:
            errors += _cross_validation_errors(checked, ids, lengths)
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])
    assert spec is not None and series is not None
    return TrainingRequest(
        spec=spec,
        series=[s.model_dump(exclude_none=True) for s in series],
        num_points=sum(lengths),
        name=tags.name,
        labels=tags.labels,
        covariates=kinds,
    )


_TAG_MESSAGES = {
    ("name", "string_pattern_mismatch"): "must not contain control characters",
    ("labels", "string_pattern_mismatch"): "must not contain control characters",
    ("key", "string_pattern_mismatch"): f"a label key is 1-{LABEL_KEY_MAX_LENGTH} letters, "
                                        "digits, '_', '.' or '-', starting with a letter or a "
                                        "digit",
    ("labels", "string_too_long"): f"a label value has at most {LABEL_VALUE_MAX_LENGTH} "
                                   "characters",
}


def run_tags(fields: dict[str, Any], errors: list[dict[str, Any]], *,
             loc: tuple[str, ...] = ()) -> RunTags:
    """Take `name` and `labels` out of a request's fields, checked (errors added, prefixed
    with `loc`); empty tags when they are invalid."""
    raw = {key: fields.pop(key) for key in ("name", "labels") if key in fields}
    try:
        return RunTags.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = [str(part) for part in error["loc"] if part != "[key]"]
            field = "key" if error["loc"][-1] == "[key]" else where[0]
            message = _TAG_MESSAGES.get((field, error["type"]), error["msg"])
            if error["type"] == "too_long" and where == ["labels"]:
                message = f"at most {error['ctx']['max_length']} labels"
            errors.append({"loc": [*loc, *where], "msg": message})
        return RunTags()


def _checked_spec(fields: dict[str, Any], settings: Settings, spec_loc: tuple[str, ...],
                  errors: list[dict[str, Any]]) -> bptt.TrainingSpec | None:
    """The TrainingSpec of a request's fields, or None; its problems, and the service's limits
    on it, go to `errors`, located under `spec_loc`."""
    try:
        spec = bptt.TrainingSpec.from_dict(fields)
    except bptt.SpecError as exc:
        errors += [{"loc": [*spec_loc, *e["loc"]], "msg": e["msg"]} for e in exc.errors]
        return None
    errors += _spec_limits(spec, settings, spec_loc)
    return spec


def _dataset_request(fields: dict[str, Any], dataset: DatasetSelection, settings: Settings,
                     spec_loc: tuple[str, ...], tags: RunTags, errors: list[dict[str, Any]],
                     kinds: dict[str, str] | None) -> TrainingRequest:
    """A job request on an uploaded dataset: checked from the selection's ids and lengths
    (its values were checked when it was uploaded); `errors` holds the tags' and the
    covariates' problems; `kinds`: the covariates it trains with, columns of the dataset."""
    if "series" in fields:
        errors.append({"loc": ["series"], "msg": "give series or dataset_id, not both"})
    fields.pop("series", None)
    if (dataset.frequency is not None and fields.get("freq") is None
            and fields.get("season_length") is None):
        fields["freq"] = dataset.frequency  # the season follows from the timestamps
    spec = _checked_spec(fields, settings, spec_loc, errors)
    if spec is not None and not errors:
        errors += _long_enough(spec, dataset.ids, dataset.lengths, "dataset_id")
    if spec is not None and not errors:
        errors += _cross_validation_errors(spec, dataset.ids, dataset.lengths)
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])
    assert spec is not None
    return TrainingRequest(spec=spec, series=[], num_points=dataset.num_points,
                           name=tags.name, labels=tags.labels, dataset=dataset,
                           covariates=kinds)


def trial_spec(data: dict[str, Any], base: TrainingRequest, settings: Settings
               ) -> tuple[bptt.TrainingSpec | None, list[dict[str, Any]]]:
    """A sweep trial's spec (a job request's spec with the trial's settings applied) checked
    as POST /v1/jobs checks one: (spec, []) or (None, errors located in the spec)."""
    try:
        spec = bptt.TrainingSpec.from_dict(data)
    except bptt.SpecError as exc:
        return None, exc.errors
    errors = _spec_limits(spec, settings, ())
    if not errors:
        shortest = min(base.lengths)
        window = input_size_for(spec, shortest)
        if shortest < window + spec.horizon:
            errors.append({"loc": ["window", "input_size"],
                           "msg": f"input window {window} + horizon {spec.horizon} needs "
                                  f"series of {window + spec.horizon} points; the shortest "
                                  f"has {shortest}"})
    if not errors:
        errors += _cross_validation_errors(spec, base.ids, base.lengths)
    return (None, errors) if errors else (spec, [])


def forecast_request(data: Any, settings: Settings, *, from_query: bool = False
                     ) -> ForecastRequest:
    """Validate a forecast request's types and limits (the model's own checks come later)."""
    if not isinstance(data, dict):
        raise ValidationProblem([{"loc": ["body"], "msg": "must be a JSON object"}])
    errors: list[dict[str, Any]] = []
    request = None
    raw_series = data.get("series")
    if isinstance(raw_series, list) and len(raw_series) > settings.max_series:
        errors.append({"loc": ["series"], "msg": f"at most {settings.max_series} series"})
    else:
        try:
            request = ForecastRequest.model_validate(data)
        except ValidationError as exc:
            errors += pydantic_errors(exc)
        else:
            errors += _forecast_limits(request, settings)
            errors += timestamp_errors(request.series or [])
            if (request.job_id is None) == (request.sweep_id is None):
                errors.append({"loc": ["job_id"], "msg": "give exactly one of job_id and "
                                                         "sweep_id"})
            if request.dataset_id is not None and request.series is not None:
                errors.append({"loc": ["dataset_id"],
                               "msg": "give series or dataset_id, not both"})
            if request.series_ids is not None and request.dataset_id is None:
                errors.append({"loc": ["series_ids"], "msg": "needs dataset_id"})
    if errors or request is None:
        if from_query:  # with a CSV body, everything but the series came from the query
            errors = [e if e["loc"][:1] in (["series"], ["body"]) else
                      {**e, "loc": ["query", *e["loc"]]} for e in errors]
        raise ValidationProblem(errors[:MAX_ERRORS])
    return request


def check_forecast_against_model(model: bptt.Model, request: ForecastRequest, *,
                                 from_query: bool = False, engine_check: bool = True,
                                 source: DatasetSelection | None = None) -> None:
    """Refuse what the model cannot answer: a longer horizon, untrained quantiles, short series;
    with engine_check, also what the engine's parser would refuse (for requests stored as
    batches, which must be refused now rather than by a worker later). `source`: the
    dataset selection a request by dataset_id forecasts."""
    errors: list[dict[str, Any]] = []
    where = ["query"] if from_query else []  # with a CSV body, horizon and quantiles are there
    if request.horizon is not None and request.horizon > model.horizon:
        errors.append({"loc": [*where, "horizon"],
                       "msg": f"must be at most the model's horizon, {model.horizon}"})
    for i, q in enumerate(request.quantiles or ()):
        if q not in model.quantiles:
            errors.append({"loc": [*where, "quantiles", i],
                           "msg": f"{q} was not trained; available: {list(model.quantiles)}"})
    if request.series is not None:
        steps = model.spec.window.input_size or 1
        for i, s in enumerate(request.series):
            if len(s.values) < steps:
                errors.append({"loc": ["series", i, "values"],
                               "msg": f"series {s.id!r} has {len(s.values)} points; the model "
                                      f"reads the last {steps}"})
        if not errors and engine_check:
            errors += _engine_series_errors(request.series)
    if not errors:
        errors += forecast_covariates.request_errors(model, request, where, source)
    if errors:
        raise ValidationProblem(errors[:MAX_ERRORS])


def pydantic_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()
                    ) -> list[dict[str, Any]]:
    """Pydantic's errors in our shape, with the engine's wording where the two overlap."""
    out = []
    for error in exc.errors(include_url=False):
        message = _MESSAGES.get(error["type"], error["msg"])
        if isinstance(error.get("input"), JsonConstant):
            message = f"{error['input']} is not valid JSON (use null for a gap)"
        out.append({"loc": [*prefix, *error["loc"]], "msg": message})
    return out


def _series(raw: Any, settings: Settings, errors: list[dict[str, Any]], per_point: int = 1
            ) -> list[SeriesIn] | None:
    """The series of a job request, typed and within the limits, or None (errors added).
    `per_point`: the values each step holds (its own and its dynamic covariates')."""
    if isinstance(raw, list) and len(raw) > settings.max_series:
        errors.append({"loc": ["series"], "msg": f"at most {settings.max_series} series "
                                                 f"(got {len(raw)})"})
        return None
    try:
        series = _SERIES.validate_python(raw)
    except ValidationError as exc:
        errors += pydantic_errors(exc, ("series",))
        return None
    if not series:
        errors.append({"loc": ["series"], "msg": "at least one series is required"})
        return None
    points = sum(len(s.values) for s in series) * per_point
    if points > settings.max_points:
        with_covariates = ", the dynamic covariates' included" if per_point > 1 else ""
        errors.append({"loc": ["series"], "msg": f"at most {settings.max_points} values in all"
                                                 f"{with_covariates} (got {points})"})
        return None
    found = timestamp_errors(series) or _engine_series_errors(series)
    errors += found
    return None if found else series


def timestamp_errors(series: list[SeriesIn]) -> list[dict[str, Any]]:
    """A `start` that is no timestamp, a `freq` that is no frequency, or a start off its
    frequency's grid (an MS series starting on the 15th; an integer start with a date freq)."""
    return [{"loc": ["series", i, field], "msg": msg} for i, s in enumerate(series)
            for field, msg in start_and_freq_errors(s.start, s.freq)]


def start_and_freq_errors(start: str | None, freq: str | None) -> list[tuple[str, str]]:
    """(field, message) for one series' start and freq (dataset JSON lines are read so too)."""
    errors: list[tuple[str, str]] = []
    parsed: dict[str, Any] = {}
    for field, text, parse in (("start", start, parse_timestamp), ("freq", freq, parse_freq)):
        try:
            parsed[field] = None if text is None else parse(text)
        except CalendarError as exc:
            errors.append((field, str(exc)))
    if parsed.get("start") is not None and parsed.get("freq") is not None:
        try:
            grid_positions([parsed["start"]], parsed["freq"])
        except CalendarError as exc:
            errors.append(("start", str(exc)))
    return errors


def _engine_series_errors(series: list[SeriesIn]) -> list[dict[str, Any]]:
    """What the engine's own parser refuses (duplicate ids, series without any value)."""
    try:
        as_series([{"id": s.id, "values": s.values} for s in series])
    except DataError as exc:
        return [{"loc": exc.loc, "msg": exc.msg}]
    return []


def _spec_limits(spec: bptt.TrainingSpec, settings: Settings, spec_loc: tuple[str, ...]
                 ) -> list[dict[str, Any]]:
    """The service's limits on each field of a valid spec (the engine accepts any size); their
    product is bounded by admission control (service.api.admission)."""
    cv = spec.cross_validation
    limits = [
        (["horizon"], spec.horizon, settings.max_horizon),
        (["window", "input_size"], spec.window.input_size, settings.max_input_size),
        (["model", "hidden_size"], spec.model.hidden_size, settings.max_hidden_size),
        (["model", "num_layers"], spec.model.num_layers, MAX_LAYERS),
        (["training", "epochs"], spec.training.epochs, settings.max_epochs),
        (["training", "batch_size"], spec.training.batch_size, settings.max_batch_size),
        (["training", "ensemble"], spec.training.ensemble, settings.max_ensemble),
        (["cross_validation", "windows"], cv.windows if cv else None, settings.max_cv_windows),
        (["quantiles"], len(spec.quantiles or ()), MAX_QUANTILES),
    ]
    return [{"loc": [*spec_loc, *loc], "msg": f"must be at most {limit}"}
            for loc, value, limit in limits if value is not None and value > limit]


def _long_enough(spec: bptt.TrainingSpec, ids: list[str], lengths: list[int], field: str
                 ) -> list[dict[str, Any]]:
    """Every series must hold one input window plus one horizon (the engine's rule); `field`
    says where the series came from ("series" inline, or "dataset_id")."""
    window = input_size_for(spec, min(lengths))
    needed = window + spec.horizon
    return [
        {"loc": ["series", i, "values"] if field == "series" else [field],
         "msg": f"series {name!r} has {length} points; input window {window} + horizon "
                f"{spec.horizon} needs at least {needed}"}
        for i, (name, length) in enumerate(zip(ids, lengths, strict=True)) if length < needed
    ][:MAX_ERRORS]


def _cross_validation_errors(spec: bptt.TrainingSpec, ids: list[str], lengths: list[int]
                             ) -> list[dict[str, Any]]:
    """Series too short for the cross-validation the spec asks for (the engine's rule)."""
    if spec.cross_validation is None:
        return []
    try:
        check_cross_validation_lengths(zip(ids, lengths, strict=True), spec)
    except (DataError, bptt.SpecError) as exc:
        found = exc.errors if isinstance(exc, bptt.SpecError) else [{"loc": exc.loc,
                                                                     "msg": exc.msg}]
        return [{"loc": e["loc"], "msg": e["msg"]} for e in found]
    return []


def _forecast_limits(request: ForecastRequest, settings: Settings) -> list[dict[str, Any]]:
    """The service's limits on a forecast request."""
    errors = []
    if request.horizon is not None and request.horizon > settings.max_horizon:
        errors.append({"loc": ["horizon"], "msg": f"must be at most {settings.max_horizon}"})
    future = sum(len(values) for by_series in (request.future_covariates or {}).values()
                 for values in by_series.values())
    if future > settings.max_points:
        errors.append({"loc": ["future_covariates"], "msg": f"at most {settings.max_points} "
                                                            f"values in all (got {future})"})
    points = sum(len(s.values) for s in request.series or ())
    if points > settings.max_points:
        errors.append({"loc": ["series"], "msg": f"at most {settings.max_points} values in all "
                                                 f"(got {points})"})
    return errors
