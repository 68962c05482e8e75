"""A real `hwnas serve` in a child process, for tests, benchmarks and the browser suite.

`start_server` runs `python -m service.cli serve` on loopback with `HWNAS_DATA_DIR` set to
a folder of the caller's and returns once `/v1/health` answers 200 (or raises, naming the
exit code, if the server dies first). `stop_server` ends it with SIGTERM, the way an
operator would, so its lifespan hands running jobs back to the queue.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as data:  # doctest: +SKIP
    ...     port = free_port()
    ...     server = start_server(Path(data), port, env={"HWNAS_WORKERS": "1"})
    ...     stop_server(server)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

__all__ = ["free_port", "start_server", "stop_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data: Path, port: int, *, env: Mapping[str, str] | None = None,
                 timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """Start `hwnas serve --port PORT` on the data folder `data`; wait until it is healthy.

    Args:
        data: The server's `HWNAS_DATA_DIR` (SQLite file and artifacts).
        port: The loopback port to listen on (see `free_port`).
        env: More environment variables for the server (`HWNAS_WORKERS`, leases...).
        timeout_s: How long to wait for `/v1/health` to answer 200.

    Raises:
        RuntimeError: The server exited, or was not healthy within `timeout_s` (it is
            killed then).
    """
    full_env = {**os.environ, **(env or {}), "HWNAS_DATA_DIR": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                             "--log-level", "warning"], env=full_env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hwnas serve exited with code {proc.returncode} before it "
                               "was healthy")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"hwnas serve was not healthy on port {port} within {timeout_s:g} s")


def stop_server(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """SIGTERM the server and wait for it; SIGKILL it if it outlives `timeout_s`."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
