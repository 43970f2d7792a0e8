"""Ports are typed: each input field expects one PortType, and a reference to an output of another
type is an error naming both ends.

    evaluate e { model = penguins ... }
    # E301: evaluate e: 'model' expects a Model, got Dataset 'penguins' (defined at spec.mlops:9:3)
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import index, inputs_of, where, written

# What each Ref-typed field of each kind reads. `after` orders steps and accepts any output.
EXPECTS: dict[str, dict[str, str]] = {
    "check": {"data": "Dataset"},
    "split": {"data": "Dataset"},
    "train": {"data": "Dataset"},
    "evaluate": {"model": "Model", "data": "Dataset"},
    "gate": {"metrics": "Metrics", "predictions": "Dataset"},
    "deploy": {"model": "Model"},
    "score": {"data": "Dataset", "model": "Model"},
    "monitor": {"model": "Model", "reference": "Dataset", "current": "Dataset"},
}


def check_port_types(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics = []
    for step in pipeline.steps:
        for fieldname, ref in inputs_of(step).items():
            expected = EXPECTS.get(step.KIND, {}).get(fieldname)
            got = idx.port_type(ref)
            if expected is None or got is None or got == expected:
                continue
            producer = idx.steps[ref.step]
            defined = f" (defined at {producer.span})" if producer.span else ""
            article = {"Model": "a ", "Dataset": "a ", "Report": "a ", "Metrics": ""}[expected]
            hint = _hint(idx, expected)
            diagnostics.append(Diagnostic(
                "E301", f"{where(step)}'{fieldname}' expects {article}{expected}, got {got} '{written(idx, ref)}'{defined}",
                ref.span or step.span, hint))
    return diagnostics


def _hint(idx, expected: str) -> str | None:
    """Name a few outputs of the expected type, so the fix is one edit away."""
    names = [f"{name}" if port == step.DEFAULT_PORT else f"{name}.{port}"
             for name, step in idx.steps.items() for port, kind in step.OUTPUTS.items() if kind == expected]
    if not names:
        return None
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f"{expected} outputs in this spec: {shown}"
