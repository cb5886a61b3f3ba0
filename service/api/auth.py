"""Bearer-token authentication: every /v1 request acts for the tenant its token belongs to."""

from __future__ import annotations

from flask import g, request

from service.api.extensions import get_session
from service.api.problems import Problem
from service.store import repository

REALM = 'Bearer realm="bptt"'


def authenticate() -> None:
    """A before_request hook: find the tenant of the request's token, or answer 401."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Problem(
            "Send an API token as 'Authorization: Bearer <token>'.",
            status=401,
            headers={"WWW-Authenticate": REALM},
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    tenant_id = None
    if scheme.lower() == "bearer" and token:
        tenant_id = repository.tenant_id_for_token(get_session(), token=token)
    if tenant_id is None:
        # One answer for malformed, unknown and revoked tokens: no hint which one it was.
        raise Problem(
            "The API token is invalid or revoked.",
            status=401,
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    g.tenant_id = tenant_id


def current_tenant_id() -> int:
    """The id of the tenant the current request acts for (set by authenticate)."""
    return int(g.tenant_id)
