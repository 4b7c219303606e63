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


COUNT_SIGN = "\u00d7"  # ×


def render_reason(reason: Reason) -> str:
    """One entry as the CRMs show it: `+50 デモをリクエスト`, `+100 デモをリクエスト ×2`."""
    text = f"{format_points(reason.points)} {reason.label}"
    return text if reason.count <= 1 else f"{text} {COUNT_SIGN}{reason.count}"


def render_reasons(reasons: Iterable[Reason], max_len: int) -> str:
    """`+50 デモをリクエスト; +15 料金ページを閲覧; −20 フリーメール`, at most `max_len` characters.

    Whole entries only, in the given order (biggest first, DESIGN.md §3a): when they do not all
    fit, the entries that fit are kept and the text ends with `…` (which counts toward
    max_len). Only when not even the first entry fits is its label shortened, never its
    points, and never inside a number (so "+20" is never shown as "+2…").
    """
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}")
    parts = [render_reason(r) for r in reasons]
    text = SEPARATOR.join(parts)
    if len(text) <= max_len:
        return text
    kept = ""
    for part in parts:
        longer = part if not kept else kept + SEPARATOR + part
        if len(longer) + len(SEPARATOR) + len(ELLIPSIS) > max_len:
            break
        kept = longer
    if kept:
        return kept + SEPARATOR + ELLIPSIS
    return _shortened(parts[0], max_len)


def _shortened(part: str, max_len: int) -> str:
    """The first entry cut to `max_len` with `…`: its points whole, its label cut and stripped
    of trailing digits (the cut may have split a number such as "30日"); just `…` when not even
    the points fit."""
    points = part.partition(" ")[0]
    if len(points) + 2 > max_len:  # the points, a space and the ellipsis
        return ELLIPSIS if max_len >= 1 else ""
    label = part[len(points): max_len - 2].rstrip("0123456789.,:+-\u2212\u00d7 ")
    return f"{points}{label} {ELLIPSIS}" if label else f"{points} {ELLIPSIS}"
