"""The database's clock, as a SQL expression: what leases, heartbeats and the reaper compare.

Workers, reapers and API processes run on different hosts whose clocks drift apart; a lease
written by one host's clock and read by another's is only as good as their agreement. Every
lease time is therefore computed inside the UPDATE that writes or tests it, from the one clock
every party shares: the database server's (on SQLite, the clock of the one host whose file it
is).

- PostgreSQL: statement_timestamp(), when the statement arrived. Not now() (the transaction's
  start, possibly long before a lock wait ended) and not clock_timestamp() (volatile, so an
  index cannot use it). A statement that runs after another transaction's commit reads a later
  time than anything that transaction wrote, which is what the attempts audit relies on.
- SQLite: strftime('%Y-%m-%d %H:%M:%f000', 'now'): milliseconds, written in the very format
  SQLAlchemy stores datetimes in on SQLite (six fractional digits), so that stored values and
  the clock compare as strings in time order. SQLite's default CURRENT_TIMESTAMP has whole
  seconds only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from service.store.tables import UTCDateTime


class DbNow(FunctionElement[Any]):
    """The database's current time plus an offset in seconds (one bound float argument)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"


def db_now(offset_seconds: float = 0.0) -> DbNow:
    """The database's clock now, plus `offset_seconds` (negative for the past), as SQL."""
    return DbNow(literal(float(offset_seconds)))


@compiles(DbNow, "postgresql")
def _postgresql(element: DbNow, compiler: Any, **kw: Any) -> str:
    offset = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => CAST({offset} AS DOUBLE PRECISION)))"


@compiles(DbNow, "sqlite")
def _sqlite(element: DbNow, compiler: Any, **kw: Any) -> str:
    offset = compiler.process(element.clauses, **kw)
    # A modifier such as '-30.0 seconds'; SQLite accepts a sign or none.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', ({offset}) || ' seconds')"
