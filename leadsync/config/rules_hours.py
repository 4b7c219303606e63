"""The rules file's `sla.business_hours` section, validated into a `BusinessCalendar`.

```yaml
sla:
  business_hours:
    timezone: Asia/Tokyo                  # required, an IANA name
    days: [mon, tue, wed, thu, fri]       # working weekdays (default Monday to Friday)
    hours: ["09:00-12:00", "13:00-18:00"] # opening hours on a working day (default 09:00-18:00)
    holidays: JP                          # public holidays by country (default JP); none: none
    closed_dates: [2026-12-29, 2026-12-30]
    open_dates: [2027-01-09]              # worked with `hours` whatever the weekday or holiday
```
Errors name the file and the key, e.g.
`rules.yaml: sla.business_hours.hours[0]: '18:00-09:00' ends before it starts ...`.
Public holidays come from the `holidays` package (imported only when the section is there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import partial
from itertools import pairwise

from leadsync.config.rules_parts import Where, section
from leadsync.config.settings import zone_of
from leadsync.scoring.business_time import (
    WEEKDAY_NAMES,
    BusinessCalendar,
    no_holidays,
)

_KEYS = {"timezone", "days", "hours", "holidays", "closed_dates", "open_dates"}
_HOLIDAY_KEYS = {"country", "subdivision"}
_DEFAULT_DAYS = ("mon", "tue", "wed", "thu", "fri")
_DEFAULT_HOURS = ("09:00-18:00",)
DEFAULT_HOLIDAYS = "JP"
#: Extra dates a rules file may list (about 30 years of a company's own closing days).
MAX_DATES = 1000
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_ACROSS_MIDNIGHT = ("an interval across midnight is two: e.g. '22:00-24:00' and '00:00-06:00' "
                    "(the next day must then be a working day too)")


def parse_business_hours(raw: object, where: Where) -> BusinessCalendar | None:
    """`sla.business_hours` (None when absent: SLA clocks stay wall-clock)."""
    if raw is None:
        return None
    data = section({"business_hours": raw}, "business_hours", where, _KEYS)
    where = where.at("business_hours")
    zone_name = data.get("timezone")
    if zone_name is None:
        raise where.error("timezone", "required: the IANA time zone of the opening hours, "
                          "e.g. Asia/Tokyo")
    if not isinstance(zone_name, str):
        raise where.error("timezone", f"expected an IANA time zone name, got {zone_name!r}")
    try:
        zone_of(zone_name)
    except ValueError as exc:
        raise where.error("timezone", f"{zone_name[:60]!r}: {exc}") from None
    closed = _dates(data, "closed_dates", where)
    opened = _dates(data, "open_dates", where)
    both = sorted(closed & opened)
    if both:
        raise where.error("open_dates", f"{both[0].isoformat()} is also in closed_dates")
    name, source = _holidays(data.get("holidays", DEFAULT_HOLIDAYS), where)
    return BusinessCalendar(
        timezone=zone_name,
        weekdays=_days(data.get("days", list(_DEFAULT_DAYS)), where),
        hours=_hours(data.get("hours", list(_DEFAULT_HOURS)), where),
        holidays_name=name,
        closed=closed,
        opened=opened,
        holiday_dates=source or no_holidays,
    )


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = {**{n: i for i, n in enumerate(WEEKDAY_NAMES)},
             **{n: i for i, n in enumerate(_FULL_NAMES)}}


def _days(raw: object, where: Where) -> frozenset[int]:
    if not isinstance(raw, list) or not raw:
        raise where.error("days", "expected a non-empty list of weekdays, e.g. "
                          "[mon, tue, wed, thu, fri]")
    out: set[int] = set()
    for i, item in enumerate(raw):
        day = _WEEKDAYS.get(item.strip().lower()) if isinstance(item, str) else None
        if day is None:
            raise where.error(f"days[{i}]", f"{item!r}: expected one of "
                              f"{', '.join(WEEKDAY_NAMES)}")
        if day in out:
            raise where.error(f"days[{i}]", f"{item!r} is listed twice")
        out.add(day)
    return frozenset(out)


def _minutes(hour: str, minute: str) -> int | None:
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def _hours(raw: object, where: Where) -> tuple[tuple[int, int], ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise where.error("hours", "expected a list of opening intervals, e.g. "
                          "['09:00-12:00', '13:00-18:00']")
    out: list[tuple[int, int, int]] = []
    for i, item in enumerate(items):
        key = f"hours[{i}]"
        match = _INTERVAL.match(item) if isinstance(item, str) else None
        if match is None:
            raise where.error(key, f"{item!r}: expected 'HH:MM-HH:MM' such as '09:00-18:00' "
                              "(quote it)")
        start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
        if start is None or end is None:
            raise where.error(key, f"{item!r}: times run from 00:00 to 24:00")
        if end <= start:
            problem = "ends where it starts" if end == start else "ends before it starts"
            raise where.error(key, f"{item!r} {problem}; {_ACROSS_MIDNIGHT}")
        out.append((start, end, i))
    out.sort()
    for (_, end, first), (start, _, second) in pairwise(out):
        if start < end:
            raise where.error(f"hours[{max(first, second)}]",
                              f"{items[second]!r} overlaps {items[first]!r}")
    return tuple((start, end) for start, end, _ in out)


def _dates(data: Mapping[object, object], key: str, where: Where) -> frozenset[date]:
    raw = data.get(key)
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise where.error(key, "expected a list of dates (YYYY-MM-DD)")
    if len(raw) > MAX_DATES:
        raise where.error(key, f"at most {MAX_DATES} dates")
    out: set[date] = set()
    for i, item in enumerate(raw):
        if isinstance(item, date) and not isinstance(item, datetime):
            out.add(item)  # YAML reads an unquoted 2026-12-29 as a date
            continue
        try:
            out.add(date.fromisoformat(str(item).strip()))
        except ValueError:
            raise where.error(f"{key}[{i}]", f"{item!r}: expected a date YYYY-MM-DD") from None
    return frozenset(out)


def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """One year of a country's public holidays (observed days included), from `holidays`."""
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def _holidays(raw: object, where: Where) -> tuple[str | None, partial[frozenset[date]] | None]:
    if raw is None or raw is False or (isinstance(raw, str) and raw.strip().lower() == "none"):
        return None, None
    subdivision: object = None
    country: object = raw
    if isinstance(raw, Mapping):
        spec = section({"holidays": raw}, "holidays", where, _HOLIDAY_KEYS)
        country, subdivision = spec.get("country"), spec.get("subdivision")
    if not isinstance(country, str) or not country.strip():
        raise where.error("holidays", f"expected a country code such as JP, "
                          f"{{country: US, subdivision: NY}} or none, got {raw!r}")
    import holidays

    supported = holidays.list_supported_countries()
    code = country.strip().upper()
    if code not in supported:
        raise where.error("holidays", f"{country[:20]!r} is not a country the holidays package "
                          "knows: expected an ISO 3166-1 alpha-2 code such as JP, US or DE, "
                          "or none")
    name = code
    if subdivision is not None:
        sub = str(subdivision).strip().upper()
        if sub not in supported[code]:
            known = ", ".join(supported[code][:10]) + (", ..." if len(supported[code]) > 10
                                                       else "")
            raise where.error("holidays.subdivision", f"{str(subdivision)[:20]!r} is not a "
                              f"subdivision of {code} (known: {known or 'none'})")
        subdivision, name = sub, f"{code}-{sub}"
    return name, partial(_country_holidays, code, subdivision)
