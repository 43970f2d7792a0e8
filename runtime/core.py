"""The step contract every backend calls: `execute(step, inputs, outputs, context)`.

One module per lifecycle stage implements `run(step, inputs, outputs, ctx) -> dict`; this module
binds params, dispatches by step kind and turns any failure into a StepError that names the step
and its spec line. It never imports a stage module before it is needed.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

from mlopsc.compiler import ir

# step kind -> runtime module that runs it
STAGES: dict[str, str] = {
    "source": "sources",
    "check": "checks",
    "split": "split",
    "train": "train",
    "evaluate": "evaluate",
    "gate": "gate",
    "deploy": "deploy",
    "score": "deploy",
    "monitor": "monitor",
}


@dataclass
class RunContext:
    """What a step needs to know about the run it belongs to. JSON-able, so that a backend can
    hand it to a step in another process, container or machine."""

    pipeline: str                           # pipeline name; also the MLflow experiment name
    run_id: str                             # this pipeline run's id (backend-chosen, unique)
    params: dict[str, Any] = field(default_factory=dict)   # bound pipeline params
    spec_path: str = ""                     # the spec file; relative source paths resolve beside it
    spec_hash: str = ""
    tracking_uri: str | None = None         # None -> MLFLOW_TRACKING_URI or <spec dir>/.mlopsc/mlflow.db
    parent_run_id: str | None = None        # MLflow parent run of this pipeline run
    force_gate: bool = False
    forced_by: str | None = None            # who forced the gate (user name), recorded with the decision
    artifact_root: str = ""                 # where this run's artifacts live (any fsspec URL)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_any(cls, value: RunContext | dict[str, Any]) -> RunContext:
        return value if isinstance(value, RunContext) else cls(**value)


class StepError(Exception):
    """A step could not do its work because of its input or config: the user's to fix.

    Printed as `step NAME (spec.mlops:12:3): message` + what was expected and what was found."""

    def __init__(self, message: str, *, step: str = "", span: ir.Span | None = None,
                 expected: str | None = None, found: str | None = None) -> None:
        super().__init__(message)
        self.message, self.step, self.span, self.expected, self.found = message, step, span, expected, found

    def __str__(self) -> str:
        where = f"step {self.step}" if self.step else ""
        if self.span is not None:
            where = f"{where or 'step'} ({self.span})"
        # No step and no span: a run-level failure (e.g. the MLflow store), not a step's.
        text = f"{where}: {self.message}" if where else self.message
        if self.expected:
            text += f"\n  expected: {self.expected}"
        if self.found:
            text += f"\n  found:    {self.found}"
        return text


class StepFailed(StepError):
    """The step worked and its verdict is to stop the pipeline: a check with on_fail = stop, or a
    gate that did not pass. `reason` is "check" or "gate"; `result` is the step's StepResult."""

    def __init__(self, message: str, *, reason: str, result: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason, self.result = reason, result or {}


def step_result(step: ir.Step, outputs: dict[str, tuple[str, str]], status: str = "ok",
                **extra: Any) -> dict[str, Any]:
    """The StepResult of a step: `outputs` maps each port to its (uri, sha256). Each output also
    names its port type, since URIs alone do not tell (KFP's artifact paths have no suffix)."""
    return {"step": step.name, "kind": step.kind, "status": status,
            "outputs": {port: {"uri": uri, "sha256": sha, "type": step.OUTPUTS[port]}
                        for port, (uri, sha) in outputs.items()}, **extra}


def execute(step: ir.Step | dict | str, inputs: dict[str, str], outputs: dict[str, str],
            context: RunContext | dict[str, Any]) -> dict[str, Any]:
    """Run one step. Returns its StepResult:

        {"step": name, "kind": kind, "status": "ok" | "warn",
         "outputs": {port: {"uri": uri, "sha256": hex, "type": port type}}, ...kind-specific keys (metrics, decision...)}

    Raises StepFailed for a verdict that stops the pipeline and StepError for anything else that
    went wrong, each naming the step and its spec line. No other exception escapes. A StepError
    leaves none of the step's outputs behind (a StepFailed keeps its report: it is the verdict)."""
    from pydantic import ValidationError

    try:
        node = step if isinstance(step, ir.Step) else ir.step_from_json(step)
    except ValidationError as exc:
        raise StepError("the step's config is not a valid mlopsc step",
                        expected="a step node as written by `mlopsc build`",
                        found=str(exc).splitlines()[0]) from None
    ctx = RunContext.from_any(context)
    try:
        from .params import bind

        node = bind(node, ctx.params)
        module = importlib.import_module(f"{__package__}.{STAGES[node.kind]}")
        return module.run(node, inputs, outputs, ctx)
    except StepFailed as exc:
        exc.step = exc.step or node.name
        exc.span = exc.span or node.span
        raise
    except StepError as exc:
        exc.step = exc.step or node.name
        exc.span = exc.span or node.span
        _discard(outputs)
        raise
    except FileNotFoundError as exc:
        _discard(outputs)
        missing = [f"{k}={v}" for k, v in inputs.items() if not _exists(v)]
        raise StepError("an input artifact is missing", step=node.name, span=node.span,
                        expected="the outputs of the upstream steps (did they run in this run?)",
                        found=", ".join(missing) or str(exc)) from None
    except Exception as exc:
        # The one place library errors become user errors: the message, never a traceback.
        _discard(outputs)
        raise StepError(f"{type(exc).__name__}: {exc}", step=node.name, span=node.span) from exc
    finally:
        release_memory()


def release_memory() -> None:
    """Give back to the system the memory a finished step freed. Workers that run many steps
    (the local runner's, Prefect's threads) would otherwise keep the largest frame any step held:
    the allocators keep freed memory for reuse (Arrow's, until asked; glibc's, for blocks below
    its mmap threshold, which grows up to 32 MiB as large arrays are freed). Both calls cost
    milliseconds."""
    import ctypes
    import sys

    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass     # not glibc (musl): nothing to trim


def _exists(uri: str) -> bool:
    from .artifacts import exists

    try:
        return exists(uri)
    except Exception:  # noqa: BLE001 - an unreachable store is as good as missing here
        return False


def _discard(outputs: dict[str, str]) -> None:
    """Remove what a failed step wrote, so a rerun or a later step never reads it as valid."""
    import contextlib

    from .artifacts import remove

    for uri in outputs.values():
        # Cleanup must not hide the step's own error (e.g. an unreachable bucket).
        with contextlib.suppress(Exception):
            remove(uri)


def step_error(step: ir.Step, message: str, field: str | None = None, *, span: ir.Span | None = None,
               **kw: Any) -> StepError:
    """A StepError at `span`, else at the spec position of the step's option `field`, else at the step."""
    span = span or (step.spans.get(field) if field else None) or step.span
    return StepError(message, step=step.name, span=span, **kw)


def os_user() -> str:
    """Who forced a gate, when the backend does not say: the login name of this process."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):   # no passwd entry, e.g. an arbitrary uid in a container
        return "unknown"


def require_columns(step: ir.Step, available: list[str], wanted: tuple[str, ...] | list[str], *,
                    role: str = "column", span: ir.Span | None = None) -> None:
    """StepError for the first of `wanted` not in `available`, with a did-you-mean."""
    import difflib

    for name in wanted:
        if name not in available:
            close = difflib.get_close_matches(name, [str(c) for c in available], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise StepError(f"{role} {name!r} is not in the data{hint}", step=step.name,
                            span=span or step.span, expected=f"one of: {', '.join(map(str, available))}",
                            found=repr(name))
