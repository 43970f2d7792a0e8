"""Wherever the cursor is, in whatever a user has typed so far, completion, hover, definition and
the outline answer without failing (in-process: the server would only log the failure and
answer nothing, which an editor shows as silence)."""
from __future__ import annotations

from lsp_client import REPO
from mlopsc.compiler.lsp import navigation
from mlopsc.compiler.lsp.analysis import analyse
from mlopsc.compiler.lsp.completion import complete
from mlopsc.compiler.lsp.context import context_at
from mlopsc.compiler.lsp.ranges import Positions

SPECS = sorted((REPO / "specs").glob("*.mlops")) + [REPO / "tests" / "errors" / "many_errors.mlops"]


def test_every_position_of_every_example_and_of_its_typing():
    for spec in SPECS:
        text = spec.read_text(encoding="utf-8")
        full = analyse(text, str(spec))
        # the spec as typed so far, cut every 151 characters, completed where the cut is
        for cut in range(0, len(text), 151):
            typed = analyse(text[:cut], str(spec), previous=full)
            complete(context_at(text[:cut], cut), typed.symbols, Positions(text[:cut]))
        positions = Positions(text)
        for offset in range(0, len(text), 11):
            complete(context_at(text, offset), full.symbols, positions)
        if full.symbols is not None:
            navigation.outline(full.symbols, positions)
            for line, row in enumerate(text.split("\n"), start=1):
                for col in range(1, len(row) + 2, 3):
                    navigation.hover(full.symbols, line, col, positions)
                    navigation.definition(full.symbols, line, col)
