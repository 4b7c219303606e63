"""The SLA decision on business hours (DESIGN.md §5, extended; docs/sla.md): status, deadline
and owed task over time for the issue's Friday-evening MQL, the same profile on wall-clock
rules, and what `leadsync explain` and a rep's task show."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from leadsync.config.rules import parse_rules
from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.explain import render
from leadsync.followups import OwedTask, build_task
from leadsync.identity import Person
from leadsync.scoring import Evaluation, evaluate, parse_profile
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.profile import Profile

JST = ZoneInfo("Asia/Tokyo")
SLA = {"mql_hours": 24, "sql_hours": 48, "warn_hours": {"mql": 4, "sql": 8}}
BUSINESS = parse_rules({"version": "bh", "sla": {**SLA, "business_hours": {
    "timezone": "Asia/Tokyo", "days": ["mon", "tue", "wed", "thu", "fri"],
    "hours": ["09:00-18:00"]}}}, "bh.yaml")
WALL = parse_rules({"version": "wall", "sla": SLA}, "wall.yaml")
MQL_AT = datetime(2026, 11, 20, 17, 30, tzinfo=JST)  # a Friday; Monday the 23rd is a holiday


def jst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=JST)


def mql(model: ScoringModel, now: datetime, **extra: object) -> Evaluation:
    profile = parse_profile({"id": "p-1", "email": "taro@example.co.jp", "owner": "rep@x.com",
                             "stage": "mql", "mql_at": MQL_AT.isoformat(),
                             "stage_entered_at": MQL_AT.isoformat(), **extra})
    return evaluate(profile, model, now.astimezone(UTC))


# (now, business-hours status, owed task kind, wall-clock status)
TIMELINE = [
    ("2026-11-20 17:45", "on_track", None, "on_track"),
    ("2026-11-21 14:00", "on_track", None, "due_soon"),   # Saturday: wall-clock warns
    ("2026-11-21 17:31", "on_track", None, "breached"),   # wall-clock deadline passed
    ("2026-11-23 12:00", "on_track", None, "breached"),   # 勤労感謝の日: no working time
    ("2026-11-26 10:29", "on_track", None, "breached"),
    ("2026-11-26 10:30", "due_soon", "due_soon", "breached"),  # 4 working hours remain
    ("2026-11-26 14:30", "due_soon", "due_soon", "breached"),  # the deadline itself
    ("2026-11-26 14:31", "breached", "breached", "breached"),
]


@pytest.mark.parametrize(("now", "status", "kind", "wall"), TIMELINE,
                         ids=[row[0] for row in TIMELINE])
def test_the_clock_over_a_weekend_and_a_holiday(now: str, status: str, kind: str | None,
                                                wall: str) -> None:
    ev = mql(BUSINESS, jst(now))
    assert (ev.sla_status, ev.sla_due) == (status, jst("2026-11-26 14:30"))
    assert (ev.follow_up.kind if ev.follow_up else None) == kind
    if ev.follow_up:
        assert ev.follow_up.due == jst("2026-11-26 14:30")
    walled = mql(WALL, jst(now))
    assert (walled.sla_status, walled.sla_due) == (wall, MQL_AT + timedelta(hours=24))


def test_a_touch_before_the_working_deadline_meets_it() -> None:
    touch = {"type": "sales_touch", "at": jst("2026-11-25 16:00").isoformat(),
             "channel": "call"}
    assert mql(BUSINESS, jst("2026-11-27 10:00"), events=[touch]).sla_status == "met"
    assert mql(WALL, jst("2026-11-27 10:00"), events=[touch]).sla_status == "breached"


def test_explain_shows_the_business_hours_and_the_local_deadline() -> None:
    ev = mql(BUSINESS, jst("2026-11-26 11:00"))
    out = io.StringIO()
    render(Console(file=out, width=200), [], ev, BUSINESS, "mql")
    text = out.getvalue()
    assert "SLA: due_soon, due 2026-11-26 05:30 UTC" in text
    assert ("SLA hours are business hours (Asia/Tokyo, mon-fri 09:00-18:00, JP public "
            "holidays), due 2026-11-26 14:30 JST") in text
    out = io.StringIO()
    render(Console(file=out, width=200), [], mql(WALL, jst("2026-11-20 18:00")), WALL, "mql")
    assert "business hours" not in out.getvalue()


def test_the_rep_reads_local_times_and_the_escalation_is_due_in_working_time() -> None:
    ref = RecordRef("hubspot", "contact", "101")
    profile = Profile(id=ref.key, first_name="太郎", last_name="山田")
    person = Person(ref.key, (CrmPerson(ref, profile, MQL_AT),), profile)
    calendar = BUSINESS.sla.calendar
    assert calendar is not None
    now = jst("2026-11-26 17:00")  # breached at 14:30; 1 working hour left today
    ev = mql(BUSINESS, now)
    assert ev.follow_up is not None and ev.follow_up.kind == "breached"
    task = build_task(OwedTask(person, ev, ev.follow_up), "owner-1", now=now.astimezone(UTC),
                      tz=calendar.zone, calendar=calendar)
    assert task.subject == ("[LeadSync] SLA breached: 山田 太郎 (MQL) missed 2026-11-26 14:30 "
                            "JST; act by 2026-11-27 12:00 JST")
    assert task.body.splitlines()[0] == (
        "MQL since 2026-11-20 17:30 JST: first sales contact was due by 2026-11-26 14:30 JST "
        "and has not happened. Escalated: act by 2026-11-27 12:00 JST.")
    assert task.due == jst("2026-11-27 12:00")  # 17:00-18:00 Thu, then 09:00-12:00 Fri
    walled = build_task(OwedTask(person, ev, ev.follow_up), "owner-1", now=now.astimezone(UTC),
                        tz=calendar.zone)
    assert walled.due == jst("2026-11-26 21:00")  # without a calendar: 4 wall-clock hours
