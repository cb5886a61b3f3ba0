"""Celery workers: claim a job in the database, train it with bptt, record everything there."""

# `bptt up` names a file here for each worker it starts; the worker appends one line to it per
# thing that is ready (workers/celery_app.py). A contract between the two, not a setting.
READY_FILE_ENV = "BPTT_UP_READY_FILE"
READY_WHEN = frozenset({"consuming", "kernels"})  # the broker is read; the pool child is warm
