"""The lifecycle stage, evaluated each cycle from the profile and its previous stage (DESIGN.md §4).

Decisions the design leaves open, made here:
- Unknown previous stage (None): "lead" when the person has an email or any event, else
  "subscriber". The result then counts as a change (the stage is written for the first time).
- Cold state (stage_entered_at None) is derived: mql -> mql_at, sql -> sql_at,
  recycled/disqualified -> sales_status_at, otherwise None.
- Backward sales facts (rejected/lost -> recycled, disqualified -> disqualified) need
  sales_status_at, and apply only when it is after stage_entered_at (or that is unknown).
- Forward sales facts (accepted -> sql, opportunity_open -> opportunity, won -> customer) move
  an on-path person whenever that is forward; a recycled/disqualified person only when the
  decision is newer than the stage (or either time is unknown).
- Re-MQL of a recycled person: an instant-MQL occurrence after the recycling, or score over
  the threshold with a positive-point occurrence after it. Unknown recycling time: no re-MQL.
- mql_at / sql_at / score_at_mql are set on entering that stage from another one (a re-MQL sets
  a new mql_at, restarting the SLA clock); a lead qualified and moved on to sql by BANT in the
  same cycle gets both; lead -> sql by a sales fact gets sql_at only.
- Every outcome carries its `StageDecision`: the rule that decided it and that rule's facts
  (what `leadsync explain` prints). The common ones (a lead under the bar, a stage held) are
  shared constants, so the hot path allocates nothing for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from leadsync.scoring.evaluation import StageDecision, StageRule
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.profile import STAGE_ORDER, STAGES, Profile

#: The MQL evidence from the points: (score, newest instant_mql occurrence, newest occurrence
#: of a positive-point engagement rule).
Evidence = tuple[int, datetime | None, datetime | None]

_RANK: Final[dict[str, int]] = {stage: rank for rank, stage in enumerate(STAGE_ORDER)}
_OFF_PATH: Final[frozenset[str]] = frozenset({"recycled", "disqualified"})
FORWARD_FACTS: Final[dict[str, str]] = {
    "accepted": "sql", "opportunity_open": "opportunity", "won": "customer",
}
BACKWARD_FACTS: Final[dict[str, str]] = {
    "rejected": "recycled", "lost": "recycled", "disqualified": "disqualified",
}


#: What `decide_stage` returns, in this order: stage, changed, entered_at, mql_at, sql_at,
#: score_at_mql, decision. A plain tuple: built and unpacked once per profile, on the hot path.
StageOutcome = tuple[str, bool, datetime | None, datetime | None, datetime | None, int | None,
                     StageDecision]

_OPEN: Final = frozenset({"subscriber", "lead"})
#: A stage kept with no sales status: the shared decision (the recycled need their date).
_SHARED: Final[dict[str, StageDecision]] = {
    stage: StageDecision("below_threshold" if stage in _OPEN else "held", stage)
    for stage in STAGES if stage != "recycled"
}


def previous_stage(profile: Profile) -> str:
    """The stage the person was in; a default when the profile does not say."""
    if profile.stage is not None:
        return profile.stage
    return "lead" if profile.email or profile.events else "subscriber"


def stage_entered(profile: Profile, stage: str) -> datetime | None:
    """When the person entered `stage`: as recorded, else derived from the stage's own facts."""
    if profile.stage_entered_at is not None:
        return profile.stage_entered_at
    if stage == "mql":
        return profile.mql_at
    if stage == "sql":
        return profile.sql_at
    if stage in _OFF_PATH:
        return profile.sales_status_at
    return None


def _is_newer(fact_at: datetime | None, entered: datetime | None) -> bool:
    return fact_at is None or entered is None or fact_at > entered


def _apply_sales_facts(profile: Profile, stage: str, entered: datetime | None) -> str:
    status = profile.sales_status
    if status is None:
        return stage
    forward = FORWARD_FACTS.get(status)
    if forward is not None:
        if stage in _OFF_PATH:
            return forward if _is_newer(profile.sales_status_at, entered) else stage
        return forward if _RANK[forward] > _RANK[stage] else stage
    backward = BACKWARD_FACTS.get(status)
    if backward is None or backward == stage or profile.sales_status_at is None:
        return stage
    return backward if _is_newer(profile.sales_status_at, entered) else stage


def _qualifies(model: ScoringModel, evidence: Evidence, since: datetime | None) -> bool:
    """The MQL test; with `since`, only evidence dated after it counts (re-MQL)."""
    score, instant_at, engaged_at = evidence
    if since is None:
        return instant_at is not None or score >= model.mql_threshold
    if instant_at is not None and instant_at > since:
        return True
    return score >= model.mql_threshold and engaged_at is not None and engaged_at > since


def decide_stage(
    profile: Profile, model: ScoringModel, now: datetime, evidence: Evidence
) -> StageOutcome:
    """The new stage, its timestamps and the decision behind it (pure; `now` is the evaluation
    time)."""
    before = profile.stage  # `previous_stage` and `stage_entered`, their common case inlined
    if before is None:
        before = previous_stage(profile)
    entered = profile.stage_entered_at
    if entered is None:
        entered = stage_entered(profile, before)
    status = profile.sales_status
    stage = before if status is None else _apply_sales_facts(profile, before, entered)
    by_sales = stage != before
    marketing_qualified = False
    if stage in ("subscriber", "lead"):  # `_qualifies(model, evidence, None)`, inlined
        marketing_qualified = evidence[1] is not None or evidence[0] >= model.mql_threshold
    elif stage == "recycled" and not by_sales and entered is not None:
        marketing_qualified = _qualifies(model, evidence, entered)
    if marketing_qualified:
        stage = "mql"
    bant_sql = stage == "mql" and profile.bant.count() >= model.bant_min
    if bant_sql:
        stage = "sql"
    changed = stage != profile.stage
    mql_at, sql_at, score_at_mql = profile.mql_at, profile.sql_at, profile.score_at_mql
    if stage != before and (stage == "mql" or (stage == "sql" and marketing_qualified)):
        mql_at, score_at_mql = now, evidence[0]
    if stage == "sql" and before != "sql":
        sql_at = now
    decision: StageDecision | None
    if by_sales:
        decision = _sales_decision(profile, before, stage)
    elif marketing_qualified or bant_sql:
        decision = _qualified(profile, model, evidence, before=before, entered=entered,
                              bant_sql=bant_sql)
    else:
        decision = _SHARED.get(stage) if status is None else None  # the common case: shared
        if decision is None or (stage in _OPEN and profile.bant.count() >= model.bant_min):
            decision = _kept(profile, model, stage, entered)
    return stage, changed, now if changed else entered, mql_at, sql_at, score_at_mql, decision


def _sales_decision(profile: Profile, before: str, stage: str) -> StageDecision:
    """A sales fact moved the person (§4.1 forward, §4.2 backward)."""
    status = profile.sales_status
    rule: StageRule = "sales_forward" if status in FORWARD_FACTS else "sales_backward"
    return StageDecision(rule, before, profile.sales_status_at, status)


def _qualified(profile: Profile, model: ScoringModel, evidence: Evidence, *, before: str,
               entered: datetime | None, bant_sql: bool) -> StageDecision:
    """Marketing qualification (§4.3, re-MQL for a recycled person) and/or BANT (§4.4)."""
    score, instant_at, engaged_at = evidence
    rule: StageRule
    if bant_sql:
        rule = "bant_sql"
    elif before == "recycled":
        by_instant = instant_at is not None and entered is not None and instant_at > entered
        rule = "re_mql_instant" if by_instant else "re_mql_threshold"
        return StageDecision(rule, before, instant_at if by_instant else engaged_at,
                             profile.sales_status)
    else:
        rule = "mql_threshold" if score >= model.mql_threshold else "mql_instant"
    return StageDecision(rule, before, instant_at, profile.sales_status,
                         profile.bant if bant_sql else None)


def _kept(profile: Profile, model: ScoringModel, stage: str,
          entered: datetime | None) -> StageDecision:
    """The stage did not move, and a fact is worth naming: the sales status behind it, the
    recycling date, or enough BANT that waits for marketing qualification (§4.4)."""
    status = profile.sales_status
    if stage in _OPEN:
        enough = profile.bant.count() >= model.bant_min
        return StageDecision("below_threshold", stage, profile.sales_status_at, status,
                             profile.bant if enough else None)
    if stage == "recycled":
        return StageDecision("recycled_waiting", stage, entered, status)
    if status is not None and FORWARD_FACTS.get(status) == stage:
        return StageDecision("sales_forward", stage, profile.sales_status_at, status)
    if status is not None and BACKWARD_FACTS.get(status) == stage:
        return StageDecision("sales_backward", stage, profile.sales_status_at, status)
    return StageDecision("held", stage, profile.sales_status_at, status)
