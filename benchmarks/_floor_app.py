"""The floor under the status-poll figures of benchmarks/api.py: a Flask app whose only route
answers every GET /v1/jobs/<id> with fixed bytes (the real status document, read once from the
file named by BPTT_FLOOR_BODY). No token check, no database, no log line: what gunicorn and
Flask alone cost per poll on this machine, served with the same gunicorn settings."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response


def create() -> Flask:
    body = Path(os.environ["BPTT_FLOOR_BODY"]).read_bytes()
    app = Flask(__name__)

    @app.get("/v1/jobs/<job_id>")
    def status(job_id: str) -> Response:
        return Response(body, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response(b"{}", mimetype="application/json")

    return app
