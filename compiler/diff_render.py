"""`mlopsc diff`'s three formats: text (a terminal), markdown (a pull-request comment or a CI job
summary) and JSON (for tools; the schema is in docs/diff.md and changes only with `schema`).

Every format lists, in this order: what the change means for gates and deploys, the pipeline's
own fields, params, steps (added, removed, renamed, changed, each with its fields old -> new) and
the steps a run would execute again. Values are shown as the spec writes them (`diff_text.py`);
in markdown they sit in code spans and the prose around them is escaped, so a spec's strings
cannot turn into markup.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .diff import FieldChange, ParamChange, SpecDiff, StepChange
from .diff_text import value_text

SCHEMA = 1
NO_DIFFERENCE = "no difference: both versions compile to the same pipeline"


def render(diff: SpecDiff, fmt: str) -> str:
    return {"text": as_text, "markdown": as_markdown, "json": as_json}[fmt](diff)


# ---------------------------------------------------------------- text


def as_text(diff: SpecDiff) -> str:
    out = [f"mlopsc diff: pipeline {diff.pipeline}", f"  old: {diff.old_label}", f"  new: {diff.new_label}"]
    if diff.identical:
        return "\n".join([*out, "", NO_DIFFERENCE]) + "\n"
    sections = [
        ("gates and deploys", [m.text for m in diff.meaning]),
        ("pipeline", [change_text(f) for f in diff.pipeline_fields]),
        ("params", [line for p in diff.params for line in param_lines(p)]),
        ("steps", [line for s in diff.steps for line in step_lines(s)]),
        ("a run would execute again", rerun_lines(diff)),
    ]
    for title, lines in sections:
        if lines:
            out += ["", title] + [f"  {line}" for line in lines]
    return "\n".join(out) + "\n"


def change_text(change: FieldChange) -> str:
    if change.old is None and change.path.endswith(("rules", "drift")):
        return f"{change.path}: + {value_text(change.new)}"
    if change.new is None and change.path.endswith(("rules", "drift")):
        return f"{change.path}: - {value_text(change.old)}"
    return f"{change.path}: {value_text(change.old)} -> {value_text(change.new)}"


def param_lines(change: ParamChange) -> list[str]:
    if change.old is None:
        return [f"+ {param_text(change.name, change.new)}"]
    if change.new is None:
        return [f"- {param_text(change.name, change.old)}"]
    return [f"~ {change.name}: {key} {value_text(change.old[key])} -> {value_text(change.new[key])}"
            for key in ("type", "default", "description") if change.old[key] != change.new[key]]


def param_text(name: str, param: dict[str, Any]) -> str:
    default = "" if param["default"] is None else f" = {value_text(param['default'])}"
    description = f" {json.dumps(param['description'])}" if param["description"] else ""
    return f"{name}: {param['type']}{default}{description}"


def step_title(change: StepChange) -> str:
    if change.change == "renamed":
        return f"{change.kind} {change.old_name} -> {change.name} (renamed)"
    title = f"{change.kind} {change.name}"
    return title + " (how it runs only: nothing runs again)" if change.run_policy_only else title


def step_lines(change: StepChange) -> list[str]:
    mark = {"added": "+", "removed": "-"}.get(change.change, "~")
    return [f"{mark} {step_title(change)}"] + [f"    {change_text(f)}" for f in change.fields]


def rerun_lines(diff: SpecDiff) -> list[str]:
    width = max((len(r.step) for r in diff.reruns), default=0)
    return [f"{r.verdict:<8} {r.step:<{width}}  {'; '.join(r.reasons)}" for r in diff.reruns]


# ---------------------------------------------------------------- markdown

_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#!])")


def md_escape(text: str) -> str:
    """Prose with every character that could start markup escaped (GFM accepts `\\` before any
    ASCII punctuation)."""
    return _MARKUP.sub(r"\\\1", text)


def md_code(text: str) -> str:
    """`text` as a code span that no backtick inside it can close; `|` escaped for table cells."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def as_markdown(diff: SpecDiff) -> str:
    out = [f"### mlopsc diff: pipeline {md_code(diff.pipeline)}", "",
           f"{md_code(diff.old_label)} → {md_code(diff.new_label)}", ""]
    if diff.identical:
        return "\n".join([*out, md_escape(NO_DIFFERENCE) + "."]) + "\n"
    if diff.meaning:
        out += ["**What it means for gates and deploys**", ""]
        out += [f"- {md_escape(m.text)}" for m in diff.meaning] + [""]
    if diff.pipeline_fields:
        out += ["**Pipeline**", "", "| field | old | new |", "| --- | --- | --- |"]
        out += [md_field_row(f) for f in diff.pipeline_fields] + [""]
    if diff.params:
        out += ["**Params**", "", "| param | change | old | new |", "| --- | --- | --- | --- |"]
        for p in diff.params:
            change = "added" if p.old is None else "removed" if p.new is None else "changed"
            old, new = (md_code(param_text(p.name, v)) if v else "" for v in (p.old, p.new))
            out.append(f"| {md_code(p.name)} | {change} | {old} | {new} |")
        out.append("")
    if diff.steps:
        out += ["**Steps**", "", "| change | step | fields (old → new) |", "| --- | --- | --- |"]
        for s in diff.steps:
            name = md_code(s.name) if s.old_name is None else f"{md_code(s.old_name)} → {md_code(s.name)}"
            fields = "<br>".join(md_field(f) for f in s.fields)
            note = " (how it runs only)" if s.run_policy_only else ""
            out.append(f"| {s.change}{note} | {s.kind} {name} | {fields} |")
        out.append("")
    if diff.reruns:
        out += ["**A run would execute again**", "", "| step | verdict | why |", "| --- | --- | --- |"]
        out += [f"| {md_code(r.step)} | {r.verdict} | {md_escape('; '.join(r.reasons))} |" for r in diff.reruns]
        out.append("")
    return "\n".join(out)


def md_field(change: FieldChange) -> str:
    if change.old is None and change.path.endswith(("rules", "drift")):
        return f"{md_code(change.path)}: + {md_code(value_text(change.new))}"
    if change.new is None and change.path.endswith(("rules", "drift")):
        return f"{md_code(change.path)}: − {md_code(value_text(change.old))}"
    return f"{md_code(change.path)}: {md_code(value_text(change.old))} → {md_code(value_text(change.new))}"


def md_field_row(change: FieldChange) -> str:
    return f"| {md_code(change.path)} | {md_code(value_text(change.old))} | {md_code(value_text(change.new))} |"


# ---------------------------------------------------------------- JSON


def as_json(diff: SpecDiff) -> str:
    def fields(changes: tuple[FieldChange, ...]) -> list[dict[str, Any]]:
        return [{"field": c.path, "old": c.old, "new": c.new} for c in changes]

    document = {
        "schema": SCHEMA,
        "pipeline": diff.pipeline,
        "old": diff.old_label,
        "new": diff.new_label,
        "identical": diff.identical,
        "meaning": [{"step": m.step, "text": m.text} for m in diff.meaning],
        "pipeline_fields": fields(diff.pipeline_fields),
        "params": [{"name": p.name, "change": "added" if p.old is None else "removed" if p.new is None
                    else "changed", "old": p.old, "new": p.new} for p in diff.params],
        "steps": [{"change": s.change, "kind": s.kind, "name": s.name, "old_name": s.old_name,
                   "run_policy_only": s.run_policy_only, "fields": fields(s.fields)} for s in diff.steps],
        "reruns": [{"step": r.step, "kind": r.kind, "verdict": r.verdict, "reasons": list(r.reasons)}
                   for r in diff.reruns],
    }
    return json.dumps(document, indent=2) + "\n"
