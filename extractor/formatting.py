"""Money, numbers and shares as text for people: the one place that decides how they print.

A bottom layer: it imports nothing from extractor, so any module may use it.
"""

from __future__ import annotations

import math


def usd(value: float | None, unknown: str = "unknown") -> str:
    """Dollars, readable at any size: cents from a dollar up, three significant digits below a dollar.

    `$1,234.50`, `$12.35`, `$0.500`, `$0.0417`, `$0.000973` (per-document costs are tiny), `$0` for
    nothing, `-$0.250` below zero, and `unknown` for None (no price known).
    """
    if value is None:
        return unknown
    if value == 0:
        return "$0"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if not math.isfinite(size) or size >= 1:
        return f"{sign}${size:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(size)))
    text = f"{size:.{decimals}f}"
    if float(text) >= 1:  # 0.9996 rounds up to a dollar: show it as one
        return f"{sign}${size:,.2f}"
    return f"{sign}${text}"


def usd_as_given(value: float | None, unknown: str = "unknown") -> str:
    """A price or limit as it was set, in its shortest form: `$0.15`, `$1.5`, `$2`, `$1e-07` (per-Mtok prices);
    `unknown` for None."""
    return unknown if value is None else f"${value:g}"


def pct(value: float | None, decimals: int = 0, unknown: str = "-") -> str:
    """A share of 1 as a percentage: `pct(0.873)` is `87%`, `pct(0.873, 1)` is `87.3%`; `unknown` for None."""
    return unknown if value is None else f"{value:.{decimals}%}"


def number(value: float) -> str:
    """A count or a mean of counts: whole with thousands separators from 10 up (`1,234`), one decimal below (`2.5`)."""
    return f"{value:,.0f}" if abs(round(value, 1)) >= 10 or value == int(value) else f"{value:,.1f}"
