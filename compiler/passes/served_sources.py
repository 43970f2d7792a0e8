"""A served source reads the prediction log of a deploy step: `served` must name a deploy, and
`window` and `log` belong to served sources only (link_served_sources.py then gives the source
its deploy's registry, whose log folder it reads).

    source live { served = species_servise }     # E203: unknown deploy step ... did you mean 'species_service'?
    source live { served = species_model }       # E310: 'served' names a deploy step, got train 'species_model'
    source d { csv = "d.csv"  window = "7d" }     # E310: 'window' reads a served log
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import Index, index, source_of, span_of, unknown, where

# The columns the log adds to the model's features (runtime/serving/prediction_log.py), and the
# feedback label joined to it; `proba_<class>` columns exist for classifiers with predict_proba.
LOG_COLUMNS = ("request_id", "timestamp", "model_name", "model_version", "prediction", "latency_ms", "label")
PROBA_PREFIX = "proba_"


def served_source(idx: Index, ref: ir.Ref | None) -> ir.Source | None:
    """The served source whose rows `ref` holds (through splits), or None."""
    source = source_of(idx, ref)
    return source if source is not None and source.format == "served" else None


def served_train(idx: Index, source: ir.Source) -> ir.Train | None:
    """The train step whose model the source's deploy serves."""
    deploy = idx.steps.get(source.served or "")
    train = idx.steps.get(deploy.model.step) if isinstance(deploy, ir.Deploy) else None
    return train if isinstance(train, ir.Train) else None


def check_served_sources(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics: list[Diagnostic] = []
    deploys = [name for name, step in idx.steps.items() if isinstance(step, ir.Deploy)]
    for step in pipeline.steps:
        if not isinstance(step, ir.Source):
            continue
        if step.format != "served":
            for key in ("window", "log"):
                if getattr(step, key) is not None:
                    diagnostics.append(Diagnostic(
                        "E310", f"{where(step)}'{key}' reads a served prediction log; this source reads {step.format}",
                        span_of(step, key), "remove it, or read a deploy's log: served = <deploy step>"))
            continue
        target = idx.steps.get(step.served or "")
        if target is None:
            diagnostics.append(unknown("E203", "deploy step", step.served or "", deploys, span_of(step, "served"),
                                       context=f"{where(step)}'served' names an "))
        elif not isinstance(target, ir.Deploy):
            defined = f" (defined at {target.span})" if target.span else ""
            hint = f"deploy steps in this spec: {', '.join(deploys)}" if deploys else \
                "only a deploy step's model is served: add `deploy NAME { model = ... registry = \"...\" }`"
            diagnostics.append(Diagnostic(
                "E310", f"{where(step)}'served' names a deploy step, got {target.KIND} '{target.name}'{defined}",
                span_of(step, "served"), hint))
    return diagnostics
