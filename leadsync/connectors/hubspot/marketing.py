"""Email events and form submissions -> leadsync events (pure, table-tested).

Both APIs name people by email, not by contact id, so they map to a `KeyedEvent` that the
reader resolves to a contact later (`engagement.EmailResolver`). Value decisions (documented
in docs/connectors.md): OPEN -> email_open (campaign), CLICK -> email_click (url),
STATUSCHANGE that unsubscribes (portal-wide or from any subscription) -> email_unsubscribe;
other email event types are not engagement. A form submission -> form_submit with the form's
name and the page it was sent from; its id hashes form GUID, submittedAt and email, because
the API gives none that every portal returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from leadsync.scoring.profile import Event

EMAIL_EVENT_TYPES: tuple[str, ...] = ("OPEN", "CLICK", "STATUSCHANGE")


@dataclass(frozen=True, slots=True)
class KeyedEvent:
    """An event whose person is known only by email (lowercased)."""

    email: str
    event: Event
    id: str
    seen_at: datetime


def _ms(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        ms = int(value)
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def email_key(value: object) -> str | None:
    """The form events are keyed by (trimmed, lowercased); None when it is not an address."""
    text = str(value).strip().lower() if value is not None else ""
    return text if "@" in text else None


def _unsubscribes(raw: Mapping[str, object]) -> bool:
    if str(raw.get("portalSubscriptionStatus", "")).upper() == "UNSUBSCRIBED":
        return True
    subs = raw.get("subscriptions")
    return isinstance(subs, list) and any(
        isinstance(s, Mapping) and str(s.get("status", "")).upper() == "UNSUBSCRIBED" for s in subs
    )


def email_event_from_raw(raw: Mapping[str, object]) -> KeyedEvent | None:
    """One `/email/public/v1/events` entry; other types, resubscribes and bad rows -> None."""
    kind = str(raw.get("type", "")).upper()
    at = _ms(raw.get("created"))
    email = email_key(raw.get("recipient"))
    event_id = raw.get("id")
    if at is None or email is None or event_id in (None, ""):
        return None
    props: dict[str, str] = {}
    if raw.get("emailCampaignId") is not None:
        props["campaign"] = str(raw["emailCampaignId"])
    if kind == "OPEN":
        event_type = "email_open"
    elif kind == "CLICK":
        event_type = "email_click"
        if raw.get("url"):
            props["url"] = str(raw["url"])
    elif kind == "STATUSCHANGE" and _unsubscribes(raw):
        event_type = "email_unsubscribe"
    else:
        return None
    event = Event(type=event_type, at=at, props=MappingProxyType(props), source="hubspot")
    return KeyedEvent(email, event, f"email:{event_id}", at)


def submission_email(raw: Mapping[str, object]) -> str | None:
    """The `email` value of a form submission (field names compared case-insensitively)."""
    values = raw.get("values")
    for item in values if isinstance(values, list) else []:
        if isinstance(item, Mapping) and str(item.get("name", "")).lower() == "email":
            return email_key(item.get("value"))
    return None


def submitted_at(raw: Mapping[str, object]) -> datetime | None:
    return _ms(raw.get("submittedAt"))


def submission_from_raw(
    raw: Mapping[str, object], form_guid: str, form_name: str
) -> KeyedEvent | None:
    """One `/form-integrations/v1/submissions/forms/{guid}` result; no email or time -> None."""
    at = submitted_at(raw)
    email = submission_email(raw)
    if at is None or email is None:
        return None
    props = {"form": form_name}
    if raw.get("pageUrl"):
        props["url"] = str(raw["pageUrl"])
    digest = hashlib.sha256(f"{form_guid}|{raw.get('submittedAt')}|{email}".encode()).hexdigest()
    event = Event(type="form_submit", at=at, props=MappingProxyType(props), source="hubspot")
    return KeyedEvent(email, event, f"form:{digest[:32]}", at)
