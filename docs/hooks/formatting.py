"""Formatting shared by the results hook's modules: numbers, bootstrap intervals and Markdown tables."""

from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]



def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            shown = f"{value:,.0f}"
        elif abs(value) >= 100:
            shown = f"{value:.{min(digits, 1)}f}"
        else:
            shown = f"{value:.{digits}f}"
        return shown.removeprefix("-") if float(shown.replace(",", "")) == 0 else shown
    return cell(value)


def interval(value: Any, digits: int = 2) -> str:
    """A bootstrap estimate {mean, low, high, n} as `mean [low, high]`."""
    if not isinstance(value, dict) or value.get("mean") is None:
        return "–"
    return f"{number(value['mean'], digits)} [{number(value.get('low'), digits)}, {number(value.get('high'), digits)}]"


def cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
