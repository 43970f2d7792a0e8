"""How the suite splits over pytest-xdist's workers (`make test` runs two, `--dist loadgroup`).

The tests of a folder whose session fixtures are expensive (a Prefect server and its worker, the
model servers, trained and registered models, the penguins run) share one worker, so that each
fixture is built once. Everything else, the kfp.local comparisons among them, spreads over both.
Without `-n` the marks do nothing.
"""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SHARED_FIXTURES = ("prefect", "serving", "local", "runtime")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in SHARED_FIXTURES:
            item.add_marker(pytest.mark.xdist_group(folder))
