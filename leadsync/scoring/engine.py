"""Points: fit, engagement and recency rules over one profile (DESIGN.md §3).

Work per profile is linear in events x rules-for-that-event-type: events arrive sorted newest
first, each is matched only against the engagement rules indexed under its type, and each
rule keeps the ages of its occurrences in order, so "the most recent max_times" is a slice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from math import copysign, floor
from operator import itemgetter
from typing import cast

from leadsync.scoring.entries import ReasonEntry, cap_entry, shared_entry
from leadsync.scoring.evaluation import Reason
from leadsync.scoring.model import Decay, EngagementRule, ScoringModel
from leadsync.scoring.profile import EVENT_TYPES, Event, Profile
from leadsync.scoring.reasons import clamp

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


def _occurrences(events: Sequence[Event], model: ScoringModel) -> list[list[datetime] | None]:
    """Per engagement rule: the times of its occurrences, newest first (None if none), before
    any window (`_engagement` trims each windowed rule's list once, see `_within`).

    Hot path: per event, one plan lookup, the memo of its rule matches read by subscripts (the
    cheapest reads of a dict behind a mappingproxy), and an append per matched rule. A
    KeyError means the slow path (`EventPlan.matches`): the event lacks the property, its
    plan reads no or several properties (`plan.prop` None), or the value is new to the memo.
    """
    tables = model.tables
    plan_for = tables.event_plans.get
    found: list[list[datetime] | None] = [None] * len(model.engagement_rules)
    for event in events:
        plan = plan_for(event.type)
        if plan is None:
            continue
        try:
            matched = plan.memo[event.props[plan.prop]]  # type: ignore[index]
        except KeyError:
            matched = plan.matches(event.props)
        at = event.at
        for i in matched:
            bucket = found[i]
            if bucket is None:
                found[i] = [at]
            else:
                bucket.append(at)
    return found


def _within(hits: list[datetime], cutoff: datetime) -> list[datetime]:
    """The leading `hits` (newest first) at or after `cutoff`: a window keeps a prefix.

    `cutoff.__gt__` is False on that prefix and True after it, an ascending key, so
    `bisect_left` finds where the prefix ends in a few C-level comparisons.
    """
    return hits[: bisect_left(hits, True, key=cutoff.__gt__)]


def _decayed(rule: EngagementRule, decay: Decay, half_life: float | None,
             hits: list[datetime], now: datetime) -> float:
    """The decayed points of a rule's counted occurrences (the newest max_times), summed newest
    first. A half-life decay is computed here as `Decay.factor` does (the same float
    operations, so the same result) without a call per occurrence."""
    counted = hits if rule.max_times is None else hits[: rule.max_times]
    total = 0.0  # what sum() starts from for floats: the same additions, the same rounding
    if half_life is not None:
        for at in counted:
            total += float(0.5 ** ((now - at).total_seconds() / SECONDS_PER_DAY / half_life))
    else:
        factor = decay.factor
        for at in counted:
            total += factor((now - at).total_seconds() / SECONDS_PER_DAY)
    return rule.points * total


def _engagement(
    found: list[list[datetime] | None], model: ScoringModel, now: datetime,
    entries: list[ReasonEntry],
) -> tuple[float, datetime | None, datetime | None]:
    """Engagement sum, newest instant-MQL occurrence and newest positive-point occurrence, from
    each rule's occurrences (`_occurrences`); adds the rules' reason entries to `entries`.
    An undecayed rule's points and entry depend on its count only (`ReasonTable.counted`)."""
    engagement_sum = 0.0
    instant_at: datetime | None = None
    engaged_at: datetime | None = None
    rules = model.engagement_rules
    tables = model.tables.engagement_reasons
    cutoffs = model.tables.cutoffs_at.get(now) or model.tables.cutoffs(now)
    for i, occurrences in enumerate(found):
        if occurrences is None:
            continue
        cutoff = cutoffs[i]
        # a window drops the occurrences older than its cut-off (the oldest come last)
        hits = occurrences if cutoff is None or occurrences[-1] >= cutoff else _within(
            occurrences, cutoff)
        rule = rules[i]
        count = len(hits)
        if count < rule.min_count or not count:
            continue
        table = tables[i]
        if table is not None:  # undecayed
            points, entry = table.by_count.get(count) or table.counted(count)
        else:
            decay = cast(Decay, rule.decay)
            points = _decayed(rule, decay, model.tables.half_lives[i], hits, now)
            cap = rule.max_points
            if cap is not None:
                points = clamp(points, -cap, cap)
            limit = rule.max_times
            entry = shared_entry(rule.id, rule.label, points,
                                 count if limit is None or count < limit else limit)
        newest = hits[0]
        if rule.instant_mql and (instant_at is None or newest > instant_at):
            instant_at = newest
        if rule.points > 0 and (engaged_at is None or newest > engaged_at):
            engaged_at = newest
        engagement_sum += points
        if entry is not None:
            entries.append(entry)
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
        _occurrences(events, model), model, now, entries)
    if model.recency_rules:
        engagement_sum = _recency(events, model, now, engagement_sum, entries)
    caps = model.caps
    low, high = caps.engagement_min, caps.engagement_max
    # `clamp` and `round_half_away`, inlined: two calls per profile saved on the hot path
    engagement_raw = low if engagement_sum < low else high if engagement_sum > high else (
        engagement_sum)
    if engagement_raw != engagement_sum:  # the cap's own reason line (DESIGN.md §3a)
        capped = cap_entry("engagement", engagement_sum, low, high)
        if capped is not None:
            entries.append(capped)
    engagement = int(copysign(floor(abs(engagement_raw) + 0.5), engagement_raw))
    return (fit + engagement, fit, engagement, fit_raw, engagement_raw, _reasons(entries),
            instant_at, engaged_at)


_SORT_KEY = itemgetter(0)
_REASON = itemgetter(1)


def _reasons(entries: list[ReasonEntry]) -> tuple[Reason, ...]:
    """Largest |points| first, rule order on ties (a stable sort on -|points|)."""
    if len(entries) > 1:
        entries.sort(key=_SORT_KEY)
    return tuple(map(_REASON, entries))
