"""The current tenant's jobs, sweeps and forecast batches by full or short id, as every route and
id field looks them up: repository.item_for_tenant finds them, this turns what it found into the
answer (404 for no match, 409 naming the candidates when a short id begins several ids)."""

from __future__ import annotations

from typing import Any

from service.api.auth import current_tenant_id
from service.api.extensions import get_session
from service.api.problems import Problem
from service.store import repository

Loc = list[str | int]


def find(model: Any, item_id: str, *, kind: str, loc: Loc) -> Any:
    """The tenant's `model` row (`kind`: "job", "sweep", "forecast batch") with this full or
    short id. `loc` is where the id came from (["path", "job_id"], ["job_id"], ...); the 404 of
    a path parameter names no field, as before short ids."""
    try:
        item = repository.item_for_tenant(get_session(), model, tenant_id=current_tenant_id(),
                                          item_id=item_id)
    except repository.AmbiguousIdError as exc:
        raise ambiguous(exc, kind=kind, loc=loc) from None
    if item is None:
        extra: dict[str, Any] = {}
        if loc[0] != "path":
            extra["errors"] = [{"loc": loc, "msg": f"no such {kind}"}]
        hint = ""
        if len(item_id) < repository.MIN_SHORT_ID_LENGTH:
            hint = f" A short id needs at least {repository.MIN_SHORT_ID_LENGTH} characters."
        raise Problem(f"There is no {kind} {item_id!r}.{hint}", status=404, **extra)
    return item


def ambiguous(exc: repository.AmbiguousIdError, *, kind: str, loc: Loc) -> Problem:
    """The 409 for a short id that begins several of the tenant's ids: `errors` names the field
    and the candidates (what the CLI prints), `candidates` lists their full ids."""
    count = f"more than {len(exc.candidates)}" if exc.more else str(len(exc.candidates))
    names = ", ".join(exc.candidates) + (", ..." if exc.more else "")
    msg = (f"the short id {exc.short_id!r} begins the ids of {count} {_plural(kind)}: {names}; "
           "give more of the id")
    return Problem(f"The short id {exc.short_id!r} is ambiguous: it begins the ids of {count} "
                   f"of your {_plural(kind)}.", status=409, candidates=exc.candidates,
                   errors=[{"loc": loc, "msg": msg}])


def _plural(kind: str) -> str:
    """A kind's plural: jobs, sweeps, forecast batches."""
    return kind + ("es" if kind.endswith("h") else "s")
