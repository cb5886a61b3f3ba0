"""/docs: the OpenAPI document rendered as one self-contained HTML page (no scripts, no CDN)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template_string
from markupsafe import Markup

from service.api.extensions import current_settings
from service.api.openapi import build_document

bp = Blueprint("docs", __name__)

# Inline styles only, and a policy that forbids loading anything else: the page works offline
# and behind a firewall, and cannot be made to fetch third-party assets.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.info.title }}</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; }
.op { border: 1px solid #ddd; border-radius: 6px; margin: 1rem 0; padding: .5rem 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; text-transform: uppercase; }
.get { color: #1565c0; } .post { color: #2e7d32; } .delete { color: #c62828; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .15rem .6rem .15rem 0; }
</style></head>
<body>
<h1>{{ doc.info.title }}</h1>
<p>OpenAPI {{ doc.openapi }}, version {{ doc.info.version }} &middot;
   <a href="/openapi.json">openapi.json</a></p>
{% for paragraph in doc.info.description.split("\\n\\n") %}<p>{{ paragraph }}</p>{% endfor %}
{% for tag in doc.tags %}
<h2 id="tag-{{ tag.name }}">{{ tag.name }}</h2>
{% for op in operations if op.tags[0] == tag.name %}
<section class="op" id="{{ op.operationId }}">
<h3><span class="method {{ op.method }}">{{ op.method }}</span> <code>{{ op.path }}</code></h3>
<p>{{ op.summary }}{% if op.security == [] %} (no token needed){% endif %}</p>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}
</td><td>{{ p['in'] }}</td><td><code>{{ schema_text(p.schema) }}</code></td>
<td>{{ p.description }}</td></tr>{% endfor %}</table>{% endif %}
{% if op.requestBody %}<p>Body: {% for type, media in op.requestBody.content.items() %}
<code>{{ type }}</code> {{ schema_link(media.schema) }}{% if not loop.last %}, {% endif %}
{% endfor %}</p>{% endif %}
<table>{% for status, answer in op.responses.items() %}<tr><td><b>{{ status }}</b></td>
<td>{{ answer.description }}</td><td>{% for type, media in (answer.content or {}).items() %}
<code>{{ type }}</code> {{ schema_link(media.schema) }} {% endfor %}</td></tr>{% endfor %}
</table>
</section>
{% endfor %}{% endfor %}
<h2 id="schemas">Schemas</h2>
{% for name, schema in doc.components.schemas.items() %}
<details id="schema-{{ name }}"><summary><code>{{ name }}</code>
{% if schema.description %}: {{ schema.description }}{% endif %}</summary>
<pre>{{ pretty(schema) }}</pre></details>
{% endfor %}
</body></html>
"""


@bp.get("/docs")
def docs() -> Response:
    """The API reference as HTML, rendered on the server from the OpenAPI document."""
    doc = build_document(current_settings())
    operations = [
        {**operation, "method": method, "path": path}
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    ]
    html = render_template_string(
        PAGE, doc=doc, operations=operations, pretty=_pretty, schema_link=_schema_link,
        schema_text=_schema_text,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _pretty(schema: dict[str, Any]) -> str:
    """A schema as indented JSON."""
    return json.dumps(schema, indent=2)


def _schema_link(schema: dict[str, Any]) -> Markup | str:
    """A schema reference as a link to the component, else the schema's type."""
    ref = schema.get("$ref", "")
    if not ref:
        return str(schema.get("type", ""))
    name = ref.rsplit("/", 1)[-1]
    return Markup('<a href="#schema-{0}">{0}</a>').format(name)  # format() escapes name


def _schema_text(schema: dict[str, Any]) -> str:
    """A parameter's schema in one line."""
    return json.dumps(schema, separators=(", ", ": "))
