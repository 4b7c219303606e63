"""The look-back horizon (DESIGN.md §3a): events before now - horizon_days count nowhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config.rules import load_default_rules, parse_rules
from leadsync.scoring import Evaluation, ScoringModel, evaluate, parse_profile

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def model(horizon: int | None) -> ScoringModel:
    doc: dict[str, object] = {
        "version": "horizon-test",
        "thresholds": {"mql": 80},
        "engagement": [
            {"id": "demo", "label": "Demo", "points": 50, "event": "form_submit",
             "where": {"form": {"eq": "demo_request"}}, "instant_mql": True},
            {"id": "case", "label": "Case", "points": 10, "event": "form_submit",
             "where": {"form": {"contains": "case-study"}}},
            {"id": "careers", "label": "Careers", "points": -50, "event": "page_view",
             "where": {"url": {"contains": "/careers"}}, "max_times": 1},
        ],
        "recency": [{"id": "active", "label": "Active", "points": 7, "active_days": 500}],
    }
    if horizon is not None:
        doc["horizon_days"] = horizon
    return parse_rules(doc, "horizon.yaml")


def run(horizon: int | None, **profile: object) -> Evaluation:
    return evaluate(parse_profile({"id": "p", "email": "a@example.com", **profile}),
                    model(horizon), NOW)


def reasons(ev: Evaluation) -> dict[str, float]:
    return {r.rule: r.points for r in ev.reasons}


def test_without_a_horizon_every_event_counts_however_old() -> None:
    ev = run(None, events=[
        {"type": "form_submit", "at": days_ago(400), "form": "demo_request"},
        {"type": "form_submit", "at": days_ago(3000), "form": "case-study-x"},
        {"type": "page_view", "at": days_ago(366), "url": "https://x/careers"}])
    assert reasons(ev) == {"demo": 50.0, "case": 10.0, "careers": -50.0, "active": 7.0}
    assert (ev.score, ev.stage, ev.instant_mql) == (17, "mql", True)


def test_events_before_the_horizon_count_nowhere() -> None:
    ev = run(365, events=[
        {"type": "form_submit", "at": days_ago(400), "form": "demo_request"},
        {"type": "form_submit", "at": days_ago(3000), "form": "case-study-x"},
        {"type": "page_view", "at": days_ago(366), "url": "https://x/careers"}])
    # no occurrence, no instant MQL, and recency sees no marketing event at all
    assert reasons(ev) == {}
    assert (ev.score, ev.stage, ev.instant_mql) == (0, "lead", False)


def test_the_horizon_boundary_is_inclusive() -> None:
    at_edge = run(365, events=[
        {"type": "form_submit", "at": days_ago(365), "form": "demo_request"}])
    past_edge = run(365, events=[
        {"type": "form_submit", "at": (NOW - timedelta(days=365, seconds=1)).isoformat(),
         "form": "demo_request"}])
    assert reasons(at_edge) == {"demo": 50.0, "active": 7.0} and at_edge.stage == "mql"
    assert reasons(past_edge) == {} and past_edge.stage == "lead"


def test_old_events_are_dropped_while_recent_ones_still_count() -> None:
    ev = run(365, events=[
        {"type": "form_submit", "at": days_ago(10), "form": "case-study-a"},
        {"type": "form_submit", "at": days_ago(200), "form": "case-study-b"},
        {"type": "form_submit", "at": days_ago(500), "form": "case-study-c"},
        {"type": "form_submit", "at": days_ago(-3), "form": "case-study-d"}])  # future
    assert reasons(ev) == {"case": 20.0, "active": 7.0}
    assert [r.count for r in ev.reasons if r.rule == "case"] == [2]


def test_recency_treats_a_person_whose_events_are_all_older_as_inactive() -> None:
    inactive = parse_rules({"version": "r", "horizon_days": 100, "recency": [
        {"id": "idle", "label": "Idle", "points": -20, "inactive_days": 1000}]}, "r.yaml")
    profile = parse_profile({"id": "p", "events": [{"type": "page_view", "at": days_ago(150)}]})
    assert reasons(evaluate(profile, inactive, NOW)) == {"idle": -20.0}


def test_re_mql_only_through_evidence_inside_the_horizon() -> None:
    recycled = {"stage": "recycled", "stage_entered_at": days_ago(600)}
    old_demo = [{"type": "form_submit", "at": days_ago(400), "form": "demo_request"}]
    assert run(None, events=old_demo, **recycled).stage == "mql"
    kept = run(365, events=old_demo, **recycled)
    assert kept.stage == "recycled" and kept.stage_decision is not None
    assert kept.stage_decision.rule == "recycled_waiting"


def test_default_model_a_300_day_old_demo_request_does_not_count() -> None:
    default = load_default_rules()
    assert default.horizon_days == 365
    profile = parse_profile({"id": "p", "email": "a@example.co.jp", "stage": "lead", "events": [
        {"type": "form_submit", "at": days_ago(300), "form": "demo_request"},
        {"type": "page_view", "at": days_ago(2), "url": "https://x/blog/a"}]})
    ev = evaluate(profile, default, NOW)
    assert {r.rule: r.points for r in ev.reasons} == {"blog": 3.0}
    assert (ev.score, ev.stage, ev.instant_mql) == (3, "lead", False)
    recent = parse_profile({"id": "p", "email": "a@example.co.jp", "stage": "lead", "events": [
        {"type": "form_submit", "at": days_ago(89), "form": "demo_request"}]})
    assert evaluate(recent, default, NOW).stage == "mql"


@pytest.mark.parametrize("value", [0, -5, 30.5, "a year", True, 36_501])
def test_horizon_must_be_a_positive_whole_number_of_days(value: object) -> None:
    from leadsync.config.rules import RulesError

    with pytest.raises(RulesError, match=r"^h\.yaml: horizon_days: "):
        parse_rules({"version": "x", "horizon_days": value}, "h.yaml")
