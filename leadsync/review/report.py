"""The review's report: the figures over one cohort, as the `--json` object (pure).

Keys (docs/review.md): `as_of`, `outcome`, `horizon_days`, `window_end`, `people`, `outcomes`,
`funnel`, `bands`, `grades`, `auc` (`current`, and `candidate` when given), `thresholds`,
`rules`, `misfits`, `sla`, and `candidate` (the side-by-side backtest) when given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from leadsync.review.asof import Case, History, Outcome, qualifies, sequence_of
from leadsync.review.figures import (
    Band,
    Clock,
    Funnel,
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
from leadsync.review.suggest import SuggestError, suggest_points
from leadsync.scoring import (
    EngagementRule,
    FitRule,
    RecencyRule,
    ScoringModel,
    render_reasons,
)

DAYS_PER_MONTH = 365.25 / 12
MISFITS = 10
BOOTSTRAP_ROUNDS = 200


def build_report(cases: Sequence[Case], histories: Sequence[History], model: ScoringModel, *,
                 as_of: datetime, now: datetime, horizon: timedelta, outcome: Outcome,
                 candidate: ScoringModel | None = None, capacity: float | None = None,
                 ) -> dict[str, Any]:
    """The whole report; `now` ends the outcome window when the horizon reaches past it."""
    window_end = min(as_of + horizon, now)
    months = (window_end - as_of).total_seconds() / 86400 / DAYS_PER_MONTH
    current = sequence_of(cases)
    report: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "outcome": outcome,
        "horizon_days": horizon.total_seconds() / 86400,
        "window_end": window_end.isoformat(),
        "model": model.version,
        "people": len(cases),
        "outcomes": sum(1 for s in current if s.outcome),
        "funnel": funnel_report(histories),
        "bands": {"deciles": [band_dict(b) for b in deciles(current)],
                  "threshold": [band_dict(b) for b in split_at(current, model.mql_threshold)]},
        "grades": [band_dict(b) for b in by_grade(current, [g.grade for g in model.grades])],
        "auc": {"current": auc_dict(current)},
        "roc": {"current": roc_points(current)},
        "thresholds": thresholds_report(current, model, months, capacity),
        "rules": rules_report(current, model),
        "misfits": misfits_report(cases, model),
        "sla": sla_report(histories, model, as_of, now, outcome),
    }
    if candidate is not None:
        other = sequence_of(cases, "candidate")
        report["auc"]["candidate"] = auc_dict(other)
        report["roc"]["candidate"] = roc_points(other)
        report["candidate"] = {
            "model": candidate.version,
            "current": backtest(cases, current, model, "current"),
            "candidate": backtest(cases, other, candidate, "candidate"),
            "stage_changes": sum(
                1 for c in cases if c.candidate is not None
                and qualifies(c.current, model) != qualifies(c.candidate, candidate)),
        }
    return report


def band_dict(band: Band) -> dict[str, Any]:
    return {"label": band.label, "low": band.low, "high": band.high, "people": band.people,
            "outcomes": band.outcomes, "rate": band.rate}


def funnel_dict(f: Funnel) -> dict[str, Any]:
    return {"counts": f.counts, "rates": f.rates}


def funnel_report(histories: Sequence[History]) -> dict[str, Any]:
    journeys = [h.journey() for h in histories]
    return {
        "overall": funnel_dict(funnel(journeys)),
        "by_source": {k: funnel_dict(v) for k, v in funnel_by(journeys, by_source).items()},
        "by_mql_month": {k: funnel_dict(v)
                         for k, v in funnel_by(journeys, by_mql_month).items()},
        "median_days_in_stage": median_days_in_stage(journeys),
    }


def auc_dict(scored: Sequence[Scored]) -> dict[str, Any]:
    interval = auc_interval(scored, rounds=BOOTSTRAP_ROUNDS)
    return {"value": auc(scored),
            "low": interval.low if interval else None,
            "high": interval.high if interval else None,
            "rounds": BOOTSTRAP_ROUNDS, "level": 0.95}


def thresholds_report(scored: Sequence[Scored], model: ScoringModel, months: float,
                      capacity: float | None) -> dict[str, Any]:
    """Every 10 points across the scores seen, and the current threshold."""
    scores = [s.score for s in scored]
    low = math.floor(min(scores, default=0) / 10) * 10
    high = math.ceil(max(scores, default=0) / 10) * 10
    rows = threshold_table(scored, range(int(low), int(high) + 1, 10),
                           current=model.mql_threshold, months=months or None)
    out: dict[str, Any] = {"rows": [asdict(r) for r in rows], "months": months}
    if capacity is not None:
        fit = threshold_for_capacity(rows, capacity)
        out["capacity"] = capacity
        out["capacity_threshold"] = None if fit is None else fit.threshold
    return out


def rule_points(model: ScoringModel) -> list[tuple[str, str, float]]:
    """(id, label, points) of every rule, in file order: fit, engagement, recency."""
    rules: list[FitRule | EngagementRule | RecencyRule] = [
        *model.fit_rules, *model.engagement_rules, *model.recency_rules]
    return [(r.id, r.label, r.points) for r in rules]


def rules_report(scored: Sequence[Scored], model: ScoringModel) -> list[dict[str, Any]]:
    """Lift per rule, and the points the logistic model suggests (`suggest`; None when the
    cohort cannot support a fit: one class only, or no rule with enough hits)."""
    rules = rule_points(model)
    labels = {rule: label for rule, label, _ in rules}
    pairs = [(rule, points) for rule, _, points in rules]
    try:
        suggested = {s.rule: s for s in suggest_points(scored, pairs)}
    except SuggestError:
        suggested = {}
    out = []
    for row in rule_lift(scored, pairs):
        s = suggested.get(row.rule)
        out.append({
            "rule": row.rule, "label": labels[row.rule], "points": row.points,
            "hits": row.hits, "outcomes_with": row.outcomes_with, "rate_with": row.rate_with,
            "rate_without": row.rate_without, "lift": row.lift, "contradicts": row.contradicts,
            "suggested_points": None if s is None else s.suggested,
            "uncertainty": None if s is None else s.uncertainty,
            "kept": None if s is None else s.kept,
            # the evidence puts the weight elsewhere: current points outside the suggestion's
            # two standard errors
            "weight_off": bool(s is not None and not s.kept and s.uncertainty is not None
                               and abs(s.suggested - s.points) > 2 * s.uncertainty)})
    return out


def misfits_report(cases: Sequence[Case], model: ScoringModel) -> dict[str, Any]:
    by_id = {c.profile.id: c for c in cases}
    high, low = misfits(sequence_of(cases), model.mql_threshold, top=MISFITS)

    def entry(s: Scored) -> dict[str, Any]:
        case = by_id[s.person_id]
        return {"id": s.person_id, "score": s.score, "grade": s.grade,
                "reasons": render_reasons(case.current.reasons, 200),
                "records": list(case.history.links),
                "outcome_at": case.outcome_at.isoformat() if case.outcome_at else None}

    return {"high_score_no_outcome": [entry(s) for s in high],
            "low_score_outcome": [entry(s) for s in low]}


def clocks(histories: Sequence[History], model: ScoringModel, start: datetime,
           end: datetime, outcome: Outcome) -> list[Clock]:
    """The MQL and SQL clocks that started in [start, end): the first rep touch at or after
    the clock's start, and whether the person reached the outcome after it."""
    out = []
    for history in histories:
        p = history.profile
        touches = sorted(e.at for e in p.events if e.type == "sales_touch")
        reached = history.first(outcome)
        for stage, started, hours in (("mql", p.mql_at, model.sla.mql_hours),
                                      ("sql", p.sql_at, model.sla.sql_hours)):
            if started is None or not start <= started < end:
                continue
            touched = next((t for t in touches if t >= started), None)
            out.append(Clock(p.id, stage, started, hours, touched, p.owner,
                             reached is not None and reached >= started))
    return out


def sla_report(histories: Sequence[History], model: ScoringModel, as_of: datetime,
               now: datetime, outcome: Outcome) -> dict[str, Any]:
    """SLA compliance of the clocks that started between the snapshot and now."""
    found = clocks(histories, model, as_of, now, outcome)
    out: dict[str, Any] = {}
    for stage in ("mql", "sql"):
        f = sla_figures(found, stage, now)
        out[stage] = {
            "decided": f.decided, "met": f.met, "share_met": f.share_met, "open": f.open,
            "by_owner": {owner: {"decided": d, "met": m} for owner, (d, m) in f.by_owner.items()},
            "time_to_first_touch": f.touch_buckets,
            "outcome_rate_met": f.outcome_met, "outcome_rate_breached": f.outcome_breached,
        }
    return out


def backtest(cases: Sequence[Case], scored: Sequence[Scored], model: ScoringModel,
             which: Literal["current", "candidate"]) -> dict[str, Any]:
    """One model's side of the candidate comparison: AUC, the top decile's lift over the
    cohort's rate, MQL volume at its own bar and the outcomes among those MQLs."""
    evaluations = [c.current if which == "current" else c.candidate for c in cases]
    mqls = [s for s, ev in zip(scored, evaluations, strict=True)
            if ev is not None and qualifies(ev, model)]
    bands = deciles(scored)
    base = sum(1 for s in scored if s.outcome) / len(scored) if scored else None
    top = bands[-1].rate if bands else None
    return {"model": model.version, "auc": auc(scored),
            "top_band_lift": top / base if top is not None and base else None,
            "mql_volume": len(mqls), "outcomes_captured": sum(1 for s in mqls if s.outcome)}
