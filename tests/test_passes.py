"""The validation passes, on IR built in Python (no parser involved): each check rejects what it
should, with the code, message, span and hint a user sees; each IR pass completes the IR."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir_builders import penguins, penguins_steps, ref, replace, span
from mlopsc.compiler import ir, loads
from mlopsc.compiler.errors import SpecError, render
from mlopsc.compiler.passes import PASSES
from mlopsc.compiler.program import compile_pipeline
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent


def diagnostics(pipeline: ir.Pipeline, params: dict[str, str] | None = None):
    try:
        return list(compile_pipeline(pipeline, params).diagnostics)
    except SpecError as exc:
        return exc.diagnostics


def codes(pipeline: ir.Pipeline, params: dict[str, str] | None = None) -> list[str]:
    return [d.code for d in diagnostics(pipeline, params)]


def only(pipeline: ir.Pipeline, code: str, params: dict[str, str] | None = None):
    found = diagnostics(pipeline, params)
    assert [d.code for d in found] == [code], [str(d) for d in found]
    return found[0]


def test_penguins_is_clean():
    assert diagnostics(penguins()) == []


def test_every_ref_port_is_filled():
    program = compile_pipeline(penguins())
    for step in program.pipeline.steps:
        for _, r in step.refs():
            assert r.port is not None, (step.name, r)
    assert program.pipeline.step("species_eval").model.port == "model"


def test_consumers_of_a_stop_checked_dataset_wait_for_the_check():
    program = compile_pipeline(penguins())
    assert [str(r) for r in program.pipeline.step("penguins_split").after] == ["penguins_quality.report"]
    assert program.pipeline.step("penguins_quality").after == ()


def test_a_warn_check_guards_nothing():
    steps = replace(penguins_steps(), "penguins_quality", on_fail="warn")
    assert compile_pipeline(penguins(steps)).pipeline.step("penguins_split").after == ()


def test_gate_and_monitor_get_the_registry_of_the_deploy():
    steps = replace(penguins_steps(), "species_service", alias="prod")
    pipeline = compile_pipeline(penguins(steps)).pipeline
    assert (pipeline.step("release").registry, pipeline.step("release").alias) == ("penguins-species", "prod")
    assert (pipeline.step("species_drift").registry, pipeline.step("species_drift").alias) == \
        ("penguins-species", "prod")


def test_a_gate_without_champion_rules_gets_no_registry():
    steps = replace(penguins_steps(), "release", rules=(ir.ThresholdRule(metric="accuracy", op=">=", value=0.9),))
    assert compile_pipeline(penguins(steps)).pipeline.step("release").registry is None


def test_fairness_rule_makes_the_gate_read_predictions():
    rule = ir.FairnessRule(measure="demographic_parity", column="sex", op="<=", value=0.1)
    steps = replace(penguins_steps(), "release", rules=(rule,))
    gate = compile_pipeline(penguins(steps)).pipeline.step("release")
    assert str(gate.predictions) == "species_eval.predictions"


def test_duplicate_step_names_point_at_the_first():
    steps = penguins_steps() + [ir.Source(name="penguins", format="csv", path="x.csv", span=span(50))]
    diag = next(d for d in diagnostics(penguins(steps)) if d.code == "E201")
    assert diag.message == "step 'penguins' is defined twice"
    assert diag.span.line == 50 and diag.hint == "first defined at penguins.mlops:11:3"


def test_duplicate_params():
    pipeline = penguins()
    pipeline = pipeline.model_copy(update={"params": pipeline.params + (ir.Param(name="test_size", type="int"),)})
    assert "E202" in codes(pipeline)


def test_unknown_step_offers_did_you_mean():
    steps = replace(penguins_steps(), "species_eval", model=ref("species_modle", line=33))
    diag = only(penguins(steps), "E203")
    assert diag.message == "evaluate species_eval: 'model' refers to an unknown step 'species_modle'"
    assert diag.hint == "did you mean 'species_model'?" and diag.span.line == 33


def test_unknown_port():
    steps = replace(penguins_steps(), "species_model", data=ref("penguins_split", "trian", 24))
    diag = only(penguins(steps), "E204")
    assert diag.message == "train species_model: unknown output of split 'penguins_split' 'trian'"
    assert diag.hint == "did you mean 'train'?"


def test_split_ref_needs_a_port():
    steps = replace(penguins_steps(), "species_model", data=ref("penguins_split", line=24))
    diag = only(penguins(steps), "E205")
    assert "split has two outputs: name one of train, test" in diag.message


def test_wrong_kind_reference_names_both_ends():
    steps = replace(penguins_steps(), "species_eval", model=ref("penguins", line=33))
    diag = only(penguins(steps), "E301")
    assert diag.message == ("evaluate species_eval: 'model' expects a Model, got Dataset 'penguins' "
                            "(defined at penguins.mlops:11:3)")
    assert diag.hint == "Model outputs in this spec: species_model"


def test_cycle_is_printed_as_a_path():
    steps = replace(penguins_steps(), "penguins_split", data=ref("species_eval", "predictions", 22))
    diag = [d for d in diagnostics(penguins(steps)) if d.code == "E210"]
    assert [d.message for d in diag] == ["cycle: penguins_split -> species_model -> species_eval -> penguins_split"]


def test_self_reference():
    steps = replace(penguins_steps(), "penguins_split", after=(ref("penguins_split"),))
    assert "E210" in codes(penguins(steps))


def test_unknown_param_and_wrong_param_type():
    steps = replace(penguins_steps(), "penguins_split", test_size=ir.ParamRef(name="tst_size"),
                    seed=ir.ParamRef(name="min_accuracy"))
    found = diagnostics(penguins(steps))
    assert [d.code for d in found] == ["E206", "E302"]
    assert found[0].hint == "did you mean 'test_size'?"
    assert found[1].message == "split penguins_split: 'seed' expects int, but params.min_accuracy is float"


def test_param_default_must_have_its_type():
    pipeline = penguins()
    bad = ir.Param(name="n", type="int", default="many", span=span(9))
    diag = only(pipeline.model_copy(update={"params": pipeline.params + (bad,)}), "E302")
    assert diag.message == "param 'n' is int, its default 'many' is not"


def test_overrides_are_typed_and_range_checked():
    assert compile_pipeline(penguins(), {"test_size": "0.3"}).params["test_size"] == 0.3
    assert "is float" in only(penguins(), "E302", {"test_size": "big"}).message
    assert only(penguins(), "E206", {"test_sise": "0.3"}).hint == "did you mean 'test_size'?"
    diag = only(penguins(), "E303", {"test_size": "1.5"})
    assert diag.message == "split penguins_split: 'test_size' must be between 0 and 1 (exclusive), got 1.5"


def test_columns_are_checked_only_when_declared():
    steps = replace(penguins_steps(), "species_model", target="specis")
    assert codes(penguins(steps)) == []
    steps = replace(steps, "penguins", columns=("species", "bill_length_mm", "island", "sex"))
    diag = only(penguins(steps), "E207")
    assert diag.message == "train species_model: unknown column of 'penguins_split.train' 'specis'"
    assert diag.hint == "did you mean 'species'?"


def test_coerced_columns_are_among_the_declared_ones():
    steps = replace(penguins_steps(), "penguins", columns=("species", "bill_length_mm", "island", "sex"),
                    coerce=("bill_lenght_mm",))
    diag = only(penguins(steps), "E207")
    assert diag.message == "source penguins: unknown column 'bill_lenght_mm'"
    assert diag.hint == "did you mean 'bill_length_mm'?"


def test_drift_and_fairness_columns():
    steps = replace(penguins_steps(), "penguins_2009", columns=("bill_length_mm",))
    steps = replace(steps, "species_drift", drift=(
        ir.DriftRule(statistic="psi", column="bill_lenght_mm", op=">", threshold=0.2, action="alert"),
        ir.DriftRule(statistic="psi", column="prediction", op=">", threshold=0.2, action="alert")))
    assert codes(penguins(steps)) == ["E207"]


def test_target_may_not_be_a_feature():
    steps = replace(penguins_steps(), "species_model", features=("species", "island"))
    assert "the target 'species' is also a feature" in only(penguins(steps), "E303").message


def test_metric_names():
    steps = replace(penguins_steps(), "species_eval", metrics=("accuracy", "f1_macor"))
    assert only(penguins(steps), "E208").hint == "did you mean 'f1_macro'?"
    steps = replace(penguins_steps(), "species_eval", metrics=("accuracy",))
    diag = only(penguins(steps), "E211")
    assert diag.message == "gate release: 'f1_macro' is not computed by evaluate species_eval"
    steps = replace(penguins_steps(), "species_eval", metrics=("accuracy", "f1_macro", "rmse"))
    assert only(penguins(steps), "E306").message.startswith("evaluate species_eval: 'rmse' is a regression metric")


def test_estimators_are_checked_against_the_allowlist():
    def with_estimator(name: str, **params) -> list[ir.Step]:
        return replace(penguins_steps(), "species_model", estimator=ir.Estimator(name=name, params=params),
                       tune=None)

    assert only(penguins(with_estimator("sklearn.tree.RandomForestClassifier")), "E209").hint == \
        "did you mean 'sklearn.ensemble.RandomForestClassifier'?"
    assert "allow estimators" in only(penguins(with_estimator("xgboost.XGBClassifier")), "E209").hint
    assert codes(penguins(with_estimator("xgboost.XGBClassifier"), estimators=("xgboost.XGBClassifier",))) == []
    diag = only(penguins(with_estimator("sklearn.ensemble.RandomForestClassifier", n_estimator=3)), "E212")
    assert diag.hint == "did you mean 'n_estimators'?"
    steps = replace(penguins_steps(), "species_model", tune=ir.Tune(method="grid", space={"max_dept": (4, 6)}))
    assert only(penguins(steps), "E212").hint == "did you mean 'max_depth'?"
    steps = replace(penguins_steps(), "species_model", task="regression")
    assert "E306" in codes(penguins(steps))


@pytest.mark.parametrize("step, update, code", [
    ("species_model", {"tune": ir.Tune(method="grid", space={"max_depth": (4,)}, cv=1)}, "E303"),
    ("species_model", {"retries": -1}, "E303"),
    ("species_model", {"resources": ir.Resources(memory="4GB")}, "E305"),
    ("species_model", {"resources": ir.Resources(cpu=0)}, "E303"),
    ("penguins", {"path": None}, "E308"),
    ("species_drift", {"schedule": "0 25 * * *"}, "E304"),
])
def test_value_ranges(step, update, code):
    assert only(penguins(replace(penguins_steps(), step, **update)), code)


def test_pipeline_schedule_is_cron():
    assert only(penguins(schedule="every monday"), "E304").message == \
        "invalid schedule 'every monday': expected 5 fields (minute hour day-of-month month day-of-week), got 2"


def test_score_needs_exactly_one_of_model_or_registry():
    score = ir.Score(name="batch", data=ref("penguins_2009"), model=ref("species_model"), registry="r")
    assert only(penguins(penguins_steps() + [score]), "E307")
    score = ir.Score(name="batch", data=ref("penguins_2009"), registry="r")
    assert codes(penguins(penguins_steps() + [score])) == []


def test_warnings_do_not_stop_the_program():
    steps = replace(penguins_steps(), "species_service", after=())
    steps.append(ir.Source(name="old", format="csv", path="old.csv", span=span(60)))
    program = compile_pipeline(penguins(steps))
    assert [d.code for d in program.diagnostics] == ["W401", "W402"]
    assert all(not d.is_error for d in program.diagnostics)


def test_a_check_on_data_nobody_reads_warns():
    steps = penguins_steps() + [ir.Check(name="late", data=ref("penguins_2009"), span=span(70))]
    steps = replace(steps, "species_drift", current=ref("penguins", line=44))
    assert codes(penguins(steps)) == ["W403"]


def test_all_errors_are_reported_together_in_position_order():
    steps = replace(penguins_steps(), "species_eval", model=ref("nope", line=33), metrics=("acc",))
    steps = replace(steps, "penguins_split", test_size=2.0)
    found = diagnostics(penguins(steps))
    assert [d.code for d in found] == ["E303", "E203", "E208"]
    lines = [d.span.line for d in found if d.span]
    assert lines == sorted(lines)


def test_passes_are_small_named_functions():
    for apply in PASSES:
        assert apply.__name__.split("_")[0] in ("check", "fill", "guard", "link", "add", "warn"), apply.__name__
        assert apply.__doc__ is None or apply.__module__.startswith("mlopsc.compiler.passes")


# ---------------------------------------------------------------- robustness

NAMES = ["penguins", "penguins_2009", "penguins_quality", "penguins_split", "species_model", "species_eval",
         "release", "species_service", "species_drift", "nope"]
PORTS = [None, "data", "train", "test", "model", "metrics", "predictions", "report", "decision", "x"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_passes_never_crash_on_arbitrary_wiring(data):
    """Rewire references at random (unknown steps, wrong ports, cycles, self references, missing
    params): the front end must answer with diagnostics, never with an exception of its own."""
    steps = penguins_steps()
    for _ in range(data.draw(st.integers(1, 6))):
        step = data.draw(st.sampled_from(steps))
        fields = list(step.inputs()) + ["after"]
        field = data.draw(st.sampled_from(fields))
        target = ref(data.draw(st.sampled_from(NAMES)), data.draw(st.sampled_from(PORTS)))
        value = (target,) if field == "after" else target
        steps = replace(steps, step.name, **{field: value})
    if data.draw(st.booleans()):
        steps = replace(steps, "penguins_split", test_size=ir.ParamRef(name=data.draw(st.sampled_from(
            ["test_size", "min_accuracy", "zz"]))))
    if data.draw(st.booleans()):
        steps = steps + [data.draw(st.sampled_from(steps))]        # a duplicate
    try:
        program = compile_pipeline(penguins(steps))
    except SpecError as exc:
        assert exc.diagnostics and any(d.is_error for d in exc.diagnostics)
        return
    program.graph.order()
    program.graph.pipeline_steps()


def test_shipped_estimator_list_matches_installed_sklearn():
    """compiler/sklearn_estimators.json is generated; regenerate it after a scikit-learn upgrade
    (`python -m mlopsc.compiler.estimators > compiler/sklearn_estimators.json`)."""
    import json

    from mlopsc.compiler import estimators

    pytest.importorskip("sklearn")
    shipped = json.loads(estimators.DATA_FILE.read_text())
    assert shipped == estimators.generate(), "compiler/sklearn_estimators.json is stale: regenerate it"


def _private_modules(text: str) -> list[str]:
    """The dotted names in `text` with a part that starts with `_` (a module users must not import)."""
    return [name for name in re.findall(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", text)
            if any(part.startswith("_") for part in name.split("."))]


def test_every_shipped_estimator_name_is_the_public_path_scikit_learn_exports():
    """Each name in sklearn_estimators.json imports, and gives the very class scikit-learn lists
    (`sklearn.ensemble.HistGradientBoostingClassifier`, not its private module's path)."""
    import importlib

    pytest.importorskip("sklearn")
    from mlopsc.compiler.estimators import sklearn_estimators
    from sklearn.utils import all_estimators

    listed = dict(all_estimators())
    for name in sklearn_estimators():
        module, _, cls_name = name.rpartition(".")
        assert not _private_modules(name), name
        assert getattr(importlib.import_module(module), cls_name) is listed[cls_name], name
    assert "sklearn.ensemble.HistGradientBoostingClassifier" in sklearn_estimators()
    assert "sklearn.linear_model.PoissonRegressor" in sklearn_estimators()


def test_every_estimator_scikit_learn_lists_has_a_public_path():
    pytest.importorskip("sklearn")
    from mlopsc.compiler.estimators import _public_module
    from sklearn.utils import all_estimators

    for name, cls in all_estimators():
        assert not _private_modules(f"{_public_module(cls)}.{name}"), (name, cls.__module__)


def test_no_estimator_hint_names_a_private_module():
    """Whatever near miss a user writes (the class's private module, no module, another module, a
    typo), the hint offers a name they can import."""
    pytest.importorskip("sklearn")
    from mlopsc.compiler.estimators import sklearn_estimators
    from mlopsc.compiler.passes.estimator_names import _estimator_hint
    from sklearn.utils import all_estimators

    modules = {cls_name: cls.__module__ for cls_name, cls in all_estimators()}
    for name in sklearn_estimators():
        cls_name = name.rpartition(".")[2]
        for written in (f"{modules[cls_name]}.{cls_name}", cls_name, f"sklearn.tree.{cls_name}",
                        f"sklearn.{cls_name[:-1]}", name[:-1]):
            hint = _estimator_hint(written, ())
            assert not _private_modules(hint), (written, hint)
    private = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
    assert _estimator_hint(private, ()) == "did you mean 'sklearn.ensemble.HistGradientBoostingClassifier'?"


def test_hist_gradient_boosting_by_its_documented_name():
    steps = replace(penguins_steps(), "species_model", tune=None, estimator=ir.Estimator(
        name="sklearn.ensemble.HistGradientBoostingClassifier", params={"max_iter": 50}))
    assert diagnostics(penguins(steps)) == []


def test_a_time_split_cannot_stratify():
    steps = replace(penguins_steps(), "penguins_split", time_column="year")
    assert "exclude each other" in only(penguins(steps), "E303").message


EXAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in specs_in(ROOT / "specs")]
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?")
WORDS = sorted({w for text in EXAMPLE_TEXTS for w in WORD.findall(text)} | {"0", "-1", "1.5", "99999", "nope"})


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_specs_with_swapped_names_give_diagnostics_not_exceptions(data):
    """Swap names and numbers of the example specs for others (a step name where a column goes, a
    metric where a port goes ...): mostly valid syntax with wrong meaning, which is what the passes
    judge. Parse + passes must answer with a Program or a SpecError that renders."""
    text = data.draw(st.sampled_from(EXAMPLE_TEXTS))
    matches = list(WORD.finditer(text))
    for _ in range(data.draw(st.integers(1, 5))):
        match = data.draw(st.sampled_from(matches))
        replacement = data.draw(st.sampled_from(WORDS))
        text = text[:match.start()] + replacement + text[match.end():]
        matches = list(WORD.finditer(text))
    try:
        program = loads(text, "fuzz.mlops")
    except SpecError as exc:
        assert any(d.is_error for d in exc.diagnostics)
        for diag in exc.diagnostics:
            render(diag, text)
        return
    program.graph.order()


# ---------------------------------------------------------------- served sources and monitor rules


def served_monitor(*rules: ir.Node, drift: tuple = ()) -> ir.Pipeline:
    """penguins with `source live { served = species_service }` as the monitor's current data."""
    live = ir.Source(name="live", format="served", served="species_service", window=3600.0)
    steps = replace(penguins_steps(), "species_drift", current=ref("live"), rules=rules, drift=drift)
    return penguins([live, *(s for s in steps if s.name != "penguins_2009")])


def test_a_served_source_gets_its_deploys_registry_and_adds_no_edge():
    from mlopsc.compiler.graph import PipelineGraph

    pipeline = compile_pipeline(served_monitor()).pipeline
    assert pipeline.step("live").registry == "penguins-species"
    graph = PipelineGraph(pipeline)
    assert graph.upstream("live") == [] and "live" not in graph.pipeline_steps()   # read by the monitor only


def test_served_columns_are_the_features_and_the_logs_and_any_proba_column():
    rules = (ir.DriftRule(statistic="psi", column=c, op=">", threshold=0.2, action="alert")
             for c in ("bill_length_mm", "latency_ms", "label", "proba_Adelie", "prediction"))
    assert diagnostics(served_monitor(drift=tuple(rules))) == []
    typo = ir.DriftRule(statistic="psi", column="latency_s", op=">", threshold=0.2, action="alert", span=span(9))
    found = [d for d in diagnostics(served_monitor(drift=(typo,))) if d.code == "E207"]
    assert found and found[0].hint == "did you mean 'latency_ms'?" and "*" not in (found[0].hint or "")


def test_monitor_rules_need_a_served_current_and_a_metric_of_the_models_task():
    accuracy = ir.MetricRule(metric="accuracy", op="<", threshold=0.85, action="retrain")
    latency = ir.LatencyRule(percentile="p95", op=">", threshold_ms=50, action="alert")
    assert diagnostics(served_monitor(accuracy, latency)) == []
    offline = replace(penguins_steps(), "species_drift", rules=(latency,))
    assert "a latency rule reads a served prediction log" in only(penguins(offline), "E310").message
    rmse = ir.MetricRule(metric="rmse", op=">", threshold=3, action="alert")
    assert only(served_monitor(rmse), "E306").message.endswith("'rmse' is a regression metric, but the model "
                                                                "does classification")
