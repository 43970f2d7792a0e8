"""Files as a git revision holds them, for `mlopsc diff SPEC --against REF`: `git show REF:./PATH`
run in the file's own folder, so PATH is relative to it and the repository is the one the file
is in. Standard library only.
"""
from __future__ import annotations

import os
import subprocess


class GitError(Exception):
    """git is missing, the folder is not in a repository, or REF does not name a revision."""


def check_ref(ref: str) -> None:
    """Refuse what git would not take as a revision here, e.g.

        --output=/tmp/x    (git would read it as an option)
        HEAD:specs         (a path, not a revision)
    """
    if not ref or ref.startswith("-") or ":" in ref or not ref.isprintable():
        raise GitError(f"{ref!r} is not a git revision (a branch, tag or commit such as origin/main)")


def show(ref: str, path: str) -> bytes | None:
    """The bytes of `path` at `ref`, or None when that revision has no such file."""
    check_ref(ref)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        done = subprocess.run(["git", "show", f"{ref}:./{name}"], cwd=folder, capture_output=True,
                              timeout=60, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git show {ref}:{name} did not answer in 60 s") from None
    if done.returncode == 0:
        return done.stdout
    message = done.stderr.decode("utf-8", "replace").strip()
    if "does not exist in" in message or "exists on disk, but not in" in message:
        return None
    raise GitError(message.splitlines()[-1] if message else f"git show failed with exit code {done.returncode}")
