"""What the workers' zygote imports before the steps need it (see worker.py and pool.py).

A module missing here costs every worker that runs such a step its own import; the lists were
measured by diffing `sys.modules` around each kind of step in a worker.

The zygote only imports: it must never run an OpenMP parallel region (a fit, a predict). GNU
libgomp's thread pool does not survive a fork, and a worker forked after one hangs at its own first
parallel region (checked with HistGradientBoosting: the child sleeps forever). Forked from a zygote
that only imported, a worker fits as fast as a fresh process (11.18 s against 11.23 s for the
scale bench's model on 800,000 rows: bench/scale_costs.py --only fork).
"""
from __future__ import annotations

from typing import Any

# Submodules count: after pandas, sklearn and mlflow, a train step still imports ~0.7 s of
# model_selection, compose, skops.io and mlflow.sklearn, and evaluate a bare matplotlib Figure.
COMMON = ("pandas", "pyarrow.parquet", "fsspec", "mlopsc.runtime.artifacts", "mlopsc.runtime.tracking")
WARM = {"source": ("mlopsc.runtime.sources",),
        "check": ("pandera.pandas", "mlopsc.runtime.checks"),
        "split": ("sklearn.model_selection", "mlopsc.runtime.split"),
        "train": ("sklearn.model_selection", "sklearn.compose", "skops.io", "mlflow.sklearn",
                  "mlopsc.runtime.train", "mlopsc.runtime.artifacts:fill_caches"),
        "evaluate": ("sklearn.metrics", "matplotlib.figure", "matplotlib.backends.backend_agg",
                     "mlopsc.runtime.evaluate"),
        "gate": ("mlopsc.runtime.gate",), "deploy": ("mlopsc.runtime.deploy",),
        "score": ("mlopsc.runtime.deploy",), "monitor": ("scipy.stats", "mlopsc.runtime.monitor")}
# The run's HTML report, rendered in a worker after the last step: imported last, while steps run.
REPORT_MODULES = ("jinja2", "matplotlib.figure", "matplotlib.backends.backend_svg", "pyarrow.parquet",
                  "mlopsc.runtime.report.render", "mlopsc.runtime.report.evaluation_figures",
                  "mlopsc.runtime.report.monitor_figures")


def tracking_modules(uri: str) -> tuple[str, ...]:
    """What opening the MLflow store at `uri` and a run in it imports (about 0.5 s for a database
    store; GitPython is MLflow's, for the run's source version)."""
    modules = ("mlflow", "git")
    dialect = uri.split(":", 1)[0].split("+", 1)[0]
    if dialect in ("sqlite", "postgresql", "mysql", "mssql"):
        modules += ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
                    "mlflow.store.db.utils", "alembic.config", "alembic.command", f"sqlalchemy.dialects.{dialect}")
    return modules


def warm_modules(node: Any) -> tuple[str, ...]:
    """What a step will import: its kind's modules, and for a train step its scikit-learn
    estimator's module (only scikit-learn's: warming must never run a spec-named import first)."""
    modules = COMMON + WARM.get(node.kind, ())
    if node.kind == "train" and node.estimator.name.startswith("sklearn."):
        modules += (node.estimator.name.rpartition(".")[0],)
    return modules
