"""Rounding and the CRM rendering of reasons (DESIGN.md §3).

Written scores are integers rounded half away from zero (2.5 -> 3, -2.5 -> -3), not Python's
banker's rounding, so a rep who adds up the reasons gets what the CRM shows. Reasons keep one
decimal, rounded the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from leadsync.scoring.evaluation import Reason

MINUS = "\u2212"
ELLIPSIS = "…"
SEPARATOR = "; "


def round_half_away(value: float) -> int:
    """Round to an integer, halves away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def clamp(value: float, low: float, high: float) -> float:
    """`value` limited to [low, high]."""
    return low if value < low else high if value > high else value


def round_one_decimal(value: float) -> float:
    """Round to one decimal, halves away from zero (0.05 -> 0.1, -0.05 -> -0.1)."""
    scaled = abs(value) * 10
    # repr-level noise such as 0.15 * 10 == 1.4999999999999998 must not flip a half down
    rounded = math.floor(scaled + 0.5 + 1e-9) / 10
    return math.copysign(rounded, value) if rounded else 0.0


def format_points(points: float) -> str:
    """"+15", "−20", "+7.5": sign always shown (U+2212 for minus), integer when whole."""
    sign = MINUS if points < 0 else "+"
    magnitude = abs(round_one_decimal(points))
    text = str(int(magnitude)) if magnitude.is_integer() else f"{magnitude:.1f}"
    return sign + text


def render_reasons(reasons: Iterable[Reason], max_len: int) -> str:
    """`+50 デモをリクエスト; +15 料金ページを閲覧; −20 フリーメール`, at most `max_len` characters.

    When the full text is too long it is cut and ends in "…" (the "…" counts toward max_len).
    """
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    text = SEPARATOR.join(f"{format_points(r.points)} {r.label}" for r in reasons)
    if len(text) <= max_len:
        return text
    if max_len == 0:
        return ""
    return text[: max_len - 1].rstrip("; ") + ELLIPSIS
