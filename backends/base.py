"""What every backend generator shares: template rendering, escaping, the one way generated code
embeds a step's config (`step_literal`) and `unsupported`.

A generator turns a validated Program into files (relative path -> text). What its orchestrator
cannot express it reports through `unsupported(node, why)`, which becomes a positioned warning
(or error, with `error=True`) in the build's diagnostics — never a silent drop (sqlglot's
Generator.unsupported).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir
from mlopsc.compiler.errors import Diagnostic
from mlopsc.compiler.expression import ExprNode

if TYPE_CHECKING:
    from mlopsc.compiler.program import Program


def py_literal(value: Any) -> str:
    """A spec value as a Python literal. Spec values are data: they go through json/repr, never
    pasted into code as text."""
    return repr(value)


def in_docstring(text: str) -> str:
    """`text` escaped for the inside of a triple-quoted docstring or a comment: it reads the same
    once Python has parsed it, and a file name holding quotes, backslashes or a line break can
    neither end the docstring nor leave the comment."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def node_config(node: ir.Node, spec_file: str | None = None) -> dict[str, Any]:
    """An IR node (a step, the pipeline) as generated code embeds it, JSON-able data that the
    node's model reads back (`ir.step_from_json` for a step): fields left at their defaults are
    left out, but every `kind` stays (it selects the model). Positions stay, the node's (`span`)
    and its fields' (`spans`): a runtime error then names the same spec position on every
    backend as under `mlopsc run` (a missing target points at `target = ...`, not at the step).
    `spec_file` replaces the file name in those positions (a build that must not depend on
    where the spec lies)."""
    return _config(node, spec_file)


def _config(value: Any, spec_file: str | None) -> Any:
    # Walks the models, not their JSON: a position is known by its type, so `spec_file` never
    # rewrites a user's value that merely looks like one (a dict param with a "file" key).
    if isinstance(value, ir.Span):
        data = value.model_dump(mode="json")
        return {**data, "file": spec_file} if spec_file is not None else data
    if isinstance(value, ExprNode):      # an expression's tree: all of it, offsets included
        return value.model_dump(mode="json")
    if isinstance(value, ir.Node):
        out = {}
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            if name != "kind" and item == info.get_default(call_default_factory=True):
                continue
            out[name] = _config(item, spec_file)
        return out
    if isinstance(value, (list, tuple)):
        return [_config(v, spec_file) for v in value]
    if isinstance(value, dict):
        return {k: _config(v, spec_file) for k, v in value.items()}
    return value


SPAN_KEYS = frozenset(ir.Span.model_fields)
TREE_KEYS = frozenset(("kind", "at", "to"))


def format_literal(value: Any, indent: int = 0, width: int = 100, used: int = 0) -> str:
    """A JSON-able value as a Python literal: one line when it fits in `width`, else one item per
    line, keys sorted (`used`: the columns already taken on the first line). A position (a span)
    always takes one line: seven lines of line numbers would bury the config around them. Every
    leaf goes through repr: a spec string is always a string literal in the output, never code.
    An expression's tree also takes one line: the `text` beside it is what a reader reads."""
    if isinstance(value, dict):
        flat = "{" + ", ".join(f"{k!r}: {format_literal(v, width=10**9)}" for k, v in sorted(value.items())) + "}"
    elif isinstance(value, (list, tuple)):
        flat = "[" + ", ".join(format_literal(v, width=10**9) for v in value) + "]"
    else:
        return repr(value)
    one_line = isinstance(value, dict) and (set(value) == SPAN_KEYS or TREE_KEYS <= set(value))
    if max(indent, used) + len(flat) + 1 <= width or not value or one_line:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {format_literal(v, indent + 4, width, indent + 4 + len(repr(k)) + 2)}"
                 for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + ",\n" + " " * indent + "}"
    items = [f"{pad}{format_literal(v, indent + 4, width, indent + 4)}" for v in value]
    return "[\n" + ",\n".join(items) + ",\n" + " " * indent + "]"


def step_literal(step: ir.Step, indent: int = 0, used: int = 0, spec_file: str | None = None) -> str:
    """`node_config(step)` as a readable Python dict literal, for generated code: the one way
    every backend embeds a step (`indent`: the columns of the line it starts on; `used`: those
    already taken by `NAME = ` before it)."""
    return format_literal(node_config(step, spec_file), indent=indent, used=used or indent)


def references(value: Any) -> list[ir.EnvRef | ir.SecretRef]:
    """Every env() / secret() reference in a node, nested values included, in field order."""
    if isinstance(value, (ir.EnvRef, ir.SecretRef)):
        return [value]
    if isinstance(value, ir.Node):
        return [ref for _, v in value for ref in references(v)]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in references(v)]
    if isinstance(value, dict):
        return [ref for v in value.values() for ref in references(v)]
    return []


class Generator:
    target: str = ""
    templates_package: str = ""   # e.g. "mlopsc.backends.local"; templates in its templates/

    def __init__(self, program: "Program", options: dict[str, Any] | None = None) -> None:
        self.program = program
        self.options = options or {}
        self.diagnostics: list[Diagnostic] = []

    def unsupported(self, node: Any, why: str, *, error: bool = False, hint: str | None = None,
                    field: str | None = None) -> None:
        """Report what this target cannot express; `field` puts the caret on that option of node."""
        span = (getattr(node, "spans", {}).get(field) if field else None) or getattr(node, "span", None)
        name = getattr(node, "name", "")
        self.diagnostics.append(Diagnostic(
            code="E900" if error else "W900",
            message=f"{self.target} cannot express {name + ': ' if name else ''}{why}",
            span=span, hint=hint, severity="error" if error else "warning",
        ))

    def environment(self):
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader(self.templates_package, "templates"),
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
            trim_blocks=True, lstrip_blocks=True, autoescape=False,
        )
        env.filters["py"] = py_literal
        env.filters["in_docstring"] = in_docstring
        return env

    def generate(self) -> dict[str, str]:
        """Return {relative path: file text}. Deterministic: same program, same bytes."""
        raise NotImplementedError


def load_generator(target: str) -> type[Generator]:
    from . import TARGETS

    module, _, cls = TARGETS[target].partition(":")
    return getattr(importlib.import_module(module), cls)


def write_files(files: dict[str, str], out_dir: str | Path) -> list[Path]:
    """Write each file atomically (temp name, then rename), so an interrupted build leaves no
    half-written file."""
    import os
    import tempfile

    written = []
    for rel, text in sorted(files.items()):
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
        written.append(path)
    return written
