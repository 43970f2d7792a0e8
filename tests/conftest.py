"""How the suite splits over pytest-xdist's workers (`make test` runs them with `--dist loadgroup`).

A test that uses an expensive shared fixture runs on the worker that holds it, so the fixture is
built once: the tests using a session fixture of a folder's conftest (a Prefect server and its
worker, the model servers, trained and registered models, the penguins run) form one group per
folder, and the tests using a module fixture one group per module. Every other test, the kfp.local
comparisons among them, goes to whichever worker is free. Without `-n` the marks do nothing.
"""
from __future__ import annotations

import pytest

# Session fixtures cheap enough to build once per worker: spreading their tests wins more.
CHEAP = {"penguins_csv", "cars_csv", "mlflow_uri", "built", "rows"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = shared_fixture_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


def shared_fixture_group(item: pytest.Item) -> str | None:
    """The folder or module whose expensive fixture the test uses, if any."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    module = None
    for name in item.fixturenames:
        defs = info.name2fixturedefs.get(name)
        if not defs or name in CHEAP or not defs[-1].baseid:      # no baseid: pytest's own fixtures
            continue
        if defs[-1].scope == "session":
            return defs[-1].baseid
        if defs[-1].scope == "module":
            module = defs[-1].baseid
    return module


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """MLOPSC_TIMELINE=FILE appends `worker start end nodeid` for every test (setup to teardown):
    where the suite's 20 minutes go, worker by worker, for balancing the groups above."""
    import os
    import time

    path = os.environ.get("MLOPSC_TIMELINE")
    start = time.time()
    try:
        return (yield)
    finally:
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {start:.1f} {time.time():.1f} "
                          f"{item.nodeid}\n")
