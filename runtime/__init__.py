"""The mlopsc runtime: every lifecycle stage as a step over persisted artifacts.

Generated code of every backend calls `execute` and nothing else:

    execute(step, inputs, outputs, context) -> dict

- step: the IR node of the step (an `ir.Step`, or its JSON / dict as a generator wrote it),
  with params already bound or bound here from `context.params`;
- inputs: {field name: artifact URI} for each Ref-typed field of the node (`Step.inputs()`),
  e.g. {"model": ".../species_model/model", "data": ".../penguins_split/test.parquet"};
- outputs: {port name: artifact URI} for each port in the node's OUTPUTS;
- context: a RunContext (or its dict).

It returns a JSON-able StepResult dict. This package imports no lark, kfp or prefect (jinja2 only
in `report`, to lay a run's report out), and imports pandas, sklearn and mlflow only inside the
steps that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .core import RunContext, StepError, StepFailed, execute  # noqa: F401
