"""What a report shows, read from a run record and the artifacts its steps wrote: a plain model
(dataclasses of strings, numbers and `FigureSpec`s) that the template lays out.

The record is the local runner's (`runs/<run_id>.json`: per step its kind, status, duration and
StepResult; `graph`: step -> [[field, producer, port]]); the Kubeflow and Prefect backends build
the same shape from their step results (`record_from_results`). Artifacts are read as JSON (check
reports, Metrics, gate decisions, monitor reports); data files are only named here, for the
drawing functions. Standard library only: a cached re-run lays out its report without pandas.

The champion an evaluation is compared with: the one the gate compared with (recorded in its
decision), else the version the deploy of this run replaced, else the version holding the
deploy's alias now when this run's deploy did not run. The last two are looked up through
`lookup(registry, alias, version)`, which the renderer gives (a registry read, cached).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlopsc.runtime.evaluate import importance_metric

from .figures import FigureSpec
from .graph import edges_of

Lookup = Callable[[str, str, str | None], dict[str, Any] | None]


@dataclass
class StepRow:
    name: str
    kind: str
    status: str
    reason: str = ""
    duration: float | None = None
    attempts: int = 0
    line: int | None = None
    message: str = ""                # the error of a failed step
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Header:
    pipeline: str
    run_id: str
    kind: str                        # "pipeline" or "monitor"
    status: str
    backend: str
    started: str
    duration: float | None
    spec_path: str
    spec_hash: str
    git: dict[str, Any] | None
    params: list[tuple[str, Any]]
    mlflow_run_id: str | None
    tracking_uri: str | None
    error: dict[str, Any] | None


@dataclass
class Evaluation:
    step: str
    task: str
    rows: int | None
    metrics: list[dict[str, Any]]    # name, value, champion, difference
    champion: dict[str, Any] | None  # registry, version, how it was found
    champion_note: str
    figures: list[FigureSpec]
    importance: dict[str, Any] | None = None     # metric, repeats, seed, rows, figure


@dataclass
class Report:
    header: Header
    steps: list[StepRow]
    graph: FigureSpec
    checks: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    fairness: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # artifacts that could not be read

    @property
    def figures(self) -> list[FigureSpec]:
        found = [self.graph]
        for evaluation in self.evaluations:
            found += evaluation.figures + ([evaluation.importance["figure"]] if evaluation.importance else [])
        found += [f["figure"] for f in self.fairness]
        for monitor in self.monitors:
            found += [c["figure"] for c in monitor["columns"]]
            found += [monitor[k] for k in ("prediction", "latency") if monitor.get(k)]
        return [f for f in found if f is not None]


def read_json(uri: str) -> Any:
    if "://" not in uri or uri.startswith("file://"):
        with open(uri.removeprefix("file://"), encoding="utf-8") as fh:
            return json.load(fh)
    from mlopsc.runtime import artifacts

    return artifacts.read_json(uri)


class Collector:
    def __init__(self, record: dict[str, Any], lookup: Lookup | None, use_dot: bool) -> None:
        self.record, self.lookup, self.use_dot = record, lookup, use_dot
        self.steps: dict[str, dict[str, Any]] = record.get("steps") or {}
        self.graph: dict[str, list[list[str]]] = record.get("graph") or {}
        self.problems: list[str] = []
        # The spec's order, by each step's line: the runner's order of independent steps may vary.
        self.order = sorted(self.steps, key=lambda n: (self.steps[n].get("line") is None,
                                                       self.steps[n].get("line") or 0, n))

    # ------------------------------------------------------------ helpers
    def result(self, name: str) -> dict[str, Any]:
        return (self.steps.get(name) or {}).get("result") or {}

    def output(self, name: str, port: str) -> dict[str, Any]:
        return (self.result(name).get("outputs") or {}).get(port) or {}

    def document(self, name: str, port: str, what: str) -> dict[str, Any] | None:
        uri = self.output(name, port).get("uri")
        if not uri:
            return None
        try:
            return read_json(uri)
        except (OSError, ValueError) as exc:
            self.problems.append(f"the {what} of step {name} could not be read ({uri}): {exc}")
            return None

    def producer(self, step: str, field_name: str) -> tuple[str, str] | None:
        for field_, producer, port in self.graph.get(step, []):
            if field_ == field_name:
                return producer, port
        return None

    def of_kind(self, kind: str) -> list[str]:
        return [n for n in self.order if self.steps[n].get("kind") == kind]

    # ------------------------------------------------------------ the report
    def collect(self) -> Report:
        report = Report(header=self.header(), steps=self.step_rows(), graph=self.graph_figure())
        report.checks = [c for c in (self.check(n) for n in self.of_kind("check")) if c]
        report.gates = [g for g in (self.gate(n) for n in self.of_kind("gate")) if g]
        report.evaluations = [e for e in (self.evaluation(n, report.gates) for n in self.of_kind("evaluate")) if e]
        report.fairness = [f for gate in report.gates for f in gate.pop("fairness")]
        report.monitors = [m for m in (self.monitor(n) for n in self.of_kind("monitor")) if m]
        report.problems = self.problems
        return report

    def header(self) -> Header:
        record = self.record
        from mlopsc.runtime.lineage import git_info

        spec = record.get("spec") or ""
        started = record.get("started")
        kind = "monitor" if any((s.get("kind") == "monitor" and s.get("selected", True)) for s in self.steps.values()) \
            else "pipeline"
        return Header(
            pipeline=record.get("pipeline", ""), run_id=record.get("run_id", ""), kind=kind,
            status=record.get("status", ""), backend=record.get("backend", "local"),
            started=datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if started else "",
            duration=record.get("duration"), spec_path=spec, spec_hash=record.get("spec_hash") or "",
            git=git_info(spec) if spec and os.path.exists(spec) else None,
            params=sorted((record.get("params") or {}).items()), mlflow_run_id=record.get("mlflow_run_id"),
            tracking_uri=record.get("tracking_uri"), error=record.get("error"))

    def step_rows(self) -> list[StepRow]:
        rows = []
        for name in self.order:
            step = self.steps[name]
            result, error = step.get("result") or {}, step.get("error") or {}
            rows.append(StepRow(
                name=name, kind=step.get("kind", ""), status=step.get("status", ""), reason=step.get("reason") or "",
                duration=step.get("duration"), attempts=step.get("attempts") or 0, line=step.get("line"),
                message=error.get("message", "") if step.get("status") == "failed" else "",
                notes=list(result.get("notes") or []), warnings=list(result.get("warnings") or [])))
        return rows

    def graph_figure(self) -> FigureSpec:
        nodes = [[n, self.steps[n].get("kind", ""), self.steps[n].get("status", ""), self.steps[n].get("duration")]
                 for n in self.order]
        edges = [list(e) for e in edges_of(self.graph, set(self.order))]
        return FigureSpec("graph", "steps", {"nodes": nodes, "edges": edges},
                          {"nodes": nodes, "edges": edges, "dot": self.use_dot})

    # ------------------------------------------------------------ checks
    def check(self, name: str) -> dict[str, Any] | None:
        report = self.document(name, "report", "check report")
        if report is None:
            return None
        expectations = report.get("expectations") or []
        return {"step": name, "passed": report.get("passed"), "on_fail": report.get("on_fail"),
                "rows": report.get("rows"), "failed": sum(1 for e in expectations if e.get("passed") is False),
                "expectations": expectations, "status": self.steps[name].get("status")}

    # ------------------------------------------------------------ gates and fairness
    def gate(self, name: str) -> dict[str, Any] | None:
        decision = self.document(name, "decision", "decision")
        if decision is None:
            return None
        verdict = "forced" if decision.get("forced") else "passed" if decision.get("passed") else "failed"
        rules = decision.get("rules") or []
        evaluated = self.producer(name, "metrics")
        fairness = [self.fairness(name, rule) for rule in rules if rule.get("kind") == "fairness" and rule.get("groups")]
        return {"step": name, "verdict": verdict, "rules": rules, "forced_by": decision.get("forced_by"),
                "forced_at": decision.get("forced_at"), "champion": decision.get("champion"),
                "evaluate": evaluated[0] if evaluated else None, "fairness": fairness,
                "status": self.steps[name].get("status")}

    def fairness(self, gate: str, rule: dict[str, Any]) -> dict[str, Any]:
        groups = rule["groups"]
        figure = FigureSpec("fairness", f"{rule.get('measure')} by {rule.get('column')}",
                            {"groups": groups, "measure": rule.get("measure"), "column": rule.get("column")},
                            {"groups": groups, "measure": rule.get("measure"), "column": rule.get("column")})
        return {"gate": gate, **{k: rule.get(k) for k in ("rule", "measure", "column", "op", "observed", "threshold",
                                                          "passed", "reason")},
                "groups": groups, "classes": sorted({c for rates in groups.values() for c in rates}), "figure": figure}

    # ------------------------------------------------------------ evaluation and explanation
    def evaluation(self, name: str, gates: list[dict[str, Any]]) -> Evaluation | None:
        document = self.document(name, "metrics", "metrics")
        if document is None:
            return None
        task = document.get("task", "")
        champion, note = self.champion_of(name, document, gates)
        champion_metrics = (champion or {}).get("metrics") or {}
        metrics = []
        for metric, value in (document.get("metrics") or {}).items():
            theirs = champion_metrics.get(metric)
            metrics.append({"name": metric, "value": value, "champion": theirs,
                            "difference": value - theirs if isinstance(theirs, (int, float)) else None})
        predictions = self.output(name, "predictions")
        figures = self.evaluation_figures(task, document, predictions) if predictions.get("uri") else []
        return Evaluation(step=name, task=task, rows=document.get("rows"), metrics=metrics, champion=champion,
                          champion_note=note, figures=figures,
                          importance=self.importance(name, document, champion))

    def evaluation_figures(self, task: str, document: dict[str, Any], predictions: dict[str, Any]) -> list[FigureSpec]:
        uri, depends = predictions["uri"], {"predictions": predictions.get("sha256") or predictions["uri"]}
        if task == "regression":
            return [FigureSpec("actual_vs_predicted", "predicted against actual", {"predictions": uri}, depends),
                    FigureSpec("residuals", "residuals", {"predictions": uri}, depends)]
        classes = document.get("classes") or []
        figures = [FigureSpec("confusion", "confusion matrix", {"predictions": uri, "classes": classes},
                              depends | {"classes": classes})]
        if len(classes) == 2:
            positive = {"predictions": uri, "positive": classes[1]}
            by = depends | {"positive": classes[1]}
            figures += [FigureSpec("roc", f"ROC curve (positive class: {classes[1]})", positive, by),
                        FigureSpec("precision_recall", f"precision and recall (positive class: {classes[1]})",
                                   positive, by)]
        return figures

    def importance(self, name: str, document: dict[str, Any], champion: dict[str, Any] | None) -> dict[str, Any] | None:
        found = document.get("importance")
        if not found:
            return None
        features = sorted(found["features"], key=lambda f: -found["features"][f]["mean"])
        theirs = (champion or {}).get("metrics") or {}
        rows = [{"feature": f, "mean": found["features"][f]["mean"], "std": found["features"][f]["std"],
                 "champion": theirs.get(importance_metric(f))} for f in features]
        champion_values = [r["champion"] for r in rows] if any(r["champion"] is not None for r in rows) else None
        label = f"champion (version {champion['version']})" if champion else "champion"
        inputs = {"features": features, "candidate": [[r["mean"], r["std"]] for r in rows],
                  "champion": champion_values, "metric": found.get("metric", ""), "champion_label": label}
        return {"metric": found.get("metric"), "repeats": found.get("repeats"), "seed": found.get("seed"),
                "rows": rows, "has_champion": champion_values is not None,
                "figure": FigureSpec("importance", "permutation importance", inputs, inputs)}

    def champion_of(self, name: str, document: dict[str, Any], gates: list[dict[str, Any]]) -> tuple[dict | None, str]:
        for gate in gates:
            if gate["evaluate"] == name and gate.get("champion"):
                found = gate["champion"]
                return ({"registry": found.get("registry"), "version": found.get("version"),
                         "metrics": found.get("metrics") or {}, "how": f"the one gate {gate['step']} compared with"}, "")
        deploy = self.deploy_of(name)
        if deploy is None:
            return None, "no deploy step registers this model, so there is no champion to compare with"
        step = self.steps[deploy]
        result = self.result(deploy)
        registry, alias = result.get("registry"), result.get("alias")
        if step.get("status") in ("ok", "cached") and registry:
            version = result.get("previous_version")
            if not version:
                return None, f"no model held {registry}@{alias} before this run's deploy"
            how = f"it held {registry}@{alias} before this run's deploy"
            return self.look_up(registry, alias, version, how, document)
        registry, alias = self.deploy_target(deploy)
        if not registry:
            return None, "the deploy step did not run"
        return self.look_up(registry, alias, None, f"it holds {registry}@{alias}; this run deployed nothing", document)

    def look_up(self, registry: str, alias: str, version: str | None, how: str,
                document: dict[str, Any]) -> tuple[dict | None, str]:
        if self.lookup is None:
            return None, "the registry was not read for this report"
        found = self.lookup(registry, alias, version)
        if found is None:
            return None, f"no model holds {registry}@{alias}"
        if found.get("model_sha256") and found["model_sha256"] == document.get("model_sha256"):
            return None, f"{registry} version {found['version']} is this very model"
        return {"registry": registry, "version": found["version"], "metrics": found.get("metrics") or {},
                "how": how}, ""

    def deploy_of(self, evaluate: str) -> str | None:
        model = self.producer(evaluate, "model")
        for deploy in self.of_kind("deploy"):
            if model is not None and self.producer(deploy, "model") == model:
                return deploy
        return None

    def deploy_target(self, deploy: str) -> tuple[str | None, str]:
        """A deploy that did not run names its registry only in its config: the record's
        `deploys` (filled by the backend from the IR)."""
        target = (self.record.get("deploys") or {}).get(deploy) or {}
        return target.get("registry"), target.get("alias", "champion")

    # ------------------------------------------------------------ monitors
    def monitor(self, name: str) -> dict[str, Any] | None:
        report = self.document(name, "report", "monitor report")
        if report is None:
            return None
        uris = {}
        for which in ("reference", "current"):
            found = self.producer(name, which)
            artifact = self.output(*found) if found else {}
            uris[which] = {"uri": artifact.get("uri") or report[which]["uri"],
                           "sha256": artifact.get("sha256") or report[which].get("sha256")}
        rules = report.get("rules") or []
        columns = []
        for column, stats in (report.get("features") or {}).items():
            if column == "prediction":
                continue
            columns.append(self.column(column, stats, rules, uris))
        prediction = (report.get("features") or {}).get("prediction")
        return {"step": name, "reference_rows": report["reference"].get("rows"),
                "current_rows": report["current"].get("rows"), "model": report.get("model"), "rules": rules,
                "fired": [r for r in rules if r.get("fired")], "retrain": report.get("retrain"),
                "alert": report.get("alert"), "webhook": report.get("webhook"), "columns": columns,
                "prediction_stats": prediction, "prediction_rules": [r for r in rules if r.get("column") == "prediction"],
                "prediction": FigureSpec("prediction", "predictions", {"entry": prediction}, {"entry": prediction})
                if prediction else None,
                "latency": self.latency_figure(name, rules, uris["current"])}

    def column(self, column: str, stats: dict[str, Any], rules: list[dict[str, Any]],
               uris: dict[str, dict[str, str]]) -> dict[str, Any]:
        kind = stats.get("type", "")
        inputs = {"name": column, "kind": kind, "reference": uris["reference"]["uri"],
                  "current": uris["current"]["uri"], "shares": stats.get("shares"), "histogram": stats.get("histogram")}
        depends = {"name": column, "kind": kind, "reference": uris["reference"]["sha256"],
                   "current": uris["current"]["sha256"], "shares": stats.get("shares"),
                   "histogram": stats.get("histogram")}
        on_column = [r for r in rules if r.get("column") == column]
        return {"name": column, "type": kind, "stats": stats, "rules": on_column,
                "fired": any(r.get("fired") for r in on_column),
                "figure": FigureSpec("column", column, inputs, depends) if kind in ("numeric", "categorical") else None}

    def latency_figure(self, monitor: str, rules: list[dict[str, Any]], current: dict[str, str]) -> FigureSpec | None:
        found = self.producer(monitor, "current")
        columns = set(self.result(found[0]).get("columns") or []) if found else set()
        if not ({"latency_ms", "timestamp"} <= columns or any(r.get("kind") == "latency" for r in rules)):
            return None
        return FigureSpec("latency", "latency over time", {"current": current["uri"]}, {"current": current["sha256"]})


def collect(record: dict[str, Any], lookup: Lookup | None = None, use_dot: bool = True) -> Report:
    return Collector(record, lookup, use_dot).collect()
