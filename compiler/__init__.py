"""The mlopsc front end: grammar, IR, passes, errors.

Importing this package must stay cheap and must not import lark or networkx: the runtime loads
`mlopsc.compiler.ir` (pydantic only) on workers that have neither. Heavy parts are imported
inside the functions below.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .program import Program

__version__ = "0.1.0"


def load(path: str, params: dict[str, str] | None = None) -> "Program":
    """Parse, validate and graph one spec file. Raises errors.SpecError with every diagnostic."""
    from .program import load_program

    return load_program(path, params)


def loads(text: str, file: str = "<string>", params: dict[str, str] | None = None) -> "Program":
    from .program import load_program_text

    return load_program_text(text, file, params)
