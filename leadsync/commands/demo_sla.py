"""What the demo shows of the SLA clock: wall-clock or business hours, and with business hours
one MQL clock that spanned closed time (a night, the weekend, a holiday) read from what the
sync wrote to the sandbox CRMs (docs/sla.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadsync.scoring.business_time import BusinessCalendar
from leadsync.scoring.model import ScoringModel

if TYPE_CHECKING:
    from leadsync.sandbox.store import SandboxData

#: `leadsync demo --business-hours`: the example of docs/sla.md (Tokyo, 9-18 on weekdays,
#: Japanese public holidays), used when the rules file has no `sla.business_hours`.
EXAMPLE_BUSINESS_HOURS: dict[str, Any] = {"timezone": "Asia/Tokyo",
                                          "days": ["mon", "tue", "wed", "thu", "fri"],
                                          "hours": ["09:00-18:00"], "holidays": "JP"}

_HS_FIELDS = ("leadsync_stage", "leadsync_mql_at", "leadsync_sla_due", "leadsync_sla_status")
_SF_FIELDS = ("LeadSync_Stage__c", "LeadSync_MQL_At__c", "LeadSync_SLA_Due__c",
              "LeadSync_SLA_Status__c")


def with_business_hours(model: ScoringModel) -> ScoringModel:
    """The model with the example business hours, unless it has its own."""
    from dataclasses import replace

    from leadsync.config.rules_hours import parse_business_hours
    from leadsync.config.rules_parts import Where

    if model.sla.calendar is not None:
        return model
    calendar = parse_business_hours(EXAMPLE_BUSINESS_HOURS, Where("demo --business-hours"))
    return replace(model, sla=replace(model.sla, calendar=calendar))


def _when(at: datetime, calendar: BusinessCalendar) -> str:
    from leadsync.followups import local_time

    local = at.astimezone(calendar.zone)
    return f"{local:%a} {local_time(at, calendar.zone)}"


def mql_clocks(data: SandboxData) -> list[tuple[datetime, datetime, str]]:
    """(clock start, due, SLA status) of every record leadsync wrote as an MQL."""
    from leadsync.sandbox.store import parse_time

    out: set[tuple[datetime, datetime, str]] = set()
    with data.lock:
        rows = [(c, _HS_FIELDS) for c in data.hs_contacts.values()]
        rows += [(r, _SF_FIELDS) for obj in ("Lead", "Contact")
                 for r in data.sf.get(obj, {}).values()]
        for record, (stage, start, due, status) in rows:
            if record.get(stage) == "mql" and record.get(start) and record.get(due):
                out.add((parse_time(str(record[start])), parse_time(str(record[due])),
                         str(record.get(status) or "")))
    return sorted(out)


def sla_hours_summary(model: ScoringModel, data: SandboxData) -> dict[str, Any]:
    """How SLA hours were counted, and with business hours the MQL clock that spanned the most
    closed time (in the demo's run: the weekend and the holiday after it; the latest started of
    those), in the business-hours zone."""
    calendar = model.sla.calendar
    if calendar is None:
        return {"counted": "wall-clock", "calendar": None, "example": None}
    hours = timedelta(hours=model.sla.mql_hours)
    spanning = [c for c in mql_clocks(data) if c[1] > c[0] + hours]
    example = None
    if spanning:
        start, due, status = max(spanning, key=lambda c: (c[1] - c[0], c[0]))
        example = {"mql_at": _when(start, calendar), "due": _when(due, calendar),
                   "wall_clock_due": _when(start + hours, calendar), "status": status}
    return {"counted": "business hours", "calendar": calendar.describe(),
            "clocks_spanning_closed_time": len(spanning), "example": example}


def sla_hours_line(summary: dict[str, Any], mql_hours: float) -> str:
    if summary["counted"] != "business hours":
        return ("SLA hours are wall-clock hours (business hours: rules `sla.business_hours` or "
                "`leadsync demo --business-hours`, docs/sla.md)")
    line = f"SLA hours are business hours ({summary['calendar']})"
    example = summary["example"]
    if example is None:
        return line + "; no MQL clock spanned closed time"
    return (f"{line}: {summary['clocks_spanning_closed_time']} MQL clock(s) spanned closed "
            f"time; e.g. an MQL since {example['mql_at']} is due {example['due']} "
            f"({mql_hours:g} working hours; {mql_hours:g} wall-clock hours would end "
            f"{example['wall_clock_due']}), now {example['status']}")
