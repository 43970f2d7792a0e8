"""What every backend generator shares: template rendering, escaping and `unsupported`.

A generator turns a validated Program into files (relative path -> text). What its orchestrator
cannot express it reports through `unsupported(node, why)`, which becomes a positioned warning
(or error, with `error=True`) in the build's diagnostics — never a silent drop (sqlglot's
Generator.unsupported).
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlopsc.compiler import ir
from mlopsc.compiler.errors import Diagnostic

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


def json_literal(value: Any) -> str:
    """A JSON document as a Python string literal (what generated code hands to the runtime)."""
    return repr(json.dumps(value, sort_keys=True, separators=(",", ":")))


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
        env.filters["json_literal"] = json_literal
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
