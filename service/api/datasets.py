"""/v1/datasets: upload series once, describe them, list and delete them; and `dataset_id` in
job, sweep and forecast requests, read here into a selection of the dataset's series.

An upload is streamed: service.api.upload_formats reads the body a block at a time into
service.store.dataset_ingest's spool, which sorts and packs it into compressed arrays; one
transaction then stores it all (a refused upload stores nothing). Requests that name a dataset
are checked against its index (ids and lengths) without reading its values.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from bptt import CalendarError, Freq, parse_freq
from service.api import covariate_checks, lookup, params, static_table
from service.api.auth import authenticate, current_tenant_id
from service.api.bodies import MULTIPART, SERIES_PART, unknown_parts
from service.api.documents import json_response
from service.api.extensions import current_settings, get_session
from service.api.problems import Problem, ValidationProblem, problem_response
from service.api.schemas import DatasetList, DatasetOut, LengthBin
from service.api.upload_formats import (
    GZIP_ERRORS,
    MAX_ID_LENGTH,
    MEDIA_TYPES,
    gzip_error,
    open_upload,
    reader_for,
)
from service.settings import Settings
from service.store import dataset_ingest, dataset_rows
from service.store.dataset_ingest import DatasetBuilder, DatasetError, Limits
from service.store.dataset_rows import DatasetSelection
from service.store.tables import UploadedDataset

bp = Blueprint("datasets", __name__, url_prefix="/v1/datasets")
bp.before_request(authenticate)
log = logging.getLogger(__name__)

# Routes whose body may be as large as BPTT_MAX_DATASET_BYTES (the app refuses larger bodies
# than BPTT_MAX_BODY_BYTES everywhere else before any route runs).
LARGE_BODY_ENDPOINTS = frozenset({"datasets.upload_dataset"})
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_NAME_LENGTH = 255
QUOTA_RETRY_AFTER_S = 60
DATASET_ID, SERIES_IDS = "dataset_id", "series_ids"


def get_dataset(dataset_id: str, *, loc: list[str | int] | None = None) -> UploadedDataset:
    """The current tenant's dataset (full or short id), or 404 (another tenant's is as good as
    unknown), or 409 for a short id of several datasets; as jobs.get_job."""
    return lookup.find(UploadedDataset, dataset_id, kind="dataset",
                       loc=loc or ["path", "dataset_id"])


def limits(settings: Settings) -> Limits:
    """What one dataset may hold."""
    return Limits(series=settings.max_dataset_series, points=settings.max_dataset_points,
                  series_length=settings.max_dataset_series_length)


@bp.post("")
def upload_dataset() -> Response:
    """Stream an upload into the spool, check and pack it, store it in one transaction: 201."""
    settings, session, tenant_id = current_settings(), get_session(), current_tenant_id()
    params.refuse_unknown(("name", "format", "freq"))
    name = request.args.get("name")
    if name is not None and not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationProblem([{"loc": ["query", "name"],
                                  "msg": f"must be 1 to {MAX_NAME_LENGTH} characters"}])
    stored = dataset_rows.count_for_tenant(session, tenant_id=tenant_id)
    if stored >= settings.max_datasets_per_tenant:
        raise Problem(f"{stored} datasets are stored; the limit is "
                      f"{settings.max_datasets_per_tenant}. Delete some first.", status=429,
                      headers={"Retry-After": str(QUOTA_RETRY_AFTER_S)})
    session.commit()  # no transaction stays open while the body streams in
    # a multipart body: the dataset in the part `series`, its static table in `static`
    parts = _parts() if request.mimetype == MULTIPART else None
    format = _format(request.mimetype if parts is None else parts[0].mimetype)
    freq = _given_freq(format)
    gzipped = request.headers.get("Content-Encoding", "").strip().lower() in ("gzip", "x-gzip")
    upload = open_upload(request.stream if parts is None else parts[0].stream,
                         gzipped=gzipped, limit=settings.max_dataset_bytes)
    with DatasetBuilder(limits(settings)) as builder:
        try:
            table = reader_for(format)(upload.text, builder, limits(settings))
            table.freq = freq
            prepared = builder.finish(table)
            if parts is not None and parts[1] is not None:
                prepared.static = _static_columns(parts[1], prepared)
        except DatasetError as exc:
            upload.drain()
            raise ValidationProblem(exc.errors) from None
        except GZIP_ERRORS as exc:
            upload.drain()
            raise gzip_error(exc) from None
        except Problem:
            upload.drain()
            raise
        dataset = dataset_ingest.store(session, builder, prepared, tenant_id=tenant_id,
                                       name=name, format=format,
                                       upload_bytes=upload.body.count,
                                       text_bytes=upload.unzipped.count)
        session.commit()
    log.info("dataset uploaded: %d series, %d points, %d bytes stored", dataset.num_series,
             dataset.num_points, dataset.stored_bytes,
             extra={"dataset_id": dataset.id, "tenant_id": tenant_id})
    response = json_response(document(dataset), 201)
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return response


@bp.get("")
def list_datasets() -> Response:
    """The tenant's datasets, newest first, a page at a time."""
    params.refuse_unknown(("limit", "cursor"))
    limit = params.int_arg("limit", default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    rows = dataset_rows.list_for_tenant(get_session(), tenant_id=current_tenant_id(),
                                        before=params.cursor_arg(), limit=limit + 1)
    page = rows[:limit]
    cursor = (params.encode_cursor(page[-1].created_at, page[-1].id)
              if len(rows) > limit else None)
    return json_response(DatasetList(datasets=[document(d) for d in page], next_cursor=cursor))


@bp.get("/<dataset_id>")
def show_dataset(dataset_id: str) -> Response:
    """Series, points, gaps, the length histogram and the inferred frequency."""
    return json_response(document(get_dataset(dataset_id)))


@bp.delete("/<dataset_id>")
def delete_dataset(dataset_id: str) -> tuple[str, int]:
    """Delete a dataset no queued or running job uses (409 naming them otherwise)."""
    session = get_session()
    dataset = get_dataset(dataset_id)
    using = dataset_rows.delete_unused(session, dataset.id)
    if using:
        session.rollback()
        raise Problem(f"Queued or running jobs use this dataset ({', '.join(using)}); cancel "
                      "them or wait until they end.", status=409, jobs=using)
    session.commit()
    log.info("dataset deleted", extra={"dataset_id": dataset.id})
    return "", 204


@bp.app_errorhandler(dataset_rows.DatasetGone)
def _deleted_meanwhile(exc: dataset_rows.DatasetGone) -> Response:
    """A request that named a dataset deleted after it was checked (and before the insert)."""
    return problem_response(409, detail=f"The dataset {exc} was deleted while the request was "
                                        "being stored; nothing was stored.")


def document(dataset: UploadedDataset) -> DatasetOut:
    """A dataset as GET /v1/datasets/{id} answers it."""
    return DatasetOut(
        id=dataset.id, name=dataset.name, format=dataset.format,  # type: ignore[arg-type]
        created_at=dataset.created_at, num_series=dataset.num_series,
        num_points=dataset.num_points, num_gaps=dataset.num_gaps,
        min_length=dataset.min_length, max_length=dataset.max_length,
        length_histogram=[LengthBin(**b) for b in dataset.length_histogram],
        frequency=dataset.frequency, freq_inferred=dataset.freq_inferred,
        missing_timestamps=dataset.missing_timestamps,
        upload_bytes=dataset.upload_bytes, text_bytes=dataset.text_bytes,
        stored_bytes=dataset.stored_bytes, covariates=dataset.covariate_columns or [],
        static_covariates=dataset.static_columns or [])


def selection_from_request(data: Any, *, prefix: tuple[str | int, ...] = ()
                           ) -> DatasetSelection | None:
    """Take `dataset_id` and `series_ids` out of a request's fields (a dict): the tenant's
    dataset and the series named, checked against its index; None without a dataset_id.
    `prefix` is where the fields sit in the body (("job",) in a sweep)."""
    if not isinstance(data, dict) or data.get(DATASET_ID) is None:
        if isinstance(data, dict) and data.get(SERIES_IDS) is not None:
            raise ValidationProblem([{"loc": [*prefix, SERIES_IDS],
                                      "msg": "needs dataset_id"}])
        if isinstance(data, dict):
            data.pop(DATASET_ID, None)
            data.pop(SERIES_IDS, None)
        return None
    dataset_id, series_ids = data.pop(DATASET_ID), data.pop(SERIES_IDS, None)
    if not isinstance(dataset_id, str):
        raise ValidationProblem([{"loc": [*prefix, DATASET_ID],
                                  "msg": "must be a dataset id (a string)"}])
    return selection(dataset_id, _series_ids(series_ids, [*prefix, SERIES_IDS]), prefix=prefix)


def selection(dataset_id: str, wanted: list[str] | None, *, prefix: tuple[str | int, ...] = ()
              ) -> DatasetSelection:
    """The tenant's dataset `dataset_id` and its series `wanted` (None: all), checked against
    its index: 404/409 naming dataset_id, 422 naming each unknown series id."""
    loc: list[str | int] = [*prefix, DATASET_ID]
    dataset = get_dataset(dataset_id, loc=loc)
    index = dataset_rows.load_index(get_session(), dataset.id)
    if index is None:  # deleted between the two reads
        raise ValidationProblem([{"loc": loc, "msg": "no such dataset"}])
    selection, missing = dataset_rows.select_series(index, wanted)
    if selection is None:
        assert wanted is not None
        raise ValidationProblem([
            {"loc": [*prefix, SERIES_IDS, i],
             "msg": f"dataset {dataset.id} has no series {wanted[i]!r}"} for i in missing[:20]])
    return selection


def check_lengths_for_model(selection: DatasetSelection, steps: int) -> None:
    """Refuse, naming dataset_id, series shorter than the `steps` a model reads."""
    short = [f"series {name!r} has {length} points; the model reads the last {steps}"
             for name, length in zip(selection.ids, selection.lengths, strict=True)
             if length < steps]
    if short:
        raise ValidationProblem([{"loc": [DATASET_ID], "msg": msg} for msg in short[:20]])


def _series_ids(raw: Any, loc: list[str | int]) -> list[str] | None:
    """series_ids as a list of distinct ids, or None (all the dataset's series)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise ValidationProblem([{"loc": loc, "msg": "must be a non-empty list of series ids"}])
    errors = [{"loc": [*loc, i], "msg": f"must be a string of 1 to {MAX_ID_LENGTH} characters"}
              for i, name in enumerate(raw)
              if not isinstance(name, str) or not 1 <= len(name) <= MAX_ID_LENGTH]
    if not errors:
        seen: dict[str, int] = {}
        for i, name in enumerate(raw):
            if name in seen:
                errors.append({"loc": [*loc, i], "msg": f"repeats {name!r} (index {seen[name]})"})
            seen.setdefault(name, i)
    if errors:
        raise ValidationProblem(errors[:20])
    return raw


def _given_freq(format: str) -> Freq | None:
    """?freq=: the grid of a CSV's dated series (else inferred from their ds, as inline CSV's);
    integer ds always take their own step, and JSON lines give freq on each line."""
    text = request.args.get("freq")
    if text is None:
        return None
    loc = ["query", "freq"]
    if format != "csv":
        raise ValidationProblem([{"loc": loc, "msg": "JSON lines give each series' freq on "
                                                     "its line"}])
    try:
        freq = parse_freq(text)
    except CalendarError as exc:
        raise ValidationProblem([{"loc": loc, "msg": str(exc)}]) from None
    if freq.unit == "step":
        raise ValidationProblem([{"loc": loc, "msg": "must be a date frequency (MS, W-SUN, D, "
                                                     "h, ...); integer ds take their own step"}])
    return freq


def _format(mimetype: str) -> str:
    """The upload's format: ?format=, else from its Content-Type (`mimetype`: the body's, or
    its series part's)."""
    wanted = request.args.get("format")
    if wanted is not None:
        if wanted not in ("csv", "jsonl"):
            raise ValidationProblem([{"loc": ["query", "format"],
                                      "msg": "must be one of csv, jsonl"}])
        return wanted
    if mimetype in MEDIA_TYPES:
        return MEDIA_TYPES[mimetype]
    raise Problem("Send a dataset as text/csv or application/x-ndjson (JSON lines), gzipped "
                  "or not (or as the part `series` of a multipart/form-data body, beside its "
                  "static table in the part `static`), or say which with ?format=csv or "
                  f"?format=jsonl (got {mimetype or 'no Content-Type'}).", status=415)


def _parts() -> tuple[FileStorage, bytes | None]:
    """The `series` part of a multipart upload (werkzeug has spooled it to a file) and the
    bytes of its `static` part (None if not sent); 422 naming a missing or unknown part."""
    errors = unknown_parts("the dataset")
    if SERIES_PART not in request.files:
        errors.append({"loc": ["body", SERIES_PART],
                       "msg": "part required: the dataset, as a file (curl -F series=@FILE)"})
    if errors:
        raise ValidationProblem(errors)
    static = request.files.get(static_table.PART)
    text = request.form.get(static_table.PART)
    return (request.files[SERIES_PART],
            static.read() if static is not None else None if text is None else text.encode())


def _static_columns(raw: bytes, prepared: dataset_ingest.Prepared
                    ) -> dict[str, list[float | str]]:
    """A static table's columns, a value per series of the dataset in storage order; 422
    naming what is wrong (as with inline CSV: a row for every series, a series for every
    row, no empty cell, no name of one of the dataset's columns)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Problem(f"The 'static' part is not UTF-8: {exc}", status=400) from None
    table = static_table.read_static_table(text, prepared.ids,
                                           dict.fromkeys(prepared.covariates, "dynamic"))
    columns = table.columns(prepared.ids)
    errors = [{"loc": ["body", static_table.PART, f"line {table.rows[uid][1]}", name],
               "msg": problem}
              for name, values in columns.items()
              for uid, value in zip(prepared.ids, values, strict=True)
              if (problem := covariate_checks.static_problem(value))]
    if errors:
        raise ValidationProblem(errors[:20])
    return columns
