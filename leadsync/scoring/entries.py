"""Reason entries: a rule's non-zero contribution as a shared `Reason`, ready for sorting.

Shared by the fit table (`facts`) and the engagement tables (`plans`): the same few
(rule, points, count) contributions recur across a customer base, so each is built once.
Cap entries (`cap:fit`, `cap:engagement`, DESIGN.md §3a) are entries like any other.
"""

from __future__ import annotations

from typing import Final

from leadsync.scoring.evaluation import Reason
from leadsync.scoring.reasons import MINUS, round_one_decimal

MEMO_LIMIT: Final = 8192
#: A non-zero contribution ready for sorting: (-|points at one decimal|, shared Reason).
ReasonEntry = tuple[float, Reason]
#: `memo.get(points, MISSING)` for memos that also hold None (rounds to zero).
MISSING: Final = object()
CAP_PREFIX: Final = "cap:"

_SHARED: dict[tuple[str, str, float, int], ReasonEntry] = {}


def shared_entry(rule_id: str, label: str, points: float, count: int = 1) -> ReasonEntry | None:
    """The entry of a contribution (`count` counted occurrences), None when it rounds to zero
    (no reason is shown for it).

    Reasons are shared immutable values: the same few (rule, points) pairs recur across profiles.
    """
    rounded = round_one_decimal(points)
    if rounded == 0:
        return None
    key = (rule_id, label, rounded, count)
    entry = _SHARED.get(key)
    if entry is None:
        if len(_SHARED) >= MEMO_LIMIT * 8:
            _SHARED.clear()
        entry = _SHARED[key] = (-abs(rounded), Reason(rule_id, label, rounded, count))
    return entry


def cap_label(part: str, bound: float, *, upper: bool) -> str:
    """The reason label of a cap: `上限 (engagement 150)` / `下限 (fit −100)`."""
    text = f"{bound:g}".replace("-", MINUS)
    return f"{'上限' if upper else '下限'} ({part} {text})"


def cap_entry(part: str, raw: float, low: float, high: float) -> ReasonEntry | None:
    """The `cap:<part>` entry when the caps changed `raw` (DESIGN.md §3a): clamped - raw."""
    if raw > high:
        return shared_entry(f"cap:{part}", cap_label(part, high, upper=True), high - raw)
    if raw < low:
        return shared_entry(f"cap:{part}", cap_label(part, low, upper=False), low - raw)
    return None


