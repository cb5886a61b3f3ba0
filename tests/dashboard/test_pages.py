"""The dashboard's pages and assets as the server sends them (no browser): self-contained, locked
down by their Content-Security-Policy, and every asset they name is served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import service
from service.dashboard.views import CONTENT_SECURITY_POLICY

STATIC = Path(service.__file__).parent / "dashboard" / "static"
PAGES = ["/", "/jobs/3f1c2a9e-0000-4000-8000-000000000000",
         "/sweeps/3f1c2a9e-0000-4000-8000-000000000000", "/compare?ids=3f1c,9a2b"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_no_token_and_load_nothing_from_elsewhere(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)  # the token stays in the browser; the page itself is public
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY  # no inline script can run
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script is a file
    assert " style=" not in html and "<style" not in html  # styles only from the stylesheet
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize(("path", "attribute"), [("/jobs/", "data-job-id"),
                                                ("/sweeps/", "data-sweep-id")])
def test_a_page_carries_its_id_escaped(client: FlaskClient, path: str, attribute: str) -> None:
    html = client.get(path + 'a"><img src=x onerror=alert(1)>').get_data(as_text=True)
    assert "<img" not in html
    assert f'{attribute}="a&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in html


def test_every_module_the_scripts_import_exists() -> None:
    scripts = sorted((STATIC / "dashboard").glob("*.js"))
    assert {p.name for p in scripts} >= {"api.js", "index.js", "job.js", "charts.js",
                                         "heatmap.js", "format.js", "signin.js", "runs.js",
                                         "sweep.js", "compare.js", "forecast.js", "dates.js"}
    for script in scripts:
        text = script.read_text()
        for name in re.findall(r"""from\s+"\./([^"]+)\"""", text):
            assert (STATIC / "dashboard" / name).is_file(), (script.name, name)
        # Text from the API (ids, errors) is data: it never goes in as markup.
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write",
                             text), script.name


def test_the_chart_library_is_vendored_with_its_license(client: FlaskClient) -> None:
    vendor = STATIC / "vendor" / "uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    banner = (vendor / "uPlot.iife.min.js").read_text()[:100]
    assert re.match(r"/\*! https://github.com/leeoniya/uPlot \(v1\.6\.\d+\) \*/", banner)
    response = client.get("/static/vendor/uplot/uPlot.min.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
