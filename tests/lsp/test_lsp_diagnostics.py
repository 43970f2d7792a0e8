"""Diagnostics as an editor receives them: the same as `mlopsc check` prints (code, position,
message, hint, severity), published as the text changes, with related information."""
from __future__ import annotations

import re
from pathlib import Path

from lsp_client import REPO, at
from lsprotocol import types

ERRORS = REPO / "tests" / "errors"
PENGUINS = (REPO / "specs" / "penguins.mlops").read_text(encoding="utf-8")
HEADER = re.compile(r"^(?P<file>[^:\s]+\.mlops):(?P<line>\d+):(?P<col>\d+): (?P<severity>error|warning)"
                    r"\[(?P<code>\w+)\]: (?P<message>.*)$")
# Cases run with `# args: --param ...`: an editor has no command-line params.
CASES = [c for c in sorted(ERRORS.glob("*.mlops")) if not c.read_text(encoding="utf-8").startswith("# args:")]


def printed_by_check(case: Path) -> list[tuple]:
    """(line, col, severity, code, message with its hint) of each diagnostic in the golden output of
    `mlopsc check` (tests/test_errors.py holds it to the real command)."""
    found = []
    for row in case.with_suffix(".expected").read_text(encoding="utf-8").splitlines():
        header = HEADER.match(row)
        if header:
            found.append([int(header["line"]), int(header["col"]), header["severity"], header["code"],
                          header["message"]])
        elif row.startswith("  hint: ") and found:
            found[-1][4] += "\n" + row.strip()
    return [tuple(d) for d in found]


def received(diagnostics: list[types.Diagnostic]) -> list[tuple]:
    severity = {types.DiagnosticSeverity.Error: "error", types.DiagnosticSeverity.Warning: "warning"}
    return [(d.range.start.line + 1, d.range.start.character + 1, severity[d.severity], d.code,
             d.message.replace(f"{REPO}/", "")) for d in diagnostics]


def test_every_golden_error_case_gets_what_check_prints(editor):
    """Each file of tests/errors, opened in the editor, gets what `mlopsc check` printed for it."""
    assert len(CASES) >= 30
    for case in CASES:
        uri = case.as_uri()
        got = editor.open(uri, case.read_text(encoding="utf-8"))
        editor.close(uri)
        assert received(got) == printed_by_check(case), case.name
        assert all(d.source == "mlopsc" for d in got)


def test_a_span_becomes_the_range_of_what_it_names(editor):
    text = (ERRORS / "unknown_step.mlops").read_text(encoding="utf-8")
    uri = (REPO / "specs" / "lsp_range.mlops").as_uri()
    got = editor.open(uri, text)
    editor.close(uri)
    wrong = got[0]
    assert (wrong.range.start, wrong.range.end) == (at(text, "pengiuns"), at(text, "pengiuns", len("pengiuns")))


def test_related_information_points_at_what_the_message_names(editor):
    text = PENGUINS.replace("model = species_model\n    data", "model = species_modle\n    data") \
        .replace("penguins_2009", "penguins")
    uri = (REPO / "specs" / "lsp_related.mlops").as_uri()
    got = {d.code: d for d in editor.open(uri, text)}
    editor.close(uri)
    # did you mean 'species_model'? -> where species_model is defined
    unknown = got["E203"].related_information
    assert [(r.location.range.start, r.message) for r in unknown] == [
        (at(text, "species_model on"), "step 'species_model' is defined here")]
    # first defined at FILE:11:3 -> the name of the first 'penguins'
    twice = got["E201"].related_information
    assert [(r.location.range.start, r.location.range.end, r.message) for r in twice] == [
        (at(text, "penguins {", nth=1), at(text, "penguins {", len("penguins"), nth=1), "first defined here")]
    assert all(r.location.uri == uri for r in unknown + twice)


def test_diagnostics_follow_the_text_as_it_is_typed(editor):
    uri = (REPO / "specs" / "lsp_typing.mlops").as_uri()
    assert editor.open(uri, PENGUINS) == []
    typing = PENGUINS.replace("    data = penguins_split.test\n", "    data = penguins_split.\n")
    half = editor.change(uri, typing)
    # `penguins_split.` + the next line reads `penguins_split.metrics`, then '=' is unexpected
    assert [(d.code, d.range.start) for d in half] == [("E101", at(typing, "= [accuracy"))]
    # While the text does not parse, completion still knows the steps (from the last version that did).
    assert editor.labels(uri, at(typing, "penguins_split.\n", len("penguins_split."))) == ["train", "test"]
    assert editor.change(uri, PENGUINS) == []
    assert editor.close(uri) == []


def test_a_new_empty_file_is_told_what_to_write(editor):
    uri = (REPO / "specs" / "lsp_new.mlops").as_uri()
    got = editor.open(uri, "")
    editor.close(uri)
    assert [(d.code, d.message) for d in got] == [
        ("E101", "expected 'pipeline' before the end of the file")]


def test_positions_count_utf16_code_units_as_editors_do(editor):
    """A character outside the Basic Multilingual Plane is one column for the compiler and two
    UTF-16 code units for the editor: the range still covers the misspelt key."""
    line = '  source s { csv = "🐧.csv"  filtr = "year > 1" }'
    text = f"pipeline p {{\n{line}\n}}\n"
    uri = (REPO / "specs" / "lsp_utf16.mlops").as_uri()
    got = editor.open(uri, text)
    editor.close(uri)
    start = len(line[:line.index("filtr")].encode("utf-16-le")) // 2
    assert [(d.code, d.range.start.line, d.range.start.character, d.range.end.character) for d in got] == [
        ("E250", 1, start, start + len("filtr"))]
