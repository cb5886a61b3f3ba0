"""Following jobs: list and pages, status, metrics, diagnostics, cancel, model download, delete.

Jobs are submitted through the API; a SimulatedWorker then writes the rows a worker would.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.store.tables import Dataset, EpochMetric, Job, TrainedModel

from .conftest import SERIES, SPEC, SimulatedWorker, row_count
from .test_app import assert_problem

BODY = {"series": SERIES, **SPEC}


@pytest.fixture
def submit(client: FlaskClient, auth: dict[str, str]) -> Callable[..., str]:
    """Submit a job as tenant "acme"; returns its id."""

    def submit_job(headers: dict[str, str] | None = None) -> str:
        response = client.post("/v1/jobs", json=BODY, headers=headers or auth)
        assert response.status_code == 202, response.get_json()
        return str(response.get_json()["id"])

    return submit_job


def test_list_is_newest_first_filtered_and_paged(
    client: FlaskClient, auth: dict[str, str], other_auth: dict[str, str],
    submit: Callable[..., str], worker: SimulatedWorker
) -> None:
    ids = [submit() for _ in range(5)]
    submit(other_auth)  # never listed for acme
    worker.start(ids[1])
    worker.start(ids[3])

    everything = client.get("/v1/jobs", headers=auth).get_json()
    assert [j["id"] for j in everything["jobs"]] == ids[::-1]
    assert everything["next_cursor"] is None
    assert set(everything["jobs"][0]) == {
        "id", "name", "labels", "status", "created_at", "started_at", "finished_at",
        "duration_seconds", "progress", "error", "cell", "hidden_size", "num_layers", "horizon",
        "num_series", "best_val_loss", "cv_mase", "sweep_id", "trial", "score", "estimate"}
    # the list carries each job's estimate and time left, as its document does
    listed = {j["id"]: j for j in everything["jobs"]}
    assert listed[ids[0]]["estimate"] == client.get(f"/v1/jobs/{ids[0]}",
                                                    headers=auth).get_json()["estimate"]
    assert listed[ids[0]]["progress"]["remaining_seconds"] == listed[ids[0]]["estimate"][
        "seconds"]

    running = client.get("/v1/jobs?status=running", headers=auth).get_json()
    assert [j["id"] for j in running["jobs"]] == [ids[3], ids[1]]

    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/jobs{query}", headers=auth).get_json()
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1] and pages == 3

    queued = client.get("/v1/jobs?status=queued&limit=2", headers=auth).get_json()
    rest = client.get(f"/v1/jobs?status=queued&limit=2&cursor={queued['next_cursor']}",
                      headers=auth).get_json()
    assert [j["id"] for j in queued["jobs"] + rest["jobs"]] == [ids[4], ids[2], ids[0]]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("?status=done", ["query", "status"]),
        ("?limit=0", ["query", "limit"]),
        ("?limit=101", ["query", "limit"]),
        ("?limit=ten", ["query", "limit"]),
        ("?cursor=not-a-cursor", ["query", "cursor"]),
        ("?cursor=WzEsMl0", ["query", "cursor"]),  # valid base64 of [1,2]: not ours
        ("?page=2", ["query", "page"]),
    ],
)
def test_list_refuses_bad_parameters(
    client: FlaskClient, auth: dict[str, str], query: str, loc: list[str]
) -> None:
    problem = assert_problem(client.get(f"/v1/jobs{query}", headers=auth), 422)
    assert problem["errors"][0]["loc"] == loc


def test_status_shows_progress_latest_metrics_and_attempts(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker
) -> None:
    job_id = submit()
    worker.start(job_id)
    worker.epoch(job_id, 1)
    worker.epoch(job_id, 2, train_loss=0.125)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    assert job["status"] == "running" and job["attempts"] == 1
    assert job["progress"].pop("remaining_seconds") >= 0  # its estimate's 2 epochs are done
    assert job["progress"] == {"epochs_done": 2, "epochs_total": 2, "member": 1, "members": 1,
                               "member_epoch": 2, "member_epochs": 2, "finished_members": [],
                               "stage": None}
    assert job["latest_metrics"]["epoch"] == 2
    assert job["latest_metrics"]["train_loss"] == 0.125
    assert job["started_at"] is not None and job["finished_at"] is None

    worker.finish(job_id, "failed", error="non-finite loss at step 7", best_epoch=1)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    assert (job["status"], job["error"], job["best_epoch"]) == (
        "failed", "non-finite loss at step 7", 1)
    assert job["finished_at"] is not None


def test_metrics_since_returns_only_newer_epochs(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker
) -> None:
    job_id = submit()
    worker.start(job_id)
    for epoch in range(1, 6):
        worker.epoch(job_id, epoch)
    worker.epoch(job_id, 4, attempt=2, train_loss=0.01)  # a retried epoch replaces its row

    page = client.get(f"/v1/jobs/{job_id}/metrics?since=3", headers=auth).get_json()
    assert [m["epoch"] for m in page["metrics"]] == [4, 5]
    assert page["metrics"][0]["attempt"] == 2 and page["metrics"][0]["train_loss"] == 0.01
    assert (page["last_epoch"], page["has_more"]) == (5, False)
    assert "grad_flow" not in page["metrics"][0]

    everything = client.get(f"/v1/jobs/{job_id}/metrics", headers=auth).get_json()
    assert [m["epoch"] for m in everything["metrics"]] == [1, 2, 3, 4, 5]
    nothing_new = client.get(f"/v1/jobs/{job_id}/metrics?since=5", headers=auth).get_json()
    assert (nothing_new["metrics"], nothing_new["last_epoch"]) == ([], 5)

    for bad in ("-1", "x"):
        problem = assert_problem(
            client.get(f"/v1/jobs/{job_id}/metrics?since={bad}", headers=auth), 422)
        assert problem["errors"][0]["loc"] == ["query", "since"]


def test_diagnostics_show_gradient_flow_and_clipping(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker
) -> None:
    job_id = submit()
    worker.start(job_id)
    worker.epoch(job_id, 1, clip_fraction=0.5, grad_flow=[1e-6, 1e-3, 1.0])
    worker.epoch(job_id, 2, clip_fraction=0.0, grad_flow=[2e-6, 2e-3, 1.0])
    diagnostics = client.get(f"/v1/jobs/{job_id}/diagnostics", headers=auth).get_json()
    assert diagnostics["clip"] == {"max_norm": 1.0, "max_value": None}
    assert diagnostics["grad_flow"] == [{"epoch": 1, "values": [1e-6, 1e-3, 1.0]},
                                        {"epoch": 2, "values": [2e-6, 2e-3, 1.0]}]
    assert diagnostics["clipping"] == [
        {"epoch": 1, "grad_norm": 2.0, "max_grad_norm": 4.0, "clip_fraction": 0.5},
        {"epoch": 2, "grad_norm": 2.0, "max_grad_norm": 5.0, "clip_fraction": 0.0},
    ]
    later = client.get(f"/v1/jobs/{job_id}/diagnostics?since=1", headers=auth).get_json()
    assert [g["epoch"] for g in later["grad_flow"]] == [2]


def test_cancel_queued_running_and_finished(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker, sessions: sessionmaker[Session]
) -> None:
    queued = submit()
    response = client.post(f"/v1/jobs/{queued}/cancel", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["finished_at"] is not None

    running = submit()
    worker.start(running)
    response = client.post(f"/v1/jobs/{running}/cancel", headers=auth)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["cancel_requested"]) == ("running", True)
    with sessions() as session:
        job = session.get(Job, running)
        assert job is not None and job.cancel_requested and job.status == "running"
    # Asking again while it winds down is harmless.
    assert client.post(f"/v1/jobs/{running}/cancel", headers=auth).status_code == 202

    for finished in (queued, running):
        if finished == running:
            worker.finish(running, "cancelled")
        problem = assert_problem(client.post(f"/v1/jobs/{finished}/cancel", headers=auth), 409)
        assert "cancelled" in problem["detail"]
    succeeded = submit()
    worker.start(succeeded)
    worker.finish(succeeded)
    assert_problem(client.post(f"/v1/jobs/{succeeded}/cancel", headers=auth), 409)


def test_model_download_with_etag_and_304(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker, trained_weights: bytes
) -> None:
    job_id = submit()
    problem = assert_problem(client.get(f"/v1/jobs/{job_id}/model", headers=auth), 409)
    assert "queued" in problem["detail"]

    worker.start(job_id)
    worker.finish(job_id, weights=trained_weights)
    response = client.get(f"/v1/jobs/{job_id}/model", headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert response.data == trained_weights
    digest = hashlib.sha256(trained_weights).hexdigest()
    assert response.headers["ETag"] == f'"{digest}"'
    disposition = response.headers["Content-Disposition"]
    assert disposition == f"attachment; filename=bptt-{job_id}.safetensors"
    model = bptt.Model.from_bytes(response.data)  # a usable model, card included
    assert model.series_ids == [s["id"] for s in SERIES]

    cached = client.get(f"/v1/jobs/{job_id}/model",
                        headers={**auth, "If-None-Match": response.headers["ETag"]})
    assert (cached.status_code, cached.data) == (304, b"")
    assert cached.headers["ETag"] == f'"{digest}"'
    stale = client.get(f"/v1/jobs/{job_id}/model", headers={**auth, "If-None-Match": '"abc"'})
    assert stale.status_code == 200 and stale.data == trained_weights


def test_delete_only_finished_jobs_and_all_their_data(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker, sessions: sessionmaker[Session], trained_weights: bytes
) -> None:
    job_id = submit()
    kept = submit()
    problem = assert_problem(client.delete(f"/v1/jobs/{job_id}", headers=auth), 409)
    assert "queued" in problem["detail"]
    worker.start(job_id)
    assert_problem(client.delete(f"/v1/jobs/{job_id}", headers=auth), 409)
    worker.epoch(job_id, 1)
    worker.finish(job_id, weights=trained_weights)

    response = client.delete(f"/v1/jobs/{job_id}", headers=auth)
    assert (response.status_code, response.data) == (204, b"")
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=auth), 404)
    assert_problem(client.delete(f"/v1/jobs/{job_id}", headers=auth), 404)
    with sessions() as session:
        for model in (Job, Dataset):
            assert session.query(model).count() == 1  # only `kept` and its dataset
        for model in (EpochMetric, TrainedModel):
            assert session.query(model).count() == 0
        assert session.get(Job, kept) is not None


def test_job_documents_carry_no_internal_fields(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    sessions: sessionmaker[Session]
) -> None:
    job_id = submit()
    document: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    for internal in ("tenant_id", "lease_owner", "lease_expires_at", "idempotency_key",
                     "request_hash", "enqueued_at"):
        assert internal not in document
    assert row_count(sessions, Job) == 1
    assert document["created_at"].endswith("Z")  # UTC


def test_non_finite_metrics_are_null_in_strict_json(
    client: FlaskClient, auth: dict[str, str], submit: Callable[..., str],
    worker: SimulatedWorker
) -> None:
    job_id = submit()
    worker.start(job_id)
    worker.epoch(job_id, 1, grad_norm=float("inf"), max_grad_norm=float("inf"),
                 grad_flow=[0.1, float("inf")])

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    metrics = strict(client.get(f"/v1/jobs/{job_id}/metrics", headers=auth).get_data(True))
    assert metrics["metrics"][0]["grad_norm"] is None
    job = strict(client.get(f"/v1/jobs/{job_id}", headers=auth).get_data(True))
    assert job["latest_metrics"]["max_grad_norm"] is None
    diagnostics = strict(client.get(f"/v1/jobs/{job_id}/diagnostics", headers=auth
                                    ).get_data(True))
    assert diagnostics["grad_flow"][0]["values"] == [0.1, None]
