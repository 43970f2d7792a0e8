"""The server follows the registry alias: a version that does not load leaves the old one serving
(counted in /metrics), and a move of the alias is picked up while a client sends requests, with
not one of them failing. At the end the alias goes back to version 1, where the session started."""
from __future__ import annotations

import threading
import time

import httpx
from mlopsc.runtime import registry
from test_metrics import samples, value


def wait_for(condition, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Client(threading.Thread):
    """Sends single-row requests in a loop and records every status and answering version."""

    def __init__(self, url: str, row: dict) -> None:
        super().__init__(daemon=True)
        self.url, self.row = url, row
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    answer = client.post("/invocations", json={"dataframe_records": [self.row]})
                    self.answers.append((answer.status_code, answer.headers.get("X-Model-Version")))
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def versions(self) -> set[str]:
        return {v for _, v in self.answers}


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(server, store, rows):
    client = registry.client(store.uri)
    before = samples(server)
    broken = client.create_model_version(store.name, source=store.broken_source, run_id=None)
    client.set_registered_model_alias(store.name, "champion", str(broken.version))
    try:
        wait_for(lambda: value(samples(server), "mlopsc_model_reloads_total", result="failure")
                 > value(before, "mlopsc_model_reloads_total", result="failure"), what="the failed reload")
        answer = httpx.post(server.url + "/invocations", json={"dataframe_records": rows[:3]})
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        assert f"version {broken.version} cannot be served" in server.text()
    finally:
        client.set_registered_model_alias(store.name, "champion", "1")


def test_an_alias_move_is_followed_without_a_failed_request(server, store, rows):
    client = registry.client(store.uri)
    before = samples(server)
    loop = Client(server.url, rows[0])
    loop.start()
    try:
        wait_for(lambda: len(loop.answers) >= 5, what="the first answers")
        client.set_registered_model_alias(store.name, "champion", "2")
        wait_for(lambda: "2" in loop.versions(), what="answers from version 2")
        seen = len(loop.answers)
        wait_for(lambda: len(loop.answers) >= seen + 5, what="more answers")
    finally:
        loop.stopping.set()
        loop.join(10)
    assert not loop.errors
    assert {status for status, _ in loop.answers} == {200}
    assert loop.versions() == {"1", "2"}
    switched = [v for _, v in loop.answers]
    assert switched == sorted(switched), "an answer from version 1 came after one from version 2"
    after = samples(server)
    assert value(after, "mlopsc_model_reloads_total", result="success") == \
        value(before, "mlopsc_model_reloads_total", result="success") + 1
    assert value(after, "mlopsc_model_info", name=store.name, version="2", alias="champion") == 1
    assert httpx.get(server.url + "/version").json()["model_version"] == "2"

    client.set_registered_model_alias(store.name, "champion", "1")   # back where the session started
    wait_for(lambda: httpx.get(server.url + "/version").json()["model_version"] == "1", what="version 1 again")
