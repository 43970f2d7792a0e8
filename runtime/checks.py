"""Check stage: validate a Dataset against the spec's rules with pandera; write a Report.

Each rule becomes pandera checks tagged with the rule's number, so pandera's failure cases map back
to the spec's wording. Validation is lazy: the report lists every failed expectation, its failure
count and a few failing values (row numbers for whole-row rules). `on_fail = stop` raises
StepFailed(reason="check") after the report is written; `warn` returns status "warn".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir

from . import artifacts, tracking
from .core import RunContext, StepFailed, step_result
from .expressions import rows_where

if TYPE_CHECKING:
    import pandas as pd

EXAMPLES = 5   # failing values shown per expectation


def _dtype_ok(kind: str, s: pd.Series) -> bool:
    import pandas as pd
    from pandas.api import types as t

    if kind == "int":
        # CSV reads an int column that has missing values as float: whole floats count as int.
        return (t.is_integer_dtype(s) and not t.is_bool_dtype(s)) or (
            t.is_float_dtype(s) and bool((s.dropna() % 1 == 0).all()))
    if kind == "float":
        return t.is_numeric_dtype(s) and not t.is_bool_dtype(s)
    if kind == "bool":
        return t.is_bool_dtype(s)
    if kind == "datetime":
        return t.is_datetime64_any_dtype(s)
    textual = t.is_string_dtype(s) or (s.dtype == object and s.dropna().map(type).eq(str).all())
    if kind == "str":
        return bool(textual)
    return isinstance(s.dtype, pd.CategoricalDtype) or bool(textual)   # category


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class _Expectation:
    """One checkable statement of a rule, with its pandera check key, its spec wording and, for
    the checks this module builds, the pandera Check itself."""

    def __init__(self, key: str, text: str, rule: Any, column: str | None, check: Any = None) -> None:
        self.key, self.text, self.rule, self.column, self.check = key, text, rule, column, check


def _column_checks(i: int, rule: ir.ColumnRule, pa: Any) -> tuple[dict[str, Any], list[_Expectation]]:
    """pandera Column kwargs for a column rule and the expectations it states."""
    col = rule.column
    checks, exps = [], []

    def add(what: str, text: str, check: Any) -> None:
        key = f"rule{i}:{what}"
        made = check(key)
        made.n_failure_cases = 1   # the verdict; `_failing` finds every failing value (see validate)
        checks.append(made)
        exps.append(_Expectation(key, f"column {col} {text}", rule, col, made))

    if rule.dtype:
        add("dtype", f"is {rule.dtype}",
            lambda k, kind=rule.dtype: pa.Check(lambda s: _dtype_ok(kind, s), error=k, ignore_na=False))
    if rule.min is not None and rule.max is not None:
        add("between", f"between {rule.min} and {rule.max}",
            lambda k: pa.Check.in_range(rule.min, rule.max, error=k))
    elif rule.min is not None:
        add("min", f">= {rule.min}", lambda k: pa.Check.ge(rule.min, error=k))
    elif rule.max is not None:
        add("max", f"<= {rule.max}", lambda k: pa.Check.le(rule.max, error=k))
    if rule.allowed is not None:
        add("allowed", f"in [{', '.join(_fmt(v) for v in rule.allowed)}]",
            lambda k: pa.Check.isin(list(rule.allowed), error=k))
    if rule.regex is not None:
        add("regex", f"matches {rule.regex!r}", lambda k: pa.Check.str_matches(rule.regex, error=k))
    if rule.max_null_fraction is not None:
        limit = rule.max_null_fraction
        add("nulls", f"nulls <= {limit}",
            lambda k: pa.Check(lambda s: float(s.isna().mean()) <= limit, error=k, ignore_na=False))
    # Presence, nulls and uniqueness are pandera's own column checks; they are reported under
    # pandera's names, which `_key_of` maps back to this rule.
    exps.append(_Expectation(f"rule{i}:exists", f"column {col} exists", rule, col))
    if rule.nullable is False:
        exps.append(_Expectation(f"rule{i}:not_nullable", f"column {col} not nullable", rule, col))
    if rule.unique:
        exps.append(_Expectation(f"rule{i}:unique", f"column {col} unique", rule, col))
    # A rule that does not say `not nullable` allows nulls; `nulls <= f` bounds their share.
    kwargs = {"checks": checks, "nullable": rule.nullable is not False, "unique": rule.unique,
              "required": True}
    return kwargs, exps


def _frame_check(i: int, rule: Any, df: pd.DataFrame, step: ir.Check, pa: Any,
                 params: dict[str, Any]) -> tuple[Any, _Expectation]:
    key = f"rule{i}:frame"
    if isinstance(rule, ir.RowsRule):
        ops = {">=": int.__ge__, ">": int.__gt__, "<=": int.__le__, "<": int.__lt__, "==": int.__eq__}
        op, n = ops[rule.op], int(rule.value)
        exp = _Expectation(key, f"rows {rule.op} {n}", rule, None)
        return pa.Check(lambda d: op(len(d), n), error=key), exp
    # An expression that cannot be evaluated is a mistake in the spec, not a data failure: it is
    # evaluated once here, where its error can name the step, and pandera only reads the mask.
    mask = rows_where(rule.expression, df, params, step, what="expectation", span=rule.span or step.span)
    check = pa.Check(lambda d: mask.reindex(d.index, fill_value=False), error=key, n_failure_cases=1)
    return check, _Expectation(key, f"expect {rule.expression.text!r}", rule, None, check)


def build_schema(step: ir.Check, df: pd.DataFrame,
                 params: dict[str, Any] | None = None) -> tuple[Any, list[_Expectation]]:
    """The pandera DataFrameSchema of a check step and its expectations, in spec order; `params`
    are the run's, for `params.NAME` in an `expect`."""
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    frame_checks, expectations = [], []
    for i, rule in enumerate(step.rules):
        if isinstance(rule, ir.ColumnRule):
            kwargs, exps = _column_checks(i, rule, pa)
            if rule.column in columns:   # two rules on one column: one pandera Column holds both
                prev = columns[rule.column]
                kwargs["checks"] = list(prev.checks) + kwargs["checks"]
                kwargs["nullable"] = prev.nullable and kwargs["nullable"]
                kwargs["unique"] = prev.unique or kwargs["unique"]
            columns[rule.column] = pa.Column(**kwargs)
            expectations += exps
        else:
            check, exp = _frame_check(i, rule, df, step, pa, params or {})
            frame_checks.append(check)
            expectations.append(exp)
    return pa.DataFrameSchema(columns, checks=frame_checks), expectations


def _key_of(row: Any, expectations: list[_Expectation]) -> str | None:
    """The expectation key of one pandera failure case."""
    if str(row["check"]).startswith("rule"):
        return str(row["check"])
    builtin = {"column_in_dataframe": "exists", "not_nullable": "not_nullable", "field_uniqueness": "unique"}
    what = builtin.get(str(row["check"]))
    column = row["failure_case"] if what == "exists" else row["column"]
    for exp in expectations:
        if exp.column == column and exp.key.endswith(":" + (what or "")):
            return exp.key
    return None


def _failures_by_key(cases: pd.DataFrame, expectations: list[_Expectation]) -> dict[str, pd.DataFrame]:
    """pandera's failure cases grouped by expectation key, looked up once per check and column."""
    import pandas as pd

    parts: dict[str, list[pd.DataFrame]] = {}
    for (check, _), group in cases.groupby(["check", "column"], dropna=False, sort=False):
        # A missing column is named by its case's value: one case per missing column.
        rows = [group.iloc[[i]] for i in range(len(group))] if check == "column_in_dataframe" else [group]
        for part in rows:
            key = _key_of(part.iloc[0], expectations) or f"pandera:{check}"
            parts.setdefault(key, []).append(part)
    return {key: pd.concat(found) if len(found) > 1 else found[0] for key, found in parts.items()}


def _failing(exp: _Expectation, df: pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Every value (or row, for an expression) that fails the expectation's check, as pandera finds
    them: its Check run again on the column, missing values left out where the check ignores them.
    pandera reports one case per failed check (`n_failure_cases = 1`): formatting a case per
    failing value into its message made a check that fails on most of a million rows take minutes."""
    result = exp.check(df if exp.column is None else df[exp.column])
    return result.checked_object[~result.check_output]


def _json_value(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else (value if isinstance(value, (int, float, str, bool))
                                                          or value is None else str(value))


def _examples(values: pd.Series) -> list[Any]:
    """The first distinct failing values, missing ones (NaN) left out."""
    import pandas as pd

    found: dict[Any, None] = {}
    for value in pd.unique(values.to_numpy(dtype=object)):   # in order of first appearance
        value = _json_value(value)
        if not (isinstance(value, float) and pd.isna(value)):
            found.setdefault(value)
            if len(found) == EXAMPLES:
                break
    return list(found)


def validate(step: ir.Check, df: pd.DataFrame, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every expectation of the step with `passed`, `failures` and a few failing `examples`."""
    import pandera.pandas as pa

    schema, expectations = build_schema(step, df, params)
    failures: dict[str, pd.DataFrame] = {}
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = _failures_by_key(exc.failure_cases, expectations)
    absent = {str(c) for c in {e.column for e in expectations} - {None} if c not in df.columns}
    found: list[dict[str, Any]] = []
    for exp in expectations:
        cases = failures.pop(exp.key, None)
        entry: dict[str, Any] = {"expectation": exp.text, "passed": cases is None, "column": exp.column,
                                 "line": exp.rule.span.line if exp.rule.span else None}
        if exp.column in absent and not exp.key.endswith(":exists"):
            # pandera checks nothing else on a column that is not there: say so, not "passed".
            entry.update(passed=None, note="not evaluated: the column is missing")
        elif cases is None:
            pass
        elif exp.key.endswith(":frame") and isinstance(exp.rule, ir.ExpressionRule):
            rows = sorted(_failing(exp, df).index)
            entry.update(failures=len(rows), examples=[f"row {i}" for i in rows[:EXAMPLES]])
        elif exp.key.endswith((":dtype", ":nulls", ":frame")):   # one verdict over the whole column
            entry.update(failures=1, examples=[_whole_column_finding(exp, df)])
        else:   # values: those of this module's checks found again, pandera's own (nulls, unique) as reported
            values = _failing(exp, df) if exp.check is not None else cases["failure_case"]
            entry.update(failures=len(values), examples=_examples(values) or [None])
        found.append(entry)
    for key, cases in failures.items():   # a pandera finding no rule states: still reported
        found.append({"expectation": key, "passed": False, "column": None, "line": None,
                      "failures": len(cases), "examples": [_json_value(cases["failure_case"].iloc[0])]})
    return found


def _whole_column_finding(exp: _Expectation, df: pd.DataFrame) -> str:
    rule = exp.rule
    if isinstance(rule, ir.RowsRule):
        return f"{len(df)} rows"
    if exp.key.endswith(":dtype"):
        return f"dtype {df[rule.column].dtype}"
    return f"null fraction {df[rule.column].isna().mean():.4f}"


def run(step: ir.Check, inputs: dict[str, str], outputs: dict[str, str], ctx: RunContext) -> dict[str, Any]:
    df = artifacts.read_parquet(inputs["data"])
    expectations = validate(step, df, ctx.params)
    failed = [e for e in expectations if e["passed"] is False]
    report = {"step": step.name, "passed": not failed, "on_fail": step.on_fail, "rows": len(df),
              "data_sha256": artifacts.sha256_of(inputs["data"]), "failed": len(failed),
              "expectations": expectations}
    uri = outputs["report"]
    digest = artifacts.write_json(report, uri)
    with tracking.step_run(ctx, step) as mlrun:
        import mlflow

        mlflow.log_metrics({"expectations": len(expectations), "expectations_failed": len(failed)})
        mlflow.log_dict(report, "check_report.json")
        mlflow.set_tag("mlopsc.check", "passed" if not failed else f"failed ({step.on_fail})")
    result = step_result(step, {"report": (uri, digest)}, status="ok" if not failed else "warn",
                         passed=not failed, failures=failed, mlflow_run_id=mlrun.info.run_id)
    if failed and step.on_fail == "stop":
        lines = "\n".join(f"  - {e['expectation']}: {e['failures']} failing, e.g. "
                          + ", ".join(map(str, e["examples"])) for e in failed)
        raise StepFailed(f"data check failed: {len(failed)} of {len(expectations)} expectations\n{lines}",
                         reason="check", result={**result, "status": "failed"}, step=step.name,
                         span=step.span)
    return result
