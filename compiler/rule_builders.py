"""Parse tree -> IR, for the rules inside blocks: a check's `rows`, `expect` and `column` rules, a
gate's `require`, a monitor's `drift`, `metric` and `latency`, and a train step's `tune`.

A mixin of SpecTransformer (transformer.py), which supplies the helpers used here (cover, tspan,
make, bad, decode, problem). Like the transformer it only builds: a rule that cannot be built is
reported and comes back as Rule(kind, None, span).
"""
from __future__ import annotations

from typing import Any

from lark import Token

from . import ir
from .expression_parser import parse_expression
from .options import (
    TUNE_OPTIONS,
    Bad,
    Option,
    Rule,
    Typed,
    Value,
    column_modifier,
    integer,
    milliseconds,
    number,
    options_of,
    scalar,
)


class RuleBuilders:
    """One method per grammar rule for the rules of check, gate, monitor and train blocks."""

    # ------------------------------------------------------------ check rules
    def rows_rule(self, children: list) -> Rule:
        span = self.cover(children)
        try:
            node = self.make(ir.RowsRule, {"op": str(children[1]), "value": integer(children[2]), "span": span},
                             {"op": self.tspan(children[1]), "value": children[2].span}, span, "rows: ")
        except Bad as bad:
            self.bad(bad, children[2].span, "rows: ")
            node = None
        return Rule("rows", node, span)

    def expect_rule(self, children: list) -> Rule:
        span = self.cover(children)
        before = len(self.problems)
        text = self.decode(children[1])
        if len(self.problems) > before:     # a bad escape, reported: the text is not what was meant
            return Rule("expect", None, span)
        built, problems = parse_expression(text, self.tspan(children[1]))
        for problem in problems:
            self.problem(problem.code, f"expect: {problem.message}", problem.span, problem.hint)
        return Rule("expect", ir.ExpressionRule(expression=built, span=span) if built else None, span)

    def col_in(self, children: list) -> tuple:
        return ("allowed", children[1], self.cover(children))

    def col_between(self, children: list) -> tuple:
        return ("between", (children[1], children[3]), self.cover(children))

    def col_nulls(self, children: list) -> tuple:
        return ("nulls", (str(children[1]), children[2]), self.cover(children))

    def col_nullable(self, children: list) -> tuple:
        return ("nullable", True, self.cover(children))

    def col_not_nullable(self, children: list) -> tuple:
        return ("nullable", False, self.cover(children))

    def col_unique(self, children: list) -> tuple:
        return ("unique", True, self.cover(children))

    def col_matches(self, children: list) -> tuple:
        return ("regex", self.decode(children[1]), self.cover(children))

    def col_bound(self, children: list) -> tuple:
        return ("bound", (str(children[0]), children[1]), self.cover(children))

    def column_rule(self, children: list) -> Rule:
        span = self.cover(children)
        context = f"column {children[1]}: "
        fields: dict[str, Any] = {"column": str(children[1]), "span": span}
        spans = {"column": self.tspan(children[1])}
        mods = children[2:]
        if mods and isinstance(mods[0], Token):
            fields["dtype"], spans["dtype"] = str(mods[0]), self.tspan(mods[0])
            mods = mods[1:]
        for name, payload, mod_span in mods:
            try:
                for key, value, written in column_modifier(name, payload):
                    if key in fields:
                        raise Bad(f"'{key}' is given twice", code="E251")
                    fields[key], spans[key] = value, written.span if written else mod_span
            except Bad as bad:
                self.bad(bad, mod_span, context)
        fields["spans"] = spans
        return Rule("column", self.make(ir.ColumnRule, fields, spans, span, context), span)

    # ------------------------------------------------------------ gate, monitor, train
    def require_rule(self, children: list) -> Rule:
        span = self.cover(children)
        metric, rest = children[1], children[2:]
        column = rest.pop(0) if rest[0].type == "NAME" else None
        op, value, delta = rest[0], rest[1], rest[2:]
        fields: dict[str, Any] = {"op": str(op), "span": span}
        spans = {"op": self.tspan(op), "value": value.span, "metric": self.tspan(metric)}
        try:
            champion = value.kind == "name" and value.data[0] == "champion"
            if delta and not champion:
                raise Bad("only champion.METRIC takes `+ delta` or `- delta`")
            if column is not None:
                cls = ir.FairnessRule
                fields.update(measure=str(metric), column=str(column), value=number(value))
                spans["measure"] = spans["metric"]
            elif champion:
                if len(value.data) != 2 or value.data[1] != metric:
                    raise Bad(f"compare with the champion's own value: champion.{metric}")
                cls = ir.ChampionRule
                size = int(delta[1]) if delta and delta[1].isdigit() else float(delta[1]) if delta else 0
                fields.update(metric=str(metric), delta=-size if delta and delta[0] == "-" else size)
            else:
                cls = ir.ThresholdRule
                fields.update(metric=str(metric), value=number(value))
        except Bad as bad:
            self.bad(bad, value.span, "require: ")
            return Rule("require", None, span)
        return Rule("require", self.make(cls, fields, spans, span, "require: "), span)

    def drift_rule(self, children: list) -> Rule:
        span = self.cover(children)
        statistic, column, *rest = children[1:]
        measure = rest.pop(0) if rest[0].type == "NAME" else None
        op, value, _arrow, action = rest
        fields = {"statistic": str(statistic), "column": str(column), "op": str(op), "action": str(action),
                  "span": span}
        spans = {"statistic": self.tspan(statistic), "op": self.tspan(op), "action": self.tspan(action),
                 "threshold": value.span}
        if measure is not None:
            fields["measure"], spans["measure"] = str(measure), self.tspan(measure)
        try:
            fields["threshold"] = number(value)
        except Bad as bad:
            self.bad(bad, value.span, "drift: ")
            return Rule("drift", None, span)
        return Rule("drift", self.make(ir.DriftRule, fields, spans, span, "drift: "), span)

    def metric_rule(self, children: list) -> Rule:
        span = self.cover(children)
        metric, op, value, _arrow, action = children[1:]
        return self.monitor_rule("metric", ir.MetricRule, {"metric": metric}, op, value, None, action, span)

    def latency_rule(self, children: list) -> Rule:
        span = self.cover(children)
        percentile, op, value, *rest = children[1:]
        unit = rest.pop(0) if len(rest) == 3 else None
        return self.monitor_rule("latency", ir.LatencyRule, {"percentile": percentile}, op, value, unit,
                                 rest[-1], span)

    def monitor_rule(self, keyword: str, cls: type, names: dict[str, Token], op: Token, value: Value,
                     unit: Token | None, action: Token, span: ir.Span) -> Rule:
        """`metric NAME OP VALUE -> ACTION` and `latency PERCENTILE OP VALUE[UNIT] -> ACTION`."""
        fields: dict[str, Any] = {key: str(tok) for key, tok in names.items()}
        fields.update(op=str(op), action=str(action), span=span)
        spans = {key: self.tspan(tok) for key, tok in names.items()}
        spans.update(op=self.tspan(op), action=self.tspan(action))
        threshold = "threshold_ms" if keyword == "latency" else "threshold"
        spans[threshold] = self.cover([value.span, unit]) if unit is not None else value.span
        try:
            fields[threshold] = milliseconds(value, str(unit) if unit else None) if keyword == "latency" \
                else number(value)
        except Bad as bad:
            self.bad(bad, spans[threshold], f"{keyword}: ")
            return Rule(keyword, None, span)
        fields["spans"] = spans
        return Rule(keyword, self.make(cls, fields, spans, span, f"{keyword}: "), span)

    def tune(self, children: list) -> Rule:
        return Rule("tune", children[1], self.cover(children), tuple(children[2:-1]))

    def build_tune(self, rule: Rule, options: list[Option], context: str) -> ir.Tune | None:
        method = rule.node
        fields: dict[str, Any] = {"method": str(method), "space": {}}
        spans = {"method": self.tspan(method)}
        try:
            for entry in rule.entries:
                if isinstance(entry, Typed) or entry.value.kind != "list":
                    raise Bad("a search space entry is `name = [value, ...]`", span=entry.span)
                if entry.key in fields["space"]:
                    raise Bad(f"'{entry.key}' is given twice", span=entry.key_span, code="E251")
                fields["space"][entry.key] = tuple(scalar(item) for item in entry.value.data)
                spans[f"space.{entry.key}"] = entry.value.span
            values, value_spans = options_of(tuple(options), TUNE_OPTIONS, "tune")
        except Bad as bad:
            self.bad(bad, rule.span, context)
            return None
        end = options[-1].span if options else rule.span
        span = rule.span.model_copy(update={"end_line": end.end_line, "end_col": end.end_col})
        fields.update(values, span=span, spans=spans | value_spans)
        return self.make(ir.Tune, fields, spans | value_spans, span, context + "tune: ")

