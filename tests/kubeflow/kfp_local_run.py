"""Run a compiled pipeline YAML under kfp.local, in its own process, and print what each task returned.

    python kfp_local_run.py PIPELINE.yaml PIPELINE_ROOT '{"arg": value}'

This executes the very YAML a cluster would get (`kfp.components.load_component_from_file`), each
task in a subprocess of the current interpreter (SubprocessRunner(use_venv=False): the venv already
has mlopsc and kfp). Environment variables reach the tasks by inheritance: the caller sets
MLFLOW_TRACKING_URI, WINE_DB_URL and the like in this process's environment.

Prints one JSON line `{"ok": bool, "error": str|null, "tasks": {task: {"parameters": ..., "artifacts": ...}}}`
last on stdout, read from the executor_output.json files kfp.local leaves under PIPELINE_ROOT.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import warnings


def collect(root: str) -> dict:
    tasks = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "*", "executor_output.json"))):
        task = os.path.basename(os.path.dirname(path))
        with open(path, encoding="utf-8") as fh:
            out = json.load(fh)
        artifacts = {name: [{"uri": a.get("uri"), "metadata": a.get("metadata", {})} for a in group.get("artifacts", [])]
                     for name, group in out.get("artifacts", {}).items()}
        tasks[task] = {"parameters": out.get("parameterValues", {}), "artifacts": artifacts}
    return tasks


def main() -> None:
    package, root, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    warnings.simplefilter("ignore")      # the custom base image name warns under SubprocessRunner
    import kfp.local
    from kfp import components

    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=root)
    pipeline = components.load_component_from_file(package)
    error = None
    try:
        pipeline(**arguments)
    except RuntimeError as exc:          # kfp.local: "Pipeline ... finished with status FAILURE"
        error = str(exc)
    print(json.dumps({"ok": error is None, "error": error, "tasks": collect(root)}))


if __name__ == "__main__":
    main()
