"""What a person sees during and after a local run.

During: a live table (rich) of every step's state, elapsed time and cache hits when stderr is a
terminal; one plain line per event when it is not (CI logs, pipes). After: a summary of the run
record — checks, metrics, the gate decision and its reasons, the registered model, each step's
notes and warnings, the path of the HTML report, and the `mlflow ui` command for this store.
Progress goes to stderr, the summary to stdout.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Self, TextIO

STATE_STYLE = {"pending": "dim", "ready": "dim", "running": "yellow", "ok": "green", "cached": "cyan",
               "failed": "bold red", "skipped": "dim", "not_run": "dim"}
LABEL = {"ok": "done", "not_run": "not run"}


def format_error(step: str, error: dict[str, Any]) -> str:
    span = error.get("span")
    where = f" ({span['file']}:{span['line']}:{span['col']})" if span else ""
    text = f"step {error.get('step') or step}{where}: {error['message']}"
    if error.get("expected"):
        text += f"\n  expected: {error['expected']}"
    if error.get("found"):
        text += f"\n  found:    {error['found']}"
    return text


class PlainProgress:
    """One line per event, for logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def __call__(self, event: str, step: str, info: dict[str, Any]) -> None:
        if event == "plan":
            line = f"run {info['run_id']}: {len(info['steps'])} steps"
        elif event == "mlflow":
            line = f"  starting the MLflow run ({info['tracking_uri']})"
        elif event == "cached":
            line = f"  cached   {step}  ({info['reason']})"
        elif event == "start":
            again = f", attempt {info['attempt']}" if info["attempt"] > 1 else ""
            line = f"  running  {step}  ({info['reason']}{again})"
        elif event == "done":
            line = f"  done     {step}  {info['duration']:.1f} s"
        elif event == "retry":
            line = f"  retry    {step}  attempt {info['attempt']} failed: {info['error']['message']}"
        elif event == "failed":
            line = f"  FAILED   {step}"
        else:
            line = f"  {event:<8} {step}  ({info.get('reason', '')})"
        print(f"[{time.monotonic() - self.start:6.1f}s] {line}", file=self.stream, flush=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LiveProgress:
    """A rich table redrawn in place while the run goes."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.live = Live(console=self.console, refresh_per_second=4, get_renderable=self._table,
                         transient=False)

    def __call__(self, event: str, step: str, info: dict[str, Any]) -> None:
        if event == "plan":
            self.rows = {name: {"state": "pending", "note": "", "start": None, "elapsed": None}
                         for name in info["steps"]}
            self.title = f"run {info['run_id']}"
            return
        if event == "mlflow":
            self.title = f"run {self.title.split()[1]}: starting the MLflow run"
            return
        row = self.rows[step]
        if event == "start":
            self.title = self.title.split(":")[0]
            row.update(state="running", start=time.monotonic(), note=info["reason"])
            if info["attempt"] > 1:
                row["note"] = f"attempt {info['attempt']}"
        elif event == "retry":
            row.update(state="ready", note=f"retrying: {info['error']['message'][:60]}")
        elif event == "done":
            row.update(state="ok", elapsed=info["duration"], note="")
        else:
            row.update(state={"cached": "cached", "failed": "failed"}.get(event, event),
                       note=info.get("reason", ""))
            if row["start"] is not None:
                row["elapsed"] = time.monotonic() - row["start"]

    def _table(self):
        from rich.table import Table

        table = Table(title=getattr(self, "title", None), title_justify="left", box=None, pad_edge=False)
        for column in ("step", "state", "time", ""):
            table.add_column(column)
        for name, row in self.rows.items():
            elapsed = row["elapsed"]
            if row["state"] == "running" and row["start"] is not None:
                elapsed = time.monotonic() - row["start"]
            state = row["state"]
            table.add_row(name, f"[{STATE_STYLE.get(state, '')}]{LABEL.get(state, state)}",
                          f"{elapsed:.1f} s" if elapsed is not None else "", row["note"])
        return table

    def __enter__(self) -> Self:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(*exc)


def progress_for(stream: TextIO | None = None):
    stream = stream or sys.stderr
    return LiveProgress() if stream.isatty() else PlainProgress(stream)


# ---------------------------------------------------------------- the summary


def summary_lines(record: dict[str, Any]) -> list[str]:
    steps = record["steps"]
    ran = [n for n, s in steps.items() if s["status"] == "ok"]
    cached = [n for n, s in steps.items() if s["status"] == "cached"]
    lines = [(f"{record['pipeline']}: run {record['run_id']} {record['status']} in "
             f"{record['duration']:.1f} s ({len(ran)} ran, {len(cached)} from cache)")]
    for name, step in steps.items():
        result, kind = step.get("result") or {}, step["kind"]
        if kind == "check" and result:
            failures = result.get("failures") or []
            lines.append(f"  check    {name}: " + ("passed" if not failures else
                                                   f"{len(failures)} failed expectation(s)"))
            lines += [f"             - {f.get('expectation')}: {f.get('failures')} failing" for f in failures]
        elif kind == "evaluate" and result.get("metrics"):
            values = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in sorted(result["metrics"].items()))
            lines.append(f"  metrics  {name}: {values}")
        elif kind == "gate" and result.get("decision"):
            decision = result["decision"]
            lines.append(f"  gate     {name}: {decision.get('verdict')}")
            lines += [f"             - {reason}" for reason in gate_reasons(result)]
        elif kind == "deploy" and result.get("registry"):
            held = (f"alias {result['alias']}" if not result.get("alias_now") else
                    f"(cached; alias {result['alias']} is on {result['alias_now']} now)")
            lines.append(f"  model    {result['registry']} version {result['version']} {held}")
        elif kind == "monitor" and result:
            lines += monitor_lines(name, result)
        lines += note_lines(name, result)
    for name, step in steps.items():
        if step["status"] == "failed" and step.get("error"):
            lines.append(format_error(name, step["error"]))
            log = f"{record['state_dir']}/logs/{record['run_id']}/{name}.log"
            if step["error"].get("type") in ("error", "internal"):
                lines.append(f"  log      {log}")
            for port, out in ((step.get("result") or {}).get("outputs") or {}).items():
                lines.append(f"  {port:<8} {out['uri']}")
    if record.get("error"):
        error = record["error"]
        lines.append(f"run {record['run_id']}: {error['message']}")
        lines += [f"  {label:<9} {error[key]}" for label, key in (("expected:", "expected"), ("found:", "found"))
                  if error.get(key)]
    if record.get("retrain"):
        retrain = record["retrain"]
        lines.append(f"  retrain  started run {retrain['run_id']} of the training pipeline: "
                     f"{retrain['status']}, {len(retrain['ran'])} step(s) ran")
        if retrain.get("outcome"):
            lines.append(f"  retrain  {retrain['outcome']}")
    if record.get("report"):
        lines.append(f"  report   {record['report']}")
    elif record.get("report_error"):
        lines.append(f"  report   not written: {record['report_error']}")
    if record.get("tracking_uri") and not record.get("error"):
        lines.append(f"  see      mlflow ui --backend-store-uri {record['tracking_uri']}")
    return lines


def note_lines(name: str, result: dict[str, Any]) -> list[str]:
    """What a step did that the user should know of though it succeeded: its notes (what it did
    to the data as the spec asked: rows dropped, values coerced) and warnings (a column that is
    mostly numbers, a fit that did not converge)."""
    return ([f"  note     {name}: {note}" for note in result.get("notes") or []]
            + [f"  warning  {name}: {warning}" for warning in result.get("warnings") or []])


def gate_reasons(result: dict[str, Any]) -> list[str]:
    """Every rule's reason, from the gate's decision Report (a local JSON file)."""
    import json

    uri = result.get("outputs", {}).get("decision", {}).get("uri", "")
    try:
        with open(uri, encoding="utf-8") as fh:
            rules = json.load(fh)["rules"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [("ok    " if rule.get("passed") else "FAILED ") + rule["reason"] for rule in rules]


def monitor_lines(name: str, result: dict[str, Any]) -> list[str]:
    fired = [f"retrain: {r}" for r in result.get("reasons") or []]
    fired += [f"alert: {r}" for r in result.get("alerts") or []]
    lines = [f"  monitor  {name}: " + ("no drift rule fired" if not fired else f"{len(fired)} drift rule(s) fired")]
    return lines + [f"             - {line}" for line in fired]
