"""What the core returns for one profile (DESIGN.md §3-§5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SlaStatus = Literal["none", "on_track", "due_soon", "breached", "met"]
TaskKind = Literal["due_soon", "breached"]


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    label: str
    points: float  # kept to one decimal


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A follow-up task the core says is owed. `key` is stable for
    (person, stage, clock start, kind): the idempotency key of DESIGN.md §5."""

    key: str
    kind: TaskKind
    stage: str  # "mql" | "sql"
    clock_start: datetime
    due: datetime
    priority: Literal["normal", "high"]
    owner: str | None  # owner email (escalation/fallback owner applied by the caller's policy)


@dataclass(frozen=True, slots=True)
class Evaluation:
    person_id: str
    score: int
    fit: int
    engagement: int
    grade: str
    reasons: tuple[Reason, ...]
    instant_mql: bool
    model: str  # the rules file's `version`
    stage: str
    stage_changed: bool
    stage_entered_at: datetime | None
    mql_at: datetime | None
    sql_at: datetime | None
    score_at_mql: int | None
    sla_status: SlaStatus
    sla_due: datetime | None
    follow_up: FollowUp | None
    # additive: when the SLA clock started (None without a clock), and the unrounded capped sums
    sla_clock_start: datetime | None = None
    fit_raw: float = 0.0
    engagement_raw: float = 0.0
