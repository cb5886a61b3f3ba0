"""The HTTP service: Flask app factory, persistence, settings and the `bptt` command."""
