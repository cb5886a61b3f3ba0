"""The OpenAPI 3.1 document: components generated from api/schemas.py, paths from OPERATIONS.

Served at /openapi.json. The engine's enumerations and the service's limits (from Settings) are
written into the generated schemas, so the document states what the API actually accepts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

from flask import Blueprint
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

import bptt
from bptt import (
    CALENDAR_CHOICES,
    CELL_NAMES,
    NONLINEARITIES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULES,
    SEASONALITIES,
    TRAINING_LOSSES,
)
from service.api.estimates import show_bytes, show_seconds
from service.api.extensions import current_settings
from service.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from service.api.problems import PROBLEM_JSON
from service.api.schemas import (
    MAX_LABELS,
    REQUEST_MODELS,
    RESPONSE_MODELS,
    ForecastRequest,
    JobOut,
    JobRequest,
    ObservationsIn,
    ProblemOut,
    RunName,
    SweepRequest,
)
from service.api.validation import MAX_LAYERS, MAX_QUANTILES
from service.settings import Settings
from service.store.job_listing import DEFAULT_SORT, sort_names
from service.store.repository import MIN_SHORT_ID_LENGTH
from service.store.tables import JOB_STATUSES

bp = Blueprint("openapi", __name__)
REF = "#/components/schemas/{model}"
CSV_BODY = {"type": "string", "description": "Long format: a header `unique_id,ds,y`, then one "
            "row per point; an empty y is a gap, and so is a ds missing from a series' regular "
            "spacing (its frequency: `freq`, else inferred from the ds); a ds between two "
            "grid points is refused naming its line. ds: integers or ISO 8601 dates and times.",
            "examples": ["unique_id,ds,y\nstore-1,2024-01,112\nstore-1,2024-02,118\n"]}
WITH_STATIC_TABLE = {
    "type": "object", "required": ["series"],
    "description": "The long CSV with its static covariates in a table of their own "
                   "(`curl -F series=@long.csv -F static=@static.csv`); the other fields in the "
                   "query, as with a text/csv body.",
    "properties": {
        "series": {"type": "string", "contentMediaType": "text/csv",
                   "description": "The long CSV, as a text/csv body."},
        "static": {"type": "string", "contentMediaType": "text/csv", "description": (
            "`unique_id,<a column per static covariate>`, one row per series: each column is "
            "a static covariate (numbers if every cell is one, else categories). Every series "
            "needs a row and every row a series; no empty cells; no name of a column of the "
            "long CSV.")}}}
_ERROR_TEXT = {
    400: "Malformed body (not JSON, not UTF-8).",
    401: "Missing, invalid or revoked API token.",
    404: "No such resource for this tenant.",
    409: "The resource is not in a state that allows this; or a short id begins the ids of "
         "several of the tenant's resources (`candidates` lists their full ids).",
    413: "The body is larger than the limit.",
    415: "The body is neither application/json nor text/csv (datasets: nor JSON lines).",
    422: "Invalid input, or a job whose estimated cost is over a limit; `errors` names every "
         "bad field (for a cost, the fields that drive it, with the estimate and the limit).",
    429: "The tenant has too many queued jobs (or stored datasets).",
    503: "Not ready.",
}


@dataclass(frozen=True)
class Operation:
    """One route of the API as the document describes it."""

    method: str
    path: str  # OpenAPI form: /v1/jobs/{job_id}
    operation_id: str
    summary: str
    tag: str
    responses: dict[int, dict[str, Any]]  # success answers; errors are added from `errors`
    errors: tuple[int, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    body: type[BaseModel] | None = None  # JSON body (also accepted as CSV + query)
    csv: bool = True  # whether the body may also be CSV with the other fields in the query
    static_table: bool = False  # whether the CSV may come with a static table (multipart)
    raw_body: dict[str, Any] | None = None  # a request body that is no JSON model (uploads)
    secured: bool = True
    description: str = field(default="")


def _json(model: str, description: str, **extra: Any) -> dict[str, Any]:
    """A JSON response whose body is the schema component `model`."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
            **extra}


def _param(name: str, where: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    """A parameter object."""
    return {"name": name, "in": where, "required": required or where == "path",
            "description": description, "schema": schema}


def _many(name: str, item: dict[str, Any], description: str) -> dict[str, Any]:
    """A query parameter that may be repeated (`status=queued&status=running`)."""
    return {**_param(name, "query", {"type": "array", "items": item}, description),
            "style": "form", "explode": True}


SHORT_ID = (f"or a short id: its first {MIN_SHORT_ID_LENGTH} or more characters, if they begin "
            "no other id of the tenant's (409 if they do)")
JOB_ID = _param("job_id", "path", {"type": "string"}, f"The job's id, {SHORT_ID}.")
SERIES_ID = _param("series_id", "path", {"type": "string"}, "A training series' id.")
SWEEP_ID = _param("sweep_id", "path", {"type": "string"}, f"The sweep's id, {SHORT_ID}.")
DATASET_ID = _param("dataset_id", "path", {"type": "string"}, f"The dataset's id, {SHORT_ID}.")
UPLOAD_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "description": "Long format, as a job's CSV: "
                            "a header `unique_id,ds,y`, then one row per point in any order. "
                            "Any further column is a covariate column: a number per point "
                            "(empty: a gap), stored beside the values."}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "JSON lines, one "
                                        'series per line: {"id": "s1", "values": [1.5, null, '
                                        '2], "start": "2021-01", "freq": "MS"} (start and freq '
                                        "optional)."}},
    "application/gzip": {"schema": {"type": "string", "contentMediaType": "application/gzip",
                                    "description": "Either one, gzipped (with ?format=)."}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["series"],
        "description": "The dataset with a static table: `curl -F series=@sales.csv -F "
                       "static=@static.csv`.",
        "properties": {
            "series": {"type": "string", "description": "The dataset, as one of the bodies "
                                                        "above (its Content-Type or ?format= "
                                                        "says which)."},
            "static": {"type": "string", "contentMediaType": "text/csv", "description": (
                "`unique_id,<a column per static covariate>`, one row per series: each column "
                "a static covariate (numbers if every cell is one, else categories); every "
                "series needs a row and every row a series.")}}}}}}
LOCATION = {"Location": {"description": "Where to follow it.", "schema": {"type": "string"}}}
SINCE = _param("since", "query", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1,
                                  "default": 0},
               "Only epochs after this one.")
PAGE = {"description": "HTML; the page calls the API with the token it is given.",
        "content": {"text/html": {"schema": {"type": "string"}}}}
FORECASTS_BODY = {"application/json": {"schema": {"$ref": REF.format(model="ForecastResult")}},
                  "text/csv": {"schema": {"type": "string", "description":
                                          "unique_id,ds,step,mean,q<quantile>... "
                                          "(Accept: text/csv)"}}}

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "healthz", "Liveness", "health",
              {200: _json("Health", "The process answers.")}, secured=False),
    Operation("get", "/readyz", "readyz", "Readiness: the database answers", "health",
              {200: _json("Health", "Ready.")}, errors=(503,), secured=False),
    Operation("post", "/v1/jobs", "submit_job", "Submit a training job", "jobs",
              {202: _json("JobOut", "Accepted and queued (or an Idempotency-Key replay).",
                          headers=LOCATION)},
              errors=(400, 401, 404, 409, 413, 415, 422, 429), body=JobRequest,
              static_table=True,
              parameters=(_param(IDEMPOTENCY_HEADER, "header", {"type": "string",
                                                                "maxLength": 255},
                                 "Same key and body replay the first answer; same key and "
                                 "another body is 422; a first request still in flight, 409."),),
              description="Everything is validated before anything is stored. With a text/csv "
                          "body, the spec fields are query parameters (`?horizon=12`, nested "
                          "ones dotted: `model.cell=gru`, lists comma-separated), and so are "
                          "the name and labels (`name=weekly&labels.team=retail`).\n\n"
                          "Covariates: `covariates` declares each one's kind and every series "
                          "item carries its values in its own `covariates` (a historical or "
                          "future one as long as `values`). With a text/csv body, the columns "
                          "beyond unique_id,ds,y are covariates, declared by the query's "
                          "`covariates=promo:future,temp:historical,store_type:static`: an "
                          "empty cell is a gap, a static column holds one value per series "
                          "(numbers if every series' is one, else categories); or, as a "
                          "multipart/form-data body, the long CSV in the part `series` and the "
                          "static covariates in a table of their own in the part `static`. With "
                          "dataset_id, `covariates` names some of the dataset's covariate "
                          "columns, each historical or future."),
    Operation("get", "/v1/jobs", "list_jobs",
              "List the tenant's jobs: filtered, sorted, a page at a time", "jobs",
              {200: _json("JobList", "A page of jobs.")}, errors=(401, 404, 409, 422),
              parameters=(
                  _many("status", {"type": "string", "enum": list(JOB_STATUSES)},
                        "Only jobs in one of these statuses (repeat it, or separate with "
                        "commas)."),
                  _many("cell", {"type": "string", "enum": sorted(CELL_NAMES)},
                        "Only jobs training one of these cells."),
                  _many("label", {"type": "string", "maxLength": 320},
                        "`key:value`: only jobs with this label; `key`: only jobs that have "
                        f"the key. Repeat it to ask for all of them (at most {MAX_LABELS})."),
                  _param("sweep_id", "query", {"type": "string"},
                         f"Only the trials of this sweep ({SHORT_ID}); `none`: only jobs "
                         "that are no sweep's trial."),
                  _param("sort", "query", {"type": "string", "enum": sort_names(),
                                           "default": DEFAULT_SORT},
                         "The order, `-` first for descending: created, name (ignoring "
                         "case), status (queued, running, succeeded, failed, cancelled), cell, "
                         "hidden (hidden size, then layers), series, horizon, val_loss (the "
                         "best validation loss so far), cv_mase, score, duration. Jobs "
                         "without the value come last either way; ties go by id."),
                  _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100,
                                            "default": 20}, "Jobs per page."),
                  _param("cursor", "query", {"type": "string"},
                         "`next_cursor` of the previous page, asked for with the same sort "
                         "and filters (a cursor of another sort is refused)."))),
    Operation("get", "/v1/jobs/{job_id}", "show_job", "A job's status and progress", "jobs",
              {200: _json("JobOut", "The job.")}, errors=(401, 404, 409), parameters=(JOB_ID,)),
    Operation("get", "/v1/jobs/{job_id}/metrics", "job_metrics", "Per-epoch metrics", "jobs",
              {200: _json("MetricsPage", "Metrics after `since`.")},
              errors=(401, 404, 409, 422),
              parameters=(JOB_ID, SINCE)),
    Operation("get", "/v1/jobs/{job_id}/diagnostics", "job_diagnostics",
              "Gradient flow through time and clipping history", "jobs",
              {200: _json("Diagnostics", "Per epoch after `since`.")},
              errors=(401, 404, 409, 422),
              parameters=(JOB_ID, SINCE)),
    Operation("get", "/v1/jobs/{job_id}/series", "job_series",
              "The job's training series, cut to their tails", "jobs",
              {200: _json("SeriesPage", "A page of series, each with its last `tail` values.")},
              errors=(401, 404, 409, 422),
              parameters=(JOB_ID,
                          _param("tail", "query", {"type": "integer", "minimum": 1,
                                                   "maximum": 1000, "default": 100},
                                 "Values kept from the end of each series."),
                          _param("limit", "query", {"type": "integer", "minimum": 1,
                                                    "maximum": 100, "default": 20},
                                 "Series per page."),
                          _param("offset", "query", {"type": "integer", "minimum": 0,
                                                     "maximum": 2**31 - 1, "default": 0},
                                 "`next_offset` of the previous page."))),
    Operation("get", "/v1/jobs/{job_id}/series/{series_id}/forecast", "series_forecast",
              "A training series' forecast from its stored state", "jobs",
              {200: _json("SeriesForecastOut", "The forecast after the series' latest value.")},
              errors=(401, 404, 409, 422),
              parameters=(JOB_ID, SERIES_ID,
                          _param("horizon", "query", {"type": "integer", "minimum": 1},
                                 "Steps (default: the model's horizon)."),
                          _param("quantiles", "query", {"type": "string"},
                                 "Comma-separated trained quantiles (default: all).")),
              description="A model trained with future covariates takes each one's values "
                          "over its horizon as a parameter of its own, "
                          "`future_covariates.NAME=v1,v2,...` (required then; the horizon is "
                          "the model's)."),
    Operation("post", "/v1/jobs/{job_id}/series/{series_id}/observations",
              "append_observations", "Append new observations to a training series", "jobs",
              {200: _json("SeriesForecastOut", "Appended; the updated forecast.")},
              errors=(400, 401, 404, 409, 413, 415, 422), parameters=(JOB_ID, SERIES_ID),
              body=ObservationsIn, csv=False,
              description="The service keeps each training series' recent values and final "
                          "hidden state, so only the new values are sent; the answer equals a "
                          "forecast from the whole history. Concurrent appends to one series: "
                          "one wins, the other gets 409 and sends again. A model trained with "
                          "covariates takes their values at the appended steps (`covariates`) "
                          "and, for the answer's forecast, the future ones' over the horizon "
                          "(`future_covariates`)."),
    Operation("post", "/v1/jobs/{job_id}/cancel", "cancel_job", "Cancel a job", "jobs",
              {200: _json("JobOut", "Was queued: cancelled."),
               202: _json("JobOut", "Running: asked to stop; it stops within an epoch.")},
              errors=(401, 404, 409), parameters=(JOB_ID,)),
    Operation("get", "/v1/jobs/{job_id}/model", "download_model",
              "The trained model (safetensors, model card in its metadata)", "jobs",
              {200: {"description": "The safetensors file.",
                     "headers": {"ETag": {"description": "Quoted sha256 of the file.",
                                          "schema": {"type": "string"}}},
                     "content": {"application/octet-stream": {"schema": {
                         "type": "string", "contentMediaType": "application/octet-stream"}}}},
               304: {"description": "Unchanged since the ETag given in If-None-Match."}},
              errors=(401, 404, 409),
              parameters=(JOB_ID, _param("If-None-Match", "header", {"type": "string"},
                                         "An ETag from an earlier download."))),
    Operation("delete", "/v1/jobs/{job_id}", "delete_job", "Delete a finished job", "jobs",
              {204: {"description": "Deleted with its dataset, metrics and model."}},
              errors=(401, 404, 409), parameters=(JOB_ID,)),
    Operation("post", "/v1/forecasts", "create_forecasts", "Forecast with a job's model",
              "forecasts",
              {200: {"description": "Forecasts (small requests).", "content": FORECASTS_BODY},
               202: _json("ForecastBatchOut", "Stored as a batch (large requests).",
                          headers=LOCATION)},
              errors=(400, 401, 404, 409, 413, 415, 422), body=ForecastRequest,
              static_table=True,
              description="With a text/csv body, job_id (or sweep_id), horizon, quantiles "
                          "and future_covariates (as JSON) are query parameters. A model trained "
                          "with covariates needs each sent series' own (`series[].covariates`, "
                          "as in a job request; with a text/csv body, columns declared by "
                          "`covariates=promo:future,temp:historical,...`, the static ones "
                          "also as a table: a multipart/form-data body with the parts `series` "
                          "and `static`) and the future ones' "
                          "values over the horizon (`future_covariates`); one trained without "
                          "them is given none."),
    Operation("get", "/v1/forecasts/{batch_id}", "show_forecast_batch", "A forecast batch",
              "forecasts",
              {200: _json("ForecastBatchOut", "Its status, and forecasts once succeeded.")},
              errors=(401, 404, 409),
              parameters=(_param("batch_id", "path", {"type": "string"},
                                 f"The batch's id, {SHORT_ID}."),)),
    Operation("post", "/v1/sweeps", "create_sweep", "Start a hyperparameter sweep", "sweeps",
              {202: _json("SweepOut", "Accepted: every trial is a queued job.",
                          headers=LOCATION)},
              errors=(400, 401, 404, 409, 413, 415, 422, 429), body=SweepRequest, csv=False,
              description="The base job is checked as POST /v1/jobs checks one, then every "
                          "trial's spec; nothing is stored unless all pass."),
    Operation("get", "/v1/sweeps", "list_sweeps", "List the tenant's sweeps, newest first",
              "sweeps", {200: _json("SweepList", "A page of sweeps (without trials).")},
              errors=(401, 422),
              parameters=(_param("limit", "query", {"type": "integer", "minimum": 1,
                                                    "maximum": 100, "default": 20},
                                 "Sweeps per page."),
                          _param("cursor", "query", {"type": "string"},
                                 "`next_cursor` of the previous page."))),
    Operation("get", "/v1/sweeps/{sweep_id}", "show_sweep", "A sweep, its trials and the best",
              "sweeps", {200: _json("SweepOut", "The sweep.")}, errors=(401, 404, 409),
              parameters=(SWEEP_ID,)),
    Operation("post", "/v1/sweeps/{sweep_id}/cancel", "cancel_sweep",
              "Cancel a sweep and its trials", "sweeps",
              {200: _json("SweepOut", "Cancelled; no trial was running."),
               202: _json("SweepOut", "Cancelled; running trials stop within an epoch.")},
              errors=(401, 404, 409), parameters=(SWEEP_ID,)),
    Operation("post", "/v1/datasets", "upload_dataset", "Upload a dataset (streamed)",
              "datasets",
              {201: _json("DatasetOut", "Stored; described.", headers=LOCATION)},
              errors=(400, 401, 413, 415, 422, 429),
              parameters=(
                  _param("name", "query", {"type": "string", "minLength": 1, "maxLength": 255},
                         "A label, e.g. the file's name."),
                  _param("format", "query", {"type": "string", "enum": ["csv", "jsonl"]},
                         "The format, when the Content-Type does not say it (e.g. "
                         "application/gzip)."),
                  _param("freq", "query", {"type": "string", "maxLength": 16},
                         "CSV: the frequency of the dated series (MS, W-SUN, D, h, ...); "
                         "inferred from their ds when left out (integer ds take their own "
                         "step)."),
                  _param("Content-Encoding", "header", {"type": "string", "enum": ["gzip"]},
                         "gzip: the body is gzip-compressed (a body that starts with gzip's "
                         "magic bytes is unzipped anyway).")),
              raw_body=UPLOAD_BODY,
              description="The body is read a block at a time and never held whole. A CSV's "
                          "series are placed on the grid of their frequency, as inline CSV's: "
                          "a missing ds is a gap, and a ds between two grid points answers "
                          "422 naming its series and line. Bad rows answer 422 naming their "
                          "lines, and nothing is stored. Jobs, sweeps and forecasts then name "
                          "it by `dataset_id`; their forecasts carry each step's `ds`."),
    Operation("get", "/v1/datasets", "list_datasets", "List the tenant's datasets, newest "
              "first", "datasets", {200: _json("DatasetList", "A page of datasets.")},
              errors=(401, 422),
              parameters=(_param("limit", "query", {"type": "integer", "minimum": 1,
                                                    "maximum": 100, "default": 20},
                                 "Datasets per page."),
                          _param("cursor", "query", {"type": "string"},
                                 "`next_cursor` of the previous page."))),
    Operation("get", "/v1/datasets/{dataset_id}", "show_dataset",
              "A dataset: series, points, gaps, lengths, frequency", "datasets",
              {200: _json("DatasetOut", "The dataset.")}, errors=(401, 404, 409),
              parameters=(DATASET_ID,)),
    Operation("delete", "/v1/datasets/{dataset_id}", "delete_dataset", "Delete a dataset",
              "datasets", {204: {"description": "Deleted with its values."}},
              errors=(401, 404, 409), parameters=(DATASET_ID,),
              description="Refused (409, naming them in `jobs`) while queued or running jobs "
                          "train on it. Finished jobs keep their models and series states."),
    Operation("get", "/metrics", "metrics", "Operators' metrics (Prometheus text format)",
              "health",
              {200: {"description": "Jobs by status, queue depth, recent epoch durations, "
                                    "forecast latency, worker heartbeats.",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
              secured=False),
    Operation("get", "/openapi.json", "openapi", "This document", "meta",
              {200: {"description": "OpenAPI 3.1.",
                     "content": {"application/json": {"schema": {"type": "object"}}}}},
              secured=False),
    Operation("get", "/docs", "docs", "Browsable documentation", "meta",
              {200: {"description": "HTML.", "content": {"text/html": {"schema": {
                  "type": "string"}}}}}, secured=False),
    Operation("get", "/", "dashboard", "Dashboard: sign in, the runs table, submit a CSV",
              "meta", {200: PAGE}, secured=False),
    Operation("get", "/jobs/{job_id}", "dashboard_job",
              "Dashboard: a job's live curves, gradient flow, forecast and actions", "meta",
              {200: PAGE}, errors=(404,), secured=False, parameters=(JOB_ID,)),
    Operation("get", "/sweeps/{sweep_id}", "dashboard_sweep",
              "Dashboard: a sweep's trials, score against each setting, best forecast", "meta",
              {200: PAGE}, errors=(404,), secured=False, parameters=(SWEEP_ID,)),
    Operation("get", "/compare", "dashboard_compare",
              "Dashboard: 2 to 6 runs compared (losses, gradient norms, spec differences)",
              "meta", {200: PAGE}, secured=False,
              parameters=(_param("ids", "query", {"type": "string"},
                                 "The runs' ids, comma-separated.", required=True),)),
)


@bp.get("/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI document of this deployment (its limits included)."""
    return build_document(current_settings())


@lru_cache(maxsize=4)
def build_document(settings: Settings) -> dict[str, Any]:
    """The whole document for `settings` (cached: it depends on nothing else)."""
    refs, definitions = models_json_schema(
        [(m, "validation") for m in REQUEST_MODELS] + [(m, "serialization") for m in
                                                       RESPONSE_MODELS],
        ref_template=REF,
    )
    schemas = definitions["$defs"]
    _constrain_spec(schemas, settings, refs)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "bptt: RNN forecasters trained over HTTP", "version": _version(),
                 "description": _limits_text(settings)},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name} for name in ("jobs", "sweeps", "forecasts", "datasets",
                                             "health", "meta")],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "An API token from `bptt tokens create --tenant NAME`."}},
        },
    }


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The operation object of one route."""
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                           "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    parameters = list(op.parameters)
    if op.body is not None:
        content = {"application/json": {"schema": refs[(op.body, "validation")]}}
        if op.csv:
            content["text/csv"] = {"schema": CSV_BODY}
            if op.static_table:
                content["multipart/form-data"] = {"schema": WITH_STATIC_TABLE}
            parameters += _csv_query_parameters(op.body)
        out["requestBody"] = {"required": True, "content": content}
    elif op.raw_body is not None:
        out["requestBody"] = op.raw_body
    if parameters:
        out["parameters"] = parameters
    responses = {str(status): answer for status, answer in op.responses.items()}
    problem = refs[(ProblemOut, "serialization")]
    for status in op.errors:
        responses[str(status)] = {"description": _ERROR_TEXT[status],
                                  "content": {PROBLEM_JSON: {"schema": problem}}}
    out["responses"] = responses
    if not op.secured:
        out["security"] = []
    return out


def _csv_query_parameters(body: type[BaseModel]) -> list[dict[str, Any]]:
    """With a CSV body, every non-series field is a query parameter (nested ones dotted)."""
    if body is ForecastRequest:
        return [_query_param(name, f.annotation, required=f.is_required())
                for name, f in ForecastRequest.model_fields.items()
                if name not in ("series", "dataset_id", "series_ids")]  # JSON bodies only
    return [_query_param("name", RunName), *(_query_param(name, hint) for name, hint in
                                         _spec_leaves(bptt.TrainingSpec, ""))]


def _spec_leaves(cls: type, prefix: str) -> list[tuple[str, Any]]:
    """(dotted name, type hint) of every leaf field of a spec dataclass."""
    hints = typing.get_type_hints(cls)
    leaves = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        # an optional nested config (cross_validation) is dotted like a required one
        nested = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        if nested:
            hint = nested[0]
        if dataclasses.is_dataclass(hint):
            leaves += _spec_leaves(hint, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            leaves.append((prefix + f.name, hint))
    return leaves


def _query_param(name: str, hint: Any, required: bool = False) -> dict[str, Any]:
    """A query parameter read only with a text/csv body."""
    schema = TypeAdapter(hint).json_schema()
    param = _param(name, "query", schema, "With a text/csv body only.", required=required)
    branches = [schema, *schema.get("anyOf", [])]
    if any(branch.get("type") == "array" for branch in branches):
        param.update(style="form", explode=False)  # quantiles=0.1,0.5,0.9
    return param


CALENDAR_DESCRIPTION = (
    "Calendar features of each step (month of the year, day of the week, hour of the day, as "
    "the frequency resolves them), read by the model as known-future inputs and recomputed "
    "by every forecast from each series' `start`, `freq` and length: `cyclic` (a sin, cos "
    "pair per cycle), `onehot` (a column per month, weekday or hour), `off`, or `auto` (the "
    "default): the default encoding where the series have date starts and a date frequency "
    "is known, off where not. A job's `spec` shows the choice made; an encoding the series' "
    "dates cannot carry is refused (422 at `calendar`).")


def _constrain_spec(schemas: dict[str, Any], settings: Settings,
                    refs: dict[Any, dict[str, Any]]) -> None:
    """Write the engine's choices and the service's limits into the generated spec schemas.

    The schemas are found by following the request's and the job document's `$ref`s along the
    spec's own structure, never by the names pydantic gives them: those differ between
    versions (2.14 splits a dataclass used both ways into `ModelConfig-Input` and `-Output`).
    """
    rules: dict[str, dict[str, Any]] = {
        "horizon": {"minimum": 1, "maximum": settings.max_horizon},
        "quantiles": {"maxItems": MAX_QUANTILES},
        "scaler": {"enum": list(SCALERS)},
        "seasonality": {"enum": list(SEASONALITIES)},
        "calendar": {"enum": list(CALENDAR_CHOICES), "description": CALENDAR_DESCRIPTION},
        "window.input_size": {"minimum": 1, "maximum": settings.max_input_size},
        "model.cell": {"enum": sorted(CELL_NAMES)},
        "model.hidden_size": {"minimum": 1, "maximum": settings.max_hidden_size},
        "model.num_layers": {"minimum": 1, "maximum": MAX_LAYERS},
        "model.nonlinearity": {"enum": list(NONLINEARITIES)},
        "training.epochs": {"minimum": 1, "maximum": settings.max_epochs},
        "training.max_steps": {"minimum": 1},
        "training.eval_every": {"minimum": 1},
        "training.batch_size": {"minimum": 1, "maximum": settings.max_batch_size},
        "training.ensemble": {"minimum": 1, "maximum": settings.max_ensemble},
        "training.optimizer": {"enum": list(OPTIMIZERS)},
        "training.schedule": {"enum": list(SCHEDULES)},
        "training.loss": {"enum": list(TRAINING_LOSSES)},
        "cross_validation.windows": {"minimum": 1, "maximum": settings.max_cv_windows},
        "cross_validation.step": {"minimum": 1},
    }
    request = _component(schemas, refs[(JobRequest, "validation")])
    document = _component(schemas, refs[(JobOut, "serialization")])
    for root in (request, _component(schemas, document["properties"]["spec"])):
        objects = _spec_objects(schemas, root, bptt.TrainingSpec, "")
        for schema in objects.values():  # TrainingSpec.from_dict refuses unknown fields
            schema["additionalProperties"] = False
        for path, keywords in rules.items():
            prefix, _, name = path.rpartition(".")
            _non_null(objects[prefix]["properties"][name]).update(keywords)


def _component(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The component a schema refers to (through an optional field's non-null branch)."""
    ref = _non_null(schema)["$ref"]
    return schemas[ref.rsplit("/", 1)[-1]]


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field's non-null branch, else the schema itself."""
    if "anyOf" in schema:
        return next(s for s in schema["anyOf"] if s.get("type") != "null")
    return schema


def _spec_objects(schemas: dict[str, Any], root: dict[str, Any], cls: type,
                  prefix: str) -> dict[str, dict[str, Any]]:
    """Dotted path of each spec dataclass ("" for the spec itself) -> its object schema."""
    found = {prefix: root}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        nested = [a for a in (hints[f.name], *typing.get_args(hints[f.name]))
                  if dataclasses.is_dataclass(a)]
        if nested:
            child = _component(schemas, root["properties"][f.name])
            path = f"{prefix}.{f.name}" if prefix else f.name
            found.update(_spec_objects(schemas, child, nested[0], path))
    return found


def _limits_text(settings: Settings) -> str:
    """The deployment's limits, for the document's description."""
    return (
        "Authenticate with `Authorization: Bearer <token>`; every job and forecast batch "
        "belongs to the token's tenant. Errors are RFC 9457 `application/problem+json`.\n\n"
        f"Limits: body {settings.max_body_bytes} bytes; {settings.max_series} series and "
        f"{settings.max_points} values per request; horizon {settings.max_horizon}; input "
        f"window {settings.max_input_size}; hidden size {settings.max_hidden_size}; "
        f"{MAX_LAYERS} layers; {settings.max_epochs} epochs; batch size "
        f"{settings.max_batch_size}; ensemble {settings.max_ensemble}; "
        f"{settings.max_cv_windows} cross-validation windows; "
        f"{settings.max_queued_jobs_per_tenant} queued jobs per tenant; forecasts of up to "
        f"{settings.sync_forecast_max_series} series are answered at once, larger ones as "
        "batches (202). Uploaded datasets: body and its text "
        f"{settings.max_dataset_bytes} bytes; {settings.max_dataset_series} series, "
        f"{settings.max_dataset_points} values, {settings.max_dataset_series_length} values a "
        f"series; {settings.max_datasets_per_tenant} datasets per tenant.\n\n"
        "Cost: each job (each trial of a sweep) is estimated at submit from its data and spec, "
        "and refused with 422 naming the fields that drive the cost when its compute is over "
        f"{settings.max_job_flops:.3g} FLOPs, its peak memory over "
        f"{show_bytes(settings.max_job_memory)}, or its duration on this deployment's workers "
        "if every planned epoch runs over the job time limit, "
        f"{show_seconds(settings.job_time_limit_seconds)}. The estimate is in the job "
        "document (`estimate`, with the duration to expect when early stopping ends members "
        "as it ended the tenant's earlier jobs). Workers stop a job after "
        f"{show_seconds(settings.job_time_limit_seconds)} or when it allocates more than "
        f"{show_bytes(settings.job_memory_ceiling)}; it fails with that reason."
    )


def _version() -> str:
    """The package version, as the document's version."""
    try:
        return metadata.version("bptt-service")
    except metadata.PackageNotFoundError:
        return "0.0.0"

