"""Estimators must be on the allowlist (scikit-learn's classifiers and regressors, plus the spec's
`allow estimators [...]`), looked up in shipped data: nothing is imported or executed. Where the
constructor is known, estimator params and tuning keys must be its parameters.

    estimator = sklearn.ensemble.RandomForestClasifier {}   # E209: unknown estimator ...
    tune grid { max_dept = [4, 6] }                         # E212: ... did you mean 'max_depth'?
"""
from __future__ import annotations

import difflib

from .. import ir
from ..errors import Diagnostic
from ..estimators import lookup, sklearn_estimators
from .common import did_you_mean, span_of, unknown, where


def check_estimators(pipeline: ir.Pipeline) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    for step in pipeline.steps:
        if not isinstance(step, ir.Train):
            continue
        estimator = step.estimator
        info = lookup(estimator.name, pipeline.estimators)
        if info is None:
            diagnostics.append(Diagnostic(
                "E209", f"{where(step)}unknown estimator '{estimator.name}'", span_of(estimator, "name"),
                _estimator_hint(estimator.name, pipeline.estimators)))
            continue
        if step.task is not None and info.task is not None and step.task != info.task:
            diagnostics.append(Diagnostic(
                "E306", f"{where(step)}task = {step.task}, but {info.name} does {info.task}",
                span_of(step, "task")))
        if info.params is None:
            continue
        for key in estimator.params:
            if key not in info.params:
                diagnostics.append(unknown("E212", f"parameter of {info.name.rpartition('.')[2]}", key,
                                           info.params, span_of(estimator, key), context=where(step)))
        if step.tune is not None:
            for key in step.tune.space:
                # `step__param` keys reach into nested estimators; only plain keys are known here.
                if "__" not in key and key not in info.params:
                    diagnostics.append(unknown("E212", f"tuning parameter of {info.name.rpartition('.')[2]}",
                                               key, info.params, span_of(step.tune, f"space.{key}"),
                                               context=where(step)))
    return diagnostics


def _estimator_hint(name: str, allowed: tuple[str, ...]) -> str:
    known = list(sklearn_estimators()) + list(allowed)
    by_class = {full.rpartition(".")[2]: full for full in known}
    cls = name.rpartition(".")[2]
    if cls in by_class:                      # right class, wrong or missing module
        return f"did you mean '{by_class[cls]}'?"
    if not name.startswith("sklearn."):
        return f'an estimator outside scikit-learn must be allowed in the spec: allow estimators ["{name}"]'
    hint = did_you_mean(name, known)
    if hint is None:
        close = difflib.get_close_matches(cls, list(by_class), n=1, cutoff=0.7)
        hint = f"did you mean '{by_class[close[0]]}'?" if close else None
    return hint or "scikit-learn's classifiers and regressors are allowed (compiler/sklearn_estimators.json)"
