"""Load on the hwnas service over loopback (issue 7): submissions, reads, job throughput.

Starts `hwnas serve` (uvicorn, SQLite, jobs in child processes) on a free port with a
fresh data folder and a user, then:

1. **Submissions**: 50 search submissions at once (then cancelled, and the reads wait
   until none runs: a real search takes minutes on this machine); errors and latency.
2. **Reads**: 1,000 reads at once (devices, a device, a search, the job list, spread
   evenly), through `--connections` keep-alive connections; errors, p50/p99 latency,
   requests/s; then 200 reads one at a time (p50/p99 without queueing).
3. **Jobs/minute**: 12 real `kit` jobs (small nb201 variants) run by `--workers` workers.
4. **Memory**: the server's RSS before and after (`/proc/PID/status`).

Prints a table and writes `benchmarks/results/service_load.json`::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/service_load.py   # ~2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from service.testing import free_port, start_server, stop_server

RESULTS = Path(__file__).parent / "results" / "service_load.json"
DEVICE = {"name": "pc", "backend": "onnxruntime", "hardware": "loopback benchmark"}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(data: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HWNAS_DATA_DIR": str(data)}
    subprocess.run([sys.executable, "-m", "service.cli", "admin", "user", "bench"], env=env,
                   check=True, capture_output=True)
    return start_server(data, port, env={"HWNAS_WORKERS": str(workers)})


async def _timed(client: httpx.AsyncClient, method: str, url: str,
                 **kwargs: object) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
        status = response.status_code
    except httpx.HTTPError:
        status = -1
    return (time.perf_counter() - start) * 1000, status


def _summary(samples: list[tuple[float, int]], ok: set[int], seconds: float) -> dict:
    ms = np.array([s[0] for s in samples])
    return {"requests": len(samples), "errors": sum(s[1] not in ok for s in samples),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "per_s": round(len(samples) / seconds, 1)}


async def _settled(client: httpx.AsyncClient, jobs: list[int]) -> list[str]:
    """Wait until every job is final; their states."""
    while True:
        states = [(await client.get(f"/v1/jobs/{j}")).json()["state"] for j in jobs]
        if all(s in ("succeeded", "failed", "cancelled") for s in states):
            return states
        await asyncio.sleep(0.5)


async def _load(base: str, headers: dict[str, str], connections: int) -> dict:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=120) as client:
        device = (await client.post("/v1/devices", json=DEVICE)).json()
        spec = {"space": "nb201", "targets": [{"device_id": device["id"], "budget_ms": 5}]}
        start = time.perf_counter()
        posts = await asyncio.gather(*[_timed(client, "POST", "/v1/searches", json=spec)
                                       for _ in range(50)])
        submit = _summary(posts, {202}, time.perf_counter() - start)
        searches = (await client.get("/v1/searches")).json()
        await asyncio.gather(*[client.post(f"/v1/searches/{s['id']}/cancel")
                               for s in searches])
        await _settled(client, [s["id"] for s in searches])  # reads with no job running
        paths = ["/v1/devices", f"/v1/devices/{device['id']}",
                 f"/v1/searches/{searches[0]['id']}", "/v1/jobs?limit=20"]
        start = time.perf_counter()
        reads = await asyncio.gather(*[_timed(client, "GET", paths[i % 4])
                                       for i in range(1000)])
        concurrent = _summary(reads, {200}, time.perf_counter() - start)
        start = time.perf_counter()
        one_by_one = [await _timed(client, "GET", paths[i % 4]) for i in range(200)]
        sequential = _summary(one_by_one, {200}, time.perf_counter() - start)
        kits = []
        start = time.perf_counter()
        for channels in (4, 8, 12, 16):
            for resolution in (8, 16, 24):
                url = (f"/v1/devices/{device['id']}/kit?space=nb201&param=cells=1"
                       f"&param=channels={channels}&param=resolution={resolution}")
                kits.append((await client.get(url)).json()["job"]["id"])
        states = await _settled(client, kits)
        minutes = (time.perf_counter() - start) / 60
    return {"submit": submit, "reads_concurrent": concurrent, "reads_sequential": sequential,
            "jobs": {"kit_jobs": len(kits), "succeeded": states.count("succeeded"),
                     "per_minute": round(len(kits) / minutes, 1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hwnas-load-") as tmp:
        server = _start(Path(tmp), port, args.workers)
        try:
            token = subprocess.run(
                [sys.executable, "-m", "service.cli", "admin", "token", "bench"],
                env={**os.environ, "HWNAS_DATA_DIR": tmp}, check=True, capture_output=True,
                text=True).stdout.strip()
            rss_before = _rss_mb(server.pid)
            result = asyncio.run(_load(f"http://127.0.0.1:{port}",
                                       {"Authorization": f"Bearer {token}"}, args.connections))
            result["rss_mb"] = {"before": round(rss_before, 1),
                                "after": round(_rss_mb(server.pid), 1)}
        finally:
            stop_server(server)
    result["machine"] = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                         "workers": args.workers, "connections": args.connections}
    print(f"{'what':<28}{'n':>6}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'per s':>9}")
    for name in ("submit", "reads_concurrent", "reads_sequential"):
        row = result[name]
        print(f"{name:<28}{row['requests']:>6}{row['errors']:>8}{row['p50_ms']:>9}"
              f"{row['p99_ms']:>9}{row['per_s']:>9}")
    jobs = result["jobs"]
    print(f"kit jobs: {jobs['succeeded']}/{jobs['kit_jobs']} succeeded, "
          f"{jobs['per_minute']} jobs/minute with {args.workers} workers")
    print(f"server RSS: {result['rss_mb']['before']} MB -> {result['rss_mb']['after']} MB")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
