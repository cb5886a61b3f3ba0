"""Errors as RFC 9457 problem details (`application/problem+json`), for every error answer."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# RFC 9110's names where Python's (before 3.13) and Werkzeug's still use the RFC 7231 ones, so a
# title does not change with the interpreter.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error a route raises to answer with a problem document."""

    status: int = 400

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.title = title
        self.type = type_
        self.headers = headers or {}
        self.extensions = extensions  # extra members of the problem document


class ValidationProblem(Problem):
    """Invalid input, naming every bad field: `errors` is [{"loc": [...], "msg": "..."}]."""

    status = 422

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        if detail is None:
            detail = _summary(errors)
        super().__init__(detail, errors=errors)
        self.errors = errors


def problem_response(
    status: int,
    *,
    detail: str,
    title: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem+json response; `title` defaults to the status's phrase, as RFC 9457 asks."""
    body = {
        "type": type_,
        "title": title or status_title(status),
        "status": status,
        "detail": detail,
        **extensions,
    }
    response = current_app.response_class(
        current_app.json.dumps(body), status=status, mimetype=PROBLEM_JSON
    )
    response.headers.update(headers or {})
    return response


def status_title(status: int) -> str:
    """The standard reason phrase of an HTTP status (RFC 9110 wording)."""
    if status in _TITLES:
        return _TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def register_error_handlers(app: Flask) -> None:
    """Answer our problems, HTTP errors and unexpected exceptions with problem documents."""
    app.register_error_handler(Problem, _handle_problem)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)


def _handle_problem(problem: Problem) -> Response:
    """Render a Problem raised by a route."""
    return problem_response(
        problem.status,
        detail=problem.detail,
        title=problem.title,
        type_=problem.type,
        headers=problem.headers,
        **problem.extensions,
    )


def _handle_http_exception(exc: HTTPException) -> Response | HTTPException:
    """Render werkzeug's 4xx/5xx (404, 405, 413, ...) as problems, keeping headers like Allow."""
    if exc.code is None or exc.code < 400:
        return exc  # routing redirects (308 for a missing slash) are not errors
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return problem_response(exc.code, detail=exc.description or exc.name, headers=headers)


def _handle_unexpected(exc: Exception) -> Response:
    """Log a bug with its traceback; tell the client only that it happened."""
    log.exception("unhandled exception")
    return problem_response(500, detail="An unexpected error occurred; it has been logged.")


def _summary(errors: list[dict[str, Any]]) -> str:
    """A one-line detail for a validation problem: the first error, and how many more."""
    if not errors:
        return "The request is invalid."
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", [])) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"
