"""A spec built in part: its construction problems and the passes' diagnostics, in one report.

When a spec parses but some of it cannot be built (E25x, E35x: an unknown option, a bad value, a
missing required option), the transformer builds the pipeline from what is valid and the passes
check it, so one run reports both kinds of error. What was left out would make the passes repeat
a construction problem in other words; `without_echoes` drops those repeats:

    train model on parts.train { estimator = ... }   # E351: missing 'target' (model is left out)
    evaluate scores { model = model ... }            # not also E203: unknown step 'model'
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ir
from .errors import Diagnostic
from .passes.common import param_refs_of, refs_of

# "A step needs ...": judged from several options of a step, one of which may be the one left out.
#   source s { csv = 3 }    # E350 'csv': expected a string; not also E308: needs a path
NEEDS_CODES = frozenset({"E307", "E308"})


@dataclass(frozen=True)
class Unbuilt:
    """What the transformer could not build from a spec that parsed."""

    problems: tuple[Diagnostic, ...] = ()       # construction errors (E25x, E35x)
    steps: frozenset[str] = frozenset()         # names of steps left out of the pipeline
    params: frozenset[str] = frozenset()        # names of params left out


BUILT_IN_FULL = Unbuilt()


def without_echoes(diagnostics: list[Diagnostic], pipeline: ir.Pipeline, unbuilt: Unbuilt) -> list[Diagnostic]:
    """The passes' diagnostics of `pipeline` less those that only repeat a construction problem:
    an unknown step or param that could not be built, what a step needs in a step with a
    construction problem, and every warning (warnings judge the whole pipeline, which is
    incomplete: a deploy whose `after` was left out looks unguarded)."""
    if not unbuilt.problems:
        return diagnostics
    echoes = {("E203", ref.span) for step in pipeline.steps for _, ref in refs_of(step) if ref.step in unbuilt.steps}
    echoes |= {("E206", ref.span) for step in pipeline.steps for _, _, ref in param_refs_of(step)
               if ref.name in unbuilt.params}
    damaged = [step.span for step in pipeline.steps
               if step.span and any(p.span and _inside(p.span, step.span) for p in unbuilt.problems)]
    return [d for d in diagnostics if d.is_error and (d.code, d.span) not in echoes
            and not (d.code in NEEDS_CODES and d.span and any(_inside(d.span, span) for span in damaged))]


def _inside(inner: ir.Span, outer: ir.Span) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) \
        and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)
