"""Persistence without Flask: tables, repository, sessions, the queue hand-off, forecast batches."""
