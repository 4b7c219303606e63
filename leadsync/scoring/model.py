"""The scoring model: a rules file compiled once into frozen values (DESIGN.md §3, §5).

`leadsync.config.rules` validates YAML and builds a `ScoringModel`; the core only reads it.
Everything that can be decided before seeing a profile is decided here: conditions are closures,
engagement rules are planned per event type (which properties to lower-case once, which
rules to try), and the fields fit rules read are listed so a
profile's facts are built once, for exactly those fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadsync.scoring.accounts import AccountModel
from leadsync.scoring.business_time import BusinessCalendar, add_working
from leadsync.scoring.conditions import Condition, Predicate
from leadsync.scoring.derived import FREE_EMAIL_DOMAINS
from leadsync.scoring.plans import ModelTables
from leadsync.scoring.routing import RoutingPolicy

#: The sync's look-back when the rules set no `horizon_days` (every event counts, DESIGN.md
#: §3a): about 55 years, i.e. back to the early 1970s: all the engagement a CRM has.
UNBOUNDED_LOOKBACK_DAYS = 20_000.0


@dataclass(frozen=True, slots=True)
class Decay:
    """`half_life_days` -> 0.5^(age/H); `lifespan_days` -> max(0, 1 - age/L). Exactly one set."""

    half_life_days: float | None = None
    lifespan_days: float | None = None

    def factor(self, age_days: float) -> float:
        if self.half_life_days is not None:
            return float(0.5 ** (age_days / self.half_life_days))
        if self.lifespan_days is not None:
            return max(0.0, 1.0 - age_days / self.lifespan_days)
        return 1.0


@dataclass(frozen=True, slots=True)
class FitRule:
    id: str
    label: str
    points: float
    when: Condition
    fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class EngagementRule:
    """Occurrences are events of type `event` whose `where` predicates all hold."""

    id: str
    label: str
    points: float
    event: str
    where: tuple[tuple[str, Predicate], ...] = ()
    within_days: float | None = None
    min_count: int = 1
    max_times: int | None = None
    decay: Decay | None = None
    max_points: float | None = None
    instant_mql: bool = False


@dataclass(frozen=True, slots=True)
class RecencyRule:
    """`inactive_days`: newest marketing event older than N days (or none); `active_days`: <= N."""

    id: str
    label: str
    points: float
    inactive_days: float | None = None
    active_days: float | None = None


@dataclass(frozen=True, slots=True)
class Grade:
    grade: str
    min: float | None = None  # None only on the last grade


@dataclass(frozen=True, slots=True)
class Caps:
    fit_min: float = -100.0
    fit_max: float = 100.0
    engagement_min: float = -100.0
    engagement_max: float = 150.0


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """SLA hours per stage (DESIGN.md §5). With a `calendar` (`sla.business_hours`) the hours
    are working hours on it; without one they are wall-clock hours, as they always were."""

    mql_hours: float = 24.0
    sql_hours: float = 48.0
    mql_warn_hours: float = 4.0
    sql_warn_hours: float = 8.0
    calendar: BusinessCalendar | None = None

    def for_stage(self, stage: str) -> tuple[float, float] | None:
        """(deadline hours, warn hours) for a stage with an SLA clock, else None."""
        if stage == "mql":
            return self.mql_hours, self.mql_warn_hours
        if stage == "sql":
            return self.sql_hours, self.sql_warn_hours
        return None

    def clock(self, stage: str, start: datetime) -> tuple[datetime, datetime] | None:
        """(warn from, due) of a clock started at `start` in `stage`, else None. Due is
        `start` + the stage's hours; the warning starts when `warn_hours` remain. Both count
        working time on the calendar when there is one."""
        hours = self.for_stage(stage)
        if hours is None:
            return None
        if self.calendar is None:
            due = start + timedelta(hours=hours[0])
            return due - timedelta(hours=hours[1]), due
        total, warn = timedelta(hours=hours[0]), timedelta(hours=hours[1])
        return (add_working(start, total - warn, self.calendar),
                add_working(start, total, self.calendar))


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """A compiled rules file. Build with `leadsync.config.rules` or directly (tests, demos)."""

    version: str
    mql_threshold: float = 80.0
    bant_min: int = 3
    grades: tuple[Grade, ...] = (Grade("A", 40), Grade("B", 25), Grade("C", 10), Grade("D"))
    caps: Caps = Caps()
    fit_rules: tuple[FitRule, ...] = ()
    engagement_rules: tuple[EngagementRule, ...] = ()
    recency_rules: tuple[RecencyRule, ...] = ()
    sla: SlaPolicy = SlaPolicy()
    free_email_domains: frozenset[str] = FREE_EMAIL_DOMAINS
    #: DESIGN.md §3a: events dated before now - horizon_days are ignored everywhere, like
    #: events after now; None: every event counts, however old
    horizon_days: int | None = None
    #: the `routing:` section (issue 13; docs/routing.md): no rules when absent
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)
    #: the `accounts:` section (docs/accounts.md); None: no account scoring
    accounts: AccountModel | None = None
    # derived in __post_init__
    fit_fields: frozenset[str] = field(init=False, compare=False)
    lookback_days: float = field(init=False, compare=False)
    #: lookup tables and memos for the hot path (see `leadsync.scoring.plans`)
    tables: ModelTables = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        fields = frozenset().union(*(r.fields for r in self.fit_rules))
        object.__setattr__(self, "fit_fields", fields)
        object.__setattr__(self, "tables", ModelTables(self))
        if not self.grades or self.grades[-1].min is not None:
            raise ValueError("ScoringModel: grades must end with a grade without min")
        if self.horizon_days is not None and (
                isinstance(self.horizon_days, bool) or self.horizon_days <= 0):
            raise ValueError("ScoringModel: horizon_days must be a positive integer or None")
        object.__setattr__(self, "lookback_days", float(
            UNBOUNDED_LOOKBACK_DAYS if self.horizon_days is None else self.horizon_days))

    def events_since(self, now: datetime) -> datetime:
        """The oldest event time that counts at `now`; what the sync reads and keeps (its
        engagement look-back is `lookback_days`: the horizon, or every event without one)."""
        return now - timedelta(days=self.lookback_days)

    def grade_for(self, fit: int) -> str:
        """First grade whose min <= fit; the last grade (no min) catches the rest."""
        for grade in self.grades:
            if grade.min is None or fit >= grade.min:
                return grade.grade
        return self.grades[-1].grade
