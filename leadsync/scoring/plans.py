"""Lookup tables a `ScoringModel` builds once so that scoring a profile is mostly dict hits.

- `EventPlan`, per event type: the properties its engagement rules read, and a memo from those
  raw property values to the rules whose `where` holds (URLs and form ids repeat across a
  customer base).
- `ReasonTable`: the shared `Reason` of a contribution, paired with its sort key, by rule and
  raw points (most contributions are a rule's constant points, or a small multiple of them);
  for an undecayed rule also its capped points and entry by occurrence count (`counted`).

Every memo here is an optimisation only: bounded, cleared when full, and never changes a
result. Nothing in this module imports the model, so `model.py` can build these tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from operator import methodcaller
from typing import TYPE_CHECKING, Final, cast

from leadsync.scoring.conditions import Predicate
from leadsync.scoring.entries import MISSING, ReasonEntry, shared_entry
from leadsync.scoring.facts import FitTable
from leadsync.scoring.reasons import clamp

if TYPE_CHECKING:
    from leadsync.scoring.model import RecencyRule, ScoringModel

MEMO_LIMIT: Final = 8192

PropsKey = Callable[[Mapping[str, str]], object]


def _props_key(names: tuple[str, ...]) -> PropsKey:
    """The memo key of an event's props: the one value read (the common case), else a tuple."""
    if len(names) == 1:
        return methodcaller("get", names[0])  # C-level `props.get(name)`
    return lambda props: tuple([props.get(name) for name in names])


class EventPlan:
    """How to match one event type: `prop`, the one property its rules read (None when they
    read none or several; then `key(props)` builds the memo key), the `memo` of matches, the
    properties read and, per rule, (rule position, ((property position, predicate), ...)).
    A slotted class rather than a NamedTuple: its attributes are read per event."""

    __slots__ = ("key", "memo", "prop", "props", "rules")

    def __init__(self, props: tuple[str, ...],
                 rules: tuple[tuple[int, tuple[tuple[int, Predicate], ...]], ...]) -> None:
        self.prop = props[0] if len(props) == 1 else None
        self.memo: dict[object, tuple[int, ...]] = {}
        self.key = _props_key(props)
        self.props = props
        self.rules = rules

    def matches(self, props: Mapping[str, str]) -> tuple[int, ...]:
        """Positions of the rules whose `where` holds for an event's `props`."""
        prop = self.prop
        return self.matching(props.get(prop) if prop is not None else self.key(props))

    def matching(self, key: object) -> tuple[int, ...]:
        """Positions of the rules whose `where` holds for `key` (from `self.key(props)`)."""
        found = self.memo.get(key)
        if found is not None:
            return found
        values = cast("tuple[str | None, ...]", key if len(self.props) != 1 else (key,))
        lowered = [v.lower() if v else None for v in values]
        found = tuple(
            i for i, checks in self.rules if all(pred(lowered[pos]) for pos, pred in checks)
        )
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = found
        return found


def plan_events(
    rules: Sequence[tuple[str, tuple[tuple[str, Predicate], ...]]],
) -> Mapping[str, EventPlan]:
    """One `EventPlan` per event type from (event type, where) of each engagement rule."""
    by_type: dict[str, list[int]] = {}
    for position, (event_type, _) in enumerate(rules):
        by_type.setdefault(event_type, []).append(position)
    plans: dict[str, EventPlan] = {}
    for event_type, positions in by_type.items():
        props: list[str] = []
        for i in positions:
            props.extend(name for name, _ in rules[i][1] if name not in props)
        names = tuple(props)
        checks = tuple(
            (i, tuple((props.index(name), pred) for name, pred in rules[i][1]))
            for i in positions
        )
        plans[event_type] = EventPlan(names, checks)
    return plans


#: An undecayed rule's contribution for an occurrence count: (points after its cap, entry).
Counted = tuple[float, "ReasonEntry | None"]


class ReasonTable:
    """Entries of one rule's contributions by raw points (a memo over `shared_entry`), and for
    an undecayed rule (`points` set) its contribution by occurrence count (`counted`)."""

    __slots__ = ("by_count", "cap", "label", "limit", "memo", "points", "rule_id")

    def __init__(self, rule_id: str, label: str, points: float | None = None,
                 limit: int | None = None, cap: float | None = None) -> None:
        self.rule_id = rule_id
        self.label = label
        self.memo: dict[float, ReasonEntry | None] = {}
        self.points = points
        self.limit = limit
        self.cap = cap
        #: `counted` results by occurrence count (counts are small: a bounded dict suffices)
        self.by_count: dict[int, Counted] = {}

    def counted(self, count: int) -> Counted:
        """Points and entry of `count` occurrences of an undecayed rule: its points times the
        count (at most max_times), limited to +-max_points (DESIGN.md §3)."""
        found = self.by_count.get(count)
        if found is not None:
            return found
        if self.points is None:
            raise ValueError(f"ReasonTable {self.rule_id!r}: counted() needs the rule's points")
        limit = self.limit
        counted = count if limit is None or count < limit else limit
        points = self.points * counted
        cap = self.cap
        if cap is not None:
            points = clamp(points, -cap, cap)
        if len(self.by_count) >= MEMO_LIMIT:
            self.by_count.clear()
        found = self.by_count[count] = (points, shared_entry(self.rule_id, self.label, points,
                                                             counted))
        return found

    def entry(self, points: float) -> ReasonEntry | None:
        """The entry for `points` (one occurrence); None when it rounds to zero."""
        found = self.memo.get(points, MISSING)
        if found is not MISSING:
            return found  # type: ignore[return-value]
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        entry = self.memo[points] = shared_entry(self.rule_id, self.label, points)
        return entry


class ModelTables:
    """What `score_points` looks up per profile, built once when the model is built.

    - `event_plans`: an `EventPlan` per event type that some engagement rule counts;
    - `windows`: per engagement rule, its `within_days` as a timedelta (None without one), and
      `cutoffs(now)`: the oldest time each window accepts, memoised per `now` (a batch shares it);
    - `horizon`: the model's `horizon_days` as a timedelta (None: every event counts);
    - `engagement_reasons`: per engagement rule, a `ReasonTable` (None for decayed rules,
      whose points rarely repeat: they use `shared_entry` directly);
    - `half_lives`: per engagement rule, its decay's half-life in days (None without one);
    - `fit`: the fit rules' facts and memoised outcomes (`FitTable`);
    - `recency`: each recency rule with its constant reason entry.
    """

    __slots__ = (
        "_model_grade",
        "cutoffs_at",
        "engagement_reasons",
        "event_plans",
        "fit",
        "grades",
        "half_lives",
        "horizon",
        "recency",
        "windows",
    )

    def __init__(self, model: ScoringModel) -> None:
        rules = model.engagement_rules
        self.event_plans = plan_events([(r.event, r.where) for r in rules])
        self.windows = tuple(None if r.within_days is None else timedelta(days=r.within_days)
                             for r in rules)
        self.horizon = None if model.horizon_days is None else timedelta(days=model.horizon_days)
        self.engagement_reasons = tuple(
            None if r.decay is not None
            else ReasonTable(r.id, r.label, r.points, r.max_times, r.max_points)
            for r in rules
        )
        self.half_lives = tuple(None if r.decay is None else r.decay.half_life_days
                                for r in rules)
        self.fit = FitTable(model, [shared_entry(r.id, r.label, r.points)
                                    for r in model.fit_rules])
        self.recency: tuple[tuple[RecencyRule, ReasonEntry | None], ...] = tuple(
            (r, shared_entry(r.id, r.label, r.points)) for r in model.recency_rules)
        self._model_grade = model.grade_for
        #: the memos behind `grade_for` and `cutoffs`; hot callers read them first
        #: (`grades.get(fit) or grade_for(fit)`) and so skip a call per profile
        self.grades: dict[int, str] = {}
        self.cutoffs_at: dict[datetime, tuple[datetime | None, ...]] = {}

    def grade_for(self, fit: int) -> str:
        """`ScoringModel.grade_for`, memoised (fits are a few small integers)."""
        grade = self.grades.get(fit)
        if grade is None:
            if len(self.grades) >= MEMO_LIMIT:
                self.grades.clear()
            grade = self.grades[fit] = self._model_grade(fit)
        return grade

    def cutoffs(self, now: datetime) -> tuple[datetime | None, ...]:
        """Per engagement rule, the oldest occurrence time its window counts at `now`."""
        found = self.cutoffs_at.get(now)
        if found is None:
            if len(self.cutoffs_at) >= 64:
                self.cutoffs_at.clear()
            found = self.cutoffs_at[now] = tuple(
                None if window is None else now - window for window in self.windows
            )
        return found
