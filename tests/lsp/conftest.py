"""One `mlopsc lsp --stdio` process for the session (the tests of this folder share one xdist
worker, tests/conftest.py), driven by a real LSP client (lsp_client.py)."""
from __future__ import annotations

import sys

import pytest

pytest.importorskip("pygls", reason="the language server needs the lsp extra: pip install 'mlopsc[lsp]'")

from lsp_client import RUN_CLI, Editor


@pytest.fixture(scope="session")
def editor():
    editor = Editor()
    editor.start(sys.executable, "-c", RUN_CLI, "lsp", "--stdio")
    yield editor
    assert editor.stop() == 0, "the server did not exit cleanly after shutdown and exit"
