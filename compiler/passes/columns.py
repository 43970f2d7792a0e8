"""Column names used downstream of a source that declares `columns = [...]` must be among them.
Nothing is checked where the column set is unknown (no declaration, or predictions of a model).
A served source's columns are its model's `features` and the log's own (served_sources.py).

    source d { csv = "d.csv"  columns = [species, island] }
    train m on d { target = specis ... }     # E207: unknown column 'specis' ... did you mean 'species'?
"""
from __future__ import annotations

from .. import ir
from ..errors import Diagnostic
from .common import Index, index, span_of, unknown, where, written
from .served_sources import LOG_COLUMNS, PROBA_PREFIX, served_train


def columns_of(idx: Index, ref: ir.Ref | None, seen: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
    """The columns of the dataset `ref` names, when a source declares them; splits keep them. A
    served source's include the pattern `proba_*` (the classes are known only at run time)."""
    step = idx.steps.get(ref.step) if ref is not None else None
    if step is None or step.name in seen:
        return None
    if isinstance(step, ir.Source):
        if step.format == "served" and step.columns is None:
            train = served_train(idx, step)
            if train is None or train.features is None:
                return None
            return (*train.features, *LOG_COLUMNS, PROBA_PREFIX + "*")
        return step.columns
    if isinstance(step, ir.Split):
        return columns_of(idx, step.data, seen | {step.name})
    return None


def is_known(column: str, known: tuple[str, ...]) -> bool:
    """`column` is in `known`, or matches a pattern there (`proba_*`)."""
    return column in known or any(c.endswith("*") and column.startswith(c[:-1]) for c in known)


def check_columns(pipeline: ir.Pipeline) -> list[Diagnostic]:
    idx = index(pipeline)
    diagnostics: list[Diagnostic] = []

    def need(step: ir.Step, owner: ir.Node, key: str, column: str, known: tuple[str, ...] | None,
             dataset: ir.Ref | None) -> None:
        if known is not None and not is_known(column, known):
            source = f" of '{written(idx, dataset)}'" if dataset is not None else ""
            diagnostics.append(unknown("E207", f"column{source}", column, [c for c in known if "*" not in c],
                                       span_of(owner, key), context=where(step)))

    for step in pipeline.steps:
        if isinstance(step, ir.Source) and step.columns is not None:
            for column in step.types:
                need(step, step, f"types.{column}", column, step.columns, None)
            for i, column in enumerate(step.coerce):
                need(step, step, f"coerce.{i}", column, step.columns, None)
        elif isinstance(step, ir.Check):
            known = columns_of(idx, step.data)
            for rule in step.rules:
                if isinstance(rule, ir.ColumnRule):
                    need(step, rule, "column", rule.column, known, step.data)
        elif isinstance(step, ir.Split):
            known = columns_of(idx, step.data)
            for key in ("stratify", "time_column"):
                if getattr(step, key) is not None:
                    need(step, step, key, getattr(step, key), known, step.data)
        elif isinstance(step, ir.Train):
            _check_train(step, columns_of(idx, step.data), need, diagnostics)
        elif isinstance(step, ir.Gate):
            evaluate = idx.steps.get(step.metrics.step)
            known = columns_of(idx, evaluate.data) if isinstance(evaluate, ir.Evaluate) else None
            for rule in step.rules:
                if isinstance(rule, ir.FairnessRule):
                    need(step, rule, "column", rule.column, known, getattr(evaluate, "data", None))
        elif isinstance(step, ir.Monitor):
            for rule in step.drift:
                if rule.column == "prediction" and step.model is not None:
                    continue        # drift of the model's predictions, not of an input column
                for dataset in (step.reference, step.current):
                    need(step, rule, "column", rule.column, columns_of(idx, dataset), dataset)
    return diagnostics


def _check_train(step: ir.Train, known, need, diagnostics: list[Diagnostic]) -> None:
    need(step, step, "target", step.target, known, step.data)
    for i, feature in enumerate(step.features or ()):
        need(step, step, f"features.{i}", feature, known, step.data)
    if step.features is not None and step.target in step.features:
        i = step.features.index(step.target)
        diagnostics.append(Diagnostic(
            "E303", f"{where(step)}the target '{step.target}' is also a feature", span_of(step, f"features.{i}"),
            "a model that reads its own target learns nothing: remove it from features"))
    prep = step.preprocessing
    for key in ("numeric", "categorical"):
        for i, column in enumerate(getattr(prep, key) or ()):
            if step.features is not None:
                need(step, prep, f"{key}.{i}", column, step.features, None)
            else:
                need(step, prep, f"{key}.{i}", column, known, step.data)
