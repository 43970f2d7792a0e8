"""Speed of `mlopsc serve` against `mlflow models serve`: the same registered model, one run.

    nice -n 10 .venv/bin/python bench/serve_speed.py [--runs 5] [--logging-runs 8] [--duration 10]
        [--only throughput,logging,startup,load] [--work DIR] [--json FILE] [--before REV]

1. `mlopsc run specs/penguins.mlops` on a copy of specs/ in a temporary folder (or in --work, once)
   trains the penguins model and registers it as penguins-species@champion in that folder's
   MLflow SQLite store.
2. throughput: `mlflow models serve -m models:/penguins-species@champion --env-manager local`
   (its defaults: one uvicorn worker), `mlopsc serve --model penguins-species@champion` (its
   defaults: one worker, batching, the prediction log on) and the same with `--no-log` all serve
   that version at once; each round drives each server in turn (the order rotates every round)
   with bench/loadgen.py, a process of its own at 32 connections: single-row requests, then
   100-row requests (`dataframe_split`, rows of penguins.csv). Before timing, the servers must
   give the same predictions for the same bodies. Medians of --runs rounds.
3. logging: the two mlopsc servers alone, single-row requests, --logging-runs rounds (the
   difference sought is smaller than the spread of a few rounds on a shared machine).
4. startup: from the process's start to the first 200 of /ping, for each server, alternated, after
   one untimed start of each (a warm machine: files in the page cache). With --before REV, also
   `mlopsc serve` as it was at git revision REV (its compiler, runtime and backends first on
   PYTHONPATH, as bench/stage_speed.py does), in the same rounds.
5. load: serve_load.py at full size against a fresh `mlopsc serve` that follows the alias every
   0.2 s: 10,000 requests, 10 % malformed, three swaps to newly registered versions; its checks
   must hold.

Prints Markdown for docs/benchmarks.md with the machine, its load average and the generator's CPU.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODEL = "penguins-species"
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex"]
SERVERS = ("mlflow", "mlopsc", "mlopsc --no-log")
sys.path.insert(0, str(REPO / "bench"))


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    output: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The process and its descendants (`mlflow models serve` runs uvicorn as a child)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        found, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            found += frontier
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


def launch(name: str, args: list[str], env: dict[str, str], work: Path, port: int) -> Server:
    output = work / f"{name.replace(' ', '')}-{port}.out"
    with open(output, "wb") as handle:
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=work,
                                start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
    return Server(name, proc, port, output)


def wait_ping(server: Server, timeout: float = 300.0) -> tuple[float, float]:
    """(seconds from the process's start until /ping answered 200, CPU seconds its processes used)."""
    from loadgen import process_cpu

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.output.read_text(errors='replace')[-2000:]}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return time.monotonic() - started, process_cpu(server.pids())
        connection.close()
        time.sleep(0.01)
    server.stop()
    raise TimeoutError(f"{server.name} did not answer /ping within {timeout} s")


def prepare(work: Path) -> str:
    """Train and register the penguins model in work/specs (once); the tracking URI."""
    store = work / "specs" / ".mlopsc" / "mlflow.db"
    if not store.exists():
        shutil.copytree(REPO / "specs", work / "specs", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".mlopsc", ".mlops", "out"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        done = subprocess.run([str(BIN / "mlopsc"), "run", "specs/penguins.mlops"], cwd=work, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"mlopsc run failed:\n{done.stdout}\n{done.stderr}")
    return f"sqlite:///{store}"


BEFORE: dict[str, Path] = {}     # --before: "mlopsc REV" -> that revision's package


def command(name: str, uri: str, port: int, work: Path, *extra: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if name in BEFORE:
        env["PYTHONPATH"] = str(BEFORE[name])
        args = [sys.executable, "-c", "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()",
                "serve", "--model", f"{MODEL}@champion", "--tracking-uri", uri, "--port", str(port)]
        return [*args, "--log", str(work / f"log-{port}"), *extra], env
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"     # mlflow models serve runs `uvicorn`
    if name == "mlflow":
        env |= {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
        return [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion", "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), *extra], env
    args = [str(BIN / "mlopsc"), "serve", "--model", f"{MODEL}@champion", "--tracking-uri", uri, "--port", str(port)]
    args += ["--no-log"] if name.endswith("--no-log") else ["--log", str(work / f"log-{port}")]
    return args + list(extra), env


def penguin_bodies(rows: int) -> list[str]:
    import pandas as pd

    frame = pd.read_csv(REPO / "specs" / "data" / "penguins.csv").dropna()[FEATURES]
    data = frame.values.tolist()
    if rows == 1:
        return [json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row]}}) for row in data]
    windows = range(0, len(data) - rows, 17)
    return [json.dumps({"dataframe_split": {"columns": FEATURES, "data": data[i:i + rows]}}) for i in windows]


def same_predictions(servers: dict[str, Server], bodies: list[str]) -> None:
    answers = {}
    for name, server in servers.items():
        got = []
        for body in bodies:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            if answer.status != 200:
                raise SystemExit(f"{name} answered {answer.status}: {answer.read()[:500]!r}")
            got.append(json.loads(answer.read())["predictions"])
        answers[name] = got
    first, *others = answers.values()
    if any(other != first for other in others):
        raise SystemExit("the servers do not give the same predictions for the same bodies")


def loadgen(server: Server, bodies: list[str], work: Path, connections: int, warmup: float, duration: float) -> dict:
    job = work / "job.json"
    job.write_text(json.dumps({"url": server.url + "/invocations", "content_type": "application/json",
                               "bodies": bodies, "connections": connections, "warmup": warmup,
                               "duration": duration, "pids": server.pids()}))
    done = subprocess.run([sys.executable, str(REPO / "bench" / "loadgen.py"), str(job)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def throughput(uri: str, work: Path, runs: int, duration: float, warmup: float, connections: int,
               names: tuple[str, ...] = SERVERS, sizes: tuple[int, ...] = (1, 100)) -> dict:
    servers = {}
    try:
        for name in names:
            port = free_port()
            servers[name] = launch(name, *command(name, uri, port, work), work, port)
        for server in servers.values():
            wait_ping(server)
        results: dict[str, dict[str, list[dict]]] = {}
        for size in sizes:
            bodies = penguin_bodies(size)
            same_predictions(servers, bodies[:5])
            per_server = results[f"{size}-row"] = {name: [] for name in servers}
            for round_ in range(runs):
                order = list(servers)[round_ % len(servers):] + list(servers)[:round_ % len(servers)]
                for name in order:
                    result = loadgen(servers[name], bodies, work, connections, warmup, duration)
                    per_server[name].append(result)
                    print(f"  {size}-row {name}: {result['throughput']:.0f}/s p99 {result['p99_ms']:.0f} ms "
                          f"{result['statuses']}", file=sys.stderr)
        return results
    finally:
        for server in servers.values():
            server.stop()


def startup(uri: str, work: Path, runs: int) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {"mlopsc": [], "mlflow": [], **{name: [] for name in BEFORE}}
    names = list(times)
    for round_ in range(runs + 1):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            port = free_port()
            server = launch(name, *command(name, uri, port, work), work, port)
            try:
                seconds = wait_ping(server)
            finally:
                server.stop()
            if round_ > 0:               # the first round only warms the page cache
                times[name].append(seconds)
                print(f"  start {name}: {seconds[0]:.2f} s, {seconds[1]:.2f} s CPU", file=sys.stderr)
    return times


def load(uri: str, work: Path, requests: int, swaps: int, seconds: float) -> dict:
    import pandas as pd
    from mlflow.tracking import MlflowClient
    from mlopsc.runtime.serving import read_prediction_log
    from serve_load import FEATURES as LOAD_FEATURES
    from serve_load import check, drive, plan

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")

    def swap(k: int) -> str:
        """Register the champion's model again as a new version, and move the alias to it."""
        new = client.create_model_version(MODEL, source=champion.source, run_id=champion.run_id)
        client.set_registered_model_alias(MODEL, "champion", new.version)
        return str(new.version)

    frame = pd.read_csv(REPO / "specs" / "data" / "penguins.csv")[list(LOAD_FEATURES)]
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
    port = free_port()
    cap = 64 * 1024
    server = launch("load", *command("mlopsc", uri, port, work, "--poll-interval", "0.2", "--max-request-bytes",
                                     str(cap)), work, port)
    try:
        wait_ping(server)
        planned = plan(records, MODEL, f"127.0.0.1:{port}", requests, max_request_bytes=cap)
        result = asyncio.run(drive(server.url, planned, seconds=seconds, swap=swap, swaps=swaps))
    finally:
        code = server.stop()
    if code not in (0, -signal.SIGTERM):     # uvicorn re-raises the signal after a graceful shutdown
        raise SystemExit(f"the load test's server exited with {code} on SIGTERM")
    return check(result, read_prediction_log(str(work / f"log-{port}")))


def median(values: list[float]) -> float:
    return statistics.median(values)


def efficiency(result: dict) -> float:
    """Answers per CPU-second of the server's processes: on a shared machine, steadier than throughput,
    which also measures how much CPU the scheduler gave the server."""
    return result["throughput"] / result["server_cpu_share"] if result["server_cpu_share"] else float("nan")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    from importlib.metadata import version

    packages = ", ".join(f"{p} {version(p)}" for p in ("mlflow", "scikit-learn", "uvicorn", "starlette"))
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}; {packages}"


def throughput_table(per_server: dict[str, list[dict]]) -> None:
    if "mlflow" in per_server:
        mlflow_rate = median([r["throughput"] for r in per_server["mlflow"]])
        mlflow_work = median([efficiency(r) for r in per_server["mlflow"]])
        print("| server | requests/s | vs mlflow | p50 ms | p95 ms | p99 ms | server CPU (cores) "
              "| requests per CPU-second | vs mlflow | generator CPU (of one core) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    else:
        print("| server | requests/s | p50 ms | p95 ms | p99 ms | server CPU (cores) | requests per CPU-second "
              "| generator CPU (of one core) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, runs in per_server.items():
        rate, work = median([r["throughput"] for r in runs]), median([efficiency(r) for r in runs])
        latency = " | ".join(f"{median([r[k] for r in runs]):.0f}" for k in ("p50_ms", "p95_ms", "p99_ms"))
        cpu = median([r["server_cpu_share"] for r in runs])
        generator = f"{median([r['client_cpu_share'] for r in runs]) * 100:.1f} %"
        if "mlflow" in per_server:
            print(f"| `{name}` | {rate:.0f} | {rate / mlflow_rate:.2f}x | {latency} | {cpu:.2f} | {work:.0f} | "
                  f"{work / mlflow_work:.2f}x | {generator} |")
        else:
            print(f"| `{name}` | {rate:.0f} | {latency} | {cpu:.2f} | {work:.0f} | {generator} |")
    on, off = (median([r["throughput"] for r in per_server[n]]) for n in ("mlopsc", "mlopsc --no-log"))
    on_work, off_work = (median([efficiency(r) for r in per_server[n]]) for n in ("mlopsc", "mlopsc --no-log"))
    print(f"\nLogging on costs {(1 - on / off) * 100:.1f} % of the throughput with logging off "
          f"({(1 - on_work / off_work) * 100:.1f} % of the requests per CPU-second).\n")


def report(results: dict, args: argparse.Namespace, loads: tuple[str, str]) -> None:
    print(f"Machine: {machine()}. Load average before / after: {loads[0]} / {loads[1]}.\n")
    for section, runs in (("throughput", args.runs), ("logging", args.logging_runs)):
        for scenario, per_server in results.get(section, {}).items():
            print(f"{scenario} requests, {args.connections} connections, median of {runs} runs of "
                  f"{args.duration:g} s (after {args.warmup:g} s of warm-up):\n")
            throughput_table(per_server)
    if "startup" in results:
        print(f"Start to the first 200 on /ping, median of {args.runs} (after one untimed start of each):\n")
        print("| server | wall s | CPU s | all runs (wall / CPU) |")
        print("| --- | ---: | ---: | --- |")
        for name, times in results["startup"].items():
            runs = ", ".join(f"{wall:.2f} / {cpu:.2f}" for wall, cpu in times)
            print(f"| `{name}` | {median([t[0] for t in times]):.2f} | {median([t[1] for t in times]):.2f} | {runs} |")
        print()
    if "load" in results:
        print("Load test:\n")
        for key, value in results["load"].items():
            print(f"- {key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10_000, help="of the load test")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="the load test's schedule")
    parser.add_argument("--logging-runs", type=int, default=8, help="of the logging on / off comparison")
    parser.add_argument("--only", default="throughput,logging,startup,load")
    parser.add_argument("--work", type=Path, default=None, help="keep the trained store here (reused next time)")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    parser.add_argument("--before", help="startup: also time `mlopsc serve` at this git revision")
    args = parser.parse_args()
    only = set(args.only.split(","))
    loads = [" ".join(f"{x:.1f}" for x in os.getloadavg())]
    with tempfile.TemporaryDirectory(prefix="serve-speed-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        uri = prepare(work)
        if args.before:
            from stage_speed import export

            (work / "before").mkdir(exist_ok=True)
            BEFORE[f"mlopsc {args.before}"] = export(args.before, work / "before")
        results: dict = {}
        if "throughput" in only:
            results["throughput"] = throughput(uri, work, args.runs, args.duration, args.warmup, args.connections)
        if "logging" in only:
            results["logging"] = throughput(uri, work, args.logging_runs, args.duration, args.warmup,
                                            args.connections, names=SERVERS[1:], sizes=(1,))
        if "startup" in only:
            results["startup"] = startup(uri, work, args.runs)
        if "load" in only:
            results["load"] = load(uri, work, args.requests, 3, args.load_seconds)
    loads.append(" ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    report(results, args, (loads[0], loads[1]))


if __name__ == "__main__":
    main()
