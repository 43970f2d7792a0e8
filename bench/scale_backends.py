"""The scale bench's pipeline on each backend at one size: `mlopsc run` (local), the generated
Prefect flow against a Prefect server, and the compiled KFP YAML under kfp.local, side by side.

    .venv/bin/python bench/scale_backends.py [--rows 1000000] [--runs 1] [--data DIR]
        [--targets local,prefect,kubeflow] [--json results.json]

The pipeline of bench/scale.mlops (its monitor aside) on bench/gen_data.py's table, each backend
in a fresh folder with its own MLflow store, the order rotating every round. Per run: wall time,
CPU time and peak PSS of the process tree that ran the steps (bench/scale_bench.py's sampler):
- local: `mlopsc run`, its zygote and workers;
- Prefect: the flow called in a fresh interpreter, as a process worker's flow run is (its tasks
  run in threads of that process), against a `prefect server` on loopback started beforehand and
  not counted (it is the orchestrator, running before and after);
- kfp.local: the pipeline YAML a cluster gets, loaded with `kfp.components` and run by
  `SubprocessRunner(use_venv=False)`: one process per task, one after the other.
Per step, each orchestrator's own record: the local run record; Prefect's task runs (REST API);
for kfp.local, whose tasks run one at a time, the time from the previous task's
`executor_output.json` to the task's own (kfp.local's work between tasks included).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_bench

REPO, PYTHON, MLOPSC, MIB = scale_bench.REPO, scale_bench.PYTHON, scale_bench.MLOPSC, scale_bench.MIB
STEPS = ["events", "events_quality", "by_time", "label_model", "label_eval", "release", "label_service", "score_all"]
PREFECT_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import flows
state = flows.scale_pipeline(return_state=True, storage=sys.argv[2])
with open(sys.argv[3], "w") as fh:
    json.dump({"type": state.type.value, "flow_run_id": str(state.state_details.flow_run_id)}, fh)
"""
KFP_DRIVER = """
import sys, warnings
warnings.simplefilter("ignore")
import kfp.local
from kfp import components
kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2])
components.load_component_from_file(sys.argv[1])(mlopsc_spec_dir=sys.argv[3])
"""


def build(root: Path, target: str) -> Path:
    out = root / f"build-{target}"
    subprocess.run([MLOPSC, "build", "scale.mlops", "--target", target, "--output", str(out)], cwd=root,
                   check=True, capture_output=True)
    return out


def store_env(root: Path, **extra: str) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", **extra}


def run_local(root: Path, _server: str | None) -> dict:
    done = scale_bench.measure([MLOPSC, "run", "scale.mlops"], root)
    record = json.loads(next((root / ".mlopsc" / "runs").glob("*.json")).read_text())
    steps = {name: s["ended_at"] - s["started_at"] for name, s in record["steps"].items() if s["started_at"]}
    return {**done, "steps": steps}


def run_prefect(root: Path, server: str | None) -> dict:
    out = build(root, "prefect")
    result = root / "flow.json"
    done = scale_bench.measure([PYTHON, "-c", PREFECT_DRIVER, str(out), str(root / "artifacts"), str(result)], root,
                               store_env(root, PREFECT_API_URL=server))
    flow = json.loads(result.read_text())
    if flow["type"] != "COMPLETED":
        raise SystemExit(f"the Prefect flow ended {flow['type']}; see {root / 'bench.log'}")
    runs = api(server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow["flow_run_id"]]}}})
    steps = {}
    for run in runs:
        name, start, end = run["name"], run.get("start_time"), run.get("end_time")
        if start and end:
            steps[name] = iso_seconds(end) - iso_seconds(start)
    return {**done, "steps": steps}


def run_kubeflow(root: Path, _server: str | None) -> dict:
    out = build(root, "kubeflow")
    pipeline_root = root / "kfp-root"
    done = scale_bench.measure([PYTHON, "-c", KFP_DRIVER, str(out / "pipeline.yaml"), str(pipeline_root), str(root)],
                               root, store_env(root))
    ends = sorted((p.stat().st_mtime, p.parent.name) for p in pipeline_root.glob("*/*/executor_output.json"))
    steps, previous = {}, done["start"]
    for end, task in ends:       # a task's folder is KIND-STEP (start-run, finish-run: the run's own)
        steps[next((s for s in STEPS if task.endswith("-" + s.replace("_", "-"))), task)] = end - previous
        previous = end
    return {**done, "steps": steps}


RUNNERS = {"local": run_local, "prefect": run_prefect, "kubeflow": run_kubeflow}


# ---------------------------------------------------------------- a Prefect server for the runs


def iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def api(url: str, path: str, body: dict) -> list:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def start_prefect(home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      PREFECT_PROFILES_PATH=str(home / "profiles.toml"))
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.log", "w") as log:
        server = subprocess.Popen([str(Path(PYTHON).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return server, url
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    stop(server)
    raise SystemExit(f"the Prefect server did not start; see {home / 'server.log'}")


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ---------------------------------------------------------------- report


def report(results: dict[str, list[dict]], rows: int, runs: int) -> str:
    med = statistics.median
    load = os.getloadavg()
    local = results.get("local")
    out = [(f"{rows:,} rows, median of {runs} round(s); load average at the end {load[0]:.1f} / {load[1]:.1f} "
            f"/ {load[2]:.1f} on {os.cpu_count()} cores"), "",
           "| backend | wall s | vs local | CPU s | vs local | peak PSS MiB | vs local | peak RSS sum MiB |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for target, rounds in results.items():
        cells = []
        for key, scale in (("wall", 1), ("cpu", 1), ("pss", MIB)):
            value = med(r[key] for r in rounds) / scale
            base = med(r[key] for r in local) / scale if local else None
            cells += [f"{value:.1f}" if scale == 1 else f"{value:.0f}", f"{value / base:.2f}" if base else ""]
        cells.append(f"{med(r['rss'] for r in rounds) / MIB:.0f}")
        out.append(f"| {target} | " + " | ".join(cells) + " |")
    out += ["", "| step | " + " | ".join(f"{t} s" for t in results) + " |",
            "| --- | " + " | ".join("---:" for _ in results) + " |"]
    for step in ["start-run", *STEPS, "finish-run"]:
        cells = []
        for rounds in results.values():
            found = [r["steps"][step] for r in rounds if step in r["steps"]]
            cells.append(f"{med(found):.2f}" if found else "")
        out.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--targets", default="local,prefect,kubeflow")
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "mlopsc-scale-data"))
    parser.add_argument("--json", help="also write every measurement here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # the server is stopped on the way out
    targets = args.targets.split(",")
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    table = scale_bench.dataset(args.rows, data)
    for name in [k for k in os.environ if k.startswith(("MLFLOW_", "PREFECT_", "MLOPSC_"))]:
        del os.environ[name]
    results: dict[str, list[dict]] = {t: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="mlopsc-backends-") as tmp:
        server, url = start_prefect(Path(tmp) / "prefect") if "prefect" in targets else (None, None)
        try:
            for i in range(args.runs):
                for target in targets[i % len(targets):] + targets[:i % len(targets)]:
                    root = scale_bench.project(Path(tmp) / f"{target}-{i}", table)
                    results[target].append(RUNNERS[target](root, url))
                    shutil.rmtree(root)
                    print(f"{args.rows} rows, {target}, round {i + 1}: {results[target][-1]['wall']:.1f} s",
                          file=sys.stderr)
        finally:
            if server is not None:
                stop(server)
    if args.json:
        Path(args.json).write_text(json.dumps({t: [{k: v for k, v in r.items() if k != "samples"} for r in rs]
                                               for t, rs in results.items()}, indent=1))
    print(report(results, args.rows, args.runs))


if __name__ == "__main__":
    main()
