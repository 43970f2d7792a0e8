"""Fixtures of the local runner's tests (helpers in localrun.py).

Runs are slow (a penguins grid search is ~10 s), so the penguins run and its cached re-run are
session-scoped and shared by the tests that only read their records.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from localrun import HERE, SPECS, clean_env, copy_project, example_env, run_json


@pytest.fixture(scope="session")
def penguins_runs(tmp_path_factory):
    """The penguins example run twice in a fresh copy: (project dir, first record, second record)."""
    project = copy_project(tmp_path_factory.mktemp("penguins"), SPECS / "penguins.mlops")
    first = run_json("penguins.mlops", cwd=project)
    second = run_json("penguins.mlops", cwd=project)
    return project, first, second


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory, penguins_runs):
    """`example_runs(spec)`: every example run twice in a fresh copy, once per session, on first
    need: (project dir, environment, first record, second record)."""
    project, first, second = penguins_runs
    runs = {"penguins.mlops": (project, clean_env(), first, second)}

    def get(spec: str):
        if spec not in runs:
            folder = copy_project(tmp_path_factory.mktemp(spec.removesuffix(".mlops")), SPECS / spec)
            env = example_env(spec, folder)
            runs[spec] = (folder, env, run_json(spec, cwd=folder, env=env), run_json(spec, cwd=folder, env=env))
        return runs[spec]
    return get


@pytest.fixture
def quick(tmp_path) -> Path:
    """A copy of tests/local/specs/quick.mlops (no grid search) with the penguins data."""
    project = copy_project(tmp_path / "quick", HERE / "specs" / "quick.mlops")
    return project
