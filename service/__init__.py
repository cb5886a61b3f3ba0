"""The service around the engine: the `bptt` command, serving, settings and logging here; the
HTTP API in api/, persistence in store/, the dashboard in dashboard/."""
