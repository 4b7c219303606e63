"""Lifecycle (DESIGN.md §4) and SLA/follow-up decisions (§5), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadsync.config.rules import parse_rules
from leadsync.scoring import Evaluation, evaluate, parse_profile, task_key

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
T = NOW.isoformat()


def h(hours: float) -> str:
    """An ISO time `hours` before NOW."""
    return (NOW - timedelta(hours=hours)).isoformat()


MODEL = parse_rules({
    "version": "lifecycle-test",
    "thresholds": {"mql": 50},
    "sql": {"bant_min": 3},
    "engagement": [
        {"id": "visit", "label": "Visit", "points": 60, "event": "page_view"},
        {"id": "demo", "label": "Demo", "points": 1, "event": "form_submit", "instant_mql": True},
    ],
    "sla": {"mql_hours": 24, "sql_hours": 48, "warn_hours": {"mql": 4, "sql": 8}},
}, "lifecycle.yaml")

HOT = [{"type": "page_view", "at": h(2)}]  # score 60 >= 50
DEMO = [{"type": "form_submit", "at": h(2)}]  # instant MQL, score 1
BANT3 = {"budget": True, "authority": True, "need": True}


def run(**profile: object) -> Evaluation:
    return evaluate(parse_profile({"id": "p-1", "email": "a@example.com", **profile}), MODEL, NOW)


@pytest.mark.parametrize(
    ("profile", "stage"),
    [
        # default previous stage
        ({"email": None}, "subscriber"),
        ({}, "lead"),
        ({"stage": "not-a-stage"}, "lead"),  # unknown stage strings are None
        # marketing qualification
        ({"stage": "lead", "events": HOT}, "mql"),
        ({"stage": "subscriber", "events": HOT}, "mql"),
        ({"stage": "lead", "events": DEMO}, "mql"),  # instant MQL below threshold
        ({"stage": "lead", "events": [{"type": "page_view", "at": h(-2)}]}, "lead"),  # future
        # BANT: mql -> sql; a lead below the bar stays a lead
        ({"stage": "mql", "bant": BANT3}, "sql"),
        ({"stage": "lead", "bant": BANT3}, "lead"),
        ({"stage": "lead", "bant": BANT3, "events": HOT}, "sql"),
        ({"stage": "mql", "bant": {"budget": True, "need": True}}, "mql"),
        # score decay never demotes
        ({"stage": "mql"}, "mql"), ({"stage": "sql"}, "sql"),
        ({"stage": "opportunity"}, "opportunity"), ({"stage": "customer"}, "customer"),
        # forward sales facts
        ({"stage": "lead", "sales_status": "accepted"}, "sql"),
        ({"stage": "mql", "sales_status": "opportunity_open"}, "opportunity"),
        ({"stage": "sql", "sales_status": "won"}, "customer"),
        ({"stage": "customer", "sales_status": "accepted"}, "customer"),  # not forward
        ({"stage": "opportunity", "sales_status": "accepted"}, "opportunity"),
        ({"stage": "mql", "sales_status": "working"}, "mql"),
        # backward sales facts: once, when decided after the stage was entered
        ({"stage": "mql", "stage_entered_at": h(10), "sales_status": "rejected",
          "sales_status_at": h(5)}, "recycled"),
        ({"stage": "mql", "stage_entered_at": h(5), "sales_status": "rejected",
          "sales_status_at": h(10)}, "mql"),
        ({"stage": "opportunity", "stage_entered_at": h(10), "sales_status": "lost",
          "sales_status_at": h(5)}, "recycled"),
        ({"stage": "sql", "stage_entered_at": h(10), "sales_status": "disqualified",
          "sales_status_at": h(5)}, "disqualified"),
        ({"stage": "mql", "stage_entered_at": h(10), "sales_status": "rejected"}, "mql"),
        # cold state: stage_entered_at derived from mql_at
        ({"stage": "mql", "mql_at": h(10), "sales_status": "rejected",
          "sales_status_at": h(5)}, "recycled"),
        ({"stage": "mql", "mql_at": h(5), "sales_status": "rejected",
          "sales_status_at": h(10)}, "mql"),
        # recycled: applied once (entered derived from sales_status_at: not after itself)
        ({"stage": "recycled", "sales_status": "rejected", "sales_status_at": h(50)},
         "recycled"),
        # re-MQL only through an occurrence after the recycling
        ({"stage": "recycled", "stage_entered_at": h(5), "events": HOT}, "mql"),
        ({"stage": "recycled", "stage_entered_at": h(1), "events": HOT}, "recycled"),
        ({"stage": "recycled", "stage_entered_at": h(5), "events": DEMO}, "mql"),
        ({"stage": "recycled", "stage_entered_at": h(1), "events": DEMO}, "recycled"),
        ({"stage": "recycled", "events": HOT}, "recycled"),  # unknown recycling time
        # disqualified never re-qualifies through marketing; a newer sales fact moves it
        ({"stage": "disqualified", "stage_entered_at": h(50), "events": HOT}, "disqualified"),
        ({"stage": "disqualified", "stage_entered_at": h(50), "sales_status": "accepted",
          "sales_status_at": h(3)}, "sql"),
        ({"stage": "disqualified", "stage_entered_at": h(3), "sales_status": "accepted",
          "sales_status_at": h(50)}, "disqualified"),
        # HubSpot lifecycle names are understood
        ({"stage": "marketingqualifiedlead"}, "mql"),
    ],
)
def test_stage_transitions(profile: dict[str, object], stage: str) -> None:
    assert run(**profile).stage == stage


def test_entering_mql_records_timestamps_and_score() -> None:
    evaluation = run(stage="lead", stage_entered_at=h(100), events=HOT)
    assert evaluation.stage_changed
    assert evaluation.stage_entered_at == NOW
    assert evaluation.mql_at == NOW and evaluation.score_at_mql == 60
    assert evaluation.sql_at is None


def test_staying_keeps_timestamps() -> None:
    evaluation = run(stage="mql", stage_entered_at=h(3), mql_at=h(3), score_at_mql=70,
                     events=HOT)
    assert not evaluation.stage_changed
    assert evaluation.stage_entered_at == NOW - timedelta(hours=3)
    assert evaluation.mql_at == NOW - timedelta(hours=3) and evaluation.score_at_mql == 70


def test_sales_accepted_lead_gets_sql_at_only() -> None:
    evaluation = run(stage="lead", sales_status="accepted", sales_status_at=h(1))
    assert (evaluation.stage, evaluation.sql_at, evaluation.mql_at) == ("sql", NOW, None)


def test_lead_to_sql_through_mql_in_one_cycle_records_both() -> None:
    evaluation = run(stage="lead", bant=BANT3, events=HOT)
    assert (evaluation.mql_at, evaluation.sql_at, evaluation.score_at_mql) == (NOW, NOW, 60)


def test_re_mql_sets_a_new_mql_at() -> None:
    evaluation = run(stage="recycled", stage_entered_at=h(5), mql_at=h(500), events=HOT)
    assert evaluation.stage == "mql" and evaluation.mql_at == NOW


def test_cold_state_derives_stage_entered_at() -> None:
    evaluation = run(stage="sql", sql_at=h(7))
    assert evaluation.stage_entered_at == NOW - timedelta(hours=7)
    assert not evaluation.stage_changed


@pytest.mark.parametrize(
    ("profile", "status", "due_hours_from_now", "kind"),
    [
        # mql clock: 24 h from mql_at, warn 4 h before
        ({"stage": "mql", "mql_at": h(1)}, "on_track", 23, None),
        ({"stage": "mql", "mql_at": h(20)}, "due_soon", 4, "due_soon"),
        ({"stage": "mql", "mql_at": h(19.9)}, "on_track", 4.1, None),
        ({"stage": "mql", "mql_at": h(25)}, "breached", -1, "breached"),
        # met by a sales touch inside the window, even after the deadline has passed
        ({"stage": "mql", "mql_at": h(30), "events": [
            {"type": "sales_touch", "at": h(20), "channel": "call"}]}, "met", -6, None),
        # a touch after the deadline does not meet it; one before the clock neither
        ({"stage": "mql", "mql_at": h(30), "events": [
            {"type": "sales_touch", "at": h(2), "channel": "call"}]}, "breached", -6, "breached"),
        ({"stage": "mql", "mql_at": h(3), "events": [
            {"type": "sales_touch", "at": h(5), "channel": "call"}]}, "on_track", 21, None),
        # a future touch does not count
        ({"stage": "mql", "mql_at": h(22), "events": [
            {"type": "sales_touch", "at": h(-1), "channel": "call"}]}, "due_soon", 2, "due_soon"),
        # met by a sales status decided inside the window
        ({"stage": "mql", "mql_at": h(22), "sales_status": "working", "sales_status_at": h(10)},
         "met", 2, None),
        ({"stage": "mql", "mql_at": h(22), "sales_status": "working", "sales_status_at": h(30)},
         "due_soon", 2, "due_soon"),
        ({"stage": "mql", "mql_at": h(22), "sales_status": "working"}, "met", 2, None),
        # sql clock: 48 h from sql_at, warn 8 h
        ({"stage": "sql", "sql_at": h(41)}, "due_soon", 7, "due_soon"),
        ({"stage": "sql", "sql_at": h(39)}, "on_track", 9, None),
        ({"stage": "sql", "sql_at": h(49)}, "breached", -1, "breached"),
        # no clock in other stages
        ({"stage": "lead"}, "none", None, None),
        ({"stage": "opportunity"}, "none", None, None),
    ],
)
def test_sla_status_and_follow_up(profile: dict[str, object], status: str,
                                  due_hours_from_now: float | None, kind: str | None) -> None:
    evaluation = run(owner="rep@example.com", **profile)
    assert evaluation.sla_status == status
    if due_hours_from_now is None:
        assert evaluation.sla_due is None
    else:
        assert evaluation.sla_due == NOW + timedelta(hours=due_hours_from_now)
    if kind is None:
        assert evaluation.follow_up is None
        return
    follow_up = evaluation.follow_up
    assert follow_up is not None
    assert follow_up.kind == kind
    assert follow_up.priority == ("high" if kind == "breached" else "normal")
    assert follow_up.owner == "rep@example.com"
    assert follow_up.due == evaluation.sla_due and follow_up.stage == evaluation.stage
    assert follow_up.key == task_key("p-1", evaluation.stage, follow_up.clock_start, kind)


def test_new_mql_starts_the_clock_now() -> None:
    evaluation = run(stage="lead", events=HOT)
    assert evaluation.sla_status == "on_track"
    assert evaluation.sla_due == NOW + timedelta(hours=24)


def test_task_key_is_deterministic_short_and_distinct() -> None:
    start = datetime(2026, 11, 1, 9, 30, 15, 999, tzinfo=UTC)
    key = task_key("p-1", "mql", start, "due_soon")
    assert key.startswith("ls2:") and len(key) == 20
    assert key == task_key("p-1", "mql", start.replace(microsecond=0), "due_soon")
    other_tz = start.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert key == task_key("p-1", "mql", other_tz, "due_soon")
    variants = {task_key("p-1", "mql", start, "breached"),
                task_key("p-2", "mql", start, "due_soon"),
                task_key("p-1", "sql", start, "due_soon"),
                task_key("p-1", "mql", start + timedelta(seconds=1), "due_soon")}
    assert key not in variants and len(variants) == 4
    with pytest.raises(ValueError, match="timezone-aware"):
        task_key("p-1", "mql", datetime(2026, 11, 1), "due_soon")


def test_evaluate_requires_utc_now() -> None:
    with pytest.raises(ValueError, match="UTC"):
        evaluate(parse_profile({"id": "x"}), MODEL, datetime(2026, 11, 1))


# --- the decision behind the stage (what `leadsync explain` prints) --------------------------

FULL_BANT = {"budget": True, "authority": True, "need": True, "timeline": False}


@pytest.mark.parametrize(
    ("profile", "stage", "rule", "previous", "fact_at", "status", "with_bant"),
    [
        ({"stage": "lead", "events": HOT}, "mql", "mql_threshold", "lead", None, None, False),
        ({"stage": "lead", "events": DEMO}, "mql", "mql_instant", "lead", h(2), None, False),
        ({"stage": "lead", "bant": FULL_BANT}, "lead", "below_threshold", "lead", None, None,
         True),
        ({"stage": "lead"}, "lead", "below_threshold", "lead", None, None, False),
        ({"stage": "mql", "bant": FULL_BANT}, "sql", "bant_sql", "mql", None, None, True),
        ({"stage": "lead", "events": HOT, "bant": FULL_BANT}, "sql", "bant_sql", "lead", None,
         None, True),
        ({"stage": "lead", "sales_status": "accepted", "sales_status_at": h(5)}, "sql",
         "sales_forward", "lead", h(5), "accepted", False),
        ({"stage": "sql", "sales_status": "won", "sales_status_at": h(3)}, "customer",
         "sales_forward", "sql", h(3), "won", False),
        ({"stage": "customer", "sales_status": "won", "sales_status_at": h(300)}, "customer",
         "sales_forward", "customer", h(300), "won", False),
        ({"stage": "mql", "stage_entered_at": h(50), "sales_status": "rejected",
          "sales_status_at": h(4)}, "recycled", "sales_backward", "mql", h(4), "rejected", False),
        ({"stage": "recycled", "stage_entered_at": h(40), "sales_status": "lost",
          "sales_status_at": h(40)}, "recycled", "recycled_waiting", "recycled", h(40), "lost",
         False),
        ({"stage": "recycled", "stage_entered_at": h(40), "events": DEMO}, "mql",
         "re_mql_instant", "recycled", h(2), None, False),
        ({"stage": "recycled", "stage_entered_at": h(40), "events": HOT}, "mql",
         "re_mql_threshold", "recycled", h(2), None, False),
        ({"stage": "sql"}, "sql", "held", "sql", None, None, False),  # score 0: never demoted
        ({"stage": "disqualified"}, "disqualified", "held", "disqualified", None, None, False),
    ],
)
def test_stage_decision_names_the_rule_and_its_facts(
    profile: dict[str, object], stage: str, *, rule: str, previous: str, fact_at: str | None,
    status: str | None, with_bant: bool,
) -> None:
    ev = run(**profile)
    decision = ev.stage_decision
    assert ev.stage == stage
    assert decision is not None
    assert (decision.rule, decision.previous, decision.sales_status) == (rule, previous, status)
    assert decision.fact_at == (None if fact_at is None else datetime.fromisoformat(fact_at))
    assert (decision.bant is not None) == with_bant
    if with_bant:
        assert decision.bant is not None and decision.bant.count() == 3


def test_common_decisions_are_shared_not_rebuilt() -> None:
    first, second = run(stage="lead"), run(stage="lead", email="b@example.com")
    assert first.stage_decision is second.stage_decision
    assert run(stage="sql").stage_decision is run(stage="sql").stage_decision
