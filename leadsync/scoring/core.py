"""`evaluate`: one profile, its previous state, the model and `now` -> an `Evaluation`.

Pure: no I/O, no clock (DESIGN.md §1). Events dated after `now`, and with a `horizon_days`
those dated before `now - horizon` (§3a), are dropped first, so they are ignored everywhere
(engagement, recency, instant MQL, re-MQL, SLA).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, cast

from leadsync.scoring.engine import Points, score_points
from leadsync.scoring.evaluation import Evaluation
from leadsync.scoring.lifecycle import StageOutcome, decide_stage
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.profile import Profile
from leadsync.scoring.sla import NO_SLA, SlaOutcome, decide_sla

_BY_TIME = attrgetter("at")
_ZERO = timedelta(0)


def evaluate(profile: Profile, model: ScoringModel, now: datetime) -> Evaluation:
    """Score, grade, stage, SLA and owed follow-up for `profile` at `now` (aware, UTC)."""
    if now.tzinfo is not UTC and now.utcoffset() != _ZERO:
        raise ValueError("evaluate: `now` must be timezone-aware UTC")
    events = sorted(profile.events, key=_BY_TIME, reverse=True)
    if events and events[0].at > now:  # future events sort first: drop them
        events = [e for e in events if e.at <= now]
    horizon = model.tables.horizon
    if horizon is not None and events and events[-1].at < now - horizon:
        oldest = now - horizon  # events before the horizon sort last: keep the prefix
        events = events[: bisect_left(events, True, key=lambda e: e.at < oldest)]
    points = score_points(profile, model, now, events)
    outcome = decide_stage(profile, model, now, (points[0], points[6], points[7]))
    stage, _, entered_at, mql_at, sql_at, _, _ = outcome
    if stage == "mql":
        clock_start = mql_at or entered_at
    elif stage == "sql":
        clock_start = sql_at or entered_at
    else:
        clock_start = None
    sla = NO_SLA if clock_start is None else decide_sla(
        person_id=profile.id,
        stage=stage,
        clock_start=clock_start,
        events=events,
        sales_status=profile.sales_status,
        sales_status_at=profile.sales_status_at,
        owner=profile.owner,
        policy=model.sla,
        now=now,
    )
    return _assemble(profile, model, points, outcome, sla)


class _Draft:
    """A writable twin of `Evaluation`: the same slots, in the same order, on the same base.

    `Evaluation` is frozen (the public API), so its generated __init__ stores each of its 20
    fields through a guarded `object.__setattr__`, which made it the single largest cost of
    `evaluate`. `_assemble` instead fills a draft with plain slot stores and then re-labels it
    as an `Evaluation` (`__class__` assignment, allowed between identical slot layouts). The
    result is an ordinary, frozen Evaluation: same fields, equality, hash, repr and pickling.
    """

    __slots__ = Evaluation.__slots__


if Evaluation.__slots__ != tuple(f.name for f in fields(Evaluation)) or hasattr(
    Evaluation, "__post_init__"
):  # pragma: no cover - a guard for whoever changes Evaluation
    raise RuntimeError("core._Draft: Evaluation's layout changed; update _assemble")


def _assemble(profile: Profile, model: ScoringModel, points: Points, outcome: StageOutcome,
              sla: SlaOutcome) -> Evaluation:
    """The `Evaluation`, every field set (see `_Draft`)."""
    score, fit, engagement, fit_raw, engagement_raw, reasons, instant_at, _ = points
    stage, changed, entered_at, mql_at, sql_at, score_at_mql, decision = outcome
    draft: Any = _Draft()  # typed loosely: it becomes an Evaluation below
    draft.person_id = profile.id
    draft.score = score
    draft.fit = fit
    draft.engagement = engagement
    tables = model.tables
    draft.grade = tables.grades.get(fit) or tables.grade_for(fit)
    draft.reasons = reasons
    draft.instant_mql = instant_at is not None
    draft.model = model.version
    draft.stage = stage
    draft.stage_changed = changed
    draft.stage_entered_at = entered_at
    draft.mql_at = mql_at
    draft.sql_at = sql_at
    draft.score_at_mql = score_at_mql
    draft.sla_status, draft.sla_due, draft.sla_clock_start, draft.follow_up = sla
    draft.fit_raw = fit_raw
    draft.engagement_raw = engagement_raw
    draft.stage_decision = decision
    draft.__class__ = Evaluation
    return cast(Evaluation, draft)
