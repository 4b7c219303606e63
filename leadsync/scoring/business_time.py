"""Working time on a business calendar: the arithmetic of business-hours SLAs (docs/scoring.md).

A `BusinessCalendar` is the rules file's `sla.business_hours` compiled once: a time zone,
working weekdays, opening hours (one or more intervals a day, e.g. a lunch break), public
holidays (any year, from a pure `HolidaySource`, e.g. the `holidays` package), extra closed
dates and extra open dates. Two pure functions count on it:

- `add_working(start, duration, calendar)`: the earliest instant at which `duration` of working
  time has passed since `start` (a deadline landing exactly on closing time *is* that closing
  time, not the next opening);
- `working_between(a, b, calendar)`: the working time between two instants (negative when
  b < a).

Working time is real elapsed time inside the opening intervals, so a day whose clocks change
inside opening hours has an hour more or less of it. Opening hours are wall-clock times in the
calendar's zone; a wall time skipped by a clock change counts as the instant it maps to with
the offset before the change, and an interval never starts before the previous one ended.
Both functions walk day by day (O(days spanned)); each day's opening intervals, as UTC
instants, and each year's holiday set are computed once per calendar and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

#: A pure function: the year -> the public holidays of that year (local dates).
HolidaySource = Callable[[int], frozenset[date]]
Interval = tuple[datetime, datetime]
MINUTES_PER_DAY = 24 * 60
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: No working day within this many consecutive days: the calendar is closed for good.
MAX_CLOSED_RUN_DAYS = 3660
#: Days whose intervals a calendar keeps; past that the cache starts afresh (memory bound).
_DAY_CACHE_MAX = 20_000
_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)


def no_holidays(year: int) -> frozenset[date]:
    """A `HolidaySource` without public holidays."""
    return frozenset()


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """When people work: `timezone` (IANA), `weekdays` (0 = Monday), `hours` (opening
    intervals as (start, end) minutes after local midnight, sorted, disjoint, end <= 1440),
    public holidays from `holiday_dates` (`holidays_name` says which, e.g. "JP"), `closed`
    dates on top of them, and `opened` dates worked with `hours` whatever the weekday or
    holiday. Build it once (the rules file does); its caches make repeated days cheap."""

    timezone: str
    weekdays: frozenset[int]
    hours: tuple[tuple[int, int], ...]
    holidays_name: str | None = None
    closed: frozenset[date] = frozenset()
    opened: frozenset[date] = frozenset()
    holiday_dates: HolidaySource = field(default=no_holidays, compare=False, repr=False)
    zone: ZoneInfo = field(init=False, compare=False, repr=False)
    _days: dict[date, tuple[Interval, ...]] = field(init=False, compare=False, repr=False)
    _years: dict[int, frozenset[date]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.weekdays:  # open dates alone would run out: every clock needs an end
            raise ValueError("BusinessCalendar: no working weekday")
        if not self.hours:
            raise ValueError("BusinessCalendar: no opening hours")
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("BusinessCalendar: weekdays are 0 (Monday) to 6 (Sunday)")
        previous_end = 0
        for start, end in self.hours:
            if not previous_end <= start < end <= MINUTES_PER_DAY:
                raise ValueError("BusinessCalendar: hours must be sorted, disjoint intervals "
                                 "within one day, each ending after it starts")
            previous_end = end
        if self.closed & self.opened:
            raise ValueError("BusinessCalendar: a date cannot be both closed and open")
        object.__setattr__(self, "zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_days", {})
        object.__setattr__(self, "_years", {})

    def holidays_in(self, year: int) -> frozenset[date]:
        """The public holidays of `year` (computed once per year)."""
        found = self._years.get(year)
        if found is None:
            found = self._years[year] = frozenset(self.holiday_dates(year))
        return found

    def is_working_day(self, day: date) -> bool:
        if day in self.opened:
            return True
        return (day.weekday() in self.weekdays and day not in self.closed
                and day not in self.holidays_in(day.year))

    def openings(self, day: date) -> tuple[Interval, ...]:
        """The opening intervals of a local date, as UTC instants (cached)."""
        found = self._days.get(day)
        if found is not None:
            return found
        out: list[Interval] = []
        if self.is_working_day(day):
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
            floor = None
            for start_min, end_min in self.hours:
                # wall-clock arithmetic in the zone, then the instant
                start = (midnight + timedelta(minutes=start_min)).astimezone(UTC)
                end = (midnight + timedelta(minutes=end_min)).astimezone(UTC)
                if floor is not None and start < floor:
                    start = floor
                if start < end:
                    out.append((start, end))
                    floor = end
        if len(self._days) >= _DAY_CACHE_MAX:
            self._days.clear()
        found = self._days[day] = tuple(out)
        return found

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def describe(self) -> str:
        """One line for people: "Asia/Tokyo, mon-fri 09:00-18:00, JP public holidays"."""
        days = ",".join(WEEKDAY_NAMES[d] for d in sorted(self.weekdays))
        if days == "mon,tue,wed,thu,fri":
            days = "mon-fri"
        hours = ", ".join(f"{_hhmm(a)}-{_hhmm(b)}" for a, b in self.hours)
        holidays = f"{self.holidays_name} public holidays" if self.holidays_name \
            else "no public holidays"
        extra = [f"{len(dates)} {kind} dates" for kind, dates in
                 (("extra closed", self.closed), ("extra open", self.opened)) if dates]
        return ", ".join([self.timezone, f"{days} {hours}", holidays, *extra])


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return at.astimezone(UTC)


def add_working(start: datetime, duration: timedelta, calendar: BusinessCalendar) -> datetime:
    """The earliest instant (UTC) by which `duration` of working time has passed since
    `start`. A zero duration gives `start` itself, open or not; otherwise the result lies in
    an opening interval or on its closing instant."""
    start = _aware(start, "add_working: start")
    if duration < _ZERO:
        raise ValueError("add_working: duration must not be negative")
    if duration == _ZERO:
        return start
    remaining = duration
    day = calendar.local_date(start)
    closed_run = 0
    while True:
        intervals = calendar.openings(day)
        for open_at, close_at in intervals:
            if close_at <= start:
                continue
            begin = max(open_at, start)
            available = close_at - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        closed_run = 0 if intervals else closed_run + 1
        if closed_run > MAX_CLOSED_RUN_DAYS:
            raise ValueError(f"add_working: no working time within {MAX_CLOSED_RUN_DAYS} "
                             f"days after {day - timedelta(days=closed_run)}")
        day += _ONE_DAY


def working_between(a: datetime, b: datetime, calendar: BusinessCalendar) -> timedelta:
    """Working time from `a` to `b` (negative when `b` is before `a`)."""
    a, b = _aware(a, "working_between: a"), _aware(b, "working_between: b")
    if b < a:
        return -working_between(b, a, calendar)
    total = _ZERO
    day, last = calendar.local_date(a), calendar.local_date(b)
    while day <= last:
        for open_at, close_at in calendar.openings(day):
            begin, end = max(open_at, a), min(close_at, b)
            if begin < end:
                total += end - begin
        day += _ONE_DAY
    return total
