"""Run records with real artifacts for report tests that need no pipeline run: a pipeline run
whose gate failed (a threshold and a fairness rule; the champion it compared with recorded) and a
monitor run. `HOSTILE` names hold HTML and JavaScript, as a CSV's header and cells, a class label
or a param can; `PLAIN` names are what the documentation's screenshots show.

The artifacts are what the steps write (check report, Metrics, predictions, gate decision,
monitor report, Parquet datasets); the records have the local runner's shape.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Names:
    pipeline: str
    column: str          # a numeric column
    value: str           # a value of the sensitive column "group", and a param's value
    label: str           # a class label (the other one is "no")

    @property
    def classes(self) -> list[str]:
        return sorted([self.label, "no"])


HOSTILE = Names(pipeline="hostile", column='<script>alert("column")</script>', value='"><img src=x onerror=alert(1)>',
                label="<b>yes</b>")
PLAIN = Names(pipeline="species", column="flipper_length_mm", value="female", label="yes")
COLUMN, VALUE, CLASS = HOSTILE.column, HOSTILE.value, HOSTILE.label


def _write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
    return str(path)


def _artifact(uri: str, sha: str, kind: str) -> dict[str, str]:
    return {"uri": uri, "sha256": sha, "type": kind}


def synthetic_runs(folder: Path, names: Names = HOSTILE) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a pipeline run whose gate failed, a monitor run), with their artifacts under `folder`."""
    import numpy as np
    import pandas as pd
    from mlopsc.runtime.evaluate import importance_metric

    column, value, classes = names.column, names.value, names.classes

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    rows = 120
    data = pd.DataFrame({column: rng.normal(10, 2, rows), "group": rng.choice([value, "b"], rows),
                         "target": rng.choice(classes, rows)})
    reference, current = data.iloc[:80], data.iloc[80:].assign(**{column: lambda d: d[column] + 1.5})
    # The current rows as a served model's log has them: one request per row, over an hour.
    current = current.assign(request_id=[f"r{i}" for i in range(len(current))],
                             timestamp=pd.date_range("2026-12-01 10:00", periods=len(current), freq="90s", tz="UTC"),
                             latency_ms=rng.gamma(4, 6, len(current)))
    reference.to_parquet(folder / "reference.parquet", index=False)
    current.to_parquet(folder / "current.parquet", index=False)
    score = rng.random(rows)
    predictions = data.assign(y_true=data["target"], y_pred=np.where(score > 0.5, classes[1], classes[0]),
                              **{f"proba_{classes[1]}": score, f"proba_{classes[0]}": 1 - score})
    predictions.to_parquet(folder / "predictions.parquet", index=False)

    check = _write_json(folder / "check.json", {
        "step": "quality", "passed": False, "on_fail": "warn", "rows": rows, "failed": 1, "expectations": [
            {"expectation": f"column {column} exists", "passed": True, "column": column, "line": 4},
            {"expectation": "column group in ['a', 'b']", "passed": False, "column": "group", "line": 5,
             "failures": 61, "examples": [value]}]})
    metrics = _write_json(folder / "metrics.json", {
        "metrics": {"accuracy": 0.52, "f1": 0.5}, "task": "classification", "rows": rows, "target": "target",
        "classes": classes, "model_sha256": "m" * 64, "data_sha256": "d" * 64,
        "importance": {"metric": "accuracy", "repeats": 3, "seed": 0, "features": {
            column: {"mean": 0.08, "std": 0.01}, "group": {"mean": 0.01, "std": 0.005}}}})
    decision = _write_json(folder / "decision.json", {
        "gate": "release", "passed": False, "forced": False, "candidate_metrics": {},
        "champion": {"registry": "species", "version": "3", "metrics": {
            "accuracy": 0.61, "f1": 0.57, importance_metric(column): 0.05, importance_metric("group"): 0.002}},
        "rules": [
            {"kind": "threshold", "rule": "accuracy >= 0.9", "metric": "accuracy", "op": ">=", "observed": 0.52,
             "threshold": 0.9, "passed": False, "reason": "accuracy is 0.5200, does not meet >= 0.9",
             "where": f"{names.pipeline}.mlops:9:5"},
            {"kind": "champion", "rule": "f1 >= champion.f1 - 0.01", "metric": "f1", "op": ">=", "observed": 0.5,
             "threshold": 0.56, "champion": {"version": "3", "value": 0.57}, "passed": False,
             "reason": "f1 is 0.5000, does not meet >= 0.5600 (champion version 3: 0.5700 -0.01)",
             "where": f"{names.pipeline}.mlops:10:5"},
            {"kind": "fairness", "rule": "demographic_parity(group) <= 0.1", "measure": "demographic_parity",
             "column": "group", "op": "<=", "observed": 0.21, "threshold": 0.1, "passed": False,
             "reason": "demographic_parity difference across group is 0.2100, does not meet <= 0.1",
             "where": f"{names.pipeline}.mlops:11:5",
             "groups": {value: {classes[0]: 0.6, classes[1]: 0.4}, "b": {classes[0]: 0.39, classes[1]: 0.61}}}]})
    monitor = _write_json(folder / "monitor.json", {
        "monitor": "watch", "pipeline": names.pipeline, "model": f"models:/{names.pipeline}@champion",
        "reference": {"uri": str(folder / "reference.parquet"), "rows": 80, "sha256": "r" * 64},
        "current": {"uri": str(folder / "current.parquet"), "rows": 40, "sha256": "c" * 64},
        "features": {
            column: {"type": "numeric", "psi": 0.9, "ks": {"statistic": 0.4, "pvalue": 0.0001},
                     "null_fraction": {"reference": 0.0, "current": 0.0}},
            "group": {"type": "categorical", "psi": 0.01, "chi2": {"statistic": 0.2, "pvalue": 0.6},
                      "shares": {value: {"reference": 0.5, "current": 0.55}, "b": {"reference": 0.5, "current": 0.45}},
                      "null_fraction": {"reference": 0.0, "current": 0.0}},
            "prediction": {"type": "categorical", "psi": 0.02, "chi2": {"statistic": 0.3, "pvalue": 0.5},
                           "shares": {classes[0]: {"reference": 0.5, "current": 0.4},
                                      classes[1]: {"reference": 0.5, "current": 0.6}}}},
        "rules": [{"rule": f"psi({column}) > 0.2", "kind": "drift", "column": column, "observed": 0.9, "op": ">",
                   "threshold": 0.2, "fired": True, "action": "alert", "reason": f"psi({column}) is 0.9, > 0.2"},
                  {"rule": "latency p95 > 50ms", "kind": "latency", "observed": 46.0, "evaluated": True, "rows": 40,
                   "op": ">", "threshold": 50.0, "fired": False, "action": "alert",
                   "reason": "latency p95 is 46ms, not > 50ms (over 40 requests)"}],
        "retrain": False, "alert": True})

    common = {"pipeline": names.pipeline, "spec": str(folder / f"{names.pipeline}.mlops"), "spec_hash": "s" * 64,
              "params": {"note": value}, "started": 1_700_000_000.0, "duration": 3.2,
              "tracking_uri": None, "mlflow_run_id": None, "error": None, "deploys": {}}
    source = {"kind": "source", "status": "cached", "duration": 0.0, "line": 2, "result": {
        "outputs": {"data": _artifact(str(folder / "reference.parquet"), "r" * 64, "Dataset")},
        "columns": [column, "group", "target"]}}
    gate_result = {"outputs": {"decision": _artifact(decision, "g" * 64, "Report")}}
    pipeline = {**common, "run_id": f"{names.pipeline}-gate", "status": "failed", "order": [
        "src", "quality", "model", "scores", "release", "service"], "steps": {
        "src": source,
        "quality": {"kind": "check", "status": "ok", "duration": 0.4, "line": 3, "result": {
            "outputs": {"report": _artifact(check, "q" * 64, "Report")},
            "warnings": [f"column {column} is mostly numbers"]}},
        "model": {"kind": "train", "status": "cached", "duration": 0.0, "line": 6, "result": {}},
        "scores": {"kind": "evaluate", "status": "ok", "duration": 0.8, "line": 7, "result": {"outputs": {
            "metrics": _artifact(metrics, "e" * 64, "Metrics"),
            "predictions": _artifact(str(folder / "predictions.parquet"), "p" * 64, "Dataset")}}},
        "release": {"kind": "gate", "status": "failed", "duration": 0.2, "line": 8, "result": gate_result,
                    "error": {"type": "failed", "message": f"the gate did not pass ({value})"}},
        "service": {"kind": "deploy", "status": "skipped", "reason": "an upstream step did not complete",
                    "duration": 0.0, "line": 12, "result": None}},
        "graph": {"src": [], "quality": [["data", "src", "data"]], "model": [["data", "src", "data"]],
                  "scores": [["model", "model", "model"], ["data", "src", "data"]],
                  "release": [["metrics", "scores", "metrics"], ["predictions", "scores", "predictions"]],
                  "service": [["model", "model", "model"], ["after", "release", "decision"]]}}
    monitor_run = {**common, "run_id": f"{names.pipeline}-monitor", "status": "ok", "order": ["src", "live", "watch"],
                   "steps": {"src": source,
                             "live": {"kind": "source", "status": "ok", "duration": 0.3, "line": 3, "result": {
                                 "outputs": {"data": _artifact(str(folder / "current.parquet"), "c" * 64, "Dataset")},
                                 "columns": [column, "group", "target", "request_id", "timestamp", "latency_ms"]}},
                             "watch": {"kind": "monitor", "status": "ok", "duration": 0.9, "line": 14, "result": {
                                 "outputs": {"report": _artifact(monitor, "w" * 64, "Report")}}}},
                   "graph": {"src": [], "live": [], "watch": [["reference", "src", "data"], ["current", "live", "data"]]}}
    return pipeline, monitor_run
