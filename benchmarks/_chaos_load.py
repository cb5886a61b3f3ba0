"""The chaos soak's clients: what a busy tenant does over HTTP, and a record of every answer.

Each client thread picks an operation at random: submit a job (with an Idempotency-Key, sent
again with the same key until the answer is definite), submit a sweep, cancel a running job,
ask for a forecast batch, append an observation to a trained series, or list its jobs. The
record is what the checks compare the database with: the ids every 202 named, and for each
series how many appends were confirmed and how many got no answer.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict

import numpy as np
from sqlalchemy import func, select

from service.settings import Settings
from service.store import db
from service.store.tables import ForecastBatch, Job, Sweep

TERMINAL = ("succeeded", "failed", "cancelled")
SERIES_LENGTH = 48
REQUEST_TIMEOUT_S = 30
RESEND_FOR_S = 90  # an idempotent submit is sent again this long while the API is away


class Load:
    """Client threads against one tenant, and what they were answered."""

    def __init__(self, url: str, token: str, clients: int, workers: int, rng: random.Random):
        self.url, self.token, self.rng = url, token, rng
        self.backlog_limit = 2 * workers  # unfinished jobs: the drain at the end stays short
        self.outcomes: dict[str, Counter] = defaultdict(Counter)
        self.jobs: set[str] = set()  # every job id a 202 named (trials of a 202'd sweep too)
        self.sweeps: set[str] = set()
        self.batches: set[str] = set()
        self.status: dict[str, str] = {}  # the last status a listing showed
        self.appends: dict[tuple[str, str], Counter] = defaultdict(Counter)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(rng.random(),),
                                          name=f"chaos-client{i}", daemon=True)
                         for i in range(clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RESEND_FOR_S + 2 * REQUEST_TIMEOUT_S)

    def drain(self, settings: Settings, deadline_s: float) -> float:
        """Wait until every job, sweep and batch in the database is terminal; seconds taken
        (the deadline's, if some never were)."""
        began = time.monotonic()
        sessions = db.session_factory(settings)
        try:
            while time.monotonic() - began < deadline_s:
                with sessions() as session:
                    left = (session.scalar(select(func.count()).select_from(Job)
                                           .where(Job.status.not_in(TERMINAL)))
                            + session.scalar(select(func.count()).select_from(Sweep)
                                             .where(Sweep.finished_at.is_(None)))
                            + session.scalar(select(func.count()).select_from(ForecastBatch)
                                             .where(ForecastBatch.status.not_in(TERMINAL))))
                if not left:
                    break
                time.sleep(1)
        finally:
            sessions.kw["bind"].dispose()
        return time.monotonic() - began

    # --- the clients ---

    def _client(self, seed: float) -> None:
        rng = random.Random(seed)
        operations = [(self._submit_job, 30), (self._submit_sweep, 3), (self._cancel, 4),
                      (self._forecast_batch, 12), (self._append, 16), (self._list, 35)]
        while not self._stop.is_set():
            operation = rng.choices([o for o, _ in operations], [w for _, w in operations])[0]
            operation(rng)
            self._stop.wait(rng.uniform(0.05, 0.3))

    def _call(self, name: str, method: str, path: str, payload=None,
              headers: dict[str, str] | None = None) -> tuple[int | None, object]:
        """One request; its outcome is counted under `name`. (None, None) when no answer."""
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if payload is None else json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json", **(headers or {})})
        try:
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                    status, body = answer.status, answer.read()
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()
        # refused, reset, timed out, or an answer cut short (IncompleteRead): the API was
        # killed or is restarting
        except (OSError, http.client.HTTPException):
            with self.lock:
                self.outcomes[name]["no answer"] += 1
            return None, None
        with self.lock:
            self.outcomes[name]["2xx" if status < 300 else "5xx" if status >= 500 else status] += 1
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    def _job_request(self, rng: random.Random) -> dict:
        seed = rng.randrange(1 << 30)
        noise = np.random.default_rng(seed)
        t = np.arange(SERIES_LENGTH)
        series = [{"id": f"s{i}", "values": [round(float(v), 3) for v in
                   10 + 3 * np.sin(2 * np.pi * t / 12 + i) + noise.normal(0, 0.3, SERIES_LENGTH)]}
                  for i in range(2)]
        return {"series": series, "horizon": 4, "season_length": 12,
                "model": {"cell": rng.choice(["lstm", "gru", "rnn"]), "hidden_size": 8},
                "training": {"epochs": rng.randint(10, 40), "ensemble": rng.choice([1, 2]),
                             "early_stopping_patience": None, "seed": seed}}

    def _unfinished(self) -> int:
        with self.lock:
            return sum(1 for j in self.jobs if self.status.get(j) not in TERMINAL)

    def _submit_job(self, rng: random.Random) -> None:
        if self._unfinished() >= self.backlog_limit:
            return self._list(rng)
        payload, key = self._job_request(rng), str(uuid.uuid4())
        until = time.monotonic() + RESEND_FOR_S
        while time.monotonic() < until and not self._stop.is_set():
            status, body = self._call("submit job", "POST", "/v1/jobs", payload,
                                      {"Idempotency-Key": key})
            if status == 202:
                with self.lock:
                    self.jobs.add(body["id"])
                return
            if status is not None and status < 500 and status != 409:
                return  # a definite refusal (409: the first request is still in flight)
            time.sleep(rng.uniform(0.5, 1.5))

    def _submit_sweep(self, rng: random.Random) -> None:
        with self.lock:
            if any(self.status.get(f"sweep:{s}") != "finished" for s in self.sweeps):
                return  # one sweep at a time
        base = self._job_request(rng)
        status, body = self._call("submit sweep", "POST", "/v1/sweeps", {
            "job": base, "strategy": "grid", "space": {"training.learning_rate": [0.003, 0.01]}})
        if status == 202:  # no Idempotency-Key for sweeps: sent once
            with self.lock:
                self.sweeps.add(body["id"])
                self.jobs.update(t["job_id"] for t in body["trials"])

    def _cancel(self, rng: random.Random) -> None:
        with self.lock:
            running = sorted(j for j, s in self.status.items() if s == "running")
        if running:
            self._call("cancel job", "POST", f"/v1/jobs/{rng.choice(running)}/cancel")

    def _succeeded(self) -> list[str]:
        with self.lock:
            return sorted(j for j, s in self.status.items() if s == "succeeded")

    def _forecast_batch(self, rng: random.Random) -> None:
        done = self._succeeded()
        if done:  # both training series: over the one-series limit, so a batch
            status, body = self._call("forecast batch", "POST", "/v1/forecasts",
                                      {"job_id": rng.choice(done)})
            if status == 202:
                with self.lock:
                    self.batches.add(body["id"])

    def _append(self, rng: random.Random) -> None:
        done = self._succeeded()
        if not done:
            return
        key = (rng.choice(done), rng.choice(["s0", "s1"]))
        status, _ = self._call("append observation", "POST",
                               f"/v1/jobs/{key[0]}/series/{key[1]}/observations",
                               {"values": [round(rng.uniform(7, 13), 3)]})
        with self.lock:
            self.appends[key]["confirmed" if status == 200 else
                              "refused" if status is not None and status < 500 else
                              "unknown"] += 1

    def _list(self, rng: random.Random) -> None:
        status, body = self._call("list jobs", "GET", "/v1/jobs?limit=100")
        if status == 200:
            with self.lock:
                self.status.update({j["id"]: j["status"] for j in body["jobs"]})
        with self.lock:
            sweeps = sorted(s for s in self.sweeps if self.status.get(f"sweep:{s}") != "finished")
        for sweep_id in sweeps:
            status, body = self._call("show sweep", "GET", f"/v1/sweeps/{sweep_id}")
            if status == 200 and body["finished_at"] is not None:
                with self.lock:
                    self.status[f"sweep:{sweep_id}"] = "finished"
