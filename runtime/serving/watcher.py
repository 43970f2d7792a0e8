"""Following the registry: a thread that polls who holds the alias and swaps in a new holder.

Every `poll_interval` seconds it asks the registry which version holds `name@alias`. A version
other than the one in service is loaded here, in the background, while the old one keeps
answering; then `ModelHolder.swap` puts it in service at once. A version that fails to load is
logged and counted, and the old one stays; the watcher does not retry that version until the
alias moves again. A registry that cannot be reached is logged once per outage.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .model import LoadedModel, ModelHolder, ModelLoadError

log = logging.getLogger("mlopsc.serving.watcher")


class RegistryWatcher:
    def __init__(self, holder: ModelHolder, *, holder_version: Callable[[], str | None],
                 load: Callable[[str], LoadedModel], poll_interval: float = 5.0,
                 on_swap: Callable[[LoadedModel], None] | None = None,
                 on_failure: Callable[[str, str], None] | None = None) -> None:
        self.holder = holder
        self.holder_version = holder_version      # the version holding the alias now (None: none does)
        self.load = load
        self.poll_interval = poll_interval
        self.on_swap, self.on_failure = on_swap, on_failure
        self.failed_version: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unreachable = False
        self._alias_missing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlopsc-registry-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.check()

    def check(self) -> None:
        """One poll: swap in the alias's holder when it changed and loads."""
        try:
            version = self.holder_version()
        except Exception as exc:  # noqa: BLE001 - a store outage must not stop the server
            if not self._unreachable:
                log.warning("registry: cannot read the alias (%s: %s); still serving the loaded version",
                            type(exc).__name__, exc)
            self._unreachable = True
            return
        if self._unreachable:
            log.info("registry: reachable again")
            self._unreachable = False
        current = self.holder.current
        if version is None:
            if not self._alias_missing:
                log.warning("registry: no version holds the alias (or the registry cannot say); still serving "
                            "version %s", getattr(current, "version", "none"))
            self._alias_missing = True
            self.failed_version = None
            return
        self._alias_missing = False
        if current is not None and version == current.version:
            self.failed_version = None
            return
        if version == self.failed_version:
            return
        log.info("registry: version %s holds the alias; loading it", version)
        try:
            model = self.load(version)
        except ModelLoadError as exc:
            self.failed_version = version
            log.error("registry: version %s cannot be served (%s); still serving version %s", version, exc,
                      getattr(current, "version", "none"))
            if self.on_failure is not None:
                self.on_failure(version, str(exc))
            return
        self.failed_version = None
        old = self.holder.swap(model)
        log.info("registry: now serving version %s (was %s)", model.version, getattr(old, "version", "none"))
        if self.on_swap is not None:
            self.on_swap(model)
