"""Fixtures of the local runner's tests (helpers in localrun.py).

Runs are slow (a penguins grid search is ~10 s), so the penguins run and its cached re-run are
session-scoped and shared by the tests that only read their records.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from localrun import HERE, SPECS, copy_project, run_json


@pytest.fixture(scope="session")
def penguins_runs(tmp_path_factory):
    """The penguins example run twice in a fresh copy: (project dir, first record, second record)."""
    project = copy_project(tmp_path_factory.mktemp("penguins"), SPECS / "penguins.mlops")
    first = run_json("penguins.mlops", cwd=project)
    second = run_json("penguins.mlops", cwd=project)
    return project, first, second


@pytest.fixture
def quick(tmp_path) -> Path:
    """A copy of tests/local/specs/quick.mlops (no grid search) with the penguins data."""
    project = copy_project(tmp_path / "quick", HERE / "specs" / "quick.mlops")
    return project
