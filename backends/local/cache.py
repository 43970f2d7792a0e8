"""Cache keys and entries of the local runner.

A step's key is the sha256 of what determines its outputs:
- its config as the IR holds it (`mlopsc.compiler.cache_config.step_config`, which `mlopsc diff`
  shares), without positions (`span`, `spans`: reformatting a spec must
  not invalidate) and without run policy (`retries`, `retry_delay`, `timeout`, `resources`,
  `cache`: how a step runs, not what it computes);
- the values of the params it references (`params.NAME` anywhere in its config);
- the sha256 of every upstream artifact it reads, `after` dependencies included;
- the runtime version (`mlopsc.runtime.__version__`, read at call time);
- for a file source, the sha256 of the file it reads: a changed file is never served stale
  (`file_sha256`: computed again only when the file's fingerprint changed; see below);
- for a gate, whether it was forced.

An entry (`cache/<step>/<key>.json`) is written after every output and its sidecar exist, and
records the key's components so that `plan` and the run record can say what changed.

Source files are hashed in full only when they may have changed. `files/<sha256 of the path>.json`
records a file's sha256 with its fingerprint: device, inode, size, mtime and ctime in
nanoseconds, and the sha256 of its first and last 64 KiB (a Parquet file's footer is at its end).
While the fingerprint is the same, the recorded sha256 is used. Why that is exact: every change of
a file's bytes sets its ctime to the current time, and no program can set a ctime (touch and
utime set mtime and atime, and ctime to now); replacing the file with another gives a new inode.
A write in the same tick of the file system's clock as the write before it could leave the ctime
equal, so a fingerprint is only recorded for a file that was last changed at least
`SETTLED_SECONDS` before its hash began: any later change then has a later ctime. What this does
not cover is a clock set back by more than that, or a file system that does not keep ctime (some
network and FUSE mounts); the sampled bytes still catch most changes there, and `mlopsc run
--no-cache` reads every source again.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from mlopsc.compiler.cache_config import hashed_file, referenced_params, step_config

from .state import StateDir, read_json, write_json_atomic


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


SETTLED_SECONDS = 2.0        # more than the coarsest file-time granularity in use (FAT: 2 s)
SAMPLE_BYTES = 1 << 16


def file_fingerprint(path: Path) -> dict[str, Any]:
    """What changes whenever the file's bytes do (see the module docstring)."""
    st = os.stat(path)
    sample = hashlib.sha256()
    with open(path, "rb") as fh:
        sample.update(fh.read(SAMPLE_BYTES))
        if st.st_size > SAMPLE_BYTES:
            fh.seek(max(SAMPLE_BYTES, st.st_size - SAMPLE_BYTES))
            sample.update(fh.read(SAMPLE_BYTES))
    return {"device": st.st_dev, "inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "sample": sample.hexdigest()}


def file_sha256(state: StateDir, path: Path) -> str:
    """The sha256 of a source file's bytes: the recorded one while the file's fingerprint is
    unchanged, else computed (and recorded, once the file has settled)."""
    record_path = state.root / "files" / f"{sha256_text(str(path))}.json"
    began = time.time_ns()
    before = file_fingerprint(path)
    record = read_json(record_path)
    if record and record.get("path") == str(path) and record.get("fingerprint") == before:
        return record["sha256"]
    digest = sha256_file(path)
    settled = began - max(before["mtime_ns"], before["ctime_ns"]) >= SETTLED_SECONDS * 1e9
    if settled and file_fingerprint(path) == before:    # and not changed while it was hashed
        try:
            write_json_atomic(record_path, {"path": str(path), "fingerprint": before, "sha256": digest})
        except OSError:
            pass   # a read-only state folder (`plan` on a checkout): hashed in full next time too
    return digest


def runtime_version() -> str:
    import mlopsc.runtime

    return str(mlopsc.runtime.__version__)


def source_file(step_json: dict[str, Any], base_dir: Path) -> Path | None:
    """The local file a csv/parquet source reads, or None when its input cannot be hashed here
    (SQL, a remote URL): such a source runs every time."""
    path = hashed_file(step_json)
    return None if path is None else (base_dir / path).resolve()


def key_components(step_json: dict[str, Any], params: dict[str, Any], input_hashes: dict[str, str],
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    config = step_config(step_json)
    return {
        "config": sha256_text(_canonical(config)),
        "params": {name: params.get(name) for name in sorted(referenced_params(config))},
        "inputs": dict(sorted(input_hashes.items())),
        "runtime": runtime_version(),
        "extra": extra or {},
    }


def cache_key(components: dict[str, Any]) -> str:
    return sha256_text(_canonical(components))


# ---------------------------------------------------------------- entries


def lookup(state: StateDir, step: str, key: str) -> tuple[dict[str, Any] | None, str]:
    """The valid entry for (step, key), or None and why not."""
    entry = read_json(state.entry_path(step, key))
    if entry is None:
        return None, "no cache entry"
    for port, out in entry.get("outputs", {}).items():
        uri = state.absolute(out["uri"])
        try:
            with open(f"{uri}.sha256", encoding="utf-8") as fh:
                recorded = fh.read().strip()
        except OSError:
            return None, f"cached output {port} is missing"
        if recorded != out["sha256"] or not os.path.exists(uri):
            return None, f"cached output {port} was modified"
    return entry, "cache hit"


def write_entry(state: StateDir, step: str, kind: str, key: str, components: dict[str, Any],
                result: dict[str, Any], run_id: str, observed: dict[str, Any] | None = None) -> None:
    """`observed`: what the step's result depended on outside its inputs (a gate's champion),
    checked again before the entry is reused."""
    # Every field of an output is kept (the runtime adds e.g. its port type); only the URI is
    # stored relative to the state folder.
    outputs = {port: {**out, "uri": state.relative(out["uri"])} for port, out in result.get("outputs", {}).items()}
    write_json_atomic(state.entry_path(step, key), {
        "step": step, "kind": kind, "key": key, "components": components, "observed": observed or {},
        "outputs": outputs, "result": result, "run_id": run_id, "created": time.time(),
    })


def entry_outputs(state: StateDir, entry: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {port: {**out, "uri": state.absolute(out["uri"])} for port, out in entry["outputs"].items()}


def latest_entry(state: StateDir, step: str) -> dict[str, Any] | None:
    entries = [read_json(p) for p in state.cache_dir(step).glob("*.json")]
    entries = [e for e in entries if e]
    return max(entries, key=lambda e: e.get("created", 0)) if entries else None


def explain_miss(state: StateDir, step: str, components: dict[str, Any]) -> str:
    """Why there is no entry for these components, against the step's latest entry."""
    previous = latest_entry(state, step)
    if previous is None:
        return "no cache entry"
    before = previous.get("components", {})
    reasons = []
    if before.get("config") != components["config"]:
        reasons.append("config changed")
    for name, value in components["params"].items():
        if before.get("params", {}).get(name, value) != value:
            reasons.append(f"param {name} changed ({before['params'][name]!r} -> {value!r})")
    old_inputs = before.get("inputs", {})
    changed = [name for name, digest in components["inputs"].items() if old_inputs.get(name) != digest]
    for name in sorted(changed, key=lambda n: n.startswith("after.")):
        if name == "file":
            reasons.append("input file changed")
        elif name.startswith("after."):
            reasons.append(f"upstream {name.split('.')[1]} changed")
        else:
            reasons.append(f"input {name} changed")
    reasons = list(dict.fromkeys(reasons))
    if before.get("runtime") != components["runtime"]:
        reasons.append(f"runtime version changed ({before.get('runtime')} -> {components['runtime']})")
    if before.get("extra") != components["extra"]:
        reasons.append(", ".join(f"{k} = {v}" for k, v in components["extra"].items()) or "options changed")
    return "; ".join(reasons) or "no cache entry for this key"
