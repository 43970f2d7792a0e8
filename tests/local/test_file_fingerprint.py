"""The local runner hashes a source file in full only when its fingerprint changed, and never
misses a change: `cache.file_sha256` against real files."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from mlopsc.backends.local import cache
from mlopsc.backends.local.state import StateDir


def full_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_of(state: StateDir, path: Path) -> Path:
    return state.root / "files" / f"{cache.sha256_text(str(path))}.json"


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 50_000)      # 200 KB: larger than the two sampled ends
    return path


def test_an_unchanged_file_is_served_from_its_record_and_a_change_is_always_hashed(tmp_path, data, monkeypatch):
    # Settled after 50 ms rather than 2 s, and waited for: the file's later changes then get a
    # later ctime whatever the clock's tick.
    monkeypatch.setattr(cache, "SETTLED_SECONDS", 0.05)
    time.sleep(0.1)
    state = StateDir(tmp_path / "state")
    assert cache.file_sha256(state, data) == full_hash(data)
    record = record_of(state, data)
    # The record is what an unchanged file is answered from: mark it and see the mark come back.
    doc = json.loads(record.read_text())
    record.write_text(json.dumps({**doc, "sha256": "from-the-record"}))
    assert cache.file_sha256(state, data) == "from-the-record"
    # A change in the middle of the file (outside the sampled ends), same size, with its mtime
    # put back: the ctime, which no program can set, still tells.
    before = os.stat(data)
    with open(data, "r+b") as fh:
        fh.seek(100_000)
        fh.write(b"9")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(data).st_size == before.st_size and os.stat(data).st_mtime_ns == before.st_mtime_ns
    assert cache.file_sha256(state, data) == full_hash(data) != doc["sha256"]
    # A file replaced by another (a new inode) with the same bytes, size and mtime: hashed again.
    replacement = tmp_path / "new.csv"
    replacement.write_bytes(data.read_bytes())
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, data)
    record.write_text(json.dumps({**json.loads(record.read_text()), "sha256": "stale"}))
    assert cache.file_sha256(state, data) == full_hash(data)


def test_a_file_changed_moments_ago_is_not_recorded(tmp_path, data):
    # Another write in the same tick of the file system's clock would leave its ctime equal, so
    # a fingerprint is only trusted for a file last changed SETTLED_SECONDS before its hash began.
    state = StateDir(tmp_path / "state")
    assert cache.file_sha256(state, data) == full_hash(data)
    assert not record_of(state, data).exists()
