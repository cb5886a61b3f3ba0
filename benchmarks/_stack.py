"""The embedded stack for benchmarks: API under gunicorn and N Celery workers on SQLite, in a
temporary directory, with a tenant and a token; and a small JSON client."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from service import serve
from service.settings import Settings
from service.store import db, repository


@dataclass(frozen=True)
class Stack:
    """Where the API listens and the token to call it with (and the processes serving it:
    the API first, then each worker's main process)."""

    url: str
    token: str
    processes: tuple = ()
    data_dir: str = ""  # BPTT_DATA_DIR of the deployment (its SQLite database)

    def call(self, method: str, path: str, payload=None):
        """One JSON request to the API; the decoded answer."""
        body = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:  # say why, not only the status
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:2000]!r}") from None


@contextlib.contextmanager
def embedded_stack(workers: int) -> Iterator[Stack]:
    """A fresh embedded deployment with `workers` worker processes, stopped on exit."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "BPTT_DATA_DIR": data_dir}
        settings = Settings.from_env(env)
        db.upgrade(settings.database_url)
        sessions = db.session_factory(settings)
        with sessions.begin() as session:
            tenant = repository.create_tenant(session, name="bench")
            token = repository.create_token(session, tenant=tenant).token
        sessions.kw["bind"].dispose()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        processes = [serve.start(serve.api_command("127.0.0.1", port), env, quiet=True)]
        processes += [serve.start(serve.worker_command(f"bench{i}"), env, quiet=True)
                      for i in range(workers)]
        try:
            serve.wait_until_healthy(url + "/healthz", processes)
            yield Stack(url, token, tuple(processes), data_dir)
        finally:
            serve.stop_all(processes)
