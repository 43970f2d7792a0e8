"""A spec's cron (compiler/cron.py: the 5 fields, names, and `@hourly`-style macros, day of week
0-7) in GitHub's dialect (5 fields, day of week 0-6, no macros):

    "@daily"       -> "0 0 * * *"
    "0 6 * * 7"    -> "0 6 * * 0"
    "0 6 * * 5-7"  -> "0 6 * * 5-6,0"
"""
from __future__ import annotations

import re

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


def github_cron(text: str) -> str | None:
    """The same schedule for GitHub, or None when it cannot be written there (Sunday as 7 at the
    end of a range with a step, e.g. `1-7/2`)."""
    text = text.strip()
    if text.startswith("@"):
        return MACROS[text.lower()]
    fields = text.split()
    days = []
    for item in fields[4].split(","):
        base, slash, _ = item.partition("/")
        start, dash, end = base.partition("-")
        if base == "7" and not slash:
            days.append("0")
        elif dash and end == "7" and not slash:
            days.append("0" if start == "7" else f"{start}-6,0")
        elif "7" in (start, end):
            return None
        else:
            days.append(item)
    return " ".join([*fields[:4], ",".join(days)])


def too_frequent(cron: str) -> bool:
    """Every minute, or every n < 5 minutes: more often than GitHub starts scheduled runs."""
    minute = cron.split()[0]
    return minute == "*" or bool(re.fullmatch(r"\*/[1-4]", minute))
