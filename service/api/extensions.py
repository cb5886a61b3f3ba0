"""What the app factory binds to an app (settings, engine, sessions) and how a request gets it."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.store.db import session_factory

EXTENSION_KEY = "bptt"


@dataclass(frozen=True)
class Services:
    """The app's settings and database handles."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


def init_app(app: Flask, settings: Settings) -> Services:
    """Bind settings and a session factory to `app`; close each request's session at its end."""
    sessions = session_factory(settings)
    services = Services(settings=settings, engine=sessions.kw["bind"], sessions=sessions)
    app.extensions[EXTENSION_KEY] = services
    app.teardown_appcontext(_close_session)
    return services


def services(app: Flask | None = None) -> Services:
    """The services bound to `app` (default: the current app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def current_settings() -> Settings:
    """The settings of the current app."""
    return services().settings


def get_session() -> Session:
    """The current request's session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = services().sessions()
    return g.db_session


def _close_session(_exc: BaseException | None = None) -> None:
    """Close the request's session; anything not committed is rolled back."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
