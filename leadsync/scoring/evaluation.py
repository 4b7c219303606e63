"""What the core returns for one profile (DESIGN.md §3-§5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from leadsync.scoring.profile import Bant

SlaStatus = Literal["none", "on_track", "due_soon", "breached", "met"]
TaskKind = Literal["due_soon", "breached"]


@dataclass(frozen=True, slots=True)
class Reason:
    """A rule's contribution. `points` is the rule's total (one decimal), over `count` counted
    occurrences for an engagement rule (1 for fit, recency and cap entries). Cap entries have
    the rule ids `cap:fit` / `cap:engagement` (DESIGN.md §3a)."""

    rule: str
    label: str
    points: float  # kept to one decimal
    count: int = 1


#: Which rule of DESIGN.md §4 decided the stage (`StageDecision.rule`):
#: - sales_forward: accepted -> sql, opportunity_open -> opportunity, won -> customer (§4.1);
#: - sales_backward: rejected/lost -> recycled, disqualified -> disqualified (§4.2, dated);
#: - mql_threshold / mql_instant: lead -> mql by score or an instant-MQL occurrence (§4.3);
#: - re_mql_threshold / re_mql_instant: recycled -> mql through evidence after the recycling;
#: - bant_sql: mql -> sql by BANT (§4.4), possibly right after qualifying in the same cycle;
#: - below_threshold: subscriber/lead stays (score under the bar, no instant occurrence; BANT
#:   alone does not qualify, §4.4);
#: - recycled_waiting: recycled, no evidence dated after the recycling (§4.3);
#: - held: mql and later keep their stage whatever the score (§4.5), and disqualified stays.
StageRule = Literal[
    "sales_forward", "sales_backward", "mql_threshold", "mql_instant", "re_mql_threshold",
    "re_mql_instant", "bant_sql", "below_threshold", "recycled_waiting", "held",
]


class StageDecision(NamedTuple):
    """Why the stage is what it is: the rule of DESIGN.md §4 that decided it, and its facts.

    `previous` is the stage the person was in; `fact_at` dates the deciding fact (the sales
    decision, the instant-MQL occurrence, or when the person was recycled); `sales_status` is
    the sales fact that applied (or was present); `bant` the BANT answers when BANT mattered.
    A NamedTuple: the common decisions are shared constants and the rest cost one tuple.
    """

    rule: StageRule
    previous: str
    fact_at: datetime | None = None
    sales_status: str | None = None
    bant: Bant | None = None


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
    #: additive: the lifecycle decision behind `stage` (DESIGN.md §4), for `explain`
    stage_decision: StageDecision | None = None
