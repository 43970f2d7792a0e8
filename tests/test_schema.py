"""docs/ir.schema.json is the JSON Schema of `ir.Pipeline`; this fails when the models changed and
the file did not. Regenerate with: UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_schema.py"""
from __future__ import annotations

import json
import os
from pathlib import Path

from mlopsc.compiler import ir

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "ir.schema.json"


def current_schema() -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": "https://mlopsc.dev/ir.schema.json", **ir.Pipeline.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"


def test_schema_file_is_current():
    expected = current_schema()
    if os.environ.get("UPDATE_GOLDEN"):
        SCHEMA.write_text(expected, encoding="utf-8")
    assert SCHEMA.exists(), "docs/ir.schema.json is missing: run with UPDATE_GOLDEN=1"
    assert SCHEMA.read_text(encoding="utf-8") == expected, \
        "docs/ir.schema.json is stale: the IR models changed. Run with UPDATE_GOLDEN=1 and commit it."


def test_schema_describes_every_step_kind():
    defs = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]
    for cls in ir.STEP_KINDS.values():
        assert cls.__name__ in defs
