"""Hover, go to definition, the outline, formatting and rename, as an editor receives them."""
from __future__ import annotations

import pytest
from lsp_client import REPO, apply, at
from lsprotocol import types
from mlopsc.compiler.fmt import format_spec
from pygls.exceptions import JsonRpcException

PENGUINS = (REPO / "specs" / "penguins.mlops").read_text(encoding="utf-8")
URI = (REPO / "specs" / "lsp_navigation.mlops").as_uri()


@pytest.fixture(scope="module")
def penguins(editor):
    assert editor.open(URI, PENGUINS) == []
    yield URI
    editor.close(URI)


def test_hover_on_a_reference_shows_the_step_its_port_and_where_it_is_defined(editor, penguins):
    hover = editor.hover(penguins, at(PENGUINS, "penguins_split.train", len("penguins_split.t")))
    assert hover.contents.value.splitlines() == [
        "**split** `penguins_split`", "",
        "`penguins_split.train`: Dataset", "",
        "outputs: `train`: Dataset, `test`: Dataset", "",
        "inputs: `data` = `penguins` (Dataset)", "",
        "defined at line 29"]
    # the range is the step's name, not `.train`
    assert hover.range.start == at(PENGUINS, "penguins_split.train")
    assert hover.range.end == at(PENGUINS, "penguins_split.train", len("penguins_split"))


def test_hover_on_a_step_definition_lists_its_inputs_and_ordering(editor, penguins):
    text = editor.hover(penguins, at(PENGUINS, "deploy species_service", 1)).contents.value
    assert text.startswith("**deploy** `species_service`")
    assert "outputs: `release`: Report (default)" in text
    assert "inputs: `model` = `species_model` (Model)" in text
    assert "after: `release`" in text


def test_hover_on_an_estimator_shows_its_task_and_parameters(editor, penguins):
    text = editor.hover(penguins, at(PENGUINS, "RandomForestClassifier", 6)).contents.value
    assert text.startswith("**estimator** `sklearn.ensemble.RandomForestClassifier`: a classification estimator")
    assert "`n_estimators`" in text and "`max_depth`" in text


def test_hover_on_a_param_shows_its_type_and_default(editor, penguins):
    text = editor.hover(penguins, at(PENGUINS, "params.min_accuracy", len("params.min"))).contents.value
    assert text == "**param** `params.min_accuracy`: float = 0.9\n\ndeclared at line 8"
    assert editor.hover(penguins, at(PENGUINS, "registry = ", 2)) is None


@pytest.mark.parametrize("reference, into, definition", [
    ("penguins_split.test", len("penguins_split.te"), "penguins_split from"),   # a port: its step
    ("params.test_size", len("params.test"), "test_size: float"),
    ("after = release", len("after = rel"), "release on"),
    ("on species_eval", len("on species"), "species_eval {"),
])
def test_go_to_definition(editor, penguins, reference, into, definition):
    location = editor.definition(penguins, at(PENGUINS, reference, into))
    name = definition.split()[0].rstrip(":")
    assert location.uri == penguins
    assert (location.range.start, location.range.end) == (at(PENGUINS, definition), at(PENGUINS, definition, len(name)))


def test_the_outline_lists_params_and_steps_with_their_kinds(editor, penguins):
    [pipeline] = editor.symbols(penguins)
    assert (pipeline.name, pipeline.kind) == ("penguins", types.SymbolKind.Module)
    assert [(s.name, s.detail) for s in pipeline.children] == [
        ("params.test_size", "float"), ("params.min_accuracy", "float"),
        ("penguins", "source"), ("penguins_2009", "source"), ("penguins_quality", "check"),
        ("penguins_split", "split (2 outputs)"), ("species_model", "train"), ("species_eval", "evaluate (2 outputs)"),
        ("release", "gate"), ("species_service", "deploy"), ("species_drift", "monitor")]
    model = pipeline.children[6]
    assert model.selection_range.start == at(PENGUINS, "species_model on")
    assert model.range.start == at(PENGUINS, "train species_model")


def test_formatting_is_mlopsc_fmt(editor):
    uri = (REPO / "specs" / "lsp_format.mlops").as_uri()
    messy = PENGUINS.replace("    seed = 7\n", "  seed=7   # fixed\n").replace("  params {", "\n\n  params    {")
    editor.open(uri, messy)
    assert apply(messy, editor.formatting(uri)) == format_spec(messy)
    editor.change(uri, PENGUINS)
    assert list(editor.formatting(uri)) == []
    editor.change(uri, PENGUINS.replace("seed = 7", "seed = "))
    assert editor.formatting(uri) is None           # does not parse: nothing to format, the diagnostic says why
    editor.close(uri)


def test_rename_a_step_everywhere_it_is_written(editor, penguins):
    edit = editor.rename(penguins, at(PENGUINS, "after = release", len("after = re")), "approval")
    renamed = apply(PENGUINS, edit.changes[penguins])
    assert renamed == PENGUINS.replace("gate release on", "gate approval on").replace("after = release",
                                                                                       "after = approval")
    edit = editor.rename(penguins, at(PENGUINS, "penguins_split from", 3), "parts")
    assert apply(PENGUINS, edit.changes[penguins]) == PENGUINS.replace("penguins_split", "parts")


def test_rename_a_param_in_options_and_in_expressions(editor):
    uri = (REPO / "specs" / "lsp_rename.mlops").as_uri()
    text = PENGUINS.replace('filter = "year < 2009"', 'filter = "year < params.last_year"') \
        .replace("    min_accuracy: float = 0.90\n", "    min_accuracy: float = 0.90\n    last_year: int = 2009\n")
    assert editor.open(uri, text) == []
    edit = editor.rename(uri, at(text, "params.last_year", len("params.l")), "cutoff")
    assert apply(text, edit.changes[uri]) == text.replace("last_year", "cutoff")
    editor.close(uri)


def test_prepare_rename_gives_the_name_under_the_cursor(editor, penguins):
    where = editor.prepare_rename(penguins, at(PENGUINS, "penguins_split.test", 3))
    assert (where.start, where.end) == (at(PENGUINS, "penguins_split.test"), at(PENGUINS, "penguins_split.test", 14))


@pytest.mark.parametrize("position, new_name, refusal", [
    (("after = release", 9), "species_model", "a step named 'species_model' exists already"),
    (("after = release", 9), "on", "'on' is a word of the language"),
    (("after = release", 9), "2nd", "'2nd' is not a name"),
    (('registry = "penguins', 2), "x", "only a step or a param can be renamed"),
])
def test_rename_refuses_what_would_break_the_spec(editor, penguins, position, new_name, refusal):
    with pytest.raises(JsonRpcException) as refused:
        editor.rename(penguins, at(PENGUINS, *position), new_name)
    assert refusal in refused.value.message
