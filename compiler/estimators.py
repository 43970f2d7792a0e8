"""Which estimators a spec may name, and what the compiler knows about them, without importing them.

The scikit-learn list ships as data (`sklearn_estimators.json`: public dotted name -> task and
constructor parameter names) so `mlopsc check` never imports sklearn and never executes user code.
Estimators outside scikit-learn must be listed in the spec (`allow estimators [...]`); the compiler
then knows only their names. Regenerate the data after a scikit-learn upgrade with:

    python -m mlopsc.compiler.estimators > compiler/sklearn_estimators.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("sklearn_estimators.json")


@dataclass(frozen=True)
class EstimatorInfo:
    name: str
    task: str | None                    # "classification", "regression", or None when unknown
    params: frozenset[str] | None       # constructor parameters, or None when unknown


@cache
def sklearn_estimators() -> dict[str, EstimatorInfo]:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return {name: EstimatorInfo(name, entry["task"], frozenset(entry["params"]))
            for name, entry in data["estimators"].items()}


def lookup(name: str, allowed: tuple[str, ...] = ()) -> EstimatorInfo | None:
    """The estimator's info if `name` is allowed (scikit-learn or listed in the spec), else None."""
    if name in allowed:
        return sklearn_estimators().get(name) or EstimatorInfo(name, None, None)
    return sklearn_estimators().get(name)


def _public_module(cls: type) -> str:
    """The module scikit-learn documents the class under, which is the one users import it from:
    `sklearn.ensemble._hist_gradient_boosting.gradient_boosting` -> `sklearn.ensemble`.

    Everything from the first private part on is an implementation detail (stripping only trailing
    private parts kept `sklearn.ensemble._hist_gradient_boosting.gradient_boosting`); of the public
    prefixes left, the longest that exports the very class is the one (`sklearn.feature_extraction.text`
    for TfidfVectorizer, where `sklearn.feature_extraction` does not export it)."""
    import importlib

    parts = cls.__module__.split(".")
    public = next((i for i, part in enumerate(parts) if part.startswith("_")), len(parts))
    for end in range(public, 0, -1):
        module = ".".join(parts[:end])
        if getattr(importlib.import_module(module), cls.__name__, None) is cls:
            return module
    raise LookupError(f"no public module of {cls.__module__} exports {cls.__name__}")


def generate() -> dict:
    """Build the data file's content from the installed scikit-learn (imports it: dev use only)."""
    import inspect

    import sklearn
    from sklearn.utils import all_estimators

    estimators = {}
    for task, kind in (("classification", "classifier"), ("regression", "regressor")):
        for name, cls in all_estimators(type_filter=kind):
            params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)]
            params = [p for p in params if inspect.signature(cls.__init__).parameters[p].kind
                      not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
            estimators[f"{_public_module(cls)}.{name}"] = {"task": task, "params": sorted(params)}
    return {"sklearn_version": sklearn.__version__, "estimators": dict(sorted(estimators.items()))}


if __name__ == "__main__":
    print(json.dumps(generate(), indent=1))
