"""The parser: every construct of the language becomes the IR it should, with spans, and every
mistake becomes a positioned diagnostic in words."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from mlopsc.compiler import ir
from mlopsc.compiler.errors import SpecError
from mlopsc.compiler.parser import GRAMMAR, parse
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent
SPECS = specs_in(ROOT / "specs")

# Every construct of the language, once.
EVERYTHING = r'''
# a comment
pipeline everything {
  description = "All of it \"quoted\" \u00e9"
  schedule = "0 6 * * 1"
  allow estimators ["xgboost.XGBClassifier", lightgbm.LGBMClassifier]

  params {
    test_size: float = 0.25 "fraction held out"
    depth: int = 6
    name: str = "x"
    verbose: bool = false
    threshold: float
  }

  source raw {
    csv = "data/penguins.csv"
    filter = "year < 2009"
    columns = [species, island, year]
    types { year: int  island: category }
    coerce = [year]
    resources { cpu = "500m"  memory = "1Gi"  gpu = 1  gpu_type = "nvidia-tesla-t4" }
    retries = 3
    retry_delay = "30s"
    timeout = "10m"
    cache = off
  }
  source lake { parquet = "data/x.parquet" }
  source db { sql = env("DB_URL")  table = "wines" }
  source db2 { sql = secret("db-creds", "url")  query = "SELECT 1" }

  check quality on raw {
    rows >= 200
    rows < params.depth
    column species in ["Adelie", "Gentoo", 3, true]
    column bill: float between 25 and params.depth, nulls <= 0.02
    column sex: category nullable
    column id unique
    column code: str matches "^[A-Z]+$", not nullable, nulls == 0
    column age: int >= 0, <= 120
    column flag
    expect "a > b"
    on_fail = warn
  }

  split parts from raw { test_size = params.test_size  seed = 7  stratify = species }
  split by_time { data = raw  test_size = 0.2  time_column = year  after = [quality] }

  train model on parts.train {
    target = species
    features = [island, year]
    task = classification
    estimator = sklearn.ensemble.RandomForestClassifier { n_estimators = 300  max_depth = params.depth
                                                          class_weight = balanced  bootstrap = true
                                                          min_impurity_decrease = -0.5  key = env("K") }
    preprocessing {
      numeric_impute = mean
      scale = false
      categorical_impute = constant
      encode = ordinal
      max_categories = 30
      numeric = [year]
      categorical = [island]
    }
    seed = params.depth
    tune random { max_depth = [4, 6, 8]  criterion = ["gini", "entropy"] } cv = 3 metric = f1_macro n_iter = 20 seed = 1
    retries = 2
  }
  train plain on parts.train {
    target = species  estimator = sklearn.linear_model.LogisticRegression  missing_target = drop
  }

  evaluate scores { model = model  data = parts.test  metrics = [accuracy, f1_macro] }

  gate release on scores {
    require accuracy >= 0.9
    require accuracy > params.threshold
    require f1_macro >= champion.f1_macro - 0.01
    require f1_macro < champion.f1_macro + 1
    require f1_macro >= champion.f1_macro
    require demographic_parity(sex) <= 0.1
    require equal_opportunity(island) < 0.2
    no_champion = fail
    registry = "penguins"
    alias = "prod"
  }

  deploy service from model {
    after = release
    registry = "penguins-species"
    alias = "champion"
    serving { replicas = 2  port = 8080  cpu = 1  memory = "1Gi" }
  }

  score nightly on lake { registry = "penguins-species"  alias = "champion"  output = "out/scores.parquet" }
  score fresh { data = lake  model = model }

  monitor watch {
    model = model
    reference = parts.train
    current = lake
    drift psi(bill) > 0.2 -> retrain
    drift ks(flipper) pvalue < 0.01 -> alert
    drift chi2(island) pvalue <= 0.05 -> alert
    schedule = "0 * * * *"
    webhook = secret("hooks", "slack")
    timeout = 600
  }
}
'''


def errors_of(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        parse(text, "t.mlops")
    return caught.value.diagnostics


def only_error(text: str):
    found = errors_of(text)
    assert len(found) == 1, [d.message for d in found]
    return found[0]


def wrap(body: str) -> str:
    return "pipeline p {\n" + body + "\n}\n"


# ---------------------------------------------------------------- the examples


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_every_example_parses(spec: Path):
    text = spec.read_text(encoding="utf-8")
    pipeline = parse(text, str(spec))
    assert pipeline.steps
    assert pipeline.spec_hash == hashlib.sha256(text.encode()).hexdigest()
    assert pipeline.source_file == str(spec)
    for step in pipeline.steps:
        assert step.span is not None and step.span.file == str(spec)
        assert {"kind", "name"} <= set(step.spans)


def test_penguins_facts():
    text = (ROOT / "specs" / "penguins.mlops").read_text()
    lines = text.splitlines()

    def position(line_text: str, word: str, nth: int = 0) -> tuple[int, int]:
        """1-based (line, col) of `word` after `nth` earlier occurrences on the first line holding line_text."""
        number = next(i for i, line in enumerate(lines, 1) if line_text in line)
        col = -1
        for _ in range(nth + 1):
            col = lines[number - 1].index(word, col + 1)
        return number, col + 1

    pipeline = parse(text, "penguins.mlops")
    assert pipeline.name == "penguins"
    assert pipeline.schedule == "0 6 * * 1"
    assert [(p.name, p.type, p.default) for p in pipeline.params] == [
        ("test_size", "float", 0.25), ("min_accuracy", "float", 0.9)]
    quality = pipeline.step("penguins_quality")
    assert quality.data == ir.Ref(step="penguins", span=quality.data.span)
    line, col = position("check penguins_quality on penguins", "penguins", nth=1)
    assert (quality.data.span.line, quality.data.span.col, quality.data.span.end_col) == (line, col, col + 8)
    length = quality.rules[2]
    assert (length.column, length.dtype, length.min, length.max, length.max_null_fraction) == (
        "bill_length_mm", "float", 25, 70, 0.02)
    assert (length.spans["max"].line, length.spans["max"].col) == position("column bill_length_mm", "70")
    split = pipeline.step("penguins_split")
    assert split.test_size == ir.ParamRef(name="test_size", span=split.test_size.span)
    assert split.stratify == "species" and split.seed == 7
    model = pipeline.step("species_model")
    assert model.data.step == "penguins_split" and model.data.port == "train"
    assert model.estimator.params == {"n_estimators": 300, "max_depth": 6}
    assert model.tune.space == {"max_depth": (4, 6, 8)} and model.tune.cv == 5 and model.tune.metric == "accuracy"
    assert model.resources.cpu == 2 and model.resources.memory == "4Gi" and model.retries == 2
    assert (model.spans["features.5"].line, model.spans["features.5"].col) == position("features", "sex")
    gate = pipeline.step("release")
    assert isinstance(gate.rules[1], ir.ChampionRule) and gate.rules[1].delta == -0.01
    deploy = pipeline.step("species_service")
    assert [str(r) for r in deploy.after] == ["release"]
    monitor = pipeline.step("species_drift")
    assert [(d.statistic, d.column, d.measure, d.op, d.threshold, d.action) for d in monitor.drift] == [
        ("psi", "bill_length_mm", "value", ">", 0.2, "retrain"),
        ("ks", "flipper_length_mm", "pvalue", "<", 0.01, "alert")]


def test_sql_example_reads_its_connection_from_the_environment():
    pipeline = parse((ROOT / "specs" / "wine_sql.mlops").read_text(), "wine_sql.mlops")
    wines = pipeline.step("wines")
    assert wines.format == "sql" and wines.connection == ir.EnvRef(name="WINE_DB_URL", span=wines.connection.span)
    assert wines.query.startswith("SELECT") and wines.types == {"cultivar": "category", "magnesium": "float"}


# ---------------------------------------------------------------- every construct


@pytest.fixture(scope="module")
def everything() -> ir.Pipeline:
    return parse(EVERYTHING, "everything.mlops")


def test_pipeline_level(everything):
    assert everything.description == 'All of it "quoted" \u00e9'
    assert everything.estimators == ("xgboost.XGBClassifier", "lightgbm.LGBMClassifier")
    assert everything.spans["estimators.1"].line == 6
    params = {p.name: p for p in everything.params}
    assert params["test_size"].description == "fraction held out"
    assert params["verbose"].default is False and params["threshold"].default is None


def test_sources(everything):
    raw = everything.step("raw")
    assert (raw.format, raw.path, str(raw.filter), raw.columns) == (
        "csv", "data/penguins.csv", "year < 2009", ("species", "island", "year"))
    assert raw.types == {"year": "int", "island": "category"}
    coerce_line = EVERYTHING.splitlines().index("    coerce = [year]") + 1
    assert raw.coerce == ("year",) and (raw.spans["coerce.0"].line, raw.spans["coerce.0"].col) == (coerce_line, 15)
    assert raw.resources == ir.Resources(cpu=0.5, memory="1Gi", gpu=1, gpu_type="nvidia-tesla-t4",
                                         spans=raw.resources.spans)
    assert (raw.retries, raw.retry_delay, raw.timeout, raw.cache) == (3, 30.0, 600.0, False)
    assert everything.step("lake").format == "parquet"
    assert everything.step("db").table == "wines"
    assert everything.step("db2").connection == ir.SecretRef(name="db-creds", key="url",
                                                             span=everything.step("db2").connection.span)


def test_check_rules(everything):
    quality = everything.step("quality")
    rows, rows_param, species, bill, sex, ident, code, age, flag, expect = quality.rules
    assert (rows.op, rows.value) == (">=", 200) and rows_param.value.name == "depth"
    assert species.allowed == ("Adelie", "Gentoo", 3, True)
    assert bill.max == ir.ParamRef(name="depth", span=bill.max.span)
    assert sex.nullable is True and ident.unique is True
    assert (code.regex, code.nullable, code.max_null_fraction) == ("^[A-Z]+$", False, 0.0)
    assert (age.min, age.max) == (0, 120)
    assert flag == ir.ColumnRule(column="flag", span=flag.span, spans=flag.spans)
    assert str(expect.expression) == "a > b" and expect.expression.tree.op == ">" and quality.on_fail == "warn"


def test_split_and_train(everything):
    by_time = everything.step("by_time")
    assert by_time.time_column == "year" and by_time.data.step == "raw" and by_time.after[0].step == "quality"
    model = everything.step("model")
    assert model.estimator.params["class_weight"] == "balanced"
    assert model.estimator.params["bootstrap"] is True and model.estimator.params["min_impurity_decrease"] == -0.5
    assert model.estimator.params["key"] == ir.EnvRef(name="K", span=model.estimator.params["key"].span)
    assert model.estimator.params["max_depth"] == ir.ParamRef(name="depth", span=model.estimator.spans["max_depth"])
    assert model.preprocessing.model_dump(exclude={"spans"}) == {
        "numeric_impute": "mean", "scale": False, "categorical_impute": "constant", "encode": "ordinal",
        "max_categories": 30, "numeric": ("year",), "categorical": ("island",)}
    assert model.seed.name == "depth" and model.task == "classification"
    tune = model.tune
    assert (tune.method, tune.cv, tune.metric, tune.n_iter, tune.seed) == ("random", 3, "f1_macro", 20, 1)
    assert tune.space == {"max_depth": (4, 6, 8), "criterion": ("gini", "entropy")}
    assert model.retries == 2 and everything.step("plain").estimator.params == {}
    assert model.missing_target == "fail" and everything.step("plain").missing_target == "drop"


def test_gate_rules(everything):
    gate = everything.step("release")
    kinds = [(type(r).__name__, getattr(r, "value", None), getattr(r, "delta", None)) for r in gate.rules]
    assert kinds[0] == ("ThresholdRule", 0.9, None)
    assert kinds[2:5] == [("ChampionRule", None, -0.01), ("ChampionRule", None, 1), ("ChampionRule", None, 0)]
    parity, opportunity = gate.rules[5:]
    assert (parity.measure, parity.column, parity.op, parity.value) == ("demographic_parity", "sex", "<=", 0.1)
    assert opportunity.measure == "equal_opportunity"
    assert (gate.no_champion, gate.registry, gate.alias) == ("fail", "penguins", "prod")


def test_deploy_score_monitor(everything):
    service = everything.step("service")
    assert service.model.step == "model" and service.serving.replicas == 2 and service.serving.cpu == 1.0
    nightly = everything.step("nightly")
    assert (nightly.data.step, nightly.registry, nightly.output) == ("lake", "penguins-species", "out/scores.parquet")
    assert everything.step("fresh").model.step == "model"
    watch = everything.step("watch")
    assert watch.drift[2].statistic == "chi2" and watch.drift[2].op == "<="
    assert watch.webhook.key == "slack" and watch.timeout == 600


def test_spans_are_one_based_and_end_exclusive():
    pipeline = parse('pipeline p {\n  source s { csv = "a.csv" }\n}', "x.mlops")
    span = pipeline.step("s").spans["path"]
    assert (span.line, span.col, span.end_line, span.end_col) == (2, 20, 2, 27)
    assert pipeline.step("s").spans["name"].col == 10


def test_tune_owns_only_the_options_right_after_it():
    pipeline = parse(wrap('train t on d { target = y  estimator = a.B\n'
                          '  tune grid { x = [1] } cv = 3  retries = 1  seed = 9 }'))
    train = pipeline.step("t")
    assert (train.tune.cv, train.tune.seed, train.seed, train.retries) == (3, 0, 9, 1)


def test_keywords_stay_usable_as_names():
    pipeline = parse(wrap('check c on rows { column rows: int  column unique unique }\n'
                          'split s from d { stratify = column }'))
    check = pipeline.step("c")
    assert check.data.step == "rows" and check.rules[0].column == "rows" and check.rules[1].unique
    assert pipeline.step("s").stratify == "column"


# ---------------------------------------------------------------- mistakes


def test_the_lexer_knows_every_terminal_of_the_grammar():
    from mlopsc.compiler.lexer import TERMINALS
    from mlopsc.compiler.parser import grammar_parser

    grammar = {t.name for t in grammar_parser().terminals if t.name != "COMMENT" and not t.name.startswith("__")}
    assert TERMINALS == grammar


def test_grammar_has_no_lalr_conflicts(caplog):
    from lark import Lark, logger

    logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="lark"):
            Lark(GRAMMAR.read_text(), parser="lalr", debug=True)
    finally:
        logger.setLevel(logging.WARNING)
    assert not [r for r in caplog.records if "conflict" in r.getMessage().lower()]


@pytest.mark.parametrize("text, code, line, col, words", [
    ('pipeline p {\n  source a { csv = "x.csv"\n  split b from a { }\n}', "E101", 3, 9, "'}' missing"),
    ("pipeline p {\n  trian m on a { }\n}", "E104", 2, 3, "did you mean 'train'"),
    ('pipeline p {\n  description = "open\n}', "E102", 2, 17, "unterminated"),
    ("pipeline p {\n  split s from a { test_size 0.2 }\n}", "E101", 2, 30, "`test_size = value`"),
    ("junk\npipeline p { }", "E101", 1, 1, "pipeline NAME"),
    ("pipeline p { }\n}", "E101", 2, 1, "one too many"),
    ("pipeline p { }\nsource a { }", "E101", 2, 1, "inside `pipeline"),
    ("pipeline p\n  source a { csv = \"x\" }\n}", "E101", 2, 3, None),
    ("pipeline p {\n  evaluate e { metrics = [a] model = m data = d }, \n}", "E101", 2, 50, "not commas"),
    ("pipeline p {\n  source a { csv = 'x' }\n}", "E103", 2, 20, "double quotes"),
    ("pipeline p {\n  source a { csv = \"x\" }\n", "E101", 2, 25, "never closed"),
    ('pipeline p {\n  source a { csv = "\\q" }\n}', "E106", 2, 20, "JSON escapes"),
    ("pipeline p {\n  train { }\n}", "E105", 2, 3, "train NAME"),
    ("pipeline p {\n  source a { cvs = \"x\" }\n}", "E250", 2, 14, "did you mean 'csv'"),
    ("pipeline p {\n  split s from a { seed = 1  seed = 2 }\n}", "E251", 2, 30, "first given at line 2"),
    ("pipeline p {\n  split s from a { seed = x }\n}", "E350", 2, 27, None),
    ("pipeline p {\n  train t on a { target = y }\n}", "E351", 2, 9, "add `estimator = ...`"),
    ("pipeline p {\n  check c on a { on_fail = stpo }\n}", "E352", 2, 28, "did you mean 'stop'"),
    ("pipeline p {\n  train t on a { target = y  estimator = a.B  missing_target = skip }\n}", "E352", 2, 64,
     "one of fail, drop"),
    ("pipeline p {\n  train t on a { target = y  estimator = a.B  rows >= 1 }\n}", "E252", 2, 47, None),
    ("pipeline p {\n  monitor m on a { reference = a  current = b }\n}", "E253", 2, 13, "reference = "),
    ("pipeline p {\n  source a { }\n}", "E351", 2, 10, "csv = "),
    ("pipeline p {\n  source a { sql = \"postgres://u:pw@h/db\" }\n}", "E350", 2, 20, "credentials"),
    ("pipeline p {\n  gate g on e { require acc >= champion.f1 }\n}", "E350", 2, 32, None),
    ("pipeline p {\n  check c on params.x { }\n}", "E350", 2, 14, "expected a step"),
    ("pipeline p {\n  description = 5\n}", "E350", 2, 17, "double quotes"),
    ("pipeline p {\n  check c { }\n}", "E351", 2, 9, "add `data = ...`"),
    ('pipeline p {\n  source a { csv = "a"  types { x: int  x: str } }\n}', "E251", 2, 41, "'x' is given twice"),
    ("", "E101", 1, 1, None),
])
def test_mistakes_are_positioned_and_in_words(text, code, line, col, words):
    diag = only_error(text)
    assert (diag.code, diag.span.line, diag.span.col) == (code, line, col), diag
    assert diag.span.file == "t.mlops"
    if words:
        assert words in diag.message + " " + (diag.hint or "")


def test_lark_names_never_reach_the_user():
    texts = ["pipeline p { source a { csv = [ } }", "pipeline p { gate g on e { require acc >= } }",
             "pipeline p { monitor m { drift psi(x) > 0.2 } }", "pipeline p { a = b. }", "pipeline",
             "pipeline p { check c on d { column x: } }", "pipeline p { x = f(1 }"]
    for text in texts:
        for diag in errors_of(text):
            assert "__ANON" not in diag.message and "RBRACE" not in diag.message and "NAME" not in diag.message
            assert "expected" in diag.message


def test_message_names_what_was_expected():
    assert only_error(wrap("source a { csv = \"x\" = }")).message == "expected '}' or a step option, found '='"
    assert only_error(wrap("source a on { }")).message == "expected a name, found '{'"
    assert only_error(wrap("source = ")).message == "expected a value, found '}'"


def test_independent_errors_are_all_reported():
    found = errors_of(wrap('source a { csv = "x" ; }\n  split s from a { seed 1 }\n  evaluate e { metrics = [a b] }'))
    assert [(d.code, d.span.line) for d in found] == [("E103", 2), ("E101", 3), ("E101", 4)]


def test_construction_errors_are_all_reported_in_order():
    found = errors_of(wrap("check c on a { column x: flaot }\n  split s from a { test_size = big  seed = 1.5 }"))
    assert [(d.code, d.span.line) for d in found] == [("E352", 2), ("E350", 3), ("E350", 3)]
    assert found[0].message.startswith("check c: column x:")


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(SpecError):
        parse(wrap("source a { columns = " + "[" * 3000 + "]" * 3000 + " }"))
    with pytest.raises(SpecError):
        parse(wrap("train t on d { target = y  estimator = a.B { p = " + "[" * 3000 + "]" * 3000 + " } }"))


def test_junk_costs_a_bounded_number_of_recoveries():
    found = errors_of("pipeline p { " + "= } ] [ { " * 5000)
    assert 1 <= len(found) <= 10


# ---------------------------------------------------------------- the examples' data


def test_diabetes_csv_has_the_columns_its_spec_names():
    import csv

    pipeline = parse((ROOT / "specs" / "diabetes.mlops").read_text(), "diabetes.mlops")
    with open(ROOT / "specs" / "data" / "diabetes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 442
    named = {r.column for r in pipeline.step("patients_quality").rules if isinstance(r, ir.ColumnRule)}
    named |= {pipeline.step("progression_model").target}
    assert named <= set(rows[0])


def test_wine_database_answers_the_specs_query(tmp_path):
    import sqlite3
    import sys

    sys.path.insert(0, str(ROOT / "specs" / "data"))
    try:
        from make_data import write_wine_db
    finally:
        sys.path.pop(0)
    db = write_wine_db(tmp_path / "wine.db")
    wines = parse((ROOT / "specs" / "wine_sql.mlops").read_text(), "wine_sql.mlops").step("wines")
    with sqlite3.connect(db) as conn:
        cursor = conn.execute(wines.query)
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description]
    assert len(rows) == 178 and columns == list(wines.columns)
    assert {row[columns.index("cultivar")] for row in rows} == {"class_0", "class_1", "class_2"}
