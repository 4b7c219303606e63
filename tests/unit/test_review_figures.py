"""The review's figures on small cohorts computed by hand (funnel, bands, AUC, thresholds, lift,
misfits, SLA), including empty cohorts, one class only, ties and people with no events."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from leadsync.review.figures import (
    Clock,
    Journey,
    Scored,
    auc,
    auc_interval,
    by_grade,
    by_mql_month,
    by_source,
    deciles,
    funnel,
    funnel_by,
    median_days_in_stage,
    misfits,
    roc_points,
    rule_lift,
    sla_figures,
    split_at,
    threshold_for_capacity,
    threshold_table,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def s(pid: str, score: float, outcome: bool, grade: str = "", hits: tuple[str, ...] = ()
      ) -> Scored:
    return Scored(pid, score, outcome, grade, frozenset(hits))


# -- funnel -----------------------------------------------------------------------------------

JOURNEYS = [
    Journey("a", "web", lead_at=day(0)),
    Journey("b", "web", lead_at=day(0), mql_at=day(2)),
    Journey("c", None, won_at=day(30)),  # won with no earlier dates: passed every stage
    Journey("d", "event", lead_at=day(0), mql_at=day(4), sql_at=day(5)),
]


def test_funnel_counts_and_rates() -> None:
    f = funnel(JOURNEYS)
    assert f.counts == {"lead": 4, "mql": 3, "sql": 2, "opportunity": 1, "won": 1}
    assert f.rates == {"lead->mql": 0.75, "mql->sql": pytest.approx(2 / 3),
                       "sql->opportunity": 0.5, "opportunity->won": 1.0, "lead->won": 0.25}


def test_funnel_of_nobody_has_no_rates() -> None:
    f = funnel([])
    assert f.counts == {"lead": 0, "mql": 0, "sql": 0, "opportunity": 0, "won": 0}
    assert set(f.rates.values()) == {None}


def test_funnel_by_source_and_mql_month() -> None:
    per_source = funnel_by(JOURNEYS, by_source)
    assert list(per_source) == ["(none)", "event", "web"]
    assert per_source["web"].counts == {"lead": 2, "mql": 1, "sql": 0, "opportunity": 0,
                                        "won": 0}
    assert per_source["web"].rates["lead->mql"] == 0.5
    assert per_source["web"].rates["mql->sql"] == 0.0
    assert per_source["web"].rates["sql->opportunity"] is None  # nobody reached SQL
    per_month = funnel_by(JOURNEYS, by_mql_month)
    assert list(per_month) == ["2026-06"]  # c has no mql_at: in no MQL cohort
    assert per_month["2026-06"].counts["mql"] == 2


def test_median_days_in_stage() -> None:
    medians = median_days_in_stage(JOURNEYS)
    assert medians == {"lead": 3.0, "mql": 1.0, "sql": None, "opportunity": None}
    assert median_days_in_stage([]) == {"lead": None, "mql": None, "sql": None,
                                        "opportunity": None}


# -- bands and grades -------------------------------------------------------------------------

def test_deciles_of_twenty_people_two_each() -> None:
    bands = deciles([s(f"p{i}", i, i >= 15) for i in range(20)])
    assert [b.label for b in bands] == [f"D{i}" for i in range(1, 11)]
    assert [b.people for b in bands] == [2] * 10
    assert [b.rate for b in bands] == [0.0] * 7 + [0.5, 1.0, 1.0]
    assert (bands[0].low, bands[0].high) == (0, 1)


def test_deciles_keep_ties_together() -> None:
    bands = deciles([s("a", 10, False), s("b", 10, True), s("c", 20, False), s("d", 30, True),
                     s("e", 40, True)])
    # first positions 0, 0, 2, 3, 4 of 5 -> deciles 0, 0, 4, 6, 8
    assert [(b.label, b.people, b.outcomes) for b in bands] == [
        ("D1", 2, 1), ("D5", 1, 0), ("D7", 1, 1), ("D9", 1, 1)]
    assert deciles([]) == []
    everyone_equal = deciles([s(str(i), 5, i == 0) for i in range(7)])
    assert [(b.label, b.people, b.outcomes) for b in everyone_equal] == [("D1", 7, 1)]


def test_split_at_threshold_and_grades() -> None:
    cohort = [s("a", 79, True, "A"), s("b", 80, False, "A"), s("c", 120, True, "C"),
              s("d", 0, False, "D")]
    below, above = split_at(cohort, 80)
    assert (below.label, below.people, below.outcomes, below.rate) == ("< 80", 2, 1, 0.5)
    assert (above.label, above.people, above.outcomes, above.rate) == (">= 80", 2, 1, 0.5)
    grades = by_grade(cohort)
    assert [(b.label, b.people, b.rate) for b in grades] == [
        ("A", 2, 0.5), ("B", 0, None), ("C", 1, 1.0), ("D", 1, 0.0)]
    empty_below, _ = split_at([], 80)
    assert (empty_below.people, empty_below.rate) == (0, None)


# -- AUC --------------------------------------------------------------------------------------

def test_auc_against_a_by_hand_rank_computation() -> None:
    # values 1(n) 2(p) 2(p) 2(n) 3(p): ranks 1, 3, 3, 3, 5 (the three 2s share (2+3+4)/3);
    # positive rank sum 11, U = 11 - 3*4/2 = 5, AUC = 5 / (3*2)
    cohort = [s("n1", 1, False), s("p1", 2, True), s("p2", 2, True), s("n2", 2, False),
              s("p3", 3, True)]
    assert auc(cohort) == pytest.approx(5 / 6)


def test_auc_edges() -> None:
    assert auc([]) is None
    assert auc([s("a", 1, True), s("b", 2, True)]) is None  # one class only
    assert auc([s("a", 1, False), s("b", 2, False)]) is None
    assert auc([s("a", 1, False), s("b", 2, True)]) == 1.0
    assert auc([s("a", 1, True), s("b", 2, False)]) == 0.0
    assert auc([s("a", 7, True), s("b", 7, False)]) == 0.5  # people with no events: all tied


def test_roc_points_by_hand_and_their_area_is_the_auc() -> None:
    cohort = [s("n1", 1, False), s("p1", 2, True), s("p2", 2, True), s("n2", 2, False),
              s("p3", 3, True)]
    points = roc_points(cohort)
    assert points == [(0.0, 0.0), (0.0, pytest.approx(1 / 3)), (0.5, 1.0), (1.0, 1.0)]
    area = sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in
               itertools.pairwise(points))
    assert area == pytest.approx(auc(cohort))  # type: ignore[arg-type]
    assert roc_points([s("a", 1, True)]) == [] and roc_points([]) == []


def test_auc_interval_is_seeded_and_brackets_the_estimate() -> None:
    cohort = [s(f"p{i}", i % 13, i % 3 == 0 or i % 13 > 9) for i in range(120)]
    first = auc_interval(cohort, rounds=300, seed=7)
    again = auc_interval(cohort, rounds=300, seed=7)
    assert first == again and first is not None
    point = auc(cohort)
    assert point is not None
    assert first.low < point < first.high
    assert (first.rounds, first.level) == (300, 0.95)
    separated = auc_interval([s("a", 1, False), s("b", 2, True)], rounds=50)
    assert separated is not None and (separated.low, separated.high) == (1.0, 1.0)
    assert auc_interval([s("a", 1, True)]) is None
    with pytest.raises(ValueError, match="rounds"):
        auc_interval(cohort, rounds=0)


# -- thresholds -------------------------------------------------------------------------------

COHORT = [s("a", 10, False), s("b", 50, True), s("c", 60, False), s("d", 80, True),
          s("e", 90, True)]


def test_threshold_table_marks_the_current_one() -> None:
    rows = threshold_table(COHORT, [50], current=80, months=2)
    assert [(r.threshold, r.volume, r.per_month, r.outcomes, r.precision, r.recall, r.current)
            for r in rows] == [
        (50, 4, 2.0, 3, 0.75, 1.0, False),
        (80, 2, 1.0, 2, 1.0, pytest.approx(2 / 3), True)]
    nobody = threshold_table(COHORT, [100], current=80)
    assert (nobody[1].volume, nobody[1].precision, nobody[1].per_month) == (0, None, None)
    no_outcomes = threshold_table([s("a", 90, False)], [], current=80)
    assert (no_outcomes[0].precision, no_outcomes[0].recall) == (0.0, None)


def test_threshold_for_capacity() -> None:
    rows = threshold_table(COHORT, [50, 60], current=80, months=2)
    assert threshold_for_capacity(rows, 2).threshold == 50  # type: ignore[union-attr]
    assert threshold_for_capacity(rows, 1.5).threshold == 60  # type: ignore[union-attr]
    assert threshold_for_capacity(rows, 1.4).threshold == 80  # type: ignore[union-attr]
    assert threshold_for_capacity(rows, 0.5) is None
    assert threshold_for_capacity(threshold_table(COHORT, [], current=80), 10) is None


# -- rule lift --------------------------------------------------------------------------------

def test_rule_lift_by_hand() -> None:
    cohort = [s("a", 0, True, hits=("r1",)), s("b", 0, False, hits=("r1",)), s("c", 0, False),
              s("d", 0, True, hits=("r2",))]
    r1, r2, r3 = rule_lift(cohort, [("r1", 10), ("r2", -5), ("r3", 3)])
    assert (r1.hits, r1.rate_with, r1.rate_without, r1.lift, r1.contradicts) == (
        2, 0.5, 0.5, 1.0, False)
    assert (r2.hits, r2.rate_with, r2.rate_without, r2.lift, r2.contradicts) == (
        1, 1.0, pytest.approx(1 / 3), pytest.approx(3.0), True)  # negative, yet does better
    assert (r3.hits, r3.rate_with, r3.rate_without, r3.lift, r3.contradicts) == (
        0, None, 0.5, None, False)
    assert rule_lift([], [("r1", 1)])[0].rate_without is None


def test_rule_lift_positive_rule_doing_worse_is_flagged() -> None:
    cohort = [s("a", 0, False, hits=("r",)), s("b", 0, True)]
    (row,) = rule_lift(cohort, [("r", 5)])
    assert (row.rate_with, row.rate_without, row.lift, row.contradicts) == (0.0, 1.0, 0.0, True)


# -- misfits and SLA --------------------------------------------------------------------------

def test_misfits() -> None:
    high, low = misfits([*COHORT, s("f", 95, False)], 55, top=1)
    assert [p.person_id for p in high] == ["f"]
    assert [p.person_id for p in low] == ["b"]
    assert misfits([], 80) == ([], [])


def test_sla_figures_by_hand() -> None:
    start = day(0)
    until = day(2)
    hours = timedelta(hours=1)
    clocks = [
        Clock("c1", "mql", start, 24, start + 2 * hours, "rep-a", outcome=True),  # met, 1-4 h
        Clock("c2", "mql", start, 24, start + 30 * hours, "rep-a"),  # breached, 24-48 h
        Clock("c3", "mql", start, 24, None, None),  # never touched, deadline passed
        Clock("c4", "mql", until - hours, 24, None, "rep-b"),  # still running: open
        Clock("c5", "sql", start, 48, start, "rep-b", outcome=True),
    ]
    mql = sla_figures(clocks, "mql", until)
    assert (mql.decided, mql.met, mql.share_met, mql.open) == (3, 1, pytest.approx(1 / 3), 1)
    assert mql.by_owner == {"(no owner)": (1, 0), "rep-a": (2, 1)}
    assert mql.touch_buckets == {"< 1 h": 0, "1-4 h": 1, "4-24 h": 0, "24-48 h": 1,
                                 "48 h +": 0, "never": 1}
    assert (mql.outcome_met, mql.outcome_breached) == (1.0, 0.0)
    sql = sla_figures(clocks, "sql", until)
    assert (sql.decided, sql.met, sql.outcome_met, sql.outcome_breached) == (1, 1, 1.0, None)
    none = sla_figures([], "mql", until)
    assert (none.decided, none.share_met, none.outcome_met) == (0, None, None)
