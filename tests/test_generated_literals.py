"""How every backend embeds a step's config: `base.step_literal`, a readable Python dict literal
that `ir.step_from_json` reads back as the same step, positions included, for every step of
every example, and a spec string full of quotes, backslashes and braces stays that string."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mlopsc.backends.base import step_literal
from mlopsc.compiler import ir, load, loads
from mlopsc.compiler.spec_files import specs_in

ROOT = Path(__file__).resolve().parents[1]
SPECS = specs_in(ROOT / "specs")
TARGETS = ("local", "prefect", "kubeflow")


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_step_round_trips_through_its_literal(spec, monkeypatch):
    monkeypatch.chdir(ROOT)   # spans name the spec as a user types it: specs/NAME.mlops
    for step in load(str(spec.relative_to(ROOT))).pipeline.steps:
        text = step_literal(step)
        config = ast.literal_eval(text)
        # Positions included: a runtime error names the same option on every backend.
        assert ir.step_from_json(config) == step, step.name
        assert "retries" not in config or step.retries, "defaults are left out"
        assert step_literal(step) == text, "deterministic"
        # A position, and an expression's tree, take one line however deep they sit
        # (format_literal): long, but never wrapped.
        assert all(len(line) <= 120 for line in text.splitlines()
                   if "'query'" not in line and "'file':" not in line and "'tree':" not in line), text


HOSTILE = r'''
pipeline hostile {
  description = "a \" quote, \"\"\" triple, a \\ backslash,\na new line and {{ braces }} {% raw %}"
  source raw { csv = "data/penguins.csv" filter = "name == 'x\"\"\"' or note == \"{{ y }}\\n\" or a == '\\\\'" }
  check raw_ok on raw { rows >= 1 }
}
'''


def _filters(tree: ast.AST) -> list:
    return [ast.literal_eval(value) for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for key, value in zip(node.keys, node.values) if isinstance(key, ast.Constant) and key.value == "filter"]


def test_a_hostile_string_stays_a_string_in_every_backend(tmp_path, monkeypatch):
    from mlopsc.backends.base import load_generator

    program = loads(HOSTILE, str(tmp_path / "hostile.mlops"))
    step = program.pipeline.step("raw")
    written = step.filter.text
    assert '"""' in written and "{{" in written and "\\" in written
    assert "\n" in program.pipeline.description and '"""' in program.pipeline.description
    assert ast.literal_eval(step_literal(step))["filter"]["text"] == written

    monkeypatch.setattr("mlopsc.backends.kubeflow.generator.compile_module", lambda text: "")
    for target in TARGETS:
        generator = load_generator(target)(program)
        files = generator.generate()
        assert not [d for d in generator.diagnostics if d.is_error], target
        for name, text in files.items():
            if not name.endswith(".py"):
                continue
            tree = ast.parse(compile(text, name, "exec", flags=ast.PyCF_ONLY_AST))
            configs = [f for f in _filters(tree) if "line" not in f]     # not spans["filter"]
            assert [f["text"] for f in configs] == [written], (target, name)
            assert ir.Expression.model_validate(configs[0]).tree == step.filter.tree, (target, name)
            assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                        and getattr(n.func, "id", getattr(n.func, "attr", "")) in ("system", "exec", "eval")]
            strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            assert program.pipeline.description in strings, (target, name)
