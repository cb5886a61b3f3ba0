"""The dashboard: its route, templates and static files; the pages fill themselves from the API."""
