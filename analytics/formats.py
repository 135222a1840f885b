"""How a figure reads, in JSON and in words: rates, money, durations, changes.

One spelling for each, so the JSON, the terminal, the findings and the HTML report agree.
"""

from __future__ import annotations

from decimal import Decimal


def ratio(part: float, whole: float, digits: int = 4) -> float | None:
    """A share, or None when there is nothing to take it of (not 0: nothing is not none)."""
    return round(part / whole, digits) if whole else None


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def money(value: Decimal) -> str:
    """Yuan with fen, as a string: JSON numbers would lose the decimal."""
    return f"{value.quantize(Decimal('0.01'))}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def change(now: float, before: float) -> str:
    """R4.3.2 a figure against the period before: +12%, new, no change."""
    if before == 0:
        return "new" if now else "no change"
    return f"{(now - before) / before * 100:+.0f}%"
