"""The functions and methods a spec expression may call: the one table both sides read.

The compiler validates calls against it (name, arity, argument types); the runtime evaluates each
entry with the pandas operation named in `pandas`, and refuses a name that is not here. Nothing
outside this table can be called, so adding a function is a reviewed change to this file (and to
`runtime/expressions.py`, whose implementations are checked against these keys at import).

A call is written as a function, `lower(name)`, or as a method on its first argument,
`name.lower()`; both mean the same. Stdlib only: workers import this without lark.

Types: "number", "string", "bool", "datetime", "list" (a `[...]` literal) and "any" (whatever the
column holds, when the spec does not declare it).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    subject: str                 # the type of the first argument (the method's receiver)
    args: tuple[str, ...] = ()   # the types of the other arguments
    optional: int = 0            # how many of `args`, counted from the end, may be left out
    result: str = "bool"
    pandas: str = ""             # the pandas operation it is, for the docs and the reader
    doc: str = ""


FUNCTIONS: dict[str, Function] = {
    # null tests
    "isna": Function("any", pandas="Series.isna()", doc="the value is missing"),
    "notna": Function("any", pandas="Series.notna()", doc="the value is present"),
    # ranges and sets
    "between": Function("any", ("any", "any"), pandas="Series.between(low, high)",
                        doc="low <= value <= high"),
    "isin": Function("any", ("list",), pandas="Series.isin([...])", doc="the value is one of the list"),
    # numbers
    "abs": Function("number", result="number", pandas="Series.abs()"),
    "round": Function("number", ("number",), optional=1, result="number", pandas="Series.round(digits=0)"),
    "log": Function("number", result="number", pandas="numpy.log(Series)", doc="natural logarithm"),
    "exp": Function("number", result="number", pandas="numpy.exp(Series)"),
    "sqrt": Function("number", result="number", pandas="numpy.sqrt(Series)"),
    # strings
    "lower": Function("string", result="string", pandas="Series.str.lower()"),
    "upper": Function("string", result="string", pandas="Series.str.upper()"),
    "strip": Function("string", result="string", pandas="Series.str.strip()"),
    "len": Function("string", result="number", pandas="Series.str.len()", doc="number of characters"),
    "startswith": Function("string", ("string",), pandas="Series.str.startswith(prefix)"),
    "endswith": Function("string", ("string",), pandas="Series.str.endswith(suffix)"),
    "contains": Function("string", ("string",), pandas="Series.str.contains(text, regex=False)",
                         doc="the text occurs in the value (plain text, not a pattern)"),
    "matches": Function("string", ("string",), pandas="Series.str.match(pattern)",
                        doc="the value starts with a match of the regular expression"),
    # dates (a text column is parsed as dates first: pandas.to_datetime)
    "year": Function("datetime", result="number", pandas="Series.dt.year"),
    "month": Function("datetime", result="number", pandas="Series.dt.month"),
    "day": Function("datetime", result="number", pandas="Series.dt.day"),
    "weekday": Function("datetime", result="number", pandas="Series.dt.weekday", doc="Monday is 0"),
    "hour": Function("datetime", result="number", pandas="Series.dt.hour"),
}

# What a declared column type (`types { x: float }`) is in expressions.
COLUMN_TYPES: dict[str, str] = {"int": "number", "float": "number", "str": "string", "category": "string",
                                "bool": "bool", "datetime": "datetime"}

# Limits that keep a hostile spec from exhausting the compiler or a worker.
MAX_LENGTH = 4000    # characters of one expression
MAX_DEPTH = 100      # nesting of operators, calls and lists
