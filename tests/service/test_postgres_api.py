"""The API on a real PostgreSQL: the queries that differ by backend (keyset pages on timestamps,
conditional updates, cascades, the idempotency constraint) behave as on SQLite."""

from flask import Flask

from service.api.extensions import services
from service.store import repository
from service.store.tables import Dataset, EpochMetric, Job

from .conftest import SERIES, SPEC, SimulatedWorker


def test_the_job_lifecycle_on_postgres(pg_app: Flask) -> None:
    sessions = services(pg_app).sessions
    with sessions.begin() as session:
        tenant = repository.create_tenant(session, name="acme")
        auth = {"Authorization": f"Bearer {repository.create_token(session, tenant=tenant).token}"}
    client, worker = pg_app.test_client(), SimulatedWorker(sessions)
    body = {"series": SERIES, **SPEC}

    ids = [client.post("/v1/jobs", json=body, headers=auth).get_json()["id"] for _ in range(5)]
    replay = client.post("/v1/jobs", json=body, headers={**auth, "Idempotency-Key": "k"})
    again = client.post("/v1/jobs", json=body, headers={**auth, "Idempotency-Key": "k"})
    assert (replay.status_code, again.data) == (202, replay.data)
    ids.append(replay.get_json()["id"])

    seen, cursor = [], None
    while True:
        page = client.get("/v1/jobs?limit=4" + (f"&cursor={cursor}" if cursor else ""),
                          headers=auth).get_json()
        seen += [j["id"] for j in page["jobs"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ids[::-1]

    worker.start(ids[0])
    worker.epoch(ids[0], 1)
    worker.epoch(ids[0], 2)
    assert [m["epoch"] for m in client.get(f"/v1/jobs/{ids[0]}/metrics?since=1",
                                           headers=auth).get_json()["metrics"]] == [2]
    assert client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth).status_code == 202
    assert client.post(f"/v1/jobs/{ids[1]}/cancel", headers=auth).status_code == 200
    assert client.delete(f"/v1/jobs/{ids[0]}", headers=auth).status_code == 409
    worker.finish(ids[0], "cancelled")
    assert client.delete(f"/v1/jobs/{ids[0]}", headers=auth).status_code == 204
    with sessions() as session:
        assert session.query(Job).count() == 5 and session.query(Dataset).count() == 5
        assert session.query(EpochMetric).count() == 0
