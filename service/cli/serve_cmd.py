"""`hwnas serve`: the API and the job worker in one process (uvicorn), or either alone.

With `--processes N` (N > 1) uvicorn serves the API from N child processes, which run
no jobs (each is an API-only app, `HWNAS_WORKERS=0`), while this process runs the job
worker: a job is still claimed by one worker only (the store's conditional UPDATE), and
the job pool is not multiplied by N.

`GET /v1/metrics` reports the requests of all N children, whichever one answers: this
process makes a fresh folder for prometheus_client's multiprocess mode, points
`PROMETHEUS_MULTIPROC_DIR` at it for the children (an inherited value is replaced, since
the folder must start empty), and removes it at shutdown. Each child writes its
request-latency histogram to its own file there and a scrape sums the files; a child that
uvicorn replaces leaves its file, so counts never go down. A scrape is counted once it has
been answered, so it shows in the next scrape, not in its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int | None, typer.Option(
        min=0, help="Jobs run at once here (default HWNAS_WORKERS, 2); 0: API only.")] = None,
    worker_only: Annotated[bool, typer.Option(
        "--worker-only", help="Run jobs from the database, serve no HTTP.")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    processes: Annotated[int, typer.Option(
        min=1, max=64, envvar="HWNAS_PROCESSES",
        help="API processes (uvicorn workers); jobs run in this parent process.")] = 1,
) -> None:
    """Start the hwnas service: REST API under /v1 and, by default, the job worker.

    Settings come from HWNAS_* variables (deploy/README.md lists them): HWNAS_DATA_DIR,
    HWNAS_DATABASE_URL, HWNAS_EXECUTOR=ray with HWNAS_RAY_ADDRESS, ...
    """
    from service.config import Settings

    overrides = {} if workers is None else {"workers": workers}
    settings = Settings(**overrides)
    if worker_only:
        _run_worker(settings)
        return
    import uvicorn

    from service.api import create_app

    if processes == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=30)
        return
    from uvicorn.supervisors import Multiprocess

    from service.api.metrics import MULTIPROC_ENV
    from service.api.services import build_services, close_services

    config = uvicorn.Config("service.api:create_app", factory=True, workers=processes,
                            host=host, port=port, log_level=log_level,
                            timeout_graceful_shutdown=30)
    sock = _tcp_socket(host, port)
    services = build_services(settings, start_worker=True)
    os.environ["HWNAS_WORKERS"] = "0"  # the API children read their settings from here
    # Set only now: this process's prometheus_client, already imported, keeps the mode
    # it was imported in, and a local Ray it started keeps the old environment; the
    # spawned API children import prometheus_client afresh and see it (job children see
    # it too but never import prometheus_client). No `mark_process_dead` when a child
    # exits: it only drops live-gauge files, and the children write no gauges.
    metrics_dir = tempfile.mkdtemp(prefix="hwnas-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        close_services(services)
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _tcp_socket(host: str, port: int) -> socket.socket:
    """The listening socket shared by the API processes, made with proto IPPROTO_TCP.

    uvicorn's own (`Config.bind_socket`) has proto 0, so asyncio does not set
    TCP_NODELAY on the connections the children accept, and every response on a
    keep-alive connection then waits ~40 ms for the client's delayed ACK (Nagle).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _run_worker(settings: object) -> None:
    from service.api.services import build_services, close_services

    if settings.workers < 1:  # type: ignore[attr-defined]
        raise ValueError("--worker-only needs --workers >= 1")
    services = build_services(settings, start_worker=True)  # type: ignore[arg-type]
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    typer.echo(f"worker {services.worker.id} running jobs; Ctrl-C to stop")
    done.wait()
    close_services(services)
