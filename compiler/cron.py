"""Validation of 5-field cron strings: `minute hour day-of-month month day-of-week`.

Accepts what Kubernetes CronJobs, Prefect and Kubeflow recurring runs all accept: `*`, numbers,
ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and weekday names (`jan`, `mon`), and
the macros `@hourly` ... `@yearly`. Rejects anything else with a message naming the bad field, e.g.

    "0 25 * * *"   -> hour: 25 is out of range 0-23
    "0 6 * *"      -> expected 5 fields, got 4
"""
from __future__ import annotations

MACROS = frozenset(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"])
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (field name, lowest, highest, names mapped to numbers)
FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),  # 0 and 7 are both Sunday
)


def cron_error(text: str) -> str | None:
    """None if `text` is a valid cron string, else why it is not."""
    text = text.strip()
    if text.startswith("@"):
        return None if text.lower() in MACROS else f"unknown macro {text!r} (one of {', '.join(sorted(MACROS))})"
    parts = text.split()
    if len(parts) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
    for part, (name, low, high, names) in zip(parts, FIELDS):
        for item in part.split(","):
            problem = _item_error(item, low, high, names)
            if problem:
                return f"{name}: {problem}"
    return None


def _item_error(item: str, low: int, high: int, names: dict[str, int]) -> str | None:
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return f"step {step!r} in {item!r} must be a positive number"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    bounds = []
    for value in (start, end) if dash else (start,):
        if not value:
            return f"empty value in {item!r}"
        number = int(value) if value.isdigit() else names.get(value.lower())
        if number is None:
            return f"{value!r} is not a number" + (f" or one of {', '.join(names)}" if names else "")
        if not low <= number <= high:
            return f"{value} is out of range {low}-{high}"
        bounds.append(number)
    if dash and bounds[0] > bounds[1]:
        return f"range {base!r} goes backwards"
    return None
