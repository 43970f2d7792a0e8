"""Binding of pipeline params and run-time resolution of env() / secret() references.

- `bind(step, params)` replaces every `ir.ParamRef` in a node (nested models, tuples, lists and
  dict values included) by the param's value. Generated code may pass a node already bound.
- `resolve_ref(ref)` reads an `EnvRef` / `SecretRef` in the process that runs the step:
    env("NAME")                -> environment variable NAME
    secret("db-url")           -> environment variable DB_URL
    secret("db.creds", "pass") -> environment variable DB_CREDS_PASS
  i.e. the secret's name upper-cased with `-` and `.` turned into `_`, plus `_KEY` for a key.
  Backends map platform secrets (Kubernetes secrets, Prefect Secret blocks) onto those variables.
  A missing variable is a StepError naming the variable; a value is never printed.
"""
from __future__ import annotations

import difflib
import os
from typing import Any

from mlopsc.compiler import ir

from .core import StepError


def _bind_value(value: Any, params: dict[str, Any], step: ir.Step) -> Any:
    if isinstance(value, ir.ParamRef):
        if value.name not in params:
            close = difflib.get_close_matches(value.name, list(params), n=1)
            hint = f" (did you mean params.{close[0]}?)" if close else ""
            raise StepError(f"unknown param params.{value.name}{hint}", step=step.name,
                            span=value.span or step.span,
                            expected=f"one of: {', '.join(sorted(params)) or '(no params)'}",
                            found=f"params.{value.name}")
        return params[value.name]
    if isinstance(value, ir.Node):
        changes = {k: _bind_value(v, params, step) for k, v in value}
        changed = {k: v for k, v in changes.items() if v is not getattr(value, k)}
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, (list, tuple)):
        items = [_bind_value(v, params, step) for v in value]
        return type(value)(items) if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        items = {k: _bind_value(v, params, step) for k, v in value.items()}
        return items if any(items[k] is not value[k] for k in value) else value
    return value


def bind(step: ir.Step, params: dict[str, Any]) -> ir.Step:
    """The node with every `params.NAME` replaced by its value."""
    return _bind_value(step, params, step)


def secret_env_name(ref: ir.SecretRef) -> str:
    name = ref.name.upper().replace("-", "_").replace(".", "_")
    if ref.key:
        name += "_" + ref.key.upper().replace("-", "_").replace(".", "_")
    return name


def env_name(ref: ir.EnvRef | ir.SecretRef) -> str:
    """The environment variable a reference reads."""
    return ref.name if isinstance(ref, ir.EnvRef) else secret_env_name(ref)


def resolve_ref(ref: ir.EnvRef | ir.SecretRef, step: ir.Step | None = None) -> str:
    """The value of an env() / secret() reference in this process. Never log the result."""
    var = env_name(ref)
    value = os.environ.get(var)
    if value is None or value == "":
        what = f'env("{ref.name}")' if isinstance(ref, ir.EnvRef) else (
            f'secret("{ref.name}"' + (f', "{ref.key}"' if ref.key else "") + ")")
        raise StepError(f"{what} is not set in the environment of this step",
                        step=step.name if step else "", span=ref.span or (step.span if step else None),
                        expected=f"environment variable {var} to be set", found=f"{var} unset or empty")
    return value
