"""Celery workers: claim a job in the database, train it with bptt, record everything there."""
