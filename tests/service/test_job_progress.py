"""What the job document says about a job, through the HTTP app with the real worker code: the
values it trains with (not null), the ensemble member in training and its epoch, which members
early stopping ended, and a finished job that reads complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

import bptt
from service.api.estimates import remaining_seconds
from service.client import duration, progress_line, progress_text, timing_text
from service.settings import Settings
from service.store.db import upgrade
from workers.attempts import run_training

from .conftest import SERIES, SPEC, SimulatedWorker, settings_for

# Three members that early stopping ends after 53, 61 and 77 of their 300 epochs (the run is
# repeatable: the same seed gives the same epochs on every machine this test has seen; the
# assertions below compare with the engine's own account rather than with these numbers).
EARLY = {"series": SERIES, "horizon": 3, "model": {"hidden_size": 4},
         "training": {"epochs": 300, "ensemble": 3, "early_stopping_patience": 10,
                      "learning_rate": 0.05}}
DEADLINE_S = 120  # every wait ends by itself


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A short lease, so that a killed worker's job can be taken over soon."""
    result = settings_for(tmp_path / "data", BPTT_LEASE_SECONDS="1")
    upgrade(result.database_url)
    return result


def _get(client: FlaskClient, auth: dict[str, str], job_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/jobs/{job_id}", headers=auth)
    assert answer.status_code == 200
    return answer.get_json()


def _worker(settings: Settings, job_id: str) -> subprocess.Popen:
    """The real worker code training the job in a process of its own, to be killed."""
    code = ("import sys; from service.store.db import session_factory; "
            "from service.settings import Settings; from workers.attempts import run_training; "
            "s = Settings.from_env(); run_training(session_factory(s), s, sys.argv[1], 'first')")
    env = {**os.environ, "BPTT_DATA_DIR": str(settings.data_dir), "BPTT_LEASE_SECONDS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, job_id], env=env)


def _wait(client: FlaskClient, auth: dict[str, str], job_id: str, worker: subprocess.Popen,
          until: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Poll the job document until `until` holds, while the worker still runs."""
    deadline = time.monotonic() + DEADLINE_S
    job = _get(client, auth, job_id)
    while not until(job):
        assert time.monotonic() < deadline, "the job never got there"
        assert worker.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.01)
        job = _get(client, auth, job_id)
    return job


def _engine_account(spec: dict[str, Any]) -> bptt.FitResult:
    """The same fit run by the library alone: what the job's members must report."""
    return bptt.fit(SERIES, spec=bptt.TrainingSpec.from_dict(spec))


def _members_of(result: bptt.FitResult) -> list[dict[str, Any]]:
    epochs = [sum(1 for m in result.history if m.member == k) for k in range(len(result.stopped))]
    return [{"member": k + 1, "epochs": epochs[k], "best_epoch": result.best_epochs[k],
             "stopped": result.stopped[k]} for k in range(len(result.stopped))]


def test_the_document_shows_the_values_the_job_trains_with_and_the_request_apart(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    body = {"series": SERIES, "horizon": 3, "training": {"ensemble": 2}}
    submitted = client.post("/v1/jobs", json=body, headers=auth).get_json()
    spec, requested = submitted["spec"], submitted["requested_spec"]
    used = {"hidden_size": spec["model"]["hidden_size"],
            "input_size": spec["window"]["input_size"],
            "epochs": spec["training"]["epochs"], "ensemble": spec["training"]["ensemble"],
            "learning_rate": spec["training"]["learning_rate"],
            "season_length": spec["season_length"], "quantiles": spec["quantiles"]}
    assert None not in used.values(), used
    assert used["hidden_size"] == 32 and used["ensemble"] == 2 and used["season_length"] == 1
    assert used["quantiles"] == [0.1, 0.5, 0.9]  # intervals by default
    assert spec == {**bptt.resolve_spec([60, 50], bptt.TrainingSpec.from_dict(
        {k: v for k, v in body.items() if k != "series"})).to_dict(),
        "calendar": "off"}  # undated series: no calendar features
    # the request keeps its open choices: a warm start from this job makes them again
    assert requested["model"]["hidden_size"] is None and requested["training"]["epochs"] is None
    assert submitted["progress"]["epochs_total"] == 2 * used["epochs"]  # known at submit

    assert run_training(sessions, settings, submitted["id"], "test:1") == "succeeded"
    weights = client.get(f"/v1/jobs/{submitted['id']}/model", headers=auth).data
    trained = bptt.Model.from_bytes(weights)
    assert trained.spec.to_dict() == _get(client, auth, submitted["id"])["spec"] == spec


def test_a_finished_job_reads_complete_with_each_members_stop(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    submitted = client.post("/v1/jobs", json=EARLY, headers=auth).get_json()
    assert submitted["progress"]["remaining_seconds"] == submitted["estimate"]["seconds"]
    assert {k: v for k, v in submitted["progress"].items() if k != "remaining_seconds"} == {
        "epochs_done": 0, "epochs_total": 900, "member": 1, "members": 3, "member_epoch": 0,
        "member_epochs": 300, "finished_members": [], "stage": None}
    assert progress_text(submitted["progress"]) == "member 1/3 · epoch 0/300"
    assert progress_line(submitted).endswith("queued     member 1/3 · epoch 0/300  "
                                             + timing_text(submitted))
    expected = duration(submitted["estimate"]["seconds"])
    bound = duration(submitted["estimate"]["max_seconds"])  # every epoch of the budget
    # nothing has run: the expected duration left, early stopping counted (the prior share)
    assert timing_text(submitted) == f"{expected} left of ~{expected} (at most {bound})"

    assert run_training(sessions, settings, submitted["id"], "test:1") == "succeeded"
    job = _get(client, auth, submitted["id"])
    members = _members_of(_engine_account(submitted["spec"]))
    assert [m["stopped"] for m in members] == ["early_stopping"] * 3
    epochs = sum(m["epochs"] for m in members)
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics", headers=auth).get_json()["metrics"]
    assert len(metrics) == epochs < 900
    assert job["progress"] == {
        "remaining_seconds": None,  # ended
        "epochs_done": epochs, "epochs_total": epochs,  # complete: never 191/900 at the end
        "member": 3, "members": 3, "member_epoch": members[-1]["epochs"], "member_epochs": 300,
        "finished_members": members, "stage": None}
    assert progress_text(job["progress"]) == (
        f"member 3/3 · epoch {members[-1]['epochs']}/300 (stopped early) · members 1, 2 "
        "stopped early")
    assert progress_text(job["progress"]) in progress_line(job)
    took = duration(job["usage"]["seconds"])
    assert (f"stopped early  took {took} of ~{expected} (at most {bound})  train "
            in progress_line(job))
    listed = client.get("/v1/jobs", headers=auth).get_json()["jobs"]
    assert listed[0]["progress"] == job["progress"]


def test_a_running_job_says_which_member_trains_and_which_stopped_early(
        client: FlaskClient, auth: dict[str, str], sessions: sessionmaker[Session],
        settings: Settings) -> None:
    submitted = client.post("/v1/jobs", json=EARLY, headers=auth).get_json()
    job_id = submitted["id"]
    members = _members_of(_engine_account(submitted["spec"]))
    worker = _worker(settings, job_id)
    try:  # until member 1 has stopped
        _wait(client, auth, job_id, worker, lambda j: j["progress"]["finished_members"])
        worker.send_signal(signal.SIGKILL)  # frozen mid-ensemble, as a lost worker leaves it
    finally:
        worker.wait(timeout=30)

    job = _get(client, auth, job_id)
    progress, finished = job["progress"], job["progress"]["finished_members"]
    assert job["status"] == "running" and 1 <= len(finished) < 3
    assert finished == members[:len(finished)]  # each as the engine itself reports it
    member = len(finished) + 1
    done_before = sum(m["epochs"] for m in finished)
    assert (progress["member"], progress["members"]) == (member, 3)
    assert progress["member_epoch"] == progress["epochs_done"] - done_before
    assert 0 <= progress["member_epoch"] < members[member - 1]["epochs"]
    # the plan shrank by what early stopping saved; what is left is whole budgets
    assert progress["epochs_total"] == done_before + (3 - len(finished)) * 300
    line = progress_line(job)
    assert f"member {member}/3 · epoch {progress['member_epoch']}/300 · member" in line
    assert "1 stopped early" in line or "1, 2 stopped early" in line
    assert progress["remaining_seconds"] > 0 and " left of ~" in line

    time.sleep(settings.lease_seconds + 0.2)  # the killed worker's lease runs out
    assert run_training(sessions, settings, job_id, "second") == "succeeded"
    job = _get(client, auth, job_id)
    epochs = sum(m["epochs"] for m in members)
    assert job["progress"]["finished_members"] == members
    assert job["progress"]["epochs_done"] == job["progress"]["epochs_total"] == epochs


def test_a_job_that_cross_validates_says_so_while_it_does(
        client: FlaskClient, auth: dict[str, str], settings: Settings) -> None:
    body = {"series": SERIES, "horizon": 3, "model": {"hidden_size": 4},
            "training": {"epochs": 300, "ensemble": 1, "early_stopping_patience": None},
            "cross_validation": {"windows": 2}}
    job_id = client.post("/v1/jobs", json=body, headers=auth).get_json()["id"]
    worker = _worker(settings, job_id)
    try:
        job = _wait(client, auth, job_id, worker,
                    lambda j: j["progress"]["stage"] == "cross_validation")
        worker.send_signal(signal.SIGKILL)  # caught in the act
    finally:
        worker.wait(timeout=30)
    job = _get(client, auth, job_id)
    assert job["status"] == "running" and job["progress"]["stage"] == "cross_validation"
    assert progress_text(job["progress"]) == "member 1/1 · epoch 300/300 · cross-validating"
    # what is left is the cross-validation, at the pace the job has kept
    assert job["estimate"]["cross_validation_seconds"] > 0
    assert job["progress"]["remaining_seconds"] > 0


def test_a_warm_start_makes_the_earlier_jobs_open_choices_again_for_its_own_data(
        client: FlaskClient, auth: dict[str, str], worker: SimulatedWorker,
        trained_weights: bytes) -> None:
    # The earlier job left its epochs open; its own (few) windows made them 300.
    open_epochs = {**SPEC, "training": {"ensemble": 1}}
    parent = client.post("/v1/jobs", json={"series": SERIES, **open_epochs},
                         headers=auth).get_json()
    assert parent["spec"]["training"]["epochs"] == 300
    worker.start(parent["id"])
    worker.finish(parent["id"], weights=trained_weights)  # SPEC's network: hidden size 4

    many = [{"id": f"s{k}", "values": [float((i * (k + 3)) % 17) for i in range(400)]}
            for k in range(20)]
    child = client.post("/v1/jobs", json={"series": many, "horizon": 3,
                                          "warm_start": parent["id"]}, headers=auth)
    assert child.status_code == 202, child.get_json()
    child = child.get_json()
    # Thousands of windows (216 batches a pass): the budget is 30 passes' updates, the rule's
    # floor, in rounds of 100, not the earlier 300 rounds, because the request it inherits left
    # the budget open; the network is the earlier model's.
    assert child["requested_spec"]["training"]["epochs"] is None
    training = child["spec"]["training"]
    assert (training["max_steps"], training["eval_every"], training["epochs"]) == (
        30 * 216, 100, 65)
    assert child["spec"]["model"]["hidden_size"] == 4  # not 64, which these windows would get
    assert child["spec"]["quantiles"] == [0.1, 0.5, 0.9] == parent["spec"]["quantiles"]
    assert child["progress"]["epochs_total"] == 65


def test_sweep_trials_show_their_resolved_spec_and_member_progress(
        client: FlaskClient, auth: dict[str, str]) -> None:
    sweep = client.post("/v1/sweeps", headers=auth, json={
        "job": {"series": SERIES, "horizon": 3, "training": {"ensemble": 2}},
        "strategy": "grid", "space": {"model.hidden_size": [4, 8]}}).get_json()
    for trial, hidden in zip(sweep["trials"], (4, 8), strict=True):
        assert trial["progress"]["member"] == 1 and trial["progress"]["members"] == 2
        job = _get(client, auth, trial["job_id"])
        assert job["spec"]["model"]["hidden_size"] == hidden
        assert job["spec"]["training"]["epochs"] == 300
        assert job["requested_spec"]["training"]["epochs"] is None


def test_durations_read_as_the_cli_and_the_dashboard_write_them() -> None:
    assert [duration(s) for s in (0.2, 1.4, 42, 59.6, 185, 3599, 7620, 90000)] == [
        "<1s", "1s", "42s", "1m00s", "3m05s", "59m59s", "2h07m", "25h00m"]
    job = {"status": "running", "estimate": {"seconds": 185.0},
           "progress": {"remaining_seconds": 65.2}}
    assert timing_text(job) == "1m05s left of ~3m05s"
    assert timing_text({**job, "progress": {}}) == "estimated ~3m05s"
    assert timing_text({**job, "status": "succeeded", "usage": {"seconds": 192}}) == (
        "took 3m12s of ~3m05s")
    assert timing_text({"status": "queued", "estimate": None}) == ""  # a job from before
    # early stopping expected: the duration if every epoch runs beside it, as the bound
    early = {**job, "estimate": {"seconds": 15.2, "max_seconds": 215.0}}
    assert timing_text(early) == "1m05s left of ~15s (at most 3m35s)"
    assert timing_text({**early, "status": "succeeded", "usage": {"seconds": 13}}) == (
        "took 13s of ~15s (at most 3m35s)")
    assert timing_text({**early, "progress": {}}) == "estimated ~15s (at most 3m35s)"
    # no early stopping: the bound is the expected duration, said once
    assert timing_text({**job, "estimate": {"seconds": 185.0, "max_seconds": 185.0}}) == (
        "1m05s left of ~3m05s")


def test_the_time_left_counts_the_batches_of_the_epoch_in_progress() -> None:
    # 2 epochs of 10 s (100 batches each) and 4 s besides, estimated; the job runs at half
    # the estimated pace: 10 s in, it has done half of its first epoch
    estimate = {"seconds": 24.0, "epoch_seconds": 10.0, "other_seconds": 4.0,
                "cross_validation_seconds": 0.0, "epoch_updates": 100}
    began = datetime(2026, 1, 1, tzinfo=UTC)
    at = {"status": "running", "started_at": began, "epochs_total": 2, "stage": "training",
          "now": began + timedelta(seconds=10)}
    assert remaining_seconds(estimate, epochs_done=0, epoch_batches=50, **at) == 38.0
    # without the heartbeat's count the estimate is counted down by the clock
    assert remaining_seconds(estimate, epochs_done=0, epoch_batches=None, **at) == 14.0
    assert remaining_seconds(estimate, epochs_done=1, epoch_batches=0, **at) == 14.0
    # past the estimate with no progress reported: unknown rather than 0 s left
    late = {**at, "now": began + timedelta(seconds=30)}
    assert remaining_seconds(estimate, epochs_done=0, epoch_batches=None, **late) is None
    assert remaining_seconds(estimate, epochs_done=0, epoch_batches=50,
                             **{**at, "status": "succeeded"}) is None


def test_the_time_left_counts_what_ran_before_training_as_done() -> None:
    # 18 epochs of 1 s, 12 s besides of which 10 s before the first update (the windows, the
    # seasonality's choice). 12 s in, 2 epochs done: the job keeps its estimated pace.
    estimate = {"seconds": 30.0, "epoch_seconds": 1.0, "other_seconds": 12.0,
                "prepare_seconds": 10.0, "cross_validation_seconds": 0.0, "epoch_updates": 10}
    began = datetime(2026, 1, 1, tzinfo=UTC)
    at = {"status": "running", "started_at": began, "epochs_total": 18, "stage": "training",
          "now": began + timedelta(seconds=12)}
    assert remaining_seconds(estimate, epochs_done=2, **at) == pytest.approx(16 + 2)
    # counted as left, the 10 s made that pace look six times slower
    older = {k: v for k, v in estimate.items() if k != "prepare_seconds"}
    assert remaining_seconds(older, epochs_done=2, **at) == pytest.approx((16 + 12) * 6)
    # before any progress, the estimate counted down
    assert remaining_seconds(estimate, epochs_done=0, **at) == pytest.approx(18)


def test_the_time_left_counts_the_epochs_left_at_the_expected_share() -> None:
    # 2 members of 100 epochs of 1 s, 4 s besides; members are expected to train a quarter of
    # their budget: 54 s expected, 204 s at most. The job keeps its estimated pace.
    estimate = {"seconds": 54.0, "max_seconds": 204.0, "epochs_share": 0.25,
                "epoch_seconds": 1.0, "other_seconds": 4.0, "cross_validation_seconds": 0.0,
                "epoch_updates": 10}
    began = datetime(2026, 1, 1, tzinfo=UTC)

    def left(elapsed: float, **progress: Any) -> float | None:
        return remaining_seconds(estimate, status="running", started_at=began,
                                 stage="training", now=began + timedelta(seconds=elapsed),
                                 **progress)

    # 10 epochs of member 1 done: its 90 left and member 2's 100 count at a quarter
    assert left(10, epochs_done=10, epochs_total=200) == pytest.approx(190 * 0.25 + 4)
    # member 1 stopped early after 30 epochs: the budget shrank to 130, member 2's 100 left
    assert left(30, epochs_done=30, epochs_total=130) == pytest.approx(100 * 0.25 + 4)
    # member 2 stopped too: only the rest (calibration), never the budget it did not train
    assert left(60, epochs_done=60, epochs_total=60) == pytest.approx(4)
    # at half the estimated pace, twice that
    assert left(60, epochs_done=30, epochs_total=130) == pytest.approx(2 * (100 * 0.25 + 4))
