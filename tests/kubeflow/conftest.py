"""Fixtures of the Kubeflow backend tests (helpers live in kfp_harness.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from kfp_harness import SPECS, build


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, tuple[Path, dict[str, str], list]]:
    """Every example built once: {spec stem: (build dir, files, diagnostics)}."""
    from mlopsc.backends.base import write_files

    out = {}
    for spec in SPECS:
        folder = tmp_path_factory.mktemp(f"kfp-{spec.stem}")
        files, diagnostics = build(spec)
        write_files(files, folder)
        out[spec.stem] = (folder, files, diagnostics)
    return out
