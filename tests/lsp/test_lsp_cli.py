"""`mlopsc lsp` as a command: without its extra it says how to get it."""
from __future__ import annotations

import subprocess
import sys

from lsp_client import REPO, RUN_CLI


def test_without_pygls_the_command_says_which_extra_to_install():
    # `sys.modules["pygls"] = None` makes `import pygls` fail as in an install without the extra.
    code = "import sys; sys.modules['pygls'] = None; " + RUN_CLI
    done = subprocess.run([sys.executable, "-c", code, "lsp"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert "pip install 'mlopsc[lsp]'" in done.stderr and "Traceback" not in done.stderr
