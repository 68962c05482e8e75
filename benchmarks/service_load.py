"""Load on the hwnas service over loopback (issue 7): submissions, reads, job throughput.

Starts `hwnas serve` (uvicorn, SQLite, jobs in child processes) on a free port with a
fresh data folder and a user, then:

1. **Submissions**: 50 search submissions at once (then cancelled, and the reads wait
   until none runs: a real search takes minutes on this machine); errors and latency.
2. **Reads** (devices, a device, a search, the job list, spread evenly), four ways:
   400 one at a time (`reads_sequential`: the service time of one read, client
   included); 1,000 sent at once through `--connections` keep-alive connections
   (`reads_concurrent`); 1,000 by 32 users who each send their next read when the last
   one answers (`reads_32_users`); 1,000 arriving at a fixed `--rate` per second
   (`reads_paced`, open loop). Errors, p50/p99 latency and requests/s for each.
3. **Jobs/minute**: 12 real `kit` jobs (small nb201 variants) run by `--workers` workers.
4. **Memory**: the server's RSS before and after (`/proc/PID/status`; with
   `--processes` > 1, the parent's only).

What "1,000 concurrent reads, p99 under 50 ms" can mean on 2 cores: one uvicorn process
serves requests one at a time on its event loop (its threads share one interpreter
lock), so 1,000 reads sent at once queue behind each other, and the last of them waits
for all the others: the burst's p99 is about 1,000 x the service time, seconds, however
fast one read is. The 50 ms target is met where the queue stays short: reads one at a
time, a few dozen users (p99 ~ users x service time), or reads arriving at a rate under
what the server drains (`reads_paced`). The burst figure is reported, not hidden.
The client runs on the same 2 cores and costs about as much CPU per request as the server.

Results (the shared 2-core machine, load ~3 from other sessions, so absolute figures
move by +-50% between runs; compare runs made back to back). Before and after the read
path fixes (dependencies on the event loop, token cache, plain ASGI metrics), one
process each, run back to back: 1,000 at once 50 -> 84 reads/s, p99 19.5 -> 11.3 s;
32 users p99 2.1 -> 1.2 s; paced at 100/s p99 4.6 s -> 43 ms (the server now drains
more than 100/s). A later pair, `--processes 1` then `2`: one read 5.2 and 4.3 ms inside
the app, 12.9 and 8.6 ms end to end; 1,000 at once p99 9.3 and 9.8 s; 32 users p99 1.8
and 1.1 s; paced at 100/s p99 8.3 s (over that run's capacity, 77/s) and 38 ms. The
pair of 2026-12-01 (no other job on the machine; the committed results): one read 3.3 and
2.6 ms inside the app, 8.5 and 6.9 ms end to end; 1,000 at once p99 10.0 and 7.6 s; 32
users p99 0.84 and 0.68 s; paced at 100/s p99 49 and 49 ms. So the 50 ms target holds
for reads at a rate the server drains, not for a burst of 1,000.

Prints a table and writes `benchmarks/results/service_load.json` (`service_load_pN.json`
with `--processes N`)::

    flock /tmp/hwnas-cpu.lock .venv/bin/python benchmarks/service_load.py   # ~2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _report import write_report

from service.testing import free_port, start_server, stop_server

RESULTS = Path(__file__).parent / "results" / "service_load.json"
USERS = 32  # clients of the closed-loop read run, each with its own connection
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


async def _server_time(client: httpx.AsyncClient) -> tuple[float, float]:
    """(seconds, requests) of GETs answered 200 so far (`/metrics` aside), from the
    server's own histogram `hwnas_request_seconds`: timed inside the app, so without the
    client, the socket and the queue."""
    total = {"sum": 0.0, "count": 0.0}
    for line in (await client.get("/v1/metrics")).text.splitlines():
        for key in total:
            if (line.startswith(f"hwnas_request_seconds_{key}{{")
                    and 'method="GET"' in line and 'status="200"' in line
                    and 'route="/metrics"' not in line):
                total[key] += float(line.rsplit(" ", 1)[1])
    return total["sum"], total["count"]


async def _reads(client: httpx.AsyncClient, paths: list[str], *, rate: float) -> dict:
    """The four ways of reading described in the module docstring, in that order."""

    def path(i: int) -> str:
        return paths[i % len(paths)]

    before = await _server_time(client)
    start = time.perf_counter()
    one_by_one = [await _timed(client, "GET", path(i)) for i in range(400)]
    sequential = _summary(one_by_one, {200}, time.perf_counter() - start)
    after = await _server_time(client)
    sequential["in_app_mean_ms"] = round(
        1000 * (after[0] - before[0]) / max(1.0, after[1] - before[1]), 2)
    start = time.perf_counter()
    burst = await asyncio.gather(*[_timed(client, "GET", path(i)) for i in range(1000)])
    concurrent = _summary(burst, {200}, time.perf_counter() - start)
    queue = list(range(1000))
    looped: list[tuple[float, int]] = []

    async def user() -> None:
        while queue:
            looped.append(await _timed(client, "GET", path(queue.pop())))

    start = time.perf_counter()
    await asyncio.gather(*[user() for _ in range(USERS)])
    closed = _summary(looped, {200}, time.perf_counter() - start)

    async def arrival(i: int) -> tuple[float, int]:
        await asyncio.sleep(i / rate)
        return await _timed(client, "GET", path(i))

    start = time.perf_counter()
    paced = await asyncio.gather(*[arrival(i) for i in range(1000)])
    open_loop = _summary(paced, {200}, time.perf_counter() - start)
    return {"reads_sequential": sequential, "reads_concurrent": concurrent,
            f"reads_{USERS}_users": closed, "reads_paced": {**open_loop, "rate_per_s": rate}}


async def _load(base: str, headers: dict[str, str], connections: int, rate: float) -> dict:
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
        reads = await _reads(client, paths, rate=rate)
        kits = []
        start = time.perf_counter()
        for channels in (4, 8, 12, 16):
            for resolution in (8, 16, 24):
                url = (f"/v1/devices/{device['id']}/kit?space=nb201&param=cells=1"
                       f"&param=channels={channels}&param=resolution={resolution}")
                kits.append((await client.get(url)).json()["job"]["id"])
        states = await _settled(client, kits)
        minutes = (time.perf_counter() - start) / 60
    return {"submit": submit, **reads,
            "jobs": {"kit_jobs": len(kits), "succeeded": states.count("succeeded"),
                     "per_minute": round(len(kits) / minutes, 1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="Reads per second of the paced (open-loop) read run.")
    parser.add_argument("--processes", type=int, default=1,
                        help="API processes of the server (`hwnas serve --processes`).")
    args = parser.parse_args(argv)
    os.environ["HWNAS_PROCESSES"] = str(args.processes)  # read by `hwnas serve`
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
                                       {"Authorization": f"Bearer {token}"}, args.connections,
                                       args.rate))
            result["rss_mb"] = {"before": round(rss_before, 1),
                                "after": round(_rss_mb(server.pid), 1)}
        finally:
            stop_server(server)
    result["machine"] = {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                         "workers": args.workers, "connections": args.connections,
                         "processes": args.processes}
    print(f"{'what':<28}{'n':>6}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'per s':>9}")
    for name in ("submit", "reads_sequential", "reads_concurrent", f"reads_{USERS}_users",
                 "reads_paced"):
        row = result[name]
        print(f"{name:<28}{row['requests']:>6}{row['errors']:>8}{row['p50_ms']:>9}"
              f"{row['p99_ms']:>9}{row['per_s']:>9}")
    service_ms = result["reads_sequential"]["p50_ms"]
    print(f"one read: {result['reads_sequential']['in_app_mean_ms']} ms inside the app "
          "(mean, from its own histogram; one API process's only with --processes > 1)")
    print(f"one read costs ~{service_ms} ms end to end here (client included), so one "
          f"server drains at most ~{1000 / service_ms:.0f} reads/s: 1,000 reads sent at "
          f"once wait ~{service_ms:.0f} s in the queue at p99, {USERS} users about "
          f"{USERS * service_ms:.0f} ms; paced at {args.rate:g}/s (under capacity) only "
          "service time and small queues remain")
    jobs = result["jobs"]
    print(f"kit jobs: {jobs['succeeded']}/{jobs['kit_jobs']} succeeded, "
          f"{jobs['per_minute']} jobs/minute with {args.workers} workers")
    print(f"server RSS: {result['rss_mb']['before']} MB -> {result['rss_mb']['after']} MB")
    out = RESULTS if args.processes == 1 else RESULTS.with_name(
        f"service_load_p{args.processes}.json")
    write_report(out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
