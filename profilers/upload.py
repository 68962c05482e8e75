"""Send a finished ``measurements.json`` to the hwnas service: ``--upload URL``.

Standard library only (``urllib.request``), so a board needs nothing more than the runner
does. The file on disk is never touched: an upload that fails after every retry leaves
it in place and says how to send it again. Retries back off exponentially (1, 2, 4, 8 s
by default) on connection errors, timeouts, 429 and 5xx answers; a 4xx answer (a bad
token, another device's data) is not retried, since it would fail the same way.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from profilers.errors import ProfilerError

__all__ = ["UploadError", "upload_measurements"]


class UploadError(ProfilerError):
    """The service refused the file, or could not be reached after every retry."""


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError))


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        try:
            detail = json.loads(exc.read() or b"{}").get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        return f"HTTP {exc.code}{': ' + str(detail) if detail else ''}"
    return str(getattr(exc, "reason", exc))


def upload_measurements(path: Path, *, url: str, token: str, device: int, retries: int = 4,
                        backoff_s: float = 1.0, timeout_s: float = 60.0,
                        sleep: Callable[[float], None] = time.sleep) -> dict[str, object]:
    """POST ``path`` to ``{url}/v1/devices/{device}/measurements``; the service's answer.

    Raises:
        UploadError: A 4xx answer, or no success after ``retries`` retries.
    """
    endpoint = f"{url.rstrip('/')}/v1/devices/{device}/measurements"
    body = path.read_bytes()
    request = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if not _retryable(exc) or attempt == retries:
                raise UploadError(f"upload to {endpoint} failed ({_reason(exc)}); {path} is "
                                  "kept: run the same command again to resume and resend"
                                  ) from exc
            sleep(backoff_s * 2**attempt)
    raise UploadError(f"upload to {endpoint}: no attempt made (retries={retries})")
