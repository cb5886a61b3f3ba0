"""The Flask app factory."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from service import logs
from service.api import (
    datasets,
    docs,
    extensions,
    forecasts,
    health,
    jobs,
    metrics,
    openapi,
    problems,
    request_log,
    series_states,
    sweeps,
)
from service.dashboard import views as dashboard
from service.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the API app for `settings` (default: read from the BPTT_* environment)."""
    settings = settings or Settings.from_env()
    logs.configure_logging(settings.log_level)

    # The dashboard's pages and files live in its room; the app serves them at /static, as
    # before, so the pages' URLs do not depend on where the files sit in the package.
    app = Flask(__name__, static_folder="dashboard/static", template_folder="dashboard/templates")
    # Werkzeug refuses to read a larger body with 413; _refuse_large_bodies answers it early.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # keep documents in the order the code builds them

    extensions.init_app(app, settings)
    request_log.init_app(app)  # first before_request: every answer, even an early 413, gets an id
    app.before_request(_refuse_large_bodies)
    problems.register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(forecasts.bp)
    app.register_blueprint(sweeps.bp)
    app.register_blueprint(series_states.bp)
    app.register_blueprint(datasets.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(dashboard.bp)
    metrics.init_app(app)  # /metrics, and the clock on the forecast route
    return app


def _refuse_large_bodies() -> None:
    """Answer 413 from the declared length, before any route (or 404/405) and unread."""
    # Werkzeug only enforces MAX_CONTENT_LENGTH when a route reads the body; checking here makes
    # every URL refuse an oversized body the same way. Chunked bodies (no Content-Length) are
    # still cut off by Werkzeug when read.
    if request.endpoint in datasets.LARGE_BODY_ENDPOINTS:  # streamed uploads: their own limit
        request.max_content_length = extensions.current_settings().max_dataset_bytes
    limit = request.max_content_length
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        raise RequestEntityTooLarge(
            f"The request body is {length} bytes; the limit is {limit} bytes."
        )
