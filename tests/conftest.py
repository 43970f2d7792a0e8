"""The suite runs on two pytest-xdist workers (`make test`), tests handed to whichever is free; a
session fixture (a Prefect server, the model servers, the penguins runs) is built by each worker
that runs a test needing it.

Grouping the tests of one expensive fixture on one worker (`--dist loadgroup` with `xdist_group`
marks) does not work with pytest 9.2 and xdist 3.8: xdist groups by a suffix it writes to
`item._nodeid`, which pytest 9.2 no longer reads (the node id comes from `item._id`), so the marks
were ignored, and every measured time of the suite came without them.
"""
from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """MLOPSC_TIMELINE=FILE appends `worker start end nodeid` for every test (setup to teardown):
    where the suite's time goes, worker by worker."""
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
