"""Which files in a folder are specs: what `mlopsc check DIR` and `mlopsc fmt DIR` act on, and how
the tests list the examples.

A spec is a file whose name ends in `.mlops`: a folder with that name is not one. A folder is
searched recursively and the specs come back sorted. Like ruff and black, the search skips what
holds no sources of the user's: hidden folders (`.git/`, `.venv/`, and so the local state folders
of `runtime/state_folder.py`, which tests/test_cli_check.py holds hidden), virtual environments by
their usual names or by their `pyvenv.cfg`, and package and bytecode caches. A folder given by name
is searched even when its own name would be skipped.

Standard library only.
"""
from __future__ import annotations

import os
from pathlib import Path

SPEC_SUFFIX = ".mlops"
SKIPPED_FOLDERS = frozenset({"venv", "__pycache__", "node_modules", "site-packages", "__pypackages__"})


def is_spec(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).endswith(SPEC_SUFFIX) and os.path.isfile(path)


def specs_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The spec files under `folder`, recursively, sorted; skipped folders are not entered."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not skipped_folder(os.path.join(parent, name))]
        found += [Path(parent, name) for name in files if is_spec(os.path.join(parent, name))]
    return sorted(found)


def skipped_folder(path: str) -> bool:
    """A folder the search does not enter, e.g.

        specs/.mlopsc/   .git/   .venv/   venv/   py311/ (holds a pyvenv.cfg)   node_modules/
    """
    name = os.path.basename(path)
    return (name.startswith(".") or name in SKIPPED_FOLDERS
            or os.path.isfile(os.path.join(path, "pyvenv.cfg")))
