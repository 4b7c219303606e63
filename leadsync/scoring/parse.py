"""JSON-like dicts <-> `Profile` (DESIGN.md §2): tolerant where meaning is clear, loud where not.

Tolerated: ISO-8601 dates with `Z` or an offset; naive dates (taken as UTC); bare dates
(midnight UTC); epoch numbers (seconds, or milliseconds when > 1e11), as numbers or as text
(CSV cells are text); numbers as strings
("1,200", "150.0"), HubSpot employee ranges ("100-500" -> 100, "1000+" -> 1000); booleans as
"true"/"yes"/"1"; stage and sales status in any case (HubSpot lifecycle names accepted);
unknown stage or sales-status strings become None; unknown top-level keys go to `attributes`.

Refused with `ProfileError` naming the field (the caller reports the profile and skips it):
a missing id, structural garbage (`events` not a list, an event without a type), an event date
that cannot be read (scoring it without that event would silently change the score), numbers
that are not numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType

from leadsync.scoring.profile import SALES_STATUSES, STAGES, Bant, Event, Profile

_STRING_FIELDS = ("email", "first_name", "last_name", "title", "company", "industry",
                  "country", "lead_source", "owner")
_DATE_FIELDS = ("stage_entered_at", "sales_status_at", "mql_at", "sql_at")
_KNOWN = frozenset(
    {"id", "attributes", "bant", "events", "employees", "annual_revenue", "stage",
     "sales_status", "score_at_mql", *_STRING_FIELDS, *_DATE_FIELDS}
)
_STAGE_ALIASES = {
    "marketingqualifiedlead": "mql", "salesqualifiedlead": "sql", "other": "disqualified",
}
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class ProfileError(ValueError):
    """A profile that cannot be scored faithfully; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_datetime(value: object, field: str) -> datetime | None:
    """Aware UTC datetime from ISO text (Z/offset/naive/bare date) or epoch s/ms; None if empty."""
    if type(value) is str and value:
        try:  # fast path: well-formed ISO text
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is UTC:
                return moment
            return _to_utc(moment, field)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value, field)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
            except ValueError:
                epoch = _epoch_text(text)
                if epoch is not None:  # CSV cells are text: "1730000000" is epoch seconds
                    return _from_epoch(epoch, field)
                raise ProfileError(field, f"not an ISO-8601 date: {text[:40]!r}") from None
    else:
        raise ProfileError(field, f"expected an ISO-8601 date, got {type(value).__name__}")
    return _to_utc(moment, field)


def _ascii_digits(text: str) -> bool:
    """Only 0-9, at least one: `str.isdigit` also accepts '²' or '١', which `int`/`float`
    refuse or read differently."""
    return bool(text) and text.isascii() and text.isdigit()


def _epoch_text(text: str) -> float | None:
    """An epoch number written as text ("1730000000", "1730000000123", "1730000000.5")."""
    digits, _, fraction = text.removeprefix("-").partition(".")
    if not _ascii_digits(digits) or (fraction and not _ascii_digits(fraction)):
        return None
    return float(text)


def _from_epoch(value: float, field: str) -> datetime:
    """Epoch seconds, or milliseconds when the number is too large to be seconds (> 1e11)."""
    if not math.isfinite(value):
        raise ProfileError(field, f"not a date: {value!r}")
    seconds = value / 1000 if abs(value) > 1e11 else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ProfileError(field, f"date out of range: {value!r}") from None


def _to_utc(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ProfileError(field, f"date out of range: {moment.isoformat()[:40]!r}") from None


def _text(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise ProfileError(key, f"expected a string, got {type(value).__name__}")


def _number(value: object, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ProfileError(field, "expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if text.endswith("+"):
            text = text[:-1]
        low, dash, high = text.partition("-")
        if dash and _ascii_digits(low) and _ascii_digits(high):  # a range "100-500": lower bound
            text = low
        try:
            number = float(text)
        except ValueError:
            raise ProfileError(field, f"not a number: {value[:40]!r}") from None
    else:
        raise ProfileError(field, f"expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ProfileError(field, f"not a finite number: {value!r}")
    return number


def _integer(value: object, field: str) -> int | None:
    number = _number(value, field)
    return None if number is None else int(number)


def _bool(value: object, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ProfileError(field, f"expected true/false, got {str(value)[:40]!r}")


def _stage(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip().lower()
    key = _STAGE_ALIASES.get(key, key)
    return key if key in STAGES else None


def _sales_status(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip().lower().replace(" ", "_").replace("-", "_")
    return key if key in SALES_STATUSES else None


def _bant(value: object) -> Bant:
    if value is None:
        return Bant()
    if not isinstance(value, Mapping):
        raise ProfileError("bant", f"expected an object, got {type(value).__name__}")
    return Bant(*(_bool(value.get(k), f"bant.{k}") for k in ("budget", "authority", "need",
                                                               "timeline")))


_EVENT_RESERVED = frozenset({"type", "at", "source"})


def _props(raw: Mapping[str, object]) -> dict[str, str]:
    props: dict[str, str] = {}
    for key, value in raw.items():
        if key in _EVENT_RESERVED or value is None:
            continue
        if type(value) is str:  # the common case first: no ABC isinstance checks
            props[key] = value
        elif isinstance(value, str | bool | int | float):
            props[str(key)] = str(value)
        else:
            raise ProfileError(str(key), "expected a scalar value")
    return props


def _event(raw: object, index: int) -> Event:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise ProfileError(f"events[{index}]", f"expected an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if type(kind) is not str or not kind or kind != kind.strip().lower():
        if not isinstance(kind, str) or not kind.strip():
            raise ProfileError(f"events[{index}].type", "missing or not a string")
        kind = kind.strip().lower()
    try:
        at = parse_datetime(raw.get("at"), "at")
        props = _props(raw)
    except ProfileError as exc:  # field names are built only on error: this is the hot path
        raise ProfileError(f"events[{index}].{exc.field}", exc.message) from None
    if at is None:
        raise ProfileError(f"events[{index}].at", "missing")
    source = raw.get("source")
    return Event(kind, at, MappingProxyType(props), source if isinstance(source, str) else None)


def _events(value: object) -> tuple[Event, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ProfileError("events", f"expected a list, got {type(value).__name__}")
    return tuple(_event(raw, i) for i, raw in enumerate(value))


def _attributes(obj: Mapping[str, object]) -> Mapping[str, object]:
    given = obj.get("attributes")
    if given is not None and not isinstance(given, Mapping):
        raise ProfileError("attributes", f"expected an object, got {type(given).__name__}")
    extra = {str(k): v for k, v in obj.items() if k not in _KNOWN}
    if given:
        extra.update({str(k): v for k, v in given.items()})
    return MappingProxyType(extra)


def parse_profile(obj: Mapping[str, object]) -> Profile:
    """A `Profile` from its JSON form (DESIGN.md §2); raises `ProfileError` naming the field."""
    if not isinstance(obj, Mapping):
        raise ProfileError("profile", f"expected an object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise ProfileError("id", "missing or not a string")
    strings = {k: _text(obj, k) for k in _STRING_FIELDS}
    dates = {k: parse_datetime(obj.get(k), k) for k in _DATE_FIELDS}
    return Profile(
        id=str(raw_id).strip(),
        employees=_integer(obj.get("employees"), "employees"),
        annual_revenue=_number(obj.get("annual_revenue"), "annual_revenue"),
        attributes=_attributes(obj),
        bant=_bant(obj.get("bant")),
        events=_events(obj.get("events")),
        stage=_stage(_text(obj, "stage")),
        sales_status=_sales_status(_text(obj, "sales_status")),
        score_at_mql=_integer(obj.get("score_at_mql"), "score_at_mql"),
        **strings,  # type: ignore[arg-type]
        **dates,  # type: ignore[arg-type]
    )


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def profile_to_dict(profile: Profile) -> dict[str, object]:
    """The JSON form of a profile; `parse_profile(profile_to_dict(p)) == p` for parsed profiles."""
    out: dict[str, object] = {"id": profile.id}
    for key in _STRING_FIELDS:
        out[key] = getattr(profile, key)
    out["employees"] = profile.employees
    out["annual_revenue"] = profile.annual_revenue
    out["attributes"] = dict(profile.attributes)
    bant = profile.bant
    out["bant"] = {"budget": bant.budget, "authority": bant.authority, "need": bant.need,
                   "timeline": bant.timeline}
    out["events"] = [
        {"type": e.type, "at": _iso(e.at), **dict(e.props),
         **({"source": e.source} if e.source is not None else {})}
        for e in profile.events
    ]
    out["stage"] = profile.stage
    out["sales_status"] = profile.sales_status
    out["score_at_mql"] = profile.score_at_mql
    for key in _DATE_FIELDS:
        out[key] = _iso(getattr(profile, key))
    return out
