"""The dashboard: HTML pages rendered here, filled by small scripts that call the JSON API.

The pages hold no data themselves: the browser keeps the user's API token in sessionStorage and
sends it as `Authorization: Bearer` on every API call, so the pages need no session, no cookie
and no server-side auth, and a tenant sees exactly what the API would show it. Scripts and the
vendored chart library (uPlot, static/vendor/uplot beside this module) are served from this app;
nothing is loaded from elsewhere.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

bp = Blueprint("dashboard", __name__)

# Only this origin's scripts, styles and API: injected markup cannot run inline code or send data
# elsewhere, which matters on pages that hold a bearer token.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@bp.get("/")
def index() -> Response:
    """Sign in, the tenant's runs (sorted, filtered, sweeps grouped), and a CSV submit form."""
    return _page("dashboard/index.html")


@bp.get("/jobs/<job_id>")
def job_page(job_id: str) -> Response:
    """One job: live losses, gradient norms and clipping, gradient flow, the forecast."""
    return _page("dashboard/job.html", job_id=job_id)


@bp.get("/sweeps/<sweep_id>")
def sweep_page(sweep_id: str) -> Response:
    """One sweep: progress, trials with their settings and scores, score against each swept
    setting, cancel, and a forecast with the best trial."""
    return _page("dashboard/sweep.html", sweep_id=sweep_id)


@bp.get("/compare")
def compare_page() -> Response:
    """Two to six runs (?ids=a,b,c): validation losses overlaid, gradient norms side by side,
    and the spec fields where they differ."""
    return _page("dashboard/compare.html")


def _page(template: str, **context: Any) -> Response:
    """A rendered page with the headers every dashboard page carries."""
    response = Response(render_template(template, **context), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"  # job ids stay out of other sites' logs
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
