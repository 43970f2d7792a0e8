"""`mlopsc --help` and `mlopsc check` must not pay for the heavy libraries (each costs 0.5-1.2 s to
import here). Measured in a fresh interpreter with `-X importtime`, which lists every module loaded."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("kfp", "prefect", "mlflow", "sklearn", "pandas")


def imported(*code_lines: str) -> tuple[set[str], subprocess.CompletedProcess]:
    code = "\n".join(code_lines)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return modules, done


def cli(*args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    return imported("import sys", f"sys.argv = ['mlopsc', *{list(args)!r}]",
                    "from mlopsc.backends.cli import main", "main()")


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("args", [["--help"], ["check", "specs/penguins.mlops"], ["check", "--help"],
                                  ["diff", "specs/penguins.mlops", "specs/wine_sql.mlops"]])
def test_cli_imports_nothing_heavy(args):
    modules, done = cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not top_level(modules) & set(HEAVY), sorted(top_level(modules) & set(HEAVY))


def test_check_does_not_build_the_networkx_graph():
    modules, done = cli("check", "specs/penguins.mlops")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "networkx" not in top_level(modules)


def test_importing_the_compiler_package_is_cheap():
    modules, done = imported("import mlopsc.compiler")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not top_level(modules) & {"lark", "networkx", "jinja2", *HEAVY}


def test_language_server_imports_nothing_heavy():
    """`mlopsc lsp` answers with the compiler alone: an analysis, a completion, a hover, an outline
    and a formatting of the penguins spec, in one fresh interpreter."""
    pytest.importorskip("pygls", reason="the language server needs the lsp extra")
    modules, done = imported(
        "from mlopsc.compiler.lsp import server, analysis, completion, context, navigation, ranges",
        "from mlopsc.compiler.fmt import format_spec",
        "text = open('specs/penguins.mlops').read()",
        "found = analysis.analyse(text, 'specs/penguins.mlops')",
        "positions = ranges.Positions(text)",
        "cursor = text.index('model = species_model') + len('model = ')",
        "assert completion.complete(context.context_at(text, cursor), found.symbols, positions)",
        "assert navigation.hover(found.symbols, *positions.point(positions.at(cursor)), positions)",
        "assert navigation.outline(found.symbols, positions)",
        "format_spec(text)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert not top_level(modules) & set(HEAVY), sorted(top_level(modules) & set(HEAVY))
