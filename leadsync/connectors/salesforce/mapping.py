"""Salesforce Leads, Contacts and activity <-> leadsync values (pure, table-tested).

Value decisions (docs/connectors.md): Lead Status maps to `sales_status` through the configured
table (case-insensitive; unknown -> None); a Contact's sales status comes from its opportunities
(won > open > lost), each dated by CloseDate or stage history (`opportunity_outcome`);
employees from NumberOfEmployees or Account.NumberOfEmployees; stage only
from leadsync's own LeadSync_Stage__c (Salesforce has no native lifecycle stage).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from leadsync.config.settings import SalesforceFieldNames
from leadsync.connectors.base import AccountLinks, CrmPerson, EngagementEvent, RecordRef
from leadsync.connectors.values import (
    DATETIME_FIELDS,
    read_float,
    read_int,
    read_text,
    region_attributes,
)
from leadsync.scoring.profile import STAGES, Bant, Event, Profile

BANT_FIELDS = ("BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timeline__c")
LEAD_FIELDS: tuple[str, ...] = (
    "Id", "FirstName", "LastName", "Email", "Title", "Company", "NumberOfEmployees", "Industry",
    "Country", "State", "AnnualRevenue", "LeadSource", "Status", "OwnerId", "IsConverted",
    "ConvertedContactId", "ConvertedAccountId", "CreatedDate", "SystemModstamp", *BANT_FIELDS,
)  # fmt: skip
CONTACT_FIELDS: tuple[str, ...] = (
    "Id", "FirstName", "LastName", "Email", "Title", "AccountId", "LeadSource", "OwnerId",
    "MailingState", "CreatedDate", "SystemModstamp", "Account.Name", "Account.NumberOfEmployees",
    "Account.Industry", "Account.AnnualRevenue", "Account.BillingCountry",
    "Account.BillingState", *BANT_FIELDS,
)  # fmt: skip
CHANNELS: Mapping[str, str] = MappingProxyType(
    {"call": "call", "email": "email", "meeting": "meeting", "other": "other"}
)
OWN_TASK_PREFIX = "[LeadSync]"


def parse_datetime(value: object) -> datetime | None:
    """Salesforce datetimes (`2026-11-01T10:00:00.000+0000`, `...Z`) or dates; bad -> None."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: datetime) -> str:
    """The form Salesforce returns datetimes in: `2026-11-01T10:00:00.000+0000`."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def object_of(record_id: str) -> str | None:
    """Lead or Contact from the id's key prefix (00Q / 003), else None."""
    return {"00Q": "Lead", "003": "Contact"}.get(record_id[:3])


def map_lead_status(status: str | None, table: Mapping[str, str]) -> tuple[str | None, bool]:
    """(sales_status, known): the table's value for `status` compared case-insensitively;
    empty values mean "no sales status"; unknown statuses give (None, False)."""
    if not status:
        return None, True
    lowered = {k.strip().lower(): v for k, v in table.items()}
    mapped = lowered.get(status.strip().lower())
    if mapped is None:
        return None, False
    return (mapped or None), True


OPPORTUNITY_FIELDS: tuple[str, ...] = (
    "StageName", "IsClosed", "IsWon", "CloseDate", "CreatedDate", "LastModifiedDate",
)  # fmt: skip
CLOSED_STAGES = frozenset({"Closed Won", "Closed Lost"})  # until OpportunityStage is read


def _day_end(value: object) -> datetime | None:
    """The last millisecond (UTC) of a Salesforce date such as CloseDate."""
    day = parse_datetime(value)
    if day is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) - timedelta(milliseconds=1)


def opportunity_outcome(
    opp: Mapping[str, object],
    history: Iterable[Mapping[str, object]] = (),
    closed_stages: Collection[str] = CLOSED_STAGES,
) -> tuple[str, datetime]:
    """(kind, decided_at) of one Opportunity: kind is won / lost / opportunity_open.

    The decision is dated by business facts that later edits of other fields never move:
    - closed: its CloseDate (a date: the end of that day, UTC), but no later than the moment
      the closing stage was recorded (the first OpportunityHistory row of the final run of rows
      in its current stage), so a same-day decision is dated by its real time and never lies in
      the future; with no history rows, no later than LastModifiedDate.
    - open: when it (re-)entered the open pipeline: the first history row after the last row in
      a closed stage (`closed_stages`), else its CreatedDate.
    LastModifiedDate alone never dates a decision: editing a lost opportunity's description
    must not re-date the loss (DESIGN.md §4, backward facts apply once).
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows = sorted(
        ((at, str(row.get("StageName") or "")) for row in history
         if (at := parse_datetime(row.get("CreatedDate"))) is not None),
        key=lambda r: r[0],
    )  # fmt: skip
    if opp.get("IsClosed"):
        kind = "won" if opp.get("IsWon") else "lost"
        stage = str(opp.get("StageName") or "")
        recorded: datetime | None = None
        for at, row_stage in reversed(rows):
            if row_stage != stage:
                break
            recorded = at
        if recorded is None:
            recorded = parse_datetime(opp.get("LastModifiedDate"))
        day_end = _day_end(opp.get("CloseDate"))
        dates = [d for d in (day_end, recorded) if d is not None]
        return kind, min(dates) if dates else epoch
    entered: datetime | None = None
    for at, row_stage in reversed(rows):
        if row_stage in closed_stages:
            break
        entered = at
    return "opportunity_open", entered or parse_datetime(opp.get("CreatedDate")) or epoch


def opportunity_status(
    outcomes: Iterable[tuple[str, datetime]],
) -> tuple[str | None, datetime | None]:
    """A Contact's sales status from its opportunities' outcomes (`opportunity_outcome`):
    any won -> won, else any open -> opportunity_open, else any lost -> lost; `at` is the newest
    decision among the opportunities of the chosen kind."""
    by_kind: dict[str, list[datetime]] = {"won": [], "opportunity_open": [], "lost": []}
    for kind, at in outcomes:
        by_kind[kind].append(at)
    for kind in ("won", "opportunity_open", "lost"):
        if by_kind[kind]:
            return kind, max(by_kind[kind])
    return None, None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def current_values(raw: Mapping[str, object], fields: SalesforceFieldNames) -> dict[str, object]:
    """The written fields as read (logical names, Salesforce values) for no-op detection."""
    return {
        logical: raw[name]
        for logical, name in fields.model_dump().items()
        if raw.get(name) not in (None, "")
    }


def record_to_person(
    raw: Mapping[str, object],
    object_type: str,
    *,
    owners: Mapping[str, str],
    fields: SalesforceFieldNames,
    sales: tuple[str | None, datetime | None] = (None, None),
) -> CrmPerson:
    """A Lead or Contact (Contact fields fall back to its Account) as a CrmPerson."""
    ref = RecordRef("salesforce", object_type, str(raw["Id"]))
    account_raw = raw.get("Account")
    account: Mapping[str, object] = account_raw if isinstance(account_raw, Mapping) else {}
    owner_id = read_text(raw.get("OwnerId"))
    stage = read_text(raw.get(fields.stage))
    email = read_text(raw.get("Email"))
    employees = read_int(raw.get("NumberOfEmployees"))
    bant = [_bool(raw.get(f)) for f in BANT_FIELDS]
    profile = Profile(
        id=ref.key,
        email=email.lower() if email else None,
        first_name=read_text(raw.get("FirstName")),
        last_name=read_text(raw.get("LastName")),
        title=read_text(raw.get("Title")),
        company=read_text(raw.get("Company")) or read_text(account.get("Name")),
        employees=employees if employees is not None
        else read_int(account.get("NumberOfEmployees")),
        industry=read_text(raw.get("Industry")) or read_text(account.get("Industry")),
        country=read_text(raw.get("Country")) or read_text(account.get("BillingCountry")),
        attributes=region_attributes(read_text(raw.get("State"))
                                     or read_text(raw.get("MailingState"))
                                     or read_text(account.get("BillingState"))),
        annual_revenue=read_float(raw.get("AnnualRevenue") or account.get("AnnualRevenue")),
        lead_source=read_text(raw.get("LeadSource")),
        bant=Bant(*bant),
        stage=stage if stage in STAGES else None,
        sales_status=sales[0],
        sales_status_at=sales[1] if sales[0] else None,
        mql_at=parse_datetime(raw.get(fields.mql_at)),
        sql_at=parse_datetime(raw.get(fields.sql_at)),
        owner=owners.get(owner_id) if owner_id else None,
    )
    # the Account link the read carries (docs/accounts.md): no separate query for it; a read
    # without the column leaves it to `read_account_links`
    column = "AccountId" if object_type == "Contact" else "ConvertedAccountId"
    account_id = read_text(raw.get(column))
    account_links = AccountLinks(ref, (account_id,) if account_id else ()) \
        if column in raw else None
    return CrmPerson(
        ref=ref,
        profile=profile,
        modified_at=parse_datetime(raw.get("SystemModstamp")) or datetime(1970, 1, 1, tzinfo=UTC),
        current=current_values(raw, fields),
        owner_id=owner_id,
        created_at=parse_datetime(raw.get("CreatedDate")),
        account_links=account_links,
    )


def activity_to_event(raw: Mapping[str, object], kind: str) -> EngagementEvent | None:
    """A Task or Event of a rep as a `sales_touch`; leadsync's own tasks and bad rows -> None."""
    who = read_text(raw.get("WhoId"))
    obj = object_of(who) if who else None
    subject = str(raw.get("Subject") or "")
    if who is None or obj is None or subject.startswith(OWN_TASK_PREFIX):
        return None
    at_field = "StartDateTime" if kind == "Event" else "CreatedDate"
    at = parse_datetime(raw.get(at_field)) or parse_datetime(raw.get("CreatedDate"))
    seen = parse_datetime(raw.get("SystemModstamp")) or at
    if at is None or seen is None:
        return None
    default = "meeting" if kind == "Event" else "other"
    channel = CHANNELS.get(str(raw.get("Type") or "").strip().lower(), default)
    event = Event("sales_touch", at, MappingProxyType({"channel": channel}), source="salesforce")
    return EngagementEvent(RecordRef("salesforce", obj, who), event, str(raw.get("Id")), seen)


def member_to_event(raw: Mapping[str, object]) -> EngagementEvent | None:
    """A CampaignMember who attended a Webinar campaign as `webinar_attended`."""
    campaign_raw = raw.get("Campaign")
    campaign: Mapping[str, object] = campaign_raw if isinstance(campaign_raw, Mapping) else {}
    if str(raw.get("Status", "")).lower() != "attended":
        return None
    if str(campaign.get("Type", "")).lower() != "webinar":
        return None
    contact, lead = read_text(raw.get("ContactId")), read_text(raw.get("LeadId"))
    ref = RecordRef("salesforce", "Contact", contact) if contact else (
        RecordRef("salesforce", "Lead", lead) if lead else None)  # fmt: skip
    at = parse_datetime(raw.get("SystemModstamp")) or parse_datetime(raw.get("CreatedDate"))
    if ref is None or at is None:
        return None
    props = {"webinar": str(raw.get("CampaignId", ""))}
    event = Event("webinar_attended", at, MappingProxyType(props), source="salesforce")
    return EngagementEvent(ref, event, str(raw.get("Id")), at)


def same_value(logical: str, new: object, current: object) -> bool:
    """Whether Salesforce already holds `new` (None means cleared)."""
    if current in (None, ""):
        return new is None
    if new is None:
        return False
    if logical in DATETIME_FIELDS:
        return parse_datetime(current) == parse_datetime(new)
    if logical in ("score", "engagement"):
        return read_float(current) == read_float(new)
    return str(current) == str(new)
