"""`evaluate`: one profile, its previous state, the model and `now` -> an `Evaluation`.

Pure: no I/O, no clock (DESIGN.md §1). Events dated after `now` are dropped first, so they are
ignored everywhere (engagement, recency, instant MQL, SLA).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from operator import attrgetter

from leadsync.scoring.engine import score_points
from leadsync.scoring.evaluation import Evaluation
from leadsync.scoring.lifecycle import decide_stage
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.profile import Profile
from leadsync.scoring.sla import decide_sla

_BY_TIME = attrgetter("at")
_ZERO = timedelta(0)


def evaluate(profile: Profile, model: ScoringModel, now: datetime) -> Evaluation:
    """Score, grade, stage, SLA and owed follow-up for `profile` at `now` (aware, UTC)."""
    if now.utcoffset() != _ZERO:
        raise ValueError("evaluate: `now` must be timezone-aware UTC")
    events = [e for e in profile.events if e.at <= now]
    events.sort(key=_BY_TIME, reverse=True)
    points = score_points(profile, model, now, events)
    outcome = decide_stage(profile, model, now, points)
    if outcome.stage == "mql":
        clock_start = outcome.mql_at or outcome.entered_at
    elif outcome.stage == "sql":
        clock_start = outcome.sql_at or outcome.entered_at
    else:
        clock_start = None
    sla = decide_sla(
        person_id=profile.id,
        stage=outcome.stage,
        clock_start=clock_start,
        events=events,
        sales_status=profile.sales_status,
        sales_status_at=profile.sales_status_at,
        owner=profile.owner,
        policy=model.sla,
        now=now,
    )
    return Evaluation(
        person_id=profile.id,
        score=points.score,
        fit=points.fit,
        engagement=points.engagement,
        grade=model.grade_for(points.fit),
        reasons=points.reasons,
        instant_mql=points.instant_at is not None,
        model=model.version,
        stage=outcome.stage,
        stage_changed=outcome.changed,
        stage_entered_at=outcome.entered_at,
        mql_at=outcome.mql_at,
        sql_at=outcome.sql_at,
        score_at_mql=outcome.score_at_mql,
        sla_status=sla.status,
        sla_due=sla.due,
        follow_up=sla.follow_up,
        sla_clock_start=sla.clock_start,
        fit_raw=points.fit_raw,
        engagement_raw=points.engagement_raw,
    )
