"""HubSpot contact properties and events <-> leadsync values (pure, table-tested).

Value decisions (documented in docs/connectors.md): `numemployees` ranges map to the range's
lower bound; `lifecyclestage` maps to leadsync stages (other -> None) and back per DESIGN §4;
`hs_lead_status` maps to `sales_status` without a date (HubSpot keeps no history we read).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from leadsync.config.settings import HubSpotFieldNames
from leadsync.connectors.base import AccountLinks, CrmPerson, Deal, EngagementEvent, RecordRef
from leadsync.connectors.values import DATETIME_FIELDS, read_float, read_text, region_attributes
from leadsync.scoring.profile import STAGES, Bant, Event, Profile

log = logging.getLogger(__name__)

CONTACT_PROPERTIES: tuple[str, ...] = (
    "email", "firstname", "lastname", "jobtitle", "company", "numemployees", "industry",
    "country", "state", "annualrevenue", "hs_analytics_source", "hs_lead_status", "lifecyclestage",
    "hubspot_owner_id", "createdate", "lastmodifieddate", "salesforceleadid",
    "salesforcecontactid", "bant_budget", "bant_authority", "bant_need", "bant_timeline",
    "associatedcompanyid",
)  # fmt: skip

LIFECYCLE_TO_STAGE: Mapping[str, str | None] = MappingProxyType({
    "subscriber": "subscriber", "lead": "lead", "marketingqualifiedlead": "mql",
    "salesqualifiedlead": "sql", "opportunity": "opportunity", "customer": "customer",
    "evangelist": "customer", "other": None,
})  # fmt: skip
STAGE_TO_LIFECYCLE: Mapping[str, str] = MappingProxyType({
    "subscriber": "subscriber", "lead": "lead", "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead", "opportunity": "opportunity", "customer": "customer",
    "recycled": "lead", "disqualified": "other",
})  # fmt: skip
# HubSpot's pipeline order; a move to a lower index is backwards (needs clear-then-set).
LIFECYCLE_ORDER: tuple[str, ...] = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
    "customer", "evangelist", "other",
)  # fmt: skip
LEAD_STATUS_TO_SALES: Mapping[str, str | None] = MappingProxyType({
    "NEW": None, "OPEN": None, "IN_PROGRESS": "working", "ATTEMPTED_TO_CONTACT": "working",
    "CONNECTED": "working", "OPEN_DEAL": "opportunity_open", "UNQUALIFIED": "disqualified",
    "BAD_TIMING": "rejected",
})  # fmt: skip
EVENT_TYPES: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]] = MappingProxyType({
    "e_visited_page": ("page_view", (("hs_url", "url"),)),
    "e_attended_webinar": ("webinar_attended", (("hs_webinar_id", "webinar"),)),
    "e_booked_meeting": ("meeting_booked", ()),
})  # fmt: skip


def parse_datetime(value: object) -> datetime | None:
    """HubSpot dates: ISO-8601 (with Z or offset) or epoch milliseconds; bad input -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        if re.fullmatch(r"-?\d{10,14}", text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """The form HubSpot returns datetimes in: ISO-8601 UTC with milliseconds and Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def employees_from_range(value: object) -> int | None:
    """`100-500` -> 100, `1000+` -> 1000, `250` -> 250; anything else -> None."""
    if value is None:
        return None
    m = re.match(r"\s*(\d[\d,]*)", str(value))
    return int(m.group(1).replace(",", "")) if m else None


def _bool(value: object) -> bool | None:
    text = str(value).strip().lower() if value is not None else ""
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    return None


def lifecycle_stage(props: Mapping[str, object], fields: HubSpotFieldNames) -> str | None:
    """leadsync's own stage field first, else `lifecyclestage` mapped back, else None."""
    own = read_text(props.get(fields.stage))
    if own in STAGES:
        return own
    native = read_text(props.get("lifecyclestage"))
    return LIFECYCLE_TO_STAGE.get(native.lower()) if native else None


def is_backward(current: str | None, new: str) -> bool:
    """True when setting `lifecyclestage` from `current` to `new` moves it backwards."""
    if not current or current not in LIFECYCLE_ORDER or new not in LIFECYCLE_ORDER:
        return False
    return LIFECYCLE_ORDER.index(new) < LIFECYCLE_ORDER.index(current)


def lifecycle_target(stage: str, current: str | None) -> str:
    """The `lifecyclestage` a contact in leadsync `stage` holds: the stage's own value, unless
    what it holds already means that stage (a human's `evangelist` is a customer: kept)."""
    if current and LIFECYCLE_TO_STAGE.get(current) == stage:
        return current
    return STAGE_TO_LIFECYCLE[stage]


def current_values(props: Mapping[str, object], fields: HubSpotFieldNames) -> dict[str, object]:
    """The written fields as read (logical names, HubSpot strings) plus `lifecyclestage`."""
    current: dict[str, object] = {}
    for logical, name in fields.model_dump().items():
        value = props.get(name)
        if value not in (None, ""):
            current[logical] = str(value)
    if props.get("lifecyclestage"):
        current["lifecyclestage"] = str(props["lifecyclestage"])
    return current


#: the v3 inline association type of a contact's primary company (every company is also
#: listed as `contact_to_company_unlabeled`)
PRIMARY_COMPANY_TYPE = "contact_to_company"


def inline_company_links(ref: RecordRef, raw: Mapping[str, object]) -> AccountLinks | None:
    """The companies of a contact read with `associations=companies` (v3:
    `associations.companies.results[] = {"id", "type"}`, the key absent for a contact without
    companies; the list read marks the contacts it asked for with an empty `associations`).
    None when the read did not ask (no `associations` key: a search or a batch read), or when
    the block is paged (more companies than HubSpot lists inline): the v4 batch read gets them."""
    assoc = raw.get("associations")
    if not isinstance(assoc, Mapping):
        return None
    block = assoc.get("companies")
    if block is None:
        return AccountLinks(ref, ())
    rows = block.get("results") if isinstance(block, Mapping) else None
    if not isinstance(rows, list) or (isinstance(block, Mapping) and block.get("paging")):
        return None
    ids: list[str] = []
    primary: str | None = None
    for row in rows:
        if not isinstance(row, Mapping) or not row.get("id"):
            continue
        cid = str(row["id"])
        if cid not in ids:
            ids.append(cid)
        if row.get("type") == PRIMARY_COMPANY_TYPE:
            primary = cid
    return AccountLinks(ref, tuple(ids), primary)


def primary_company_links(ref: RecordRef, raw: Mapping[str, object]) -> AccountLinks | None:
    """The account link a search or batch read carries: `associatedcompanyid`, the contact's
    primary company (read-only; HubSpot keeps it as associations change). Only the primary
    company (a contact's other companies need the v4 read; the account rules resolve a contact
    by its primary company first). None when the read did not return the property, or when it
    was a list read that asked for the companies inline (`inline_company_links` decides)."""
    props = raw.get("properties")
    if "associations" in raw or not isinstance(props, Mapping) \
            or "associatedcompanyid" not in props:
        return None
    company = read_text(props.get("associatedcompanyid"))
    return AccountLinks(ref, (company,), company) if company else AccountLinks(ref, ())


def contact_to_person(
    raw: Mapping[str, object], owners: Mapping[str, str], fields: HubSpotFieldNames
) -> CrmPerson:
    """One contact from the v3 API (`{"id", "properties", "updatedAt"}`, with `associations`
    from a list read: its account links) as a CrmPerson."""
    props_raw = raw.get("properties")
    props: Mapping[str, object] = props_raw if isinstance(props_raw, Mapping) else {}
    ref = RecordRef("hubspot", "contact", str(raw["id"]))
    owner_id = read_text(props.get("hubspot_owner_id"))
    lead_status = read_text(props.get("hs_lead_status"))
    links = tuple(
        RecordRef("salesforce", obj, sf_id)
        for obj, key in (("Lead", "salesforceleadid"), ("Contact", "salesforcecontactid"))
        if (sf_id := read_text(props.get(key)))
    )
    email = read_text(props.get("email"))
    profile = Profile(
        id=ref.key,
        email=email.lower() if email else None,
        first_name=read_text(props.get("firstname")),
        last_name=read_text(props.get("lastname")),
        title=read_text(props.get("jobtitle")),
        company=read_text(props.get("company")),
        employees=employees_from_range(props.get("numemployees")),
        industry=read_text(props.get("industry")),
        country=read_text(props.get("country")),
        attributes=region_attributes(read_text(props.get("state"))),
        annual_revenue=read_float(props.get("annualrevenue")),
        lead_source=read_text(props.get("hs_analytics_source")),
        bant=Bant(
            *(_bool(props.get(f"bant_{k}")) for k in ("budget", "authority", "need", "timeline"))
        ),
        stage=lifecycle_stage(props, fields),
        sales_status=LEAD_STATUS_TO_SALES.get(lead_status.upper()) if lead_status else None,
        mql_at=parse_datetime(props.get(fields.mql_at)),
        sql_at=parse_datetime(props.get(fields.sql_at)),
        owner=owners.get(owner_id) if owner_id else None,
    )
    modified = parse_datetime(props.get("lastmodifieddate")) or parse_datetime(raw.get("updatedAt"))
    return CrmPerson(
        ref=ref,
        profile=profile,
        modified_at=modified or datetime(1970, 1, 1, tzinfo=UTC),
        current=current_values(props, fields),
        links=links,
        owner_id=owner_id,
        created_at=parse_datetime(props.get("createdate")) or parse_datetime(raw.get("createdAt")),
        account_links=inline_company_links(ref, raw) or primary_company_links(ref, raw),
    )


def event_from_raw(raw: Mapping[str, object]) -> EngagementEvent | None:
    """One `/events/v3/events` result as an EngagementEvent; unknown types and bad rows -> None.
    Email and form events are read from their own APIs (`marketing.py`), never from here,
    so the same open or submission is not counted twice."""
    kind = EVENT_TYPES.get(str(raw.get("eventType", "")))
    at = parse_datetime(raw.get("occurredAt"))
    object_id = raw.get("objectId")
    if kind is None or at is None or object_id in (None, ""):
        return None
    event_type, prop_names = kind
    props_raw = raw.get("properties")
    src: Mapping[str, object] = props_raw if isinstance(props_raw, Mapping) else {}
    props = {ours: str(src[theirs]) for theirs, ours in prop_names if src.get(theirs) is not None}
    event = Event(type=event_type, at=at, props=MappingProxyType(props), source="hubspot")
    ref = RecordRef("hubspot", "contact", str(object_id))
    return EngagementEvent(person=ref, event=event, id=str(raw.get("id", "")), seen_at=at)


def same_value(logical: str, new: str, current: object) -> bool:
    """Whether HubSpot already holds `new` (compared after normalising numbers and dates)."""
    if current is None or current == "":
        return new == ""
    cur = str(current)
    if logical in DATETIME_FIELDS and new:
        return parse_datetime(cur) == parse_datetime(new)
    if logical in ("score", "engagement"):
        return read_float(cur) == read_float(new)
    return cur == new


DEAL_PROPERTIES: tuple[str, ...] = (
    "amount", "closedate", "createdate", "hs_is_closed", "hs_is_closed_won",
)  # fmt: skip


def deal_links(raw: Mapping[str, object]) -> list[Deal]:
    """One deal of the v3 list (with `associations.contacts.results`) as a `Deal` per
    associated contact; none without contacts or without a create date."""
    props_raw = raw.get("properties")
    props: Mapping[str, object] = props_raw if isinstance(props_raw, Mapping) else {}
    created = parse_datetime(props.get("createdate")) or parse_datetime(raw.get("createdAt"))
    assoc = raw.get("associations")
    block = assoc.get("contacts") if isinstance(assoc, Mapping) else None
    rows = block.get("results") if isinstance(block, Mapping) else None
    if created is None or not isinstance(rows, list):
        return []
    closed = _bool(props.get("hs_is_closed")) is True
    won = closed and _bool(props.get("hs_is_closed_won")) is True
    closed_at = (parse_datetime(props.get("closedate")) or created) if closed else None
    amount = read_float(props.get("amount"))
    did = str(raw.get("id"))
    contacts = sorted({str(r["id"]) for r in rows if isinstance(r, Mapping) and r.get("id")})
    return [Deal(RecordRef("hubspot", "contact", cid), did, created, closed_at, won, amount)
            for cid in contacts]
