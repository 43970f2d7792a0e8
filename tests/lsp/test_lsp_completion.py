"""Completion as an editor receives it, on complete specs and on the half-written text of typing."""
from __future__ import annotations

import pytest
from lsp_client import REPO, at

PENGUINS = (REPO / "specs" / "penguins.mlops").read_text(encoding="utf-8")
URI = (REPO / "specs" / "lsp_completion.mlops").as_uri()
COLUMNS = ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"]


@pytest.fixture(scope="module")
def document(editor):
    editor.open(URI, PENGUINS)
    yield URI
    editor.close(URI)


def offered(editor, uri: str, text: str, needle: str, into: int | None = None, parsed: str = PENGUINS) -> list[str]:
    """Labels offered with the cursor `into` characters into `needle` (default: at its end), after
    the document held `parsed` (as when a user types into a spec that parsed)."""
    editor.change(uri, parsed)
    editor.change(uri, text)
    return editor.labels(uri, at(text, needle, len(needle) if into is None else into))


def typed(before: str, after: str) -> str:
    """The penguins spec with one line half written."""
    assert before in PENGUINS
    return PENGUINS.replace(before, after, 1)


@pytest.mark.parametrize("line, cursor, expected", [
    # references: outputs of the port type the option reads, never the step itself
    ("    model = species_model\n    data", "    model = ", ["species_model"]),
    ("    data = penguins_split.test\n", "    data = ",
     ["penguins", "penguins_2009", "penguins_split.train", "penguins_split.test"]),
    ("    data = penguins_split.test\n", "    data = penguins_split.", ["train", "test"]),
    ("    after = release\n", "    after = ", ["penguins", "penguins_2009", "penguins_quality", "penguins_split",
                                              "species_model", "species_eval", "release", "species_drift"]),
    ("    test_size = params.test_size\n", "    test_size = params.", ["test_size", "min_accuracy"]),
    ("  split penguins_split from penguins {", "  split penguins_split from ",
     ["penguins", "penguins_2009", "species_eval.predictions"]),
    ("  split penguins_split from penguins {", "  split penguins_split ", ["from", "on"]),
    # columns, from the CSV header beside the spec
    ("    target = species\n", "    target = ", COLUMNS),
    ("    stratify = species\n", "    stratify = ", COLUMNS),
    ("    column sex: category nullable\n", "    column ", COLUMNS),
    ("    drift psi(bill_length_mm) > 0.2 -> retrain\n", "    drift psi(", COLUMNS),
    # the vocabularies: metrics of the model's task, drift statistics, actions, choices of a field
    ("    require accuracy >= params.min_accuracy\n", "    require ",
     ["accuracy", "f1_macro", "demographic_parity", "equal_opportunity"]),
    ("    drift ks(flipper_length_mm) pvalue < 0.01 -> alert\n", "    drift ", ["psi", "ks", "chi2"]),
    ("    drift ks(flipper_length_mm) pvalue < 0.01 -> alert\n", "    drift ks(flipper_length_mm) pvalue < 0.01 -> ",
     ["alert", "retrain"]),
    ("    on_fail = stop\n", "    on_fail = ", ["stop", "warn"]),
    ("    column sex: category nullable\n", "    column sex: ", ["int", "float", "str", "bool", "category",
                                                                   "datetime"]),
    ("    test_size: float = 0.25\n", "    test_size: ", ["int", "float", "str", "bool"]),
    ('    filter = "year < 2009"\n', "    types { year: ", ["int", "float", "str", "bool", "category", "datetime"]),
])
def test_values_where_they_are_expected(editor, document, line, cursor, expected):
    text = typed(line, cursor + "\n")
    assert offered(editor, document, text, cursor) == expected


def test_metrics_fit_the_task_of_the_evaluated_model(editor, document):
    regression = PENGUINS.replace("sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.RandomForestRegressor")
    text = regression.replace("metrics = [accuracy, f1_macro]", "metrics = [")
    assert offered(editor, document, text, "metrics = [", parsed=regression) == ["mae", "mape", "r2", "rmse"]
    text = PENGUINS.replace("metrics = [accuracy, f1_macro]", "metrics = [accuracy, ")
    assert "f1_macro" in offered(editor, document, text, "metrics = [accuracy, ")
    assert "rmse" not in offered(editor, document, text, "metrics = [accuracy, ")


def test_option_keys_of_the_step_kind(editor, document):
    text = typed("    retries = 2\n", "    retries = 2\n    \n")
    keys = offered(editor, document, text, "    retries = 2\n    ")
    assert keys[:5] == ["retries", "retry_delay", "timeout", "cache", "after"]
    assert {"target", "features", "estimator", "resources", "preprocessing", "tune"} <= set(keys)
    assert "on_fail" not in keys and "drift" not in keys        # a check's, a monitor's
    monitor = offered(editor, document, typed('    schedule = "0 * * * *"\n', "    \n"), "\n    \n", 5)
    assert {"drift", "metric", "latency", "reference", "current", "webhook"} <= set(monitor)
    pipeline = offered(editor, document, typed("  source penguins_2009 {", "  \n  source penguins_2009 {"),
                       "  \n  source penguins_2009", 2)
    assert pipeline == ["source", "check", "split", "train", "evaluate", "gate", "deploy", "score", "monitor",
                        "description", "schedule", "params", "allow"]


def test_estimators_and_their_parameters(editor, document):
    text = typed("estimator = sklearn.ensemble.RandomForestClassifier { n_estimators = 300  max_depth = 6 }",
                 "estimator = sklearn.lin")
    editor.change(document, text)
    items = {i.label: i for i in editor.completion(document, at(text, "sklearn.lin", 11))}
    logistic = items["sklearn.linear_model.LogisticRegression"]
    # the whole dotted name typed so far is replaced
    assert (logistic.text_edit.range.start, logistic.text_edit.range.end) == (at(text, "sklearn.lin"),
                                                                               at(text, "sklearn.lin", 11))
    assert logistic.detail == "classification"
    regressors = typed("    target = species\n", "    target = species\n    task = regression\n")
    regressors = regressors.replace("estimator = sklearn.ensemble.RandomForestClassifier", "estimator = ")
    labels = offered(editor, document, regressors, "estimator = ", parsed=regressors.replace(
        "estimator = ", "estimator = sklearn.linear_model.Ridge"))
    assert "sklearn.linear_model.Ridge" in labels and "sklearn.linear_model.LogisticRegression" not in labels
    params = offered(editor, document, PENGUINS, "RandomForestClassifier { ")
    assert {"n_estimators", "max_depth", "class_weight"} <= set(params) and "alpha" not in params
    assert {"max_depth", "min_samples_leaf"} <= set(offered(editor, document, PENGUINS, "tune grid { "))


def test_a_step_being_written_is_completed_from_the_last_spec_that_parsed(editor, document):
    """The new step is not closed: the text does not parse, and the steps are still offered."""
    text = PENGUINS.rstrip().removesuffix("}") + "  evaluate second_eval {\n    model = \n"
    assert offered(editor, document, text, "    model = ") == ["species_model"]
    assert editor.change(document, text)[0].code == "E101"
    text = PENGUINS.rstrip().removesuffix("}") + "  monitor m {\n    reference = penguins_split.\n"
    assert offered(editor, document, text, "reference = penguins_split.") == ["train", "test"]


def test_declared_columns_are_offered_and_nothing_inside_strings(editor, document):
    declared = PENGUINS.replace('csv = "data/penguins.csv"\n    filter = "year < 2009"',
                                'csv = "data/penguins.csv"\n    columns = [species, island, year]')
    text = declared.replace("    target = species\n", "    target = \n")
    assert offered(editor, document, text, "    target = ", parsed=declared) == ["species", "island", "year"]
    assert offered(editor, document, PENGUINS, 'registry = "pen') == []


def test_a_served_source_names_a_deploy_step(editor, document):
    text = PENGUINS.replace('source penguins_2009 {\n    csv = "data/penguins.csv"',
                            "source penguins_2009 {\n    served = ")
    assert offered(editor, document, text, "served = ") == ["species_service"]
