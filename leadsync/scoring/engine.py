"""Points: fit, engagement and recency rules over one profile (DESIGN.md §3).

Work per profile is linear in events x rules-for-that-event-type: events arrive sorted newest
first, each is matched only against the engagement rules indexed under its type, and each
rule keeps the ages of its occurrences in order, so "the most recent max_times" is a slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

from leadsync.scoring.conditions import normalize_fact
from leadsync.scoring.derived import derive_seniority, email_domain, is_free_email
from leadsync.scoring.evaluation import Reason
from leadsync.scoring.model import EngagementRule, ScoringModel
from leadsync.scoring.profile import EVENT_TYPES, Event, Profile
from leadsync.scoring.reasons import round_half_away, round_one_decimal

SECONDS_PER_DAY = 86400.0
MARKETING_EVENT_TYPES = EVENT_TYPES - {"sales_touch"}

_Getter = Callable[[Profile, ScoringModel], object]
_FIELD_GETTERS: dict[str, _Getter] = {
    "email_domain": lambda p, m: email_domain(p.email),
    "email_free": lambda p, m: is_free_email(email_domain(p.email), m.free_email_domains),
    "seniority": lambda p, m: derive_seniority(p.title),
    "bant_count": lambda p, m: p.bant.count(),
    "event_count": lambda p, m: len(p.events),
}


def _profile_field(name: str) -> _Getter:
    return lambda p, m: getattr(p, name)


def _bant_field(name: str) -> _Getter:
    return lambda p, m: getattr(p.bant, name)


for _name in ("id", "email", "first_name", "last_name", "title", "company", "employees",
              "industry", "country", "annual_revenue", "lead_source", "stage",
              "sales_status", "owner", "score_at_mql"):
    _FIELD_GETTERS[_name] = _profile_field(_name)
for _name in ("budget", "authority", "need", "timeline"):
    _FIELD_GETTERS[f"bant_{_name}"] = _bant_field(_name)

#: Field names rules may read besides `attributes` keys.
KNOWN_FIELDS = frozenset(_FIELD_GETTERS)


class Points(NamedTuple):
    """A profile's points before lifecycle: rounded totals, reasons, and MQL evidence."""

    fit: int
    engagement: int
    fit_raw: float
    engagement_raw: float
    reasons: tuple[Reason, ...]
    instant_at: datetime | None  # newest instant_mql occurrence
    engaged_at: datetime | None  # newest occurrence of a positive-point engagement rule

    @property
    def score(self) -> int:
        return self.fit + self.engagement


def profile_facts(profile: Profile, model: ScoringModel) -> dict[str, object]:
    """Values of the fields the model's fit rules read, normalized once (lower-cased strings)."""
    facts: dict[str, object] = {}
    attributes = profile.attributes
    for name in model.fit_fields:
        getter = _FIELD_GETTERS.get(name)
        value = getter(profile, model) if getter is not None else attributes.get(name)
        facts[name] = normalize_fact(value)
    return facts


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _occurrences(
    events: Sequence[Event], model: ScoringModel, now: datetime
) -> list[list[datetime] | None]:
    """Per engagement rule: the times of its occurrences, newest first (None if none).

    Hot path: per event, one plan lookup and one memo lookup of its rule matches (see
    `EventPlan.matching`); windows compared as datetimes against per-profile cut-offs.
    """
    plans = model.event_plans
    found: list[list[datetime] | None] = [None] * len(model.engagement_rules)
    cutoffs = [None if w is None else now - w for w in model.windows]
    for event in events:
        plan = plans.get(event.type)
        if plan is None:
            continue
        props = event.props
        matched = plan.matching(tuple([props.get(name) for name in plan.props]))
        if not matched:
            continue
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


def _rule_points(rule: EngagementRule, hits: list[datetime], now: datetime) -> float:
    counted = hits if rule.max_times is None else hits[: rule.max_times]
    decay = rule.decay
    if decay is None:
        total = rule.points * len(counted)
    else:
        factor = decay.factor
        total = rule.points * sum(
            factor((now - at).total_seconds() / SECONDS_PER_DAY) for at in counted
        )
    cap = rule.max_points
    if cap is not None:
        total = _clamp(total, -cap, cap)
    return total


def _newest_marketing_age(events: Sequence[Event], now: datetime) -> float | None:
    for event in events:
        if event.type in MARKETING_EVENT_TYPES:
            return (now - event.at).total_seconds() / SECONDS_PER_DAY
    return None


def score_points(
    profile: Profile, model: ScoringModel, now: datetime, events: Sequence[Event]
) -> Points:
    """Fit, engagement and reasons; `events` are the profile's events up to `now`, newest first."""
    contributions: list[tuple[str, str, float]] = []
    fit_sum = 0.0
    if model.fit_rules:
        facts = profile_facts(profile, model)
        for fit_rule in model.fit_rules:
            if fit_rule.when(facts):
                fit_sum += fit_rule.points
                contributions.append((fit_rule.id, fit_rule.label, fit_rule.points))
    engagement_sum = 0.0
    instant_at: datetime | None = None
    engaged_at: datetime | None = None
    rules = model.engagement_rules
    for i, hits in enumerate(_occurrences(events, model, now)):
        if hits is None or len(hits) < rules[i].min_count:
            continue
        rule = rules[i]
        points = _rule_points(rule, hits, now)
        newest = hits[0]
        if rule.instant_mql and (instant_at is None or newest > instant_at):
            instant_at = newest
        if rule.points > 0 and (engaged_at is None or newest > engaged_at):
            engaged_at = newest
        engagement_sum += points
        contributions.append((rule.id, rule.label, points))
    if model.recency_rules:
        newest_age = _newest_marketing_age(events, now)
        for recency in model.recency_rules:
            if recency.inactive_days is not None:
                fires = newest_age is None or newest_age > recency.inactive_days
            else:
                fires = newest_age is not None and newest_age <= (recency.active_days or 0.0)
            if fires:
                engagement_sum += recency.points
                contributions.append((recency.id, recency.label, recency.points))
    caps = model.caps
    fit_raw = _clamp(fit_sum, caps.fit_min, caps.fit_max)
    engagement_raw = _clamp(engagement_sum, caps.engagement_min, caps.engagement_max)
    return Points(
        fit=round_half_away(fit_raw),
        engagement=round_half_away(engagement_raw),
        fit_raw=fit_raw,
        engagement_raw=engagement_raw,
        reasons=_reasons(contributions),
        instant_at=instant_at,
        engaged_at=engaged_at,
    )


_REASONS: dict[tuple[str, str, float], Reason] = {}
_REASONS_LIMIT = 65536


def _reason(rule_id: str, label: str, points: float) -> Reason:
    """A shared immutable Reason: the same few (rule, points) pairs recur across profiles."""
    key = (rule_id, label, points)
    reason = _REASONS.get(key)
    if reason is None:
        if len(_REASONS) >= _REASONS_LIMIT:
            _REASONS.clear()
        reason = _REASONS[key] = Reason(rule_id, label, points)
    return reason


def _reasons(contributions: list[tuple[str, str, float]]) -> tuple[Reason, ...]:
    """Non-zero contributions (at one decimal), largest |points| first, rule order on ties."""
    reasons = [
        _reason(rule_id, label, rounded)
        for rule_id, label, points in contributions
        if (rounded := round_one_decimal(points)) != 0
    ]
    reasons.sort(key=lambda r: -abs(r.points))
    return tuple(reasons)
