"""The sandbox's in-memory CRM state, its clock, its counters and its rate limiters.

Everything here is guarded by one lock held by the HTTP handlers (`SandboxData.lock`): the
sandbox favours simple, obviously-correct consistency over parallel throughput.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""Default start of the sandbox clock: fixed so that seeded data is reproducible."""

SYSTEMS = ("hubspot", "salesforce")
_SF_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def hs_time(dt: datetime) -> str:
    """HubSpot's datetime form: ISO-8601 UTC with milliseconds and `Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def sf_time(dt: datetime) -> str:
    """Salesforce's datetime form: `2026-11-20T09:00:00.000+0000` (sorts as text)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 date or datetime as HubSpot/Salesforce clients send it (aware UTC)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id with a correct case-safe suffix."""
    base = f"{prefix}5g{number:010d}"
    suffix = ""
    for start in range(0, 15, 5):
        chunk = base[start : start + 5]
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += _SF_ID_CHARS[bits]
    return base + suffix


class Clock:
    """The sandbox clock: starts at `start`, ticks with real time, and can be moved forward."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or DEFAULT_NOW
        if start.tzinfo is None:
            raise ValueError("Sandbox clock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            elapsed = time.monotonic() - self._origin + self._offset
        return self._start + timedelta(seconds=elapsed)

    def virtual_now(self) -> datetime:
        """The start plus every explicit move, without the real time that passed: what the
        generator seeds against, so the same seed gives the same data."""
        with self._lock:
            return self._start + timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the sandbox clock only moves forward; got {seconds} seconds")
        with self._lock:
            self._offset += seconds

    def set(self, when: datetime) -> None:
        """Jump to `when` (must not be earlier than the current sandbox time)."""
        self.advance((when.astimezone(UTC) - self.now()).total_seconds())


@dataclass
class SystemStats:
    requests: Counter[str] = field(default_factory=Counter)
    records_returned: Counter[str] = field(default_factory=Counter)
    records_written: int = 0
    tasks_created: int = 0
    task_keys: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    errors_injected: int = 0
    replies_dropped: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "records_returned": dict(sorted(self.records_returned.items())),
            "records_written": self.records_written,
            "tasks_created": self.tasks_created,
            "duplicate_task_keys": sum(1 for n in self.task_keys.values() if n > 1),
            "rate_limited": self.rate_limited,
            "errors_injected": self.errors_injected,
            "replies_dropped": dict(sorted(self.replies_dropped.items())),
        }


class Stats:
    """Per-system counters behind GET /__sandbox__/stats; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._systems = {name: SystemStats() for name in SYSTEMS}

    def reset(self) -> None:
        with self._lock:
            self._systems = {name: SystemStats() for name in SYSTEMS}

    def request(self, system: str, endpoint: str) -> None:
        with self._lock:
            self._systems[system].requests[endpoint] += 1

    def returned(self, system: str, endpoint: str, count: int) -> None:
        with self._lock:
            self._systems[system].records_returned[endpoint] += count

    def written(self, system: str, count: int = 1) -> None:
        with self._lock:
            self._systems[system].records_written += count

    def task_created(self, system: str, key: str | None) -> None:
        """Count a created task and, when its text carries `leadsync-key: <key>`, the key."""
        with self._lock:
            stats = self._systems[system]
            stats.tasks_created += 1
            if key:
                stats.task_keys[key] += 1

    def rate_limited(self, system: str) -> None:
        with self._lock:
            self._systems[system].rate_limited += 1

    def error_injected(self, system: str) -> None:
        with self._lock:
            self._systems[system].errors_injected += 1

    def reply_dropped(self, system: str, endpoint: str) -> None:
        """A write was committed and its reply then lost (the reply-drop fault)."""
        with self._lock:
            self._systems[system].replies_dropped[endpoint] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {name: s.snapshot() for name, s in self._systems.items()}
            keys: Counter[str] = Counter()
            for s in self._systems.values():
                keys.update({k: 1 for k in s.task_keys})
            out["duplicate_task_keys_across_systems"] = sum(1 for n in keys.values() if n > 1)
            return out


def task_key(text: str | None) -> str | None:
    """The follow-up task key of a task body/description (`leadsync-key: <key>` line), if any."""
    if not text:
        return None
    for line in text.splitlines():
        head, sep, rest = line.strip().partition("leadsync-key:")
        if sep and not head:
            return rest.strip() or None
    return None


class RollingWindow:
    """Counts events in a rolling window of `seconds` on the real monotonic clock."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def try_acquire(self) -> tuple[bool, int]:
        """Record a hit if under the limit; return (allowed, remaining after this hit)."""
        now = time.monotonic()
        with self._lock:
            while self._hits and self._hits[0] <= now - self.seconds:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0
            self._hits.append(now)
            return True, self.limit - len(self._hits)


class DailyAllowance:
    """Salesforce's rolling 24-hour API allocation, measured on the sandbox clock."""

    def __init__(self, limit: int, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - 86_400:
            self._hits.popleft()

    def try_acquire(self) -> tuple[bool, int]:
        """Record one API call if allowed; return (allowed, used in the last 24 h)."""
        now = self._clock.now().timestamp()
        with self._lock:
            self._trim(now)
            if len(self._hits) >= self.limit:
                return False, len(self._hits)
            self._hits.append(now)
            return True, len(self._hits)

    def used(self) -> int:
        with self._lock:
            self._trim(self._clock.now().timestamp())
            return len(self._hits)


@dataclass
class Person:
    """The hidden truth about one seeded person (not visible through the APIs).

    `fit` and `propensity` (0..1) drive engagement and conversion; the ids say where the person
    lives in each CRM (`hs_ids` may hold duplicates).
    """

    index: int
    fit: float
    propensity: float
    owner: int | None
    hs_ids: list[str] = field(default_factory=list)
    sf_lead_id: str | None = None
    sf_contact_id: str | None = None
    careers: bool = False
    touched_clock: str | None = None  # the SLA clock start a simulated rep already acted on


@dataclass
class SandboxData:
    """The stores. HubSpot: `hs_contacts` (id -> properties, all strings), `hs_tasks` (id ->
    properties), `hs_task_contacts` (task id -> associated contact ids), `hs_events` (sorted
    tuples `(occurred_ms, seq, contact_id, event_type, properties)`: page views, webinars and
    meetings), `hs_email_events` (sorted `(created_ms, seq, recipient, type, fields)`: OPEN,
    CLICK, STATUSCHANGE of the email events API), `hs_forms` (form GUID -> form definition),
    `hs_form_submissions` (form GUID -> ascending `(submitted_ms, seq, email, fields)`),
    `hs_owners` (id -> owner),
    `hs_properties` / `hs_groups` (contact property and group definitions).
    Salesforce: `sf[object][id] -> record` (only non-null fields are stored; missing means null);
    `sf_validation_rules` (record Id or object name -> the rule's error message).
    `people`: the hidden per-person truth used by the generator and `simulate`."""

    hs_contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    #: deals (id -> properties) and their associated contacts (`hs_deals.add_deal`)
    hs_deals: dict[str, dict[str, str]] = field(default_factory=dict)
    hs_deal_contacts: dict[str, list[str]] = field(default_factory=dict)
    hs_tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    #: companies (id -> properties), each contact's companies (primary first) and its
    #: primary company ("" when none is primary) (`hs_companies.add_company`)
    hs_companies: dict[str, dict[str, str]] = field(default_factory=dict)
    #: archived (deleted) companies: id -> properties plus `archivedAt` (`archive_company`);
    #: listed with `archived=true` for 90 days, then gone
    hs_companies_archived: dict[str, dict[str, str]] = field(default_factory=dict)
    hs_contact_companies: dict[str, list[str]] = field(default_factory=dict)
    hs_company_primary: dict[str, str] = field(default_factory=dict)
    hs_company_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    hs_company_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    hs_task_contacts: dict[str, list[str]] = field(default_factory=dict)
    hs_events: list[tuple[int, int, str, str, dict[str, str]]] = field(default_factory=list)
    hs_email_events: list[tuple[int, int, str, str, dict[str, Any]]] = field(default_factory=list)
    hs_forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    hs_form_submissions: dict[str, list[tuple[int, int, str, dict[str, str]]]] = field(
        default_factory=dict
    )
    hs_owners: dict[str, dict[str, Any]] = field(default_factory=dict)
    hs_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    hs_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    sf: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: the recycle bin: deleted records (object -> id -> record with IsDeleted true, deleted at
    #: its SystemModstamp) that `queryAll` still returns for 15 days (`sf_records.delete`)
    sf_recycle: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    sf_integration_user: str | None = None
    # active validation rules: a record Id -> message (updates of its LeadSync fields are
    # refused), or an object name -> message (every create of that object is refused)
    sf_validation_rules: dict[str, str] = field(default_factory=dict)
    owners: list[tuple[str, str]] = field(default_factory=list)  # reps: (hs owner id, sf user id)
    campaigns: dict[str, str] = field(default_factory=dict)  # webinar id -> Campaign Id
    people: list[Person] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def next_number(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    def new_hs_id(self, kind: str = "hs_object") -> str:
        return str(1000 + self.next_number(kind))

    def new_sf_id(self, prefix: str) -> str:
        return sf_id(prefix, self.next_number("sf_" + prefix))
