"""The VS Code extension (editors/vscode): its TextMate grammar is generated from the language's
own tables and says what the language says, its annotated samples pass vscode-tmgrammar-test, and
its manifest points at files that exist."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlopsc.compiler import options
from mlopsc.compiler.parser import grammar_parser

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = VSCODE / "syntaxes" / "mlops.tmLanguage.json"
TM = json.loads(GRAMMAR.read_text(encoding="utf-8"))
REPO = TM["repository"]

sys.path.insert(0, str(VSCODE))
import generate_grammar


def alternatives(regex: str) -> list[set[str]]:
    r"""The word lists of a TextMate regex: `\b(?:a|b|c)\b` -> {a, b, c}, in order."""
    return [set(group.split("|")) for group in re.findall(r"\\b\(\?:([\w|]+)\)\\b", regex)]


def lark_keywords() -> set[str]:
    """The fixed words of compiler/grammar.lark, read from lark's terminals: a string (`"rows"`) or
    an alternation of words (`"on" | "from"`)."""
    found = set()
    for terminal in grammar_parser().terminals:
        value = terminal.pattern.value
        alternation = re.fullmatch(r"\(\?:(\w+(?:\|\w+)*)\)", value)
        if terminal.pattern.type == "str" and value.isidentifier():
            found.add(value)
        elif terminal.pattern.type == "re" and alternation:
            found |= set(alternation.group(1).split("|"))
    return found


def test_the_committed_grammar_is_the_generated_one():
    assert GRAMMAR.read_text(encoding="utf-8") == generate_grammar.render(), \
        "the grammar or options changed: run .venv/bin/python editors/vscode/generate_grammar.py and commit it"


def test_every_keyword_of_the_lark_grammar_is_highlighted_as_one():
    keywords = lark_keywords()
    assert {"pipeline", "on", "from", "rows", "column", "require", "drift", "between", "nullable"} <= keywords
    highlighted = set().union(
        *alternatives(REPO["pipeline"]["match"]), *alternatives(REPO["allow"]["match"]),
        alternatives(REPO["step"]["match"])[1], *alternatives(REPO["column_words"]["match"]),
        {re.search(r"\((\w+)\)", r["begin"]).group(1) for r in REPO["rules"]["patterns"]},
        {re.search(r"\((\w+)\)", REPO["tune"]["match"]).group(1)})
    assert highlighted == keywords


def test_step_kinds_option_keys_and_blocks_are_the_options_tables():
    assert alternatives(REPO["step"]["match"])[0] == set(options.STEP_KINDS)
    keys = set(options.COMMON_OPTIONS) | set(options.SOURCE_FORMATS) | set(options.TUNE_OPTIONS) \
        | set(options.PIPELINE_OPTIONS) | {k for t in options.STEP_OPTIONS.values() for k in t} \
        | {k for t in options.BLOCK_OPTIONS.values() for k in t}
    assert alternatives(REPO["option"]["patterns"][0]["match"]) == [keys]
    assert alternatives(REPO["block"]["match"]) == [set(options.BLOCK_OPTIONS) | set(options.BLOCK_KINDS) | {"params"}]


def test_the_manifest_points_at_the_grammar_and_the_language_configuration():
    manifest = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    [language] = manifest["contributes"]["languages"]
    [grammar] = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".mlops"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == TM["scopeName"] and (VSCODE / grammar["path"]).resolve() == GRAMMAR
    configuration = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"
    assert (VSCODE / manifest["main"]).exists()
    assert manifest["contributes"]["configuration"]["properties"]["mlopsc.server.args"]["default"] == ["lsp"]


def test_the_samples_are_the_language():
    """The annotated samples parse (their annotations are comments): highlighting is tested on
    what the parser accepts, not on something like it."""
    from mlopsc.compiler.parser import parse_tree

    for sample in sorted((VSCODE / "test").glob("*.mlops")):
        parse_tree(sample.read_text(encoding="utf-8"), str(sample))


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is absent (.ci/run installs Debian's nodejs and npm)")
def test_annotated_samples_pass_vscode_tmgrammar_test():
    """editors/vscode/test/*.mlops: each `#  ^^^ scope` line under a line of spec is checked against
    the scopes vscode-textmate gives those characters with the generated grammar."""
    if not (VSCODE / "node_modules" / ".bin" / "vscode-tmgrammar-test").exists():
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VSCODE, capture_output=True,
                                   text=True, timeout=600, check=False)
        assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    samples = sorted((VSCODE / "test").glob("*.mlops"))
    assert len(samples) >= 2
    done = subprocess.run(["npx", "--no-install", "vscode-tmgrammar-test", "-g", str(GRAMMAR.relative_to(VSCODE)),
                           "test/*.mlops"], cwd=VSCODE, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count("run successfuly") == len(samples), done.stdout
    # The client: valid JavaScript, and the library it requires is where node will look for it.
    client = subprocess.run(["node", "--check", "extension.js"], cwd=VSCODE, capture_output=True, text=True,
                            timeout=60, check=False)
    assert client.returncode == 0, client.stderr
    resolved = subprocess.run(["node", "-e", "console.log(require.resolve('vscode-languageclient/node'))"],
                              cwd=VSCODE, capture_output=True, text=True, timeout=60, check=False)
    assert resolved.returncode == 0 and "node_modules/vscode-languageclient" in resolved.stdout, resolved.stderr
