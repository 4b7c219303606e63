"""As-of scoring, no look-ahead: each person as they stood at the snapshot, and what came after.

A `History` is one person as read today: the merged profile with every event (before and after
the snapshot), when the person was created, and their deals. `as_of_profile` keeps only what
was known before the snapshot: events strictly before it, the MQL/SQL dates and the sales
status dated before it (an undated or later status is dropped: it may not have held then), and
no BANT (no CRM dates BANT answers, so they may have come later). Undated attributes (title,
company size, ...) are today's values: the CRMs keep no history of them that leadsync reads
(docs/review.md says so). The score is `leadsync.scoring.evaluate` at the snapshot, the same
core the sync uses; the outcome is what happened after the snapshot, within the horizon.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from leadsync.review.figures import Journey, Scored
from leadsync.scoring import Bant, Evaluation, Profile, ScoringModel, evaluate

Outcome = Literal["opportunity", "won"]
OUTCOMES: tuple[Outcome, ...] = ("opportunity", "won")


@dataclass(frozen=True, slots=True)
class DealFacts:
    """One opportunity or deal of the person: when it was opened, and won or lost (None: not,
    or still open)."""

    opened_at: datetime
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class History:
    """One person as read today. `links` are the person's record keys (for the review meeting:
    where to open the records)."""

    profile: Profile
    created_at: datetime | None = None
    deals: tuple[DealFacts, ...] = ()
    links: tuple[str, ...] = ()

    def first(self, outcome: Outcome) -> datetime | None:
        """When the person first reached the outcome (an opportunity opened, or a deal won)."""
        dates = [d.opened_at if outcome == "opportunity" else d.won_at for d in self.deals]
        return min((d for d in dates if d is not None), default=None)

    def journey(self) -> Journey:
        """The person's funnel dates as known today (lead = created)."""
        p = self.profile
        return Journey(p.id, p.lead_source, self.created_at, p.mql_at, p.sql_at,
                       self.first("opportunity"), self.first("won"))


@dataclass(frozen=True, slots=True)
class Case:
    """One person of the cohort: the as-of profile, its evaluation by the live model (and by
    the candidate), and the outcome within the horizon."""

    history: History
    profile: Profile
    current: Evaluation
    candidate: Evaluation | None
    outcome: bool
    outcome_at: datetime | None

    def scored(self, which: Literal["current", "candidate"] = "current") -> Scored:
        ev = self.current if which == "current" else self.candidate
        if ev is None:
            raise ValueError("Case.scored: no candidate evaluation")
        return scored(ev, self.outcome)


def scored(ev: Evaluation, outcome: bool) -> Scored:
    """The figures' view of an evaluation: score, grade and the rules that gave points (cap
    lines are not rules)."""
    hits = frozenset(r.rule for r in ev.reasons if not r.rule.startswith("cap:"))
    return Scored(ev.person_id, ev.score, outcome, ev.grade, hits)


def as_of_profile(profile: Profile, as_of: datetime) -> Profile:
    """The profile as it stood at `as_of` (see the module docstring)."""
    events = tuple(e for e in profile.events if e.at < as_of)
    mql_at = profile.mql_at if profile.mql_at is not None and profile.mql_at < as_of else None
    sql_at = profile.sql_at if profile.sql_at is not None and profile.sql_at < as_of else None
    known = profile.sales_status_at is not None and profile.sales_status_at < as_of
    stage, entered = "lead", None
    for name, at in (("sql", sql_at), ("mql", mql_at)):
        if at is not None:
            stage, entered = name, at
            break
    return replace(
        profile, events=events, bant=Bant(), stage=stage, stage_entered_at=entered,
        mql_at=mql_at, sql_at=sql_at, score_at_mql=None,
        sales_status=profile.sales_status if known else None,
        sales_status_at=profile.sales_status_at if known else None)


def eligible(history: History, as_of: datetime, outcome: Outcome) -> bool:
    """In the cohort: created before the snapshot (or of unknown creation) and not yet at the
    outcome then."""
    if history.created_at is not None and history.created_at >= as_of:
        return False
    reached = history.first(outcome)
    return reached is None or reached >= as_of


def outcome_within(history: History, as_of: datetime, horizon: timedelta,
                   outcome: Outcome) -> datetime | None:
    """When the outcome came after the snapshot and within the horizon, else None."""
    reached = history.first(outcome)
    if reached is not None and as_of <= reached < as_of + horizon:
        return reached
    return None


def score_cohort(histories: Iterable[History], model: ScoringModel, as_of: datetime,
                 horizon: timedelta, outcome: Outcome, *,
                 candidate: ScoringModel | None = None) -> list[Case]:
    """Every eligible person, scored as of the snapshot by `model` (and `candidate`), with the
    outcome after it within `horizon`; ordered by person id."""
    if horizon <= timedelta(0):
        raise ValueError("score_cohort: the horizon must be positive")
    cases = []
    for history in sorted(histories, key=lambda h: h.profile.id):
        if not eligible(history, as_of, outcome):
            continue
        profile = as_of_profile(history.profile, as_of)
        reached = outcome_within(history, as_of, horizon, outcome)
        cases.append(Case(
            history, profile, evaluate(profile, model, as_of),
            None if candidate is None else evaluate(profile, candidate, as_of),
            reached is not None, reached))
    return cases


def qualifies(ev: Evaluation, model: ScoringModel) -> bool:
    """An MQL by this model's own bar at the snapshot: the score at the threshold, or an
    instant-MQL occurrence (what the threshold table and "would change stage" count)."""
    return ev.score >= model.mql_threshold or ev.instant_mql


def sequence_of(cases: Sequence[Case], which: Literal["current", "candidate"] = "current"
                ) -> list[Scored]:
    return [case.scored(which) for case in cases]
