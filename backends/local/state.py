"""The local runner's state folder (default `.mlopsc/` next to the spec, `runtime/state_folder.py`)
and its on-disk layout.

    .mlopsc/
      artifacts/<step>/<key>/<port><suffix>   content-addressed outputs (+ `<uri>.sha256` sidecars)
      artifacts/<step>/.staging-<run>-<n>/     one attempt's outputs while it runs; renamed or deleted
      artifacts/<step>/failed-<run>/          the report of a check or gate that stopped the run
      cache/<step>/<key>.json                 cache entries, written last and atomically
      files/<sha256 of path>.json             a source file's sha256 and fingerprint (cache.file_sha256)
      runs/<run_id>.json                      the record of one run (what ran, hits and why, results)
      logs/<run_id>/<step>.log                what a step printed (stdout and stderr of its worker)
      reports/<run_id>/report.html            the run's HTML report
      reports/figures/<key>.svg               its figures, by the hash of what they show (reused)
      reports/figures/templates/              the report's template, compiled once
      mlflow.db                               MLflow tracking and registry (unless MLFLOW_TRACKING_URI)
      lock                                    held (flock) by the run using this folder

Only stdlib here: the generated local module imports this with `mlopsc[runtime]` alone.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


class StateBusy(Exception):
    """This state folder cannot be used now: another run holds it, or it cannot be created."""


def write_json_atomic(path: Path, doc: Any, durable: bool = True) -> None:
    """Write to a temp name in the same folder, then rename: a reader (or a later run after a
    kill -9) sees the old document or the new one, never half of one. `durable` also survives a
    power cut (fsync); run records, rewritten at every step event, skip that cost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True, default=str)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


class StateDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._lock_fh = None

    # ------------------------------------------------------------ layout
    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def artifact_dir(self, step: str, key: str) -> Path:
        return self.root / "artifacts" / step / key

    def staging_dir(self, step: str, run_id: str, attempt: int) -> Path:
        return self.root / "artifacts" / step / f".staging-{run_id}-{attempt}"

    def failed_dir(self, step: str, run_id: str) -> Path:
        return self.root / "artifacts" / step / f"failed-{run_id}"

    def cache_dir(self, step: str) -> Path:
        return self.root / "cache" / step

    def entry_path(self, step: str, key: str) -> Path:
        return self.cache_dir(step) / f"{key}.json"

    def run_path(self, run_id: str) -> Path:
        return self.root / "runs" / f"{run_id}.json"

    def log_path(self, run_id: str, step: str) -> Path:
        return self.root / "logs" / run_id / f"{step}.log"

    def report_path(self, run_id: str) -> Path:
        return self.root / "reports" / run_id / "report.html"

    @property
    def figure_cache(self) -> Path:
        return self.root / "reports" / "figures"

    def relative(self, path: str | Path) -> str:
        """Paths stored in cache entries are relative to the state folder, so that moving the
        project (or the folder) keeps its cache."""
        return os.path.relpath(Path(path).resolve(), self.root)

    def absolute(self, rel: str) -> str:
        return str(self.root / rel)

    # ------------------------------------------------------------ the run lock
    def acquire(self) -> None:
        """One run at a time per state folder: two runs would race on the same staging and cache
        files. flock is released by the OS when the holder dies, so a kill -9 never leaves it held."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / "lock", "a+")  # noqa: SIM115 - held open for the whole run
        except OSError as exc:
            raise StateBusy(f"cannot use {self.root} as the state folder: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise StateBusy(f"another mlopsc run is using {self.root}; wait for it to finish") from None
        self._lock_fh = fh
        self._clean_staging()

    def release(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _clean_staging(self) -> None:
        """Staging folders are left only by attempts that were killed or crashed; under the lock no
        live run owns any of them."""
        artifacts = self.root / "artifacts"
        if artifacts.is_dir():
            for staging in artifacts.glob("*/.staging-*"):
                shutil.rmtree(staging, ignore_errors=True)
