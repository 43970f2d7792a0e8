"""The load generator of bench/serve_speed.py: fixed concurrency, fixed duration, one process.

    .venv/bin/python bench/loadgen.py JOB.json      # prints one JSON result on stdout

JOB.json: {"url": "http://127.0.0.1:PORT/invocations", "content_type": "application/json",
"bodies": ["...", ...], "connections": 32, "warmup": 2.0, "duration": 10.0, "pids": [server pids]}

`connections` coroutines each keep one HTTP/1.1 connection (bench/raw_http.py) and send the next
body of `bodies` (round robin) as soon as the previous answer arrived: a closed loop, as wrk does.
Answers that end within the `duration` seconds after `warmup` are counted (as wrk counts); their
latency is from the first byte written to the last byte read. The result holds throughput, latency percentiles,
statuses, the CPU seconds this process used during the measured window (so that a reader can see
the generator was not the bottleneck) and those of the server processes `pids` (from /proc).
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_http import Connection, event_loop_policy, request_bytes

TICKS = os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes used so far; a process gone counts 0."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS     # utime, stime
    return total


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def drive(job: dict) -> dict:
    url = urlsplit(job["url"])
    host, port = url.hostname, url.port or 80
    requests = [request_bytes("POST", url.path, f"{host}:{port}", body.encode(), job["content_type"])
                for body in job["bodies"]]
    start = time.perf_counter()
    measure_from = start + job["warmup"]
    measure_to = measure_from + job["duration"]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []
    marks: dict[str, float] = {}

    async def client(index: int) -> None:
        connection = Connection(host, port)
        n = index
        while (now := time.perf_counter()) < measure_to:
            if now >= measure_from and "cpu" not in marks:
                marks["cpu"], marks["server_cpu"], marks["at"] = own_cpu(), process_cpu(job["pids"]), now
            began = now
            try:
                answer = await connection.send(requests[n % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.01)
                continue
            ended = time.perf_counter()
            n += 1
            if measure_from <= ended <= measure_to:
                latencies.append(ended - began)
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
        connection.close()

    await asyncio.gather(*(client(i) for i in range(job["connections"])))
    ended_at = time.perf_counter()
    window = ended_at - marks.get("at", measure_from)
    cpu = own_cpu() - marks.get("cpu", 0.0)
    server_cpu = process_cpu(job["pids"]) - marks.get("server_cpu", 0.0)
    latencies.sort()
    ok = statuses.get(200, 0)
    return {
        "answered": len(latencies), "ok": ok, "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failures": len(failures), "first_failure": failures[0] if failures else None,
        "throughput": ok / job["duration"],
        "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "client_cpu_share": cpu / window,          # of one core
        "server_cpu_share": server_cpu / window,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    event_loop_policy()
    print(json.dumps(asyncio.run(drive(job))))


if __name__ == "__main__":
    main()
