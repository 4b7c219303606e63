"""Validation of the rules file's `accounts:` section (docs/accounts.md) into an `AccountModel`.

Same style as the person rules: closed key sets, errors naming the file, the rule id and the
key (`rules.yaml: rule 'acct-engaged': engaged_people.min: required`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from leadsync.config.rules_parts import (
    CRM_NUMBER_MAX,
    Where,
    days,
    number,
    points_value,
    rule_header,
    section,
)
from leadsync.scoring.accounts import (
    ACCOUNT_MQA_FACT,
    ACCOUNT_RULE_KINDS,
    ACCOUNT_SCORE_FACT,
    AccountInherit,
    AccountModel,
    AccountRule,
)
from leadsync.scoring.conditions import ConditionError, compile_condition
from leadsync.scoring.entries import CAP_PREFIX
from leadsync.scoring.model import FitRule

_SECTION_KEYS = {"mqa", "mqa_exit", "engaged", "caps", "rules", "inherit"}
_INHERIT_KEYS = {"id", "label", "points", "when"}
INHERIT_ID = "acct-inherit"
INHERIT_LABEL = "アカウントから継承"
_RULE_KEYS = frozenset({"id", "label", "points", *ACCOUNT_RULE_KINDS})
_SENIORITIES = ("executive", "vp", "director", "manager", "staff", "unknown")


def parse_accounts(raw: object, top: Where, seen: set[str]) -> AccountModel | None:
    """The compiled `accounts:` section, None when the file has none."""
    if raw is None:
        return None
    data = section({"accounts": raw}, "accounts", top, _SECTION_KEYS)
    where = top.at("accounts")
    mqa = points_value(data, "mqa", where)
    mqa_exit = None if data.get("mqa_exit") is None else points_value(data, "mqa_exit", where)
    if mqa_exit is not None and mqa_exit > mqa:
        raise where.error("mqa_exit", f"must not exceed mqa ({mqa:g}): an account leaves its "
                          "MQA episode below mqa_exit")
    engaged = section(data, "engaged", where, {"engagement_min", "within_days"})
    caps = section(data, "caps", where, {"min", "max"})
    cap_min = points_value(caps, "min", where.at("caps"), default=0)
    cap_max = points_value(caps, "max", where.at("caps"), default=200)
    if cap_min > cap_max:
        raise where.at("caps").error("min", "must not exceed max")
    engagement_min = points_value(engaged, "engagement_min", where.at("engaged"), default=1)
    within_days = days(engaged, "within_days", where.at("engaged"), above=0)
    rules_raw = data.get("rules")
    if rules_raw is None or not isinstance(rules_raw, list) or not rules_raw:
        raise where.error("rules", "expected a non-empty list of account rules")
    rules = tuple(_rule(item, i, where, seen) for i, item in enumerate(rules_raw))
    return AccountModel(
        mqa=mqa,
        mqa_exit=mqa_exit,
        engagement_min=engagement_min,
        within_days=within_days,
        cap_min=cap_min,
        cap_max=cap_max,
        rules=rules,
        inherit=_inherit(data.get("inherit"), where, seen, cap_max),
    )


def _inherit(raw: object, top: Where, seen: set[str], cap_max: float) -> AccountInherit | None:
    """`inherit: {points: P, when: mqa | {score_min: N}, label, id}` (docs/accounts.md)."""
    if raw is None:
        return None
    data = section({"inherit": raw}, "inherit", top, _INHERIT_KEYS)
    where = top.at("inherit")
    if not data:
        raise where.error("points", "required: the points members inherit")
    rule_id = data.get("id", INHERIT_ID)
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise where.error("id", "expected a non-empty string")
    rule_id = rule_id.strip()
    if rule_id.startswith(CAP_PREFIX):
        raise where.error("id", f"ids starting with '{CAP_PREFIX}' are reserved")
    if rule_id in seen:
        raise where.error("id", f"{rule_id!r} is already a rule id in this file (ids are "
                          "unique across all rules of the file)")
    seen.add(rule_id)
    label = data.get("label", INHERIT_LABEL)
    if not isinstance(label, str) or not label.strip():
        raise where.error("label", "expected a non-empty string")
    if data.get("points") is None:
        raise where.error("points", "required: the points members inherit")
    points = points_value(data, "points", where)
    if points == 0:
        raise where.error("points", "must not be 0 (leave inherit out to inherit nothing)")
    when = data.get("when", "mqa")
    if when == "mqa":
        return AccountInherit(rule_id, label.strip(), points)
    if not isinstance(when, Mapping) or set(when) != {"score_min"}:
        raise where.error("when", "expected mqa (while the account is an MQA) or "
                          "{score_min: N} (while the account score is at least N)")
    score_min = points_value(when, "score_min", where.at("when"))
    if score_min > cap_max:
        raise where.error("when.score_min", f"must not exceed the account caps' max "
                          f"({cap_max:g}): no account could reach it")
    return AccountInherit(rule_id, label.strip(), points, score_min=score_min)


def inherit_fit_rule(model: AccountModel | None) -> FitRule | None:
    """The fit rule an `inherit` section compiles to: the core scores it like any fit rule
    over the profile attributes `account_mqa` / `account_score` the sync sets from the
    account's stored state (the core stays pure and unchanged)."""
    inherit = model.inherit if model is not None else None
    if inherit is None:
        return None
    spec: dict[str, object] = (
        {"field": ACCOUNT_MQA_FACT, "eq": True} if inherit.score_min is None
        else {"field": ACCOUNT_SCORE_FACT, "gte": inherit.score_min})
    condition, fields = compile_condition(spec, "when")
    return FitRule(inherit.id, inherit.label, inherit.points, condition, fields)


def _rule(raw: object, index: int, top: Where, seen: set[str]) -> AccountRule:
    raw, where, rule_id, label = rule_header(
        raw, f"rules[{index}]", top, allowed=_RULE_KEYS, seen=seen, noun="an account rule",
        duplicate="duplicate rule id (unique across all rules of the file)")
    points = points_value(raw, "points", where)
    kinds = [k for k in ACCOUNT_RULE_KINDS if k in raw]
    if len(kinds) != 1:
        raise where.error("points", "give exactly one of " + ", ".join(ACCOUNT_RULE_KINDS))
    return _measured(raw, kinds[0], where, {"id": rule_id, "label": label, "points": points})


def _measured(raw: Mapping[object, object], kind: str, where: Where,
              head: dict[str, object]) -> AccountRule:
    """The rule's measure: a `when` condition, or a `{min, ...}` mapping under its kind."""
    if kind == "when":
        try:
            condition, _ = compile_condition(raw["when"], "when")
        except ConditionError as exc:
            raise where.error(exc.key, exc.message) from None
        source = json.dumps(raw["when"], sort_keys=True, ensure_ascii=False, default=str)
        return AccountRule(**head, kind="when", when=condition,  # type: ignore[arg-type]
                           when_source=source)
    allowed = {"engaged_people": {"min"}, "best_fit": {"min"}, "top_engagement": {"k", "min"},
               "buying_group": {"seniority", "min"}}[kind]
    spec = section(raw, kind, where, allowed)
    if not spec:
        raise where.error(kind, f"expected a mapping with {', '.join(sorted(allowed))}")
    at = where.at(kind)
    floor = None if kind == "best_fit" else 0  # a best fit may be negative
    minimum = number(spec, "min", at, default=1 if kind == "buying_group" else None,
                     minimum=floor, maximum=CRM_NUMBER_MAX * 1000)
    if kind == "top_engagement":
        k = int(number(spec, "k", at, minimum=1, maximum=1000, integer=True))
        return AccountRule(**head, kind=kind, minimum=minimum, k=k)  # type: ignore[arg-type]
    if kind == "buying_group":
        return AccountRule(**head, kind=kind, minimum=minimum,  # type: ignore[arg-type]
                           seniority=_seniority(spec.get("seniority"), at))
    return AccountRule(**head, kind=kind, minimum=minimum)  # type: ignore[arg-type]


def _seniority(raw: object, where: Where) -> frozenset[str]:
    if not isinstance(raw, list) or not raw:
        raise where.error("seniority", f"expected a list of {', '.join(_SENIORITIES)}")
    for item in raw:
        if item not in _SENIORITIES:
            raise where.error("seniority", f"{item!r} is not one of {', '.join(_SENIORITIES)}")
    return frozenset(str(s) for s in raw)
