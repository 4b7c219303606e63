"""The hand-off SLA clock and which follow-up task is owed now (DESIGN.md §5).

- The clock runs in mql (from mql_at, falling back to stage_entered_at when a cold CRM record
  lacks it) and sql (from sql_at, same fallback) for `sla.mql_hours` / `sla.sql_hours`:
  working hours when the rules set `sla.business_hours` (`SlaPolicy.clock`), else wall-clock.
- met: a `sales_touch` with clock_start <= at <= due (and <= now), or a sales_status of
  working/accepted/opportunity_open decided within [clock_start, due]. Such a status with an
  unknown decision time (sales_status_at None) counts as met: sales has visibly taken the
  person, and a false escalation to a rep who is working the lead costs more trust than a
  missed reminder. Met is final: it stays "met" after the deadline.
- Otherwise: breached when now > due, due_soon when now >= due - warn, else on_track.
- The owed task: due_soon -> ("due_soon", normal), breached -> ("breached", high); breached
  supersedes due_soon. Its key is `task_key(person, stage, clock_start, kind)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

from leadsync.scoring.evaluation import FollowUp, SlaStatus, TaskKind
from leadsync.scoring.model import SlaPolicy
from leadsync.scoring.profile import Event

MEETS_SLA_STATUSES: Final[frozenset[str]] = frozenset({"working", "accepted", "opportunity_open"})
TASK_KEY_PREFIX = "ls2:"
LEGACY_TASK_KEY_PREFIX = "ls1-"


def _key_hash(person_id: str, stage: str, clock_start: datetime, kind: str) -> str:
    if clock_start.tzinfo is None:
        raise ValueError("task_key: clock_start must be timezone-aware")
    start = clock_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    material = "\x1f".join((person_id, stage, start, kind)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(material).hexdigest()[:16]


def task_key(person_id: str, stage: str, clock_start: datetime, kind: str) -> str:
    """The idempotency key of a follow-up task: "ls2:" + 16 hex chars of SHA-256 over the
    person key (`leadsync.person`), stage, clock start (ISO seconds, UTC, "Z") and kind, joined
    by U+001F.

    Deterministic across processes and versions of Python; short enough for a CRM text field
    and a task subject/body marker. "ls2" versions the recipe: the same material as "ls1", whose
    person id was the person's first record's key (`legacy_task_key`) and so changed when a Lead
    was converted; "ls2" is built from the durable person key.
    """
    return TASK_KEY_PREFIX + _key_hash(person_id, stage, clock_start, kind)


def legacy_task_key(record_key: str, stage: str, clock_start: datetime, kind: str) -> str:
    """The "ls1-" key earlier versions gave the same clock step when `record_key` was the
    person's first record: recognised in the CRM so an upgrade creates no duplicate."""
    return LEGACY_TASK_KEY_PREFIX + _key_hash(record_key, stage, clock_start, kind)


class SlaOutcome(NamedTuple):
    status: SlaStatus
    due: datetime | None
    clock_start: datetime | None
    follow_up: FollowUp | None


NO_SLA: Final = SlaOutcome("none", None, None, None)


def _met(
    events: Sequence[Event],
    *,
    sales_status: str | None,
    sales_status_at: datetime | None,
    start: datetime,
    due: datetime,
    now: datetime,
) -> bool:
    last = min(due, now)
    for event in events:
        if event.type == "sales_touch" and start <= event.at <= last:
            return True
    if sales_status in MEETS_SLA_STATUSES:
        if sales_status_at is None:
            return True
        return start <= sales_status_at <= last
    return False


def decide_sla(
    *,
    person_id: str,
    stage: str,
    clock_start: datetime | None,
    events: Sequence[Event],
    sales_status: str | None,
    sales_status_at: datetime | None,
    owner: str | None,
    policy: SlaPolicy,
    now: datetime,
) -> SlaOutcome:
    """SLA status, deadline and owed follow-up for a person now in `stage`."""
    if clock_start is None or (clock := policy.clock(stage, clock_start)) is None:
        return NO_SLA
    warn_from, due = clock
    if _met(events, sales_status=sales_status, sales_status_at=sales_status_at,
            start=clock_start, due=due, now=now):
        return SlaOutcome("met", due, clock_start, None)
    if now > due:
        status: SlaStatus = "breached"
    elif now >= warn_from:
        status = "due_soon"
    else:
        return SlaOutcome("on_track", due, clock_start, None)
    kind: TaskKind = "breached" if status == "breached" else "due_soon"
    follow_up = FollowUp(
        key=task_key(person_id, stage, clock_start, kind),
        kind=kind,
        stage=stage,
        clock_start=clock_start,
        due=due,
        priority="high" if kind == "breached" else "normal",
        owner=owner,
    )
    return SlaOutcome(status, due, clock_start, follow_up)
