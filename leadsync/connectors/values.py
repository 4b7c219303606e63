"""Validation and formatting of written values, shared by both CRMs (pure).

`FieldUpdate.values` arrive under logical names (base.WRITTEN_FIELDS) as Python values. Before
anything is sent, each value is validated (a bad value rejects that record with a reason, it
never fails a batch) and rendered to a canonical string form; the CRM-specific mapping then
turns that into its wire format and compares it with what was read, so no-ops are skipped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from leadsync.scoring.evaluation import Reason
from leadsync.scoring.profile import STAGES
from leadsync.scoring.reasons import render_reasons as core_render_reasons

SLA_STATUSES: frozenset[str] = frozenset({"none", "on_track", "due_soon", "breached", "met"})
INT_FIELDS = frozenset({"score", "engagement"})
DATETIME_FIELDS = frozenset({"mql_at", "sql_at", "sla_due"})
MAX_NUMBER_4_0 = 9999
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidValue(ValueError):
    """A value that must not be sent; the message names the logical field."""


def clean_text(value: str) -> str:
    """Strip NUL and other control characters (CRMs refuse or mangle them), NFC-normalise."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", value))


def read_text(value: object) -> str | None:
    """A value read from a CRM as clean text; None for missing or blank."""
    if value is None:
        return None
    text = clean_text(str(value)).strip()
    return text or None


def read_float(value: object) -> float | None:
    """A CRM value ("1.5e3", 12, "n/a") as a finite float, or None."""
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_int(value: object) -> int | None:
    """A CRM value as an integer (fractions truncated), or None."""
    number = read_float(value)
    return None if number is None else int(number)


def cut(value: str, max_len: int) -> str:
    """`value` cut to `max_len` characters, ending in `…` when something was dropped."""
    if max_len < 1:
        raise ValueError(f"field length must be >= 1, got {max_len}")
    if len(value) <= max_len:
        return value
    return value[: max_len - 1] + "…"


def render_reasons(reasons: Sequence[Reason], max_len: int) -> str:
    """Reasons as the CRMs show them, through the scoring package's one renderer."""
    return core_render_reasons(tuple(reasons), max_len)


def _int_value(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name}: expected an integer, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{name}: expected a finite number")
    as_int = int(math.copysign(math.floor(abs(value) + 0.5), value))
    if abs(as_int) > MAX_NUMBER_4_0:
        raise InvalidValue(f"{name}: {as_int} does not fit Number(4,0)")
    return str(as_int)


def _datetime_value(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidValue(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{name}: naive datetime (no timezone)")
    if not 1971 <= value.year <= 2999:
        raise InvalidValue(f"{name}: year {value.year} out of range")
    return value


def _choice(name: str, value: object, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidValue(f"{name}: {str(value)[:40]!r} is not one of {sorted(allowed)}")
    return value


def _routing_value(name: str, value: object) -> str | None:
    """docs/routing.md: the reason text (255), or the new owner's id (never cleared)."""
    if name == "routed_by":
        return _text(name, value, 255) or None
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise InvalidValue(f"{name}: expected an owner id")
    return value.strip()


def _text(name: str, value: object, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"{name}: expected text, got {type(value).__name__}")
    return cut(clean_text(value), max_len)


def canonical(  # noqa: PLR0911, PLR0912 - one return per field kind reads best
    name: str, value: object, *, reasons_len: int
) -> str | datetime | None:
    """Validate one logical value and return its canonical form: str, aware datetime, or None
    (clear). Raise `InvalidValue` naming the field when it cannot be written."""
    if value is None:
        if name in DATETIME_FIELDS or name in ("reasons", "sla_status", "model", "routed_by"):
            return None
        raise InvalidValue(f"{name}: cannot be cleared")
    if name in INT_FIELDS:
        return _int_value(name, value)
    if name in DATETIME_FIELDS:
        return _datetime_value(name, value)
    if name == "stage":
        return _choice(name, value, STAGES)
    if name == "sla_status":
        return _choice(name, value, SLA_STATUSES)
    if name == "fit_grade":
        grade = _text(name, value, 40).strip()
        if len(grade) != 1:
            raise InvalidValue(f"{name}: expected one character, got {len(grade)}")
        return grade
    if name == "model":
        return _text(name, value, 40) or None
    if name in ("routed_by", "owner_id"):
        return _routing_value(name, value)
    if name == "reasons":
        # no reasons is an empty field: CRMs store "" as null, so it must compare as a clear
        if isinstance(value, str):
            return _text(name, value, reasons_len) or None
        if isinstance(value, tuple | list) and all(isinstance(r, Reason) for r in value):
            return render_reasons(value, reasons_len) or None
        raise InvalidValue(f"{name}: expected a tuple of Reason or text")
    raise InvalidValue(f"unknown written field {name!r}")


REGION_ATTRIBUTE = "state"  # rules read it as {field: state, ...} (docs/routing.md)


def region_attributes(region: str | None) -> Mapping[str, object]:
    """The profile attributes carrying a record's state / prefecture (HubSpot `state`,
    Salesforce Lead `State`, Contact `MailingState`, else its Account's `BillingState`),
    NFKC-normalised so "東京都" written in any width compares equal; none when empty."""
    if not region:
        return {}
    text = unicodedata.normalize("NFKC", region).strip()
    return MappingProxyType({REGION_ATTRIBUTE: text}) if text else MappingProxyType({})

