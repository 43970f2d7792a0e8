"""The penguins example built as IR in Python, for tests that must not depend on the parser."""
from __future__ import annotations

from mlopsc.compiler import ir
from mlopsc.compiler.expression_parser import expression

FILE = "penguins.mlops"


def span(line: int, col: int = 3, width: int = 1) -> ir.Span:
    return ir.Span(file=FILE, line=line, col=col, end_line=line, end_col=col + width)


def ref(step: str, port: str | None = None, line: int = 1) -> ir.Ref:
    return ir.Ref(step=step, port=port, span=span(line))


def penguins_steps() -> list[ir.Step]:
    return [
        ir.Source(name="penguins", format="csv", path="data/penguins.csv", filter=expression("year < 2009"), span=span(11)),
        ir.Source(name="penguins_2009", format="csv", path="data/penguins.csv", filter=expression("year == 2009"),
                  span=span(12)),
        ir.Check(name="penguins_quality", data=ref("penguins", line=14), span=span(14), on_fail="stop",
                 rules=(ir.RowsRule(op=">=", value=200), ir.ColumnRule(column="species"))),
        ir.Split(name="penguins_split", data=ref("penguins", line=22), span=span(22),
                 test_size=ir.ParamRef(name="test_size", span=span(22, 40)), stratify="species", seed=7),
        ir.Train(name="species_model", data=ref("penguins_split", "train", 24), span=span(24),
                 target="species", features=("bill_length_mm", "island", "sex"),
                 estimator=ir.Estimator(name="sklearn.ensemble.RandomForestClassifier",
                                        params={"n_estimators": 300, "max_depth": 6}, span=span(27)),
                 tune=ir.Tune(method="grid", space={"max_depth": (4, 6, 8)}, cv=5, metric="accuracy"),
                 resources=ir.Resources(cpu=2, memory="4Gi"), retries=2),
        ir.Evaluate(name="species_eval", model=ref("species_model", line=33), data=ref("penguins_split", "test", 33),
                    metrics=("accuracy", "f1_macro"), span=span(33)),
        ir.Gate(name="release", metrics=ref("species_eval", line=35), span=span(35), rules=(
            ir.ThresholdRule(metric="accuracy", op=">=", value=ir.ParamRef(name="min_accuracy"), span=span(36)),
            ir.ChampionRule(metric="f1_macro", op=">=", delta=-0.01, span=span(37)))),
        ir.Deploy(name="species_service", model=ref("species_model", line=41), after=(ref("release", line=41),),
                  registry="penguins-species", span=span(41)),
        ir.Monitor(name="species_drift", model=ref("species_model", line=44),
                   reference=ref("penguins_split", "train", 44), current=ref("penguins_2009", line=44),
                   drift=(ir.DriftRule(statistic="psi", column="bill_length_mm", op=">", threshold=0.2,
                                       action="retrain"),),
                   schedule="0 * * * *", span=span(43)),
    ]


def penguins(steps: list[ir.Step] | None = None, **fields) -> ir.Pipeline:
    params = (ir.Param(name="test_size", type="float", default=0.25, span=span(7, 5)),
              ir.Param(name="min_accuracy", type="float", default=0.9, span=span(8, 5)))
    return ir.Pipeline(**{"name": "penguins", "schedule": "0 6 * * 1", "params": params,
                          "steps": tuple(penguins_steps() if steps is None else steps),
                          "source_file": FILE, **fields})


def replace(steps: list[ir.Step], name: str, /, **update) -> list[ir.Step]:
    """The steps with step `name` rebuilt with `update` (validated, like the parser would)."""
    return [type(s).model_validate({**dict(s), **update}) if s.name == name else s for s in steps]
