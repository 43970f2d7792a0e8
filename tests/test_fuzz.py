"""No input gives a traceback: random and mutated specs either parse or raise SpecError, and
whatever parses also formats, with the same IR and idempotently. What is built of a spec with
construction errors goes through the passes, which must report, never fail.

Mutations start from the examples in specs/ (token and character deletions, insertions, swaps);
hypothesis is derandomized so a CI failure reproduces. MLOPSC_FUZZ_SCALE=N runs N times the
examples (the suite's share is sized to its 20 minutes; a longer soak by hand finds more).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlopsc.compiler.errors import SpecError
from mlopsc.compiler.fmt import format_spec
from mlopsc.compiler.parser import build, parse
from mlopsc.compiler.program import compile_pipeline
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [p.read_text(encoding="utf-8") for p in specs_in(ROOT / "specs")]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|->|[<>=!]=|\s+|.')
TOKENS = [[t for t in TOKEN.findall(text)] for text in EXAMPLES]
VOCABULARY = sorted({t for tokens in TOKENS for t in tokens if not t.isspace()} | {
    "{", "}", "[", "]", "(", ")", "=", ",", ".", ":", "-", "->", '"', "'", "#", "\\", "\n", "@", "é", "\x00",
    "1e999", "-0", "true", "on", "column", "tune", "require", "params", "champion", "env", "secret",
    '"\\q"', '"\\u12"', "[" * 50, "\t", "\r\n", "0.5.5", ".5", "1e-3"})

BASE = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SCALE = max(1, int(os.environ.get("MLOPSC_FUZZ_SCALE", "1")))


def check(text: str) -> None:
    """The property: SpecError or a pipeline; and what parses formats to the same meaning."""
    try:
        pipeline, unbuilt = build(text, "fuzz.mlops")
        if unbuilt.problems:
            compile_pipeline(pipeline, source=text, unbuilt=unbuilt)
            pytest.fail("a spec with construction errors compiled")
    except SpecError as exc:
        assert exc.diagnostics, "a SpecError must carry diagnostics"
        for diag in exc.diagnostics:
            assert "__ANON" not in diag.message and "RBRACE" not in diag.message
        try:
            format_spec(text, "fuzz.mlops")
        except SpecError:
            pass
        return
    formatted = format_spec(text, "fuzz.mlops")
    assert format_spec(formatted, "fuzz.mlops") == formatted, "fmt is not idempotent"
    assert meaning(parse(formatted, "fuzz.mlops")) == meaning(pipeline), "fmt changed the IR"
    assert comments(formatted) == comments(text), "fmt lost or changed a comment"


def comments(text: str) -> list[str]:
    without_strings = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    return sorted(c.rstrip() for c in re.findall(r"#[^\n]*", without_strings))


def meaning(pipeline) -> dict:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("span", "spans", "spec_hash")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(pipeline.model_dump(mode="json"))


@st.composite
def token_mutants(draw) -> str:
    tokens = list(draw(st.sampled_from(TOKENS)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(tokens) - 1))
        action = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "replace", "comment", "newlines"]))
        if action == "delete":
            del tokens[where]
        elif action == "comment":           # comments anywhere: fmt must keep every one in its place
            tokens.insert(where, f"  # note {where}\n")
        elif action == "newlines":
            tokens.insert(where, "\n\n\n")
        elif action == "insert":
            tokens.insert(where, draw(st.sampled_from(VOCABULARY)))
        elif action == "swap":
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[where], tokens[other] = tokens[other], tokens[where]
        elif action == "duplicate":
            tokens.insert(where, tokens[where])
        else:
            tokens[where] = draw(st.sampled_from(VOCABULARY))
    return "".join(tokens)


@st.composite
def character_mutants(draw) -> str:
    text = list(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(st.characters(codec="utf-8") | st.sampled_from(list('{}[]()=,."#:\\\n -><')))
        if action == "delete":
            del text[where]
        elif action == "insert":
            text.insert(where, char)
        else:
            text[where] = char
    return "".join(text)


@settings(BASE, max_examples=500 * SCALE)
@given(token_mutants())
def test_token_mutations_of_the_examples(text: str):
    check(text)


@settings(BASE, max_examples=400 * SCALE)
@given(character_mutants())
def test_character_mutations_of_the_examples(text: str):
    check(text)


@settings(BASE, max_examples=400)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=60).map(" ".join))
def test_random_token_soup(text: str):
    check("pipeline p { " + text + " }")
    check(text)


@settings(BASE, max_examples=300)
@given(st.text(max_size=200))
def test_random_text(text: str):
    check(text)
