"""Business-hours SLAs: the working-time arithmetic (leadsync.scoring.business_time) on calendars
built the way a rules file builds them (real public holidays from the `holidays` package)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsync.config.rules import parse_rules
from leadsync.scoring.business_time import BusinessCalendar, add_working, working_between
from leadsync.scoring.model import SlaPolicy

JST, NY = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")
H = timedelta(hours=1)

CALENDARS: dict[str, dict[str, Any]] = {
    # the issue's calendar: 9-18 on weekdays, Japanese public holidays (the default)
    "tokyo": {"timezone": "Asia/Tokyo", "days": ["mon", "tue", "wed", "thu", "fri"],
              "hours": ["09:00-18:00"]},
    "tokyo-lunch": {"timezone": "Asia/Tokyo", "hours": ["09:00-12:00", "13:00-18:00"]},
    "tokyo-year-end": {"timezone": "Asia/Tokyo", "hours": ["09:00-18:00"],
                       "closed_dates": ["2026-12-29", "2026-12-30", "2026-12-31",
                                        "2027-01-02", "2027-01-03"],
                       "open_dates": ["2027-01-09"]},
    "new-york": {"timezone": "America/New_York", "hours": ["09:00-17:00"], "holidays": "US"},
    "new-york-always": {"timezone": "America/New_York", "hours": ["00:00-24:00"],
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "holidays": "none"},
}


@cache
def calendar(name: str) -> BusinessCalendar:
    model = parse_rules({"version": "t", "sla": {"business_hours": CALENDARS[name]}}, "t.yaml")
    assert model.sla.calendar is not None
    return model.sla.calendar


def at(zone: ZoneInfo, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


# (case, calendar, start (local), working hours, due (local))
ADD_CASES = [
    ("issue: Friday 17:30 + 24 h skips the weekend and 勤労感謝の日 (Mon 23rd)", "tokyo",
     "2026-11-20 17:30", 24, "2026-11-26 14:30"),
    ("Golden Week 2027: Showa Day Thu 29th, then May 3-5", "tokyo",
     "2027-04-28 17:00", 24, "2027-05-07 14:00"),
    ("Golden Week 2027: a clock started on the holiday waits for Friday", "tokyo",
     "2027-04-29 10:00", 4, "2027-04-30 13:00"),
    ("deadline exactly on closing time stays there", "tokyo",
     "2026-11-30 09:00", 9, "2026-11-30 18:00"),
    ("Friday 17:00 + 1 h is Friday's closing time, not Monday's opening", "tokyo",
     "2026-11-27 17:00", 1, "2026-11-27 18:00"),
    ("start on Saturday: counted from Monday's opening", "tokyo",
     "2026-11-28 10:00", 4, "2026-11-30 13:00"),
    ("start before opening", "tokyo", "2026-12-01 07:00", 2, "2026-12-01 11:00"),
    ("start after closing", "tokyo", "2026-12-01 20:00", 1, "2026-12-02 10:00"),
    ("start on a public holiday (Mon 23rd)", "tokyo", "2026-11-23 10:00", 1, "2026-11-24 10:00"),
    ("a deadline that would land on a holiday moves past it", "tokyo",
     "2026-11-20 10:00", 9, "2026-11-24 10:00"),
    ("lunch break is not working time", "tokyo-lunch", "2026-11-30 11:00", 2,
     "2026-11-30 14:00"),
    ("a deadline at the start of lunch stays there", "tokyo-lunch", "2026-11-30 09:00", 3,
     "2026-11-30 12:00"),
    ("extra closed dates: year-end break, then New Year's Day", "tokyo-year-end",
     "2026-12-28 17:00", 2, "2027-01-04 10:00"),
    ("an extra open Saturday is worked", "tokyo-year-end", "2027-01-08 17:00", 2,
     "2027-01-09 10:00"),
    ("New York across the March 2027 change (Sun 14th)", "new-york",
     "2027-03-12 16:00", 2, "2027-03-15 10:00"),
    ("New York across the November 2027 change (Sun 7th)", "new-york",
     "2027-11-05 16:00", 2, "2027-11-08 10:00"),
    ("New York: Thanksgiving 2026 and no weekend work", "new-york",
     "2026-11-25 16:00", 8, "2026-11-27 16:00"),
    ("open around the clock: the spring-forward night is an hour shorter", "new-york-always",
     "2027-03-13 12:00", 24, "2027-03-14 13:00"),
    ("open around the clock: the fall-back night is an hour longer", "new-york-always",
     "2027-11-06 12:00", 24, "2027-11-07 11:00"),
]


def cases(table: list[tuple[Any, ...]]) -> list[Any]:
    return [pytest.param(*row[1:], id=row[0]) for row in table]


@pytest.mark.parametrize(("cal", "start", "hours", "due"), cases(ADD_CASES))
def test_add_working(cal: str, start: str, hours: float, due: str) -> None:
    c = calendar(cal)
    begin = at(c.zone, start)
    got = add_working(begin, timedelta(hours=hours), c)
    assert got.tzinfo is UTC
    assert got == at(c.zone, due), got.astimezone(c.zone)
    assert working_between(begin, got, c) == timedelta(hours=hours)


def test_the_issue_example_in_utc_and_its_wall_clock_twin() -> None:
    start = at(JST, "2026-11-20 17:30")
    due = add_working(start, 24 * H, calendar("tokyo"))
    assert due == datetime(2026, 11, 26, 5, 30, tzinfo=UTC)
    assert start + 24 * H == at(JST, "2026-11-21 17:30")  # what wall-clock SLAs say


def test_new_york_due_is_the_right_instant_across_the_change() -> None:
    due = add_working(at(NY, "2027-03-12 16:00"), 2 * H, calendar("new-york"))
    assert due == datetime(2027, 3, 15, 14, 0, tzinfo=UTC)  # 10:00 EDT, UTC-4
    start = datetime(2027, 3, 12, 21, 0, tzinfo=UTC)  # 16:00 EST, UTC-5
    assert due - start == timedelta(hours=65)  # a 66-hour wall-clock gap, one hour skipped


# (case, calendar, a (local), b (local), working hours)
BETWEEN_CASES = [
    ("a whole working week", "tokyo", "2026-11-30 00:00", "2026-12-07 00:00", 45),
    ("the week of 勤労感謝の日", "tokyo", "2026-11-23 00:00", "2026-11-30 00:00", 36),
    ("Golden Week 2027, Wed 28 Apr to Fri 7 May", "tokyo", "2027-04-28 00:00",
     "2027-05-08 00:00", 36),
    ("a weekend", "tokyo", "2026-11-28 00:00", "2026-11-30 00:00", 0),
    ("inside one day", "tokyo-lunch", "2026-11-30 10:30", "2026-11-30 15:15", 3.75),
    ("spring-forward day around the clock", "new-york-always", "2027-03-14 00:00",
     "2027-03-15 00:00", 23),
    ("fall-back day around the clock", "new-york-always", "2027-11-07 00:00",
     "2027-11-08 00:00", 25),
    ("backwards is negative", "tokyo", "2026-11-26 14:30", "2026-11-20 17:30", -24),
]


@pytest.mark.parametrize(("cal", "a", "b", "hours"), cases(BETWEEN_CASES))
def test_working_between(cal: str, a: str, b: str, hours: float) -> None:
    c = calendar(cal)
    assert working_between(at(c.zone, a), at(c.zone, b), c) == timedelta(hours=hours)


def business_policy(cal: str, **hours: float) -> SlaPolicy:
    return SlaPolicy(mql_hours=hours.get("mql", 24), sql_hours=hours.get("sql", 48),
                     mql_warn_hours=hours.get("mql_warn", 4),
                     sql_warn_hours=hours.get("sql_warn", 8), calendar=calendar(cal))


# (case, stage, start (local), warn from (local), due (local), policy hours)
CLOCK_CASES = [
    ("MQL: 4 working hours before Thursday 14:30", "mql", "2026-11-20 17:30",
     "2026-11-26 10:30", "2026-11-26 14:30", {}),
    ("SQL: 48 h, warned 8 working hours before", "sql", "2026-11-20 17:30",
     "2026-11-30 12:30", "2026-12-01 11:30", {}),
    ("the warning reaches back over the weekend", "mql", "2026-11-27 11:00",
     "2026-11-27 15:00", "2026-11-30 10:00", {"mql": 8}),
    ("the warning reaches back over a holiday", "mql", "2026-11-20 10:00",
     "2026-11-20 15:00", "2026-11-24 10:00", {"mql": 9}),
    ("a warning as long as the SLA starts with the clock, even off hours", "mql",
     "2026-11-21 10:00", "2026-11-21 10:00", "2026-11-24 11:00", {"mql": 2, "mql_warn": 2}),
]


@pytest.mark.parametrize(("stage", "start", "warn", "due", "hours"), cases(CLOCK_CASES))
def test_sla_clock_counts_warnings_in_working_time(
        stage: str, start: str, warn: str, due: str, hours: dict[str, float]) -> None:
    policy = business_policy("tokyo", **hours)
    assert policy.clock(stage, at(JST, start)) == (at(JST, warn), at(JST, due))


def test_without_business_hours_the_clock_is_wall_clock_as_before() -> None:
    start = datetime(2026, 11, 20, 8, 30, 0, 123456, tzinfo=UTC)
    for policy in (SlaPolicy(), SlaPolicy(mql_hours=24.3333, mql_warn_hours=1.1111)):
        warn, due = policy.clock("mql", start) or (None, None)
        assert due == start + timedelta(hours=policy.mql_hours)
        assert warn == due - timedelta(hours=policy.mql_warn_hours)
    assert SlaPolicy().clock("lead", start) is None


def test_holidays_are_computed_once_per_year_and_days_cached() -> None:
    asked: list[int] = []

    def source(year: int) -> frozenset[date]:
        asked.append(year)
        return frozenset({date(year, 11, 23)})

    cal = BusinessCalendar("Asia/Tokyo", frozenset(range(5)), ((540, 1080),),
                           holiday_dates=source)
    start = at(JST, "2026-11-20 17:30")
    for _ in range(3):
        assert add_working(start, 24 * H, cal) == at(JST, "2026-11-26 14:30")
    assert add_working(at(JST, "2027-11-22 09:00"), 18 * H, cal) == at(JST, "2027-11-24 18:00")
    assert asked == [2026, 2027]


def test_a_long_duration_walks_days_not_minutes() -> None:
    cal = calendar("tokyo")
    start = at(JST, "2026-01-05 09:00")
    due = add_working(start, 9 * 240 * H, cal)  # about a working year
    assert due.astimezone(JST).date() == date(2026, 12, 28)  # 2026 has 244 working days
    assert working_between(start, due, cal) == 9 * 240 * H


def test_naive_and_negative_inputs_are_refused() -> None:
    cal = calendar("tokyo")
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working(datetime(2026, 11, 20, 9), H, cal)
    with pytest.raises(ValueError, match="negative"):
        add_working(at(JST, "2026-11-20 09:00"), -H, cal)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_between(at(JST, "2026-11-20 09:00"), datetime(2026, 11, 21), cal)


# -- properties ------------------------------------------------------------------------------
PROPERTY_CALENDARS = ["tokyo", "tokyo-lunch", "tokyo-year-end", "new-york", "new-york-always"]
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                        timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=400))
calendars = st.sampled_from(PROPERTY_CALENDARS)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, start=instants, duration=durations)
def test_adding_then_measuring_gives_back_the_duration(
        cal: str, start: datetime, duration: timedelta) -> None:
    c = calendar(cal)
    due = add_working(start, duration, c)
    assert due >= start + duration  # working time never runs faster than real time
    assert working_between(start, due, c) == duration
    if duration:  # the earliest such instant: a moment earlier, less had passed
        assert working_between(start, due - timedelta(microseconds=1), c) < duration


@settings(max_examples=200, deadline=None)
@given(cal=calendars, a=instants, b=instants, d1=durations, d2=durations)
def test_monotonic(cal: str, a: datetime, b: datetime, d1: timedelta, d2: timedelta) -> None:
    c = calendar(cal)
    a, b = min(a, b), max(a, b)
    d1, d2 = min(d1, d2), max(d1, d2)
    assert add_working(a, d1, c) <= add_working(a, d2, c)
    assert add_working(a, d1, c) <= add_working(b, d1, c)
    assert timedelta(0) <= working_between(a, b, c) <= b - a


@settings(max_examples=200, deadline=None)
@given(cal=calendars, points=st.lists(instants, min_size=3, max_size=3))
def test_working_time_adds_up_over_consecutive_spans(cal: str, points: list[datetime]) -> None:
    c = calendar(cal)
    a, b, x = points
    assert working_between(a, b, c) + working_between(b, x, c) == working_between(a, x, c)
    assert working_between(a, b, c) == -working_between(b, a, c)
