"""What completion knows about a step of the pipeline as last parsed: the dataset it reads, its
columns, the task of its model, the metrics that fit. Each answer is None (or everything) when
it is not known, never a guess.
"""
from __future__ import annotations

import os

from .. import ir, metrics
from ..estimators import lookup
from ..passes.columns import columns_of
from ..passes.common import source_of, train_task
from ..passes.expressions import header_of
from .analysis import Symbols


def written_ref(text: str | None) -> ir.Ref | None:
    """`penguins_split.train` as written in a header -> a Ref."""
    if not text:
        return None
    step, _, port = text.partition(".")
    return ir.Ref(step=step, port=port or None)


def dataset_of(symbols: Symbols, step_name: str | None, link: str | None = None) -> ir.Ref | None:
    """The dataset a step reads: its `data` (a monitor's `reference`, a gate's evaluate's data),
    or the `on X` of its header when the step did not parse."""
    step = symbols.steps.get(step_name or "")
    if isinstance(step, ir.Gate):
        evaluate = symbols.steps.get(step.metrics.step)
        return evaluate.data if isinstance(evaluate, ir.Evaluate) else None
    if isinstance(step, ir.Monitor):
        return step.reference
    data = getattr(step, "data", None)
    return data if isinstance(data, ir.Ref) else written_ref(link)


def columns(symbols: Symbols, dataset: ir.Ref | None) -> tuple[str, ...]:
    """The columns of a dataset: declared by its source (`columns = [...]`), else the header of
    its CSV file beside the spec (as the expression checks read it); none when neither is known."""
    if dataset is None:
        return ()
    known = columns_of(symbols.index, dataset)
    if known is None:
        source = source_of(symbols.index, dataset)
        known = header_of(source, os.path.dirname(symbols.pipeline.source_file)) if source else None
    return tuple(c for c in known or () if not c.endswith("*"))


def model_task(symbols: Symbols, model: ir.Ref | None) -> str | None:
    """"classification" or "regression" for the model of a train step, when known."""
    train = symbols.steps.get(model.step) if model is not None else None
    return train_task(train, symbols.pipeline) if isinstance(train, ir.Train) else None


def step_task(symbols: Symbols, step_name: str | None) -> str | None:
    """The task of the model a step trains, evaluates, gates or monitors."""
    step = symbols.steps.get(step_name or "")
    if isinstance(step, ir.Train):
        return train_task(step, symbols.pipeline)
    if isinstance(step, ir.Gate):
        step = symbols.steps.get(step.metrics.step)
    return model_task(symbols, getattr(step, "model", None))


def metric_names(task: str | None) -> list[str]:
    return sorted(metrics.CLASSIFICATION if task == "classification"
                  else metrics.REGRESSION if task == "regression" else metrics.METRICS)


def gate_metrics(symbols: Symbols, gate_name: str | None) -> list[str]:
    """What a gate may require: the metrics its evaluate step computes, else those of the task."""
    gate = symbols.steps.get(gate_name or "")
    evaluate = symbols.steps.get(gate.metrics.step) if isinstance(gate, ir.Gate) else None
    if isinstance(evaluate, ir.Evaluate) and evaluate.metrics:
        return list(evaluate.metrics)
    return metric_names(step_task(symbols, gate_name))


def estimator_params(symbols: Symbols | None, name: str) -> list[str]:
    info = lookup(name, symbols.pipeline.estimators if symbols else ())
    return sorted(info.params) if info is not None and info.params is not None else []


def train_estimator(symbols: Symbols, step_name: str | None) -> str | None:
    step = symbols.steps.get(step_name or "")
    return step.estimator.name if isinstance(step, ir.Train) else None

