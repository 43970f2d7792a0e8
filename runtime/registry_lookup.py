"""What is learnt of the MLflow registry without importing MLflow: whether a tracking server
answers at all, who holds a registry alias, and where a version's files lie.

Importing MLflow and opening its store costs a process seconds. Two callers cannot afford that:

- the local runner, which looks an alias up again before it reuses a cached gate or deploy (a
  fully cached run would otherwise pay MLflow's import for a lookup);
- `mlopsc serve`, which must answer within seconds of its start, and polls the alias.

The two common stores are read directly:

- `sqlite:///PATH` (the default store): read-only queries of MLflow's registry tables
  (`registered_model_aliases`, `model_version_tags`, `model_versions`);
- `http(s)://HOST`: MLflow's REST API (the registered model's aliases, then the holder's tags),
  with the same auth environment variables as MLflow's client (`MLFLOW_TRACKING_TOKEN`, or
  `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`).

Any other store, or an answer that cannot be read, raises Unavailable (or, for `local_folder`,
gives None): the caller then asks MLflow, which is slower but never stale.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SHA_TAG = "mlopsc.model_sha256"     # set on every version a deploy step registers


class Unavailable(Exception):
    pass


def unreachable(uri: str) -> str | None:
    """Why an http(s) tracking server cannot be reached (connection refused, DNS, timeout), or
    None. Any HTTP answer, even an error status, means it is there."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
    except urllib.error.HTTPError:
        return None
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", None) or exc)
    return None


def holder(tracking_uri: str, name: str, alias: str) -> dict[str, Any] | None:
    """{"version": "3", "model_sha256": "..." or None} of the version holding NAME@ALIAS, None when
    no version holds it (or the model does not exist)."""
    if tracking_uri.startswith("sqlite:///"):
        return _sqlite(tracking_uri[len("sqlite:///"):], name, alias)
    if tracking_uri.startswith(("http://", "https://")):
        return _rest(tracking_uri.rstrip("/"), name, alias)
    raise Unavailable(f"the runner cannot read the registry of {tracking_uri.split(':', 1)[0]} stores "
                      "without MLflow")


def _sqlite(path: str, name: str, alias: str) -> dict[str, Any] | None:
    if not os.path.exists(path):
        return None      # no store yet: nothing was ever registered
    try:
        # closing(): a sqlite3 connection's own `with` ends a transaction, it does not close.
        # quote(): a `?` or `#` in the path must not end it inside the URI.
        with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True,
                                                timeout=5)) as db:
            rows = db.execute(
                "SELECT a.version, t.value FROM registered_model_aliases a LEFT JOIN model_version_tags t"
                " ON t.name = a.name AND t.version = a.version AND t.key = ?"
                " WHERE a.name = ? AND a.alias = ?", (SHA_TAG, name, alias)).fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return None  # a store MLflow has not set up yet
        raise Unavailable(f"cannot read the registry in {path}: {exc}") from exc
    if len(rows) > 1:    # MLflow workspaces: several holders; which one applies is MLflow's call
        raise Unavailable(f"{name}@{alias} is held in more than one MLflow workspace")
    return {"version": str(rows[0][0]), "model_sha256": rows[0][1]} if rows else None


def local_folder(tracking_uri: str, name: str, version: str) -> str | None:
    """The folder on this machine holding version `version` of `name`, when the store is SQLite and
    the version's files are a local folder with an MLmodel file (what `mlopsc run` registers by
    default); else None. A registered version's files never change, so they are read in place."""
    if not tracking_uri.startswith("sqlite:///") or not str(version).isdigit():
        return None
    path = tracking_uri[len("sqlite:///"):]
    if not os.path.exists(path):
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True,
                                                timeout=5)) as db:
            rows = db.execute("SELECT storage_location, source, status FROM model_versions"
                              " WHERE name = ? AND version = ?", (name, int(version))).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) != 1 or rows[0][2] != "READY":
        return None
    location = rows[0][0] or rows[0][1] or ""
    if location.startswith("file://"):
        folder = urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    elif os.path.isabs(location):      # a version registered from a plain path, as MLflow allows
        folder = location
    else:
        return None
    return folder if os.path.isfile(os.path.join(folder, "MLmodel")) else None


def _rest(base: str, name: str, alias: str) -> dict[str, Any] | None:
    """The registered model's aliases, then the holder's tags: an alias that does not exist is
    then a plain absence, not an error to tell apart from others."""
    try:
        model = _get(base, "registered-models/get", name=name)
        holders = [a["version"] for a in (model or {}).get("registered_model", {}).get("aliases", [])
                   if a.get("alias") == alias]
        version = _get(base, "model-versions/get", name=name, version=holders[0]) if holders else None
        if version is None:
            return None
        tags = {t.get("key"): t.get("value") for t in version["model_version"].get("tags", [])}
    except (KeyError, TypeError, AttributeError) as exc:
        raise Unavailable(f"{base} gave an answer that is not MLflow's registry API") from exc
    return {"version": str(holders[0]), "model_sha256": tags.get(SHA_TAG)}


def _get(base: str, endpoint: str, **query: str) -> dict[str, Any] | None:
    """GET an MLflow REST endpoint; None when MLflow says the resource does not exist."""
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}")
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
        user = f"{os.environ['MLFLOW_TRACKING_USERNAME']}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(user.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            code = json.load(exc).get("error_code")
        except (OSError, ValueError, AttributeError):
            code = None
        if code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise Unavailable(f"{base} answered {exc.code} to a registry lookup") from exc
    except (OSError, ValueError) as exc:
        raise Unavailable(f"cannot look up the registry at {base}: {exc}") from exc
