"""`sla.business_hours` in the rules file: what loads, and every mistake refused with the file
and the key named (docs/scoring.md, "Business hours")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from leadsync.config.rules import RulesError, load_default_rules, load_rules, parse_rules
from leadsync.scoring.business_time import BusinessCalendar

TOKYO = {"timezone": "Asia/Tokyo"}


def business_hours(section: object) -> BusinessCalendar | None:
    return parse_rules({"version": "t", "sla": {"business_hours": section}}, "r.yaml").sla.calendar


def test_defaults_are_weekdays_nine_to_six_with_japanese_holidays() -> None:
    cal = business_hours(TOKYO)
    assert cal is not None
    assert (cal.timezone, cal.weekdays, cal.hours, cal.holidays_name) == (
        "Asia/Tokyo", frozenset({0, 1, 2, 3, 4}), ((540, 1080),), "JP")
    assert date(2026, 11, 23) in cal.holidays_in(2026)  # 勤労感謝の日
    assert not cal.is_working_day(date(2026, 11, 23))
    assert cal.is_working_day(date(2026, 11, 24))


def test_without_the_section_clocks_stay_wall_clock() -> None:
    assert parse_rules({"version": "t", "sla": {"mql_hours": 24}}, "r.yaml").sla.calendar is None
    assert load_default_rules().sla.calendar is None  # the bundled default: see docs/scoring.md


def test_a_full_section_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: bh-1\n"
        "sla:\n"
        "  mql_hours: 24\n"
        "  business_hours:\n"
        "    timezone: America/New_York\n"
        "    days: [Mon, tue, wednesday, thu, fri, sat]\n"
        "    hours: [09:00-12:00, '13:00-17:30']\n"
        "    holidays: {country: us, subdivision: ny}\n"
        "    closed_dates: [2026-12-24, '2026-12-31']\n"
        "    open_dates: [2026-11-29]\n", encoding="utf-8")
    cal = load_rules(path).sla.calendar
    assert cal is not None
    assert cal.weekdays == frozenset(range(6))
    assert cal.hours == ((540, 720), (780, 1050))
    assert cal.holidays_name == "US-NY"
    assert cal.closed == {date(2026, 12, 24), date(2026, 12, 31)}
    assert cal.opened == {date(2026, 11, 29)}
    assert date(2027, 2, 15) in cal.holidays_in(2027)  # Washington's Birthday
    assert cal.is_working_day(date(2026, 11, 29))  # a Sunday, opened
    assert not cal.is_working_day(date(2026, 11, 26))  # Thanksgiving


def test_holidays_can_be_switched_off_and_hours_may_end_at_midnight() -> None:
    cal = business_hours({**TOKYO, "holidays": "none", "hours": ["00:00-24:00"]})
    assert cal is not None and cal.holidays_name is None and cal.hours == ((0, 1440),)
    assert cal.is_working_day(date(2026, 11, 23))
    off = business_hours({**TOKYO, "holidays": False})
    assert off is not None and off.holidays_name is None


REFUSED: list[tuple[str, Any, str]] = [
    ("bad timezone", {"timezone": "Asia/Tokio"},
     "sla.business_hours.timezone: 'Asia/Tokio': not a known IANA time zone name"),
    ("timezone missing", {"hours": ["09:00-18:00"]},
     "sla.business_hours.timezone: required: the IANA time zone"),
    ("timezone not text", {"timezone": 9},
     "sla.business_hours.timezone: expected an IANA time zone name, got 9"),
    ("end before start", {**TOKYO, "hours": ["18:00-09:00"]},
     "sla.business_hours.hours[0]: '18:00-09:00' ends before it starts; an interval across "
     "midnight is two"),
    ("empty interval", {**TOKYO, "hours": ["09:00-09:00"]},
     "sla.business_hours.hours[0]: '09:00-09:00' ends where it starts"),
    ("overlapping intervals", {**TOKYO, "hours": ["09:00-18:00", "12:00-13:00"]},
     "sla.business_hours.hours[1]: '12:00-13:00' overlaps '09:00-18:00'"),
    ("not an interval", {**TOKYO, "hours": ["9-18"]},
     "sla.business_hours.hours[0]: '9-18': expected 'HH:MM-HH:MM'"),
    ("sexagesimal YAML number", {**TOKYO, "hours": [540]},
     "sla.business_hours.hours[0]: 540: expected 'HH:MM-HH:MM'"),
    ("hour out of range", {**TOKYO, "hours": ["09:00-25:00"]},
     "sla.business_hours.hours[0]: '09:00-25:00': times run from 00:00 to 24:00"),
    ("no hours", {**TOKYO, "hours": []}, "sla.business_hours.hours: expected a list"),
    ("unknown country", {**TOKYO, "holidays": "XX"},
     "sla.business_hours.holidays: 'XX' is not a country the holidays package knows"),
    ("unknown subdivision", {**TOKYO, "holidays": {"country": "US", "subdivision": "ZZ"}},
     "sla.business_hours.holidays.subdivision: 'ZZ' is not a subdivision of US"),
    ("holidays not a code", {**TOKYO, "holidays": 81},
     "sla.business_hours.holidays: expected a country code such as JP"),
    ("holidays unknown key", {**TOKYO, "holidays": {"country": "JP", "region": "13"}},
     "sla.business_hours.holidays.region: unknown key"),
    ("unknown weekday", {**TOKYO, "days": ["mon", "funday"]},
     "sla.business_hours.days[1]: 'funday': expected one of mon, tue"),
    ("weekday twice", {**TOKYO, "days": ["mon", "Monday"]},
     "sla.business_hours.days[1]: 'Monday' is listed twice"),
    ("no days", {**TOKYO, "days": []}, "sla.business_hours.days: expected a non-empty list"),
    ("impossible date", {**TOKYO, "closed_dates": ["2026-02-30"]},
     "sla.business_hours.closed_dates[0]: '2026-02-30': expected a date YYYY-MM-DD"),
    ("dates not a list", {**TOKYO, "open_dates": "2026-11-28"},
     "sla.business_hours.open_dates: expected a list of dates"),
    ("closed and open", {**TOKYO, "closed_dates": ["2026-11-28"], "open_dates": ["2026-11-28"]},
     "sla.business_hours.open_dates: 2026-11-28 is also in closed_dates"),
    ("unknown key", {**TOKYO, "lunch": "12:00-13:00"},
     "sla.business_hours.lunch: unknown key (expected closed_dates, days, holidays, hours, "
     "open_dates, timezone)"),
    ("not a mapping", "Asia/Tokyo", "sla.business_hours: expected a mapping"),
]


@pytest.mark.parametrize(("section", "message"), [pytest.param(s, m, id=n) for n, s, m in REFUSED])
def test_refused_with_file_and_key(section: object, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        business_hours(section)
    assert str(caught.value).startswith(f"r.yaml: {message}"), str(caught.value)


def test_the_example_in_the_bundled_default_loads(tmp_path: Path) -> None:
    """The commented example in default_rules.yaml, uncommented, is a valid rules file."""
    text = (Path(__file__).parents[2] / "leadsync" / "config" / "default_rules.yaml").read_text(
        encoding="utf-8")
    example = [line[2:] for line in text.splitlines() if line.startswith("#   ")]
    assert example[0] == "  sla:"
    lines = text.splitlines()
    last = lines[-1]
    assert last.startswith("sla: {")
    path = tmp_path / "rules.yaml"
    path.write_text("\n".join([*lines[:-1], *(line[2:] for line in example)]) + "\n",
                    encoding="utf-8")
    model = load_rules(path)
    cal = model.sla.calendar
    assert cal is not None
    assert cal.describe() == ("Asia/Tokyo, mon-fri 09:00-12:00, 13:00-18:00, JP public "
                              "holidays, 5 extra closed dates")
    assert model.sla == replace(load_default_rules().sla, calendar=cal)
