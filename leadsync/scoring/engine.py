"""Points: fit, engagement and recency rules over one profile (DESIGN.md §3).

Work per profile is linear in events x rules-for-that-event-type: events arrive sorted newest
first, each is matched only against the engagement rules indexed under its type, and each
rule keeps the ages of its occurrences in order, so "the most recent max_times" is a slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter

from leadsync.scoring.evaluation import Reason
from leadsync.scoring.model import Decay, EngagementRule, ScoringModel
from leadsync.scoring.plans import MISSING, ReasonEntry, shared_entry
from leadsync.scoring.profile import EVENT_TYPES, Event, Profile
from leadsync.scoring.reasons import clamp, round_half_away

SECONDS_PER_DAY = 86400.0
MARKETING_EVENT_TYPES = EVENT_TYPES - {"sales_touch"}


#: What `score_points` returns, in this order: score (fit + engagement), fit, engagement,
#: fit_raw and engagement_raw (capped, unrounded), reasons, instant_at (newest instant_mql
#: occurrence) and engaged_at (newest occurrence of a positive-point engagement rule).
#: A plain tuple: it is built and unpacked once per profile, on the hot path.
Points = tuple[int, int, int, float, float, tuple[Reason, ...], datetime | None, datetime | None]


def profile_facts(profile: Profile, model: ScoringModel) -> dict[str, object]:
    """Values of the fields the model's fit rules read, normalized once (lower-cased strings)."""
    return model.tables.fit.facts(profile)


def _occurrences(
    events: Sequence[Event], model: ScoringModel, now: datetime
) -> list[list[datetime] | None]:
    """Per engagement rule: the times of its occurrences, newest first (None if none).

    Hot path: per event, one plan lookup and one memo lookup of its rule matches (see
    `EventPlan.matching`); windows compared as datetimes against per-`now` cut-offs.
    """
    tables = model.tables
    plan_for = tables.event_plans.get
    found: list[list[datetime] | None] = [None] * len(tables.windows)
    cutoffs = tables.cutoffs(now)
    for event in events:
        plan = plan_for(event.type)
        if plan is None:
            continue
        prop = plan.prop
        key = event.props.get(prop) if prop is not None else plan.key(event.props)
        matched = plan.memo.get(key)
        if matched is None:
            matched = plan.matching(key)
        at = event.at
        for i in matched:
            cutoff = cutoffs[i]
            if cutoff is not None and at < cutoff:
                continue
            bucket = found[i]
            if bucket is None:
                found[i] = [at]
            else:
                bucket.append(at)
    return found


def _decayed(rule: EngagementRule, decay: Decay, hits: list[datetime], now: datetime) -> float:
    """The decayed points of a rule's counted occurrences (the newest max_times)."""
    counted = hits if rule.max_times is None else hits[: rule.max_times]
    factor = decay.factor
    return rule.points * sum(
        factor((now - at).total_seconds() / SECONDS_PER_DAY) for at in counted
    )


def _engagement(
    found: list[list[datetime] | None], model: ScoringModel, now: datetime,
    entries: list[ReasonEntry],
) -> tuple[float, datetime | None, datetime | None]:
    """Engagement sum, newest instant-MQL occurrence and newest positive-point occurrence, from
    each rule's occurrences (`_occurrences`); adds the rules' reason entries to `entries`."""
    engagement_sum = 0.0
    instant_at: datetime | None = None
    engaged_at: datetime | None = None
    rules = model.engagement_rules
    tables = model.tables.engagement_reasons
    for i, hits in enumerate(found):
        if hits is None:
            continue
        rule = rules[i]
        count = len(hits)
        if count < rule.min_count:
            continue
        decay = rule.decay
        if decay is not None:
            points = _decayed(rule, decay, hits, now)
        else:
            limit = rule.max_times
            points = rule.points * (count if limit is None or count < limit else limit)
        cap = rule.max_points
        if cap is not None:
            points = clamp(points, -cap, cap)
        newest = hits[0]
        if rule.instant_mql and (instant_at is None or newest > instant_at):
            instant_at = newest
        if rule.points > 0 and (engaged_at is None or newest > engaged_at):
            engaged_at = newest
        engagement_sum += points
        table = tables[i]
        entry = MISSING if table is None else table.memo.get(points, MISSING)
        if entry is MISSING:
            entry = shared_entry(rule.id, rule.label, points) if table is None else table.entry(
                points)
        if entry is not None:
            entries.append(entry)  # type: ignore[arg-type]
    return engagement_sum, instant_at, engaged_at


def _recency(events: Sequence[Event], model: ScoringModel, now: datetime, total: float,
             entries: list[ReasonEntry]) -> float:
    """`total` plus the recency rules' points; adds the fired rules' entries to `entries`.
    Their clock is the newest marketing event (anything but a sales touch)."""
    newest_age: float | None = None
    for event in events:
        if event.type in MARKETING_EVENT_TYPES:
            newest_age = (now - event.at).total_seconds() / SECONDS_PER_DAY
            break
    for recency, entry in model.tables.recency:
        if recency.inactive_days is not None:
            fires = newest_age is None or newest_age > recency.inactive_days
        else:
            fires = newest_age is not None and newest_age <= (recency.active_days or 0.0)
        if fires:
            total += recency.points
            if entry is not None:
                entries.append(entry)
    return total


def score_points(
    profile: Profile, model: ScoringModel, now: datetime, events: Sequence[Event]
) -> Points:
    """Fit, engagement and reasons; `events` are the profile's events up to `now`, newest first."""
    fit_raw, fit, fired = model.tables.fit.score(profile)
    entries = list(fired)  # reason entries in rule order: fit, engagement, recency
    engagement_sum, instant_at, engaged_at = _engagement(
        _occurrences(events, model, now), model, now, entries)
    if model.recency_rules:
        engagement_sum = _recency(events, model, now, engagement_sum, entries)
    caps = model.caps
    engagement_raw = clamp(engagement_sum, caps.engagement_min, caps.engagement_max)
    engagement = round_half_away(engagement_raw)
    return (fit + engagement, fit, engagement, fit_raw, engagement_raw, _reasons(entries),
            instant_at, engaged_at)


_SORT_KEY = itemgetter(0)
_REASON = itemgetter(1)


def _reasons(entries: list[ReasonEntry]) -> tuple[Reason, ...]:
    """Largest |points| first, rule order on ties (a stable sort on -|points|)."""
    if len(entries) > 1:
        entries.sort(key=_SORT_KEY)
    return tuple(map(_REASON, entries))
