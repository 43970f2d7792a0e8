"""The command line of a generated local module (`python pipeline.py ...`).

argparse, not click: the module must run with `mlopsc[runtime]` alone and read like a plain
script. Options mirror `mlopsc run`; `--base-dir` is the folder that relative source paths
resolve from (the spec's folder when it was built; default: the current directory).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mlopsc.runtime.state_folder import STATE_FOLDER, state_folder

from .runner import EXIT, RunOptions
from .session import Layout, run_session


def parse_params(pipeline: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """The IR's param defaults, overridden by NAME=VALUE pairs typed by their declaration."""
    from mlopsc.compiler.program import parse_value

    declared = {p["name"]: p for p in pipeline["params"]}
    values = {name: p["default"] for name, p in declared.items()}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in declared:
            known = ", ".join(sorted(declared)) or "(none)"
            raise ValueError(f"--param {pair}: expected NAME=VALUE with NAME one of: {known}")
        value = parse_value(declared[name]["type"], text)
        if value is None:
            raise ValueError(f"--param {pair}: {name} is {declared[name]['type']}, {text!r} is not")
        values[name] = value
    return values


def positive_int(text: str) -> int:
    """`--jobs` as `mlopsc run` takes it: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def main(pipeline: dict[str, Any], layout: Layout, spec_file: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=f"Run pipeline {pipeline['name']} (built from {spec_file}).")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--only", metavar="STEP")
    parser.add_argument("--from", dest="from_step", metavar="STEP")
    parser.add_argument("--monitor", action="store_true", help="run the monitors (and retrain if one fires)")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--force-gate", action="store_true")
    parser.add_argument("--jobs", type=positive_int, default=0, help="parallel steps (default: core count)")
    parser.add_argument("--json", dest="as_json", action="store_true")
    parser.add_argument("--base-dir", default=".", help="folder relative source paths resolve from")
    parser.add_argument("--state-dir", default=None, help=f"default: BASE_DIR/{STATE_FOLDER}")
    args = parser.parse_args(argv)
    try:
        params = parse_params(pipeline, args.param)
    except ValueError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return EXIT["usage"]
    base = Path(args.base_dir).resolve()
    options = RunOptions(state_dir=args.state_dir or state_folder(base), no_cache=args.no_cache,
                         force_gate=args.force_gate, jobs=args.jobs)
    return run_session(pipeline, layout, params, os.fspath(base / spec_file), options, only=args.only,
                       from_step=args.from_step, monitors_only=args.monitor, as_json=args.as_json)
