"""The production broker misbehaving: Redis restarted, flushed, down at submit, a visibility
timeout far shorter than the job. The database claim and the reaper keep every job running
exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.settings import Settings
from service.store import queue

from . import redis_server
from .conftest import add_job, job_row, metric_epochs, series, training_spec, wait_for

pytestmark = pytest.mark.skipif(redis_server.missing_reason() is not None,
                                reason=str(redis_server.missing_reason()))

EPOCHS = 1200  # several seconds of training: long enough to do things to Redis meanwhile


@pytest.fixture
def redis(tmp_path) -> Iterator[redis_server.RedisServer]:
    server = redis_server.RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _on_redis(settings: Settings, redis) -> Settings:
    return Settings.from_env({"BPTT_DATA_DIR": str(settings.data_dir),
                              "BPTT_BROKER_URL": redis.url})


def _ran_once(sessions, job_id) -> None:
    job = job_row(sessions, job_id)
    assert job.status == "succeeded" and job.attempts == 1
    assert metric_epochs(sessions, job_id) == list(range(1, EPOCHS + 1))


def test_redis_restarted_mid_job(sessions, settings, redis, start_worker):
    start_worker("w1", BPTT_BROKER_URL=redis.url)
    job_id = add_job(sessions, spec=training_spec(epochs=EPOCHS))
    assert queue.wake(_on_redis(settings, redis), queue.TRAIN_TASK, job_id)
    wait_for(lambda: job_row(sessions, job_id).epochs_done >= 3, "training to start")
    redis.stop()
    redis.start()  # same port, same append-only file
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    _ran_once(sessions, job_id)


def test_redis_flushed_with_a_message_waiting(sessions, settings, redis, start_worker):
    job_id = add_job(sessions, spec=training_spec(epochs=EPOCHS))
    assert queue.wake(_on_redis(settings, redis), queue.TRAIN_TASK, job_id)
    assert redis.command("FLUSHALL").startswith(b"+OK")  # the wake-up is gone
    start_worker("w1", BPTT_BROKER_URL=redis.url)  # its reaper re-sends the queued job
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    _ran_once(sessions, job_id)


def test_submitted_while_redis_is_down(sessions, settings, redis, start_worker):
    redis.stop()
    job_id = add_job(sessions, spec=training_spec(epochs=EPOCHS))
    assert not queue.wake(_on_redis(settings, redis), queue.TRAIN_TASK, job_id)  # no raise
    redis.start()
    start_worker("w1", BPTT_BROKER_URL=redis.url)
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    _ran_once(sessions, job_id)


def test_visibility_timeout_far_shorter_than_the_job(sessions, settings, redis, start_worker):
    for name in ("w1", "w2"):  # Redis hands the unacked message to the idle worker after 1 s
        start_worker(name, BPTT_BROKER_URL=redis.url, BPTT_VISIBILITY_TIMEOUT_SECONDS="1")
    job_id = add_job(sessions, spec=training_spec(epochs=EPOCHS))
    assert queue.wake(_on_redis(settings, redis), queue.TRAIN_TASK, job_id)
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    _ran_once(sessions, job_id)  # attempts == 1: the redelivery never claimed it

    def redelivered() -> bool:  # ...and it did happen (its log line may trail the success)
        logs = "".join((settings.data_dir / f"{n}.log").read_text() for n in ("w1", "w2"))
        return f"job {job_id}: not claimed" in logs

    wait_for(redelivered, "the redelivered message to be refused")


def test_the_api_accepts_jobs_while_redis_is_down(sessions, settings, redis, start_worker):
    from service.api.extensions import services
    from service.app import create_app
    from service.store.repository import create_tenant, create_token

    with sessions() as session:
        token = create_token(session, tenant=create_tenant(session, name="shop")).token
        session.commit()
    app = create_app(_on_redis(settings, redis))
    redis.stop()
    try:
        spec = training_spec(epochs=20)
        answer = app.test_client().post("/v1/jobs", headers={"Authorization": f"Bearer {token}"},
                                        json={"series": series(), **spec})
        assert answer.status_code == 202, answer.get_json()  # committed; the wake-up failed
        job_id = answer.get_json()["id"]
        assert app.test_client().get("/readyz").status_code == 503  # and it says so
    finally:
        services(app).engine.dispose()
    redis.start()
    start_worker("w1", BPTT_BROKER_URL=redis.url)  # its reaper sends the job's first message
    wait_for(lambda: job_row(sessions, job_id).status == "succeeded", "the job to succeed")
    assert job_row(sessions, job_id).attempts == 1
