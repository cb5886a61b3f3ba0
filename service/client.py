"""A small HTTP client for the CLI (`bptt submit`, `status`, `forecast`): urllib, no extra deps.

Errors from the API (problem+json) become one readable line: "422 Unprocessable Content:
horizon: must be at least 1".
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

TIMEOUT_S = 60
# An upload's answer comes once the server has sorted and stored everything it read: minutes
# for a few GB. (urllib's timeout bounds each socket operation, not the whole request.)
UPLOAD_TIMEOUT_S = 1800
UPLOAD_BLOCK = 1 << 20  # bytes read from the file, and sent, at a time
TERMINAL = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    """The API answered an error; str() is one line that says what and where."""


@dataclass(frozen=True)
class Client:
    """The API at `url`, as the tenant whose `token` this is."""

    url: str
    token: str

    def request(self, method: str, path: str, *, body: bytes | BinaryIO | None = None,
                content_type: str | None = None, accept: str = "application/json",
                query: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                timeout: float = TIMEOUT_S) -> tuple[int, bytes]:
        """Send one request; return (status, body) or raise ApiError. A file-like `body` is
        streamed (give its Content-Length in `headers`)."""
        target = self.url.rstrip("/") + path
        if query:
            target += "?" + urllib.parse.urlencode({k: v for k, v in query.items()
                                                    if v is not None})
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept, **(headers or {})}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(target, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(describe_problem(exc.code, exc.read())) from None
        except urllib.error.URLError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc.reason}") from None

    def upload(self, path: str, file: Path, *, content_type: str, gzipped: bool,
               query: dict[str, Any], progress: Callable[[int], None] | None = None,
               static_table: Path | None = None) -> Any:
        """POST a file, streamed a block at a time (never read whole); `progress` is told the
        bytes of each block sent. With a `static_table`, the two go as the parts `series` and
        `static` of a multipart/form-data body (the server knows a gzipped file by its first
        bytes). The decoded JSON answer."""
        with open(file, "rb") as handle:
            headers: dict[str, str] = {}
            source: Any = handle
            if static_table is not None:
                source, content_type, size = _with_static_table(
                    handle, file.stat().st_size, content_type, static_table.read_bytes())
            else:
                size = file.stat().st_size
                if gzipped:
                    headers["Content-Encoding"] = "gzip"
            headers["Content-Length"] = str(size)
            _, data = self.request("POST", path, body=_Progress(source, progress),
                                   content_type=content_type, query=query, headers=headers,
                                   timeout=UPLOAD_TIMEOUT_S)
        return json.loads(data)

    def json(self, method: str, path: str, payload: Any = None, **options) -> Any:
        """A JSON request and its decoded JSON answer."""
        body = json.dumps(payload).encode() if payload is not None else None
        status, data = self.request(method, path, body=body,
                                    content_type="application/json" if body else None, **options)
        return json.loads(data) if data else None


def multipart(parts: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of files ({part: (file name, bytes)}) and its Content-Type.
    (The boundary is random: the API hashes a request by its parts, not by their wrapping.)"""
    boundary = f"bptt-{uuid.uuid4().hex}"
    body = bytearray()
    for name, (filename, data) in parts.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def _with_static_table(handle: BinaryIO, size: int, content_type: str, static: bytes
                       ) -> tuple[BinaryIO, str, int]:
    """(body, its Content-Type, its length) of a multipart upload: the file `handle` streamed
    as the part `series`, the static table as the part `static`."""
    boundary = f"bptt-{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"series\"; "
            f"filename=\"series\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    tail = (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"static\"; "
            f"filename=\"static.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    tail += static + f"\r\n--{boundary}--\r\n".encode()
    body = _Concatenated([io.BytesIO(head), handle, io.BytesIO(tail)])
    return body, f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail)  # type: ignore[return-value]


class _Concatenated:
    """Streams read one after the other, as one."""

    def __init__(self, sources: list[Any]) -> None:
        self.sources = sources

    def read(self, size: int = -1) -> bytes:
        while self.sources:
            data = self.sources[0].read(size)
            if data:
                return data
            self.sources.pop(0)
        return b""


class _Progress:
    """A file that tells `report` how many bytes each read gave (http.client sends a file-like
    body by reading it a block at a time)."""

    def __init__(self, handle: BinaryIO, report: Callable[[int], None] | None) -> None:
        self.handle, self.report = handle, report

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(UPLOAD_BLOCK if size is None or size < 0 else
                                max(size, UPLOAD_BLOCK))
        if self.report is not None and data:
            self.report(len(data))
        return data


def describe_problem(status: int, body: bytes) -> str:
    """One line from a problem+json body (or whatever the body was)."""
    try:
        problem = json.loads(body)
    except ValueError:
        return f"{status}: {body[:200].decode(errors='replace')}"
    title = problem.get("title", "")
    errors = problem.get("errors") or []
    if errors:
        where = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}"
                          for e in errors[:5])
        return f"{status} {title}: {where}"
    return f"{status} {title}: {problem.get('detail', '')}".rstrip(": ")


MEMBERS_NAMED = 5  # early-stopped members named on the line; more are counted


def progress_line(job: dict[str, Any]) -> str:
    """One status line: state, the ensemble member in training and its epoch (or epochs done of
    total, for jobs from before members were recorded), early stops, the time left of the
    estimate, the latest losses."""
    parts = [f"{job['id'][:8]} {job['status']:<9}", progress_text(job.get("progress") or {})]
    if timing_text(job):
        parts.append(timing_text(job))
    latest = job.get("latest_metrics") or {}
    for label, key, digits in (("train", "train_loss", 4), ("val", "val_loss", 4),
                               ("|g|", "grad_norm", 3)):
        if latest.get(key) is not None:  # null: not measured, or not finite
            parts.append(f"{label} {latest[key]:.{digits}g}")
    if job.get("error"):
        parts.append(f"error: {job['error']}")
    return "  ".join(parts)


def progress_text(progress: dict[str, Any]) -> str:
    """`member 2/5 · epoch 37/300 · member 1 stopped early`: the member in training (the last
    once all have finished) and its epoch, whether it or earlier members stopped early, and
    cross-validation when that is what runs. The dashboard writes the same (format.js)."""
    member = progress.get("member")
    if member is None:
        done, total = progress.get("epochs_done", 0), progress.get("epochs_total")
        return f"epoch {done}/{total or '?'}"
    text = (f"member {member}/{progress.get('members')} · "
            f"epoch {progress.get('member_epoch')}/{progress.get('member_epochs')}")
    early = [m["member"] for m in progress.get("finished_members") or ()
             if m["stopped"] == "early_stopping"]
    if member in early:  # the member shown has finished: it is the last one
        text += " (stopped early)"
        early.remove(member)
    if early:
        named = ", ".join(map(str, early[:MEMBERS_NAMED]))
        more = f" and {len(early) - MEMBERS_NAMED} more" if len(early) > MEMBERS_NAMED else ""
        text += f" · {'members' if len(early) > 1 else 'member'} {named}{more} stopped early"
    if progress.get("stage") == "cross_validation":
        text += " · cross-validating"
    return text


def timing_text(job: dict[str, Any]) -> str:
    """`1m05s left of ~1m10s (at most 3m35s)` while a job waits or runs (the time left measured
    from its own pace, the duration expected at submit with early stopping, the duration if
    every planned epoch runs), `took 13s of ~15s (at most 3m35s)` once it has ended; without
    the bound when it reads the same (no early stopping) or the job is from before it was kept;
    empty for a job without an estimate. The dashboard writes the same (format.js)."""
    estimate = job.get("estimate") or {}
    expected = estimate.get("seconds")
    if expected is None:
        return ""
    of = f"~{duration(expected)}"
    bound = estimate.get("max_seconds")
    if bound is not None and duration(bound) != duration(expected):
        of += f" (at most {duration(bound)})"
    if job.get("status") in TERMINAL:
        took = (job.get("usage") or {}).get("seconds")
        return f"estimated {of}" if took is None else f"took {duration(took)} of {of}"
    left = (job.get("progress") or {}).get("remaining_seconds")
    return f"estimated {of}" if left is None else f"{duration(left)} left of {of}"


def duration(seconds: float) -> str:
    """<1s, 42s, 3m05s, 2h07m."""
    whole = round(seconds)
    if seconds < 1:
        return "<1s"
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"
