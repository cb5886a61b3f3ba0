"""GET /openapi.json (a valid OpenAPI 3.1 document covering every route) and GET /docs."""

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from service.settings import Settings
from service.store.db import upgrade

from .conftest import settings_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    result = settings_for(tmp_path / "data", BPTT_MAX_HORIZON="48")
    upgrade(result.database_url)
    return result


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route the app serves."""
    return {
        (method.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods or () if method not in ("HEAD", "OPTIONS")
    }


def referenced(schemas: dict, schema: dict) -> dict:
    """The component a property refers to (an optional one through its non-null branch)."""
    branch = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
    return schemas[branch["$ref"].removeprefix("#/components/schemas/")]


def test_the_document_is_valid_openapi_3_1_and_covers_every_route(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/openapi.json")  # no token needed
    assert response.status_code == 200
    document = response.get_json()
    validate(document)  # raises on any structural error
    assert document["openapi"] == "3.1.0"
    documented = {(method, path) for path, item in document["paths"].items()
                  for method in item}
    assert documented == served_operations(app)


def test_operations_declare_auth_and_problem_answers(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"]}
    assert document["security"] == [{"bearerAuth": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert "security" not in operation  # the global bearer requirement applies
                problem = operation["responses"]["401"]["content"]["application/problem+json"]
                assert problem["schema"] == {"$ref": "#/components/schemas/ProblemOut"}
            else:
                assert operation["security"] == [], (method, path)


def test_schemas_come_from_the_code_with_the_deployments_limits(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    job_request = schemas["JobRequest"]
    assert job_request["required"] == ["horizon"]  # series, or dataset_id
    assert job_request["additionalProperties"] is False
    assert job_request["properties"]["horizon"]["maximum"] == 48  # BPTT_MAX_HORIZON
    # Nested schemas are reached through the references, whatever pydantic names them
    # (2.14 names a dataclass used in requests and answers `ModelConfig-Input`/`-Output`).
    spec = referenced(schemas, schemas["JobOut"]["properties"]["spec"])
    # what the job trains with, and what was asked: one schema
    assert referenced(schemas, schemas["JobOut"]["properties"]["requested_spec"]) == spec
    for root in (job_request, spec):
        model = referenced(schemas, root["properties"]["model"])
        assert model["properties"]["cell"]["enum"] == ["gru", "lstm", "rnn"]
        assert model["additionalProperties"] is False
        clip = referenced(schemas, referenced(schemas, root["properties"]["training"])
                          ["properties"]["clip"])
        assert clip["additionalProperties"] is False
        windows = referenced(schemas, root["properties"]["cross_validation"])
        assert windows["properties"]["windows"]["maximum"] == 20
        assert root["properties"]["horizon"]["maximum"] == 48
    submit = document["paths"]["/v1/jobs"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/json", "text/csv",
                                                        "multipart/form-data"}
    assert {"horizon", "model.cell", "training.clip.max_norm", "Idempotency-Key"} <= {
        p["name"] for p in submit["parameters"]}
    assert set(submit["responses"]) >= {"202", "401", "413", "422", "429"}


def test_docs_page_lists_every_operation_without_external_assets(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    html = response.get_data(as_text=True)
    for method, path in served_operations(app):
        assert re.search(rf">{method}</span> <code>{re.escape(path)}</code>", html), (method, path)
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'href="#schema-JobRequest"' in html and 'id="schema-JobRequest"' in html
