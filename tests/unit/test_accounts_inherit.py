"""Members inherit points from their account (`accounts.inherit`, docs/accounts.md): the
section's forms and errors, the fit rule it compiles to, and the sync's account facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadsync.accounts.inherit import (
    STATE_KIND,
    decode_state,
    with_account_facts,
)
from leadsync.accounts.phase import MEMBER_KIND, encode_member
from leadsync.config.rules import RulesError, parse_rules
from leadsync.identity import Person
from leadsync.scoring import Profile, evaluate
from leadsync.scoring.accounts import AccountInherit, Member
from leadsync.state import InMemoryStateStore

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
RULE = {"id": "acct-engaged-2", "label": "2名", "points": 20, "engaged_people": {"min": 2}}


def doc(inherit: object, **extra: object) -> dict[str, Any]:
    return {"version": "t", "fit": [{"id": "senior", "points": 15,
                                     "when": {"field": "seniority", "eq": "director"}}],
            "accounts": {"mqa": 60, "rules": [RULE], "inherit": inherit, **extra}}


@pytest.mark.parametrize(("inherit", "expected"), [
    ({"points": 10}, AccountInherit("acct-inherit", "アカウントから継承", 10)),
    ({"points": 10, "when": "mqa"}, AccountInherit("acct-inherit", "アカウントから継承", 10)),
    ({"points": 5, "when": {"score_min": 40}, "label": "注目アカウント", "id": "acct-warm"},
     AccountInherit("acct-warm", "注目アカウント", 5, score_min=40)),
    ({"points": -10, "when": {"score_min": 0}},
     AccountInherit("acct-inherit", "アカウントから継承", -10, score_min=0)),
    ({"points": 12.5}, AccountInherit("acct-inherit", "アカウントから継承", 12.5)),
])
def test_inherit_forms(inherit: dict[str, object], expected: AccountInherit) -> None:
    model = parse_rules(doc(inherit), "t.yaml")
    assert model.accounts is not None and model.accounts.inherit == expected
    rule = model.fit_rules[-1]  # one more fit rule, after the file's own
    assert (rule.id, rule.label, rule.points) == (expected.id, expected.label, expected.points)
    assert len(model.fit_rules) == 2


def test_no_inherit_adds_no_rule() -> None:
    model = parse_rules({"version": "t", "accounts": {"mqa": 60, "rules": [RULE]}}, "t.yaml")
    assert model.accounts is not None and model.accounts.inherit is None
    assert model.fit_rules == ()


@pytest.mark.parametrize(("inherit", "message"), [
    ({}, "t.yaml: accounts.inherit.points: required"),
    ({"label": "x"}, "points: required"),
    ({"points": 0}, "points: must not be 0"),
    ({"points": "ten"}, "points"),
    ({"points": 10, "when": "always"}, "when: expected mqa"),
    ({"points": 10, "when": {"score_min": 40, "x": 1}}, "when: expected mqa"),
    ({"points": 10, "when": {"score_min": 500}}, "when.score_min: must not exceed"),
    ({"points": 10, "fraction": 0.2}, "fraction"),
    ({"points": 10, "id": "senior"}, "'senior' is already a rule id"),
    ({"points": 10, "id": "acct-engaged-2"}, "'acct-engaged-2' is already a rule id"),
    ({"points": 10, "id": "cap:x"}, "reserved"),
    ({"points": 10, "label": " "}, "label: expected a non-empty string"),
    ("yes", "inherit"),
])
def test_bad_inherit_is_refused_naming_the_key(inherit: object, message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(doc(inherit), "t.yaml")
    assert message in str(err.value)
    assert "t.yaml" in str(err.value)


@pytest.mark.parametrize(("attributes", "inherited"), [
    ({}, False),  # not a stored member: nothing
    ({"account_mqa": False, "account_score": 55}, False),
    ({"account_mqa": True, "account_score": 80}, True),
])
def test_the_core_scores_inheritance_as_a_fit_rule(attributes: dict[str, object],
                                                   inherited: bool) -> None:
    model = parse_rules(doc({"points": 10, "label": "MQA所属"}), "t.yaml")
    ev = evaluate(Profile(id="p", title="部長", attributes=attributes), model, NOW)
    labels = [r.label for r in ev.reasons]
    assert ("MQA所属" in labels) is inherited
    assert ev.fit == (10 if inherited else 0) + 15  # 部長: the file's senior rule
    base = evaluate(Profile(id="p", title="部長"), model, NOW)
    assert ev.fit - base.fit == (10 if inherited else 0)


@pytest.mark.parametrize(("score", "mqa", "holds_mqa", "holds_40"), [
    (None, False, False, False),
    (39, False, False, False),
    (40, False, False, True),
    (70, True, True, True),
    (50, True, True, True),  # an MQA episode above mqa_exit
])
def test_when_members_inherit(score: int | None, mqa: bool, holds_mqa: bool,
                              holds_40: bool) -> None:
    assert AccountInherit("i", "l", 10).holds(score, mqa) is holds_mqa
    assert AccountInherit("i", "l", 10, score_min=40).holds(score, mqa) is holds_40


def test_the_sync_gives_stored_members_their_accounts_stored_state() -> None:
    model = parse_rules(doc({"points": 10}), "t.yaml")
    state = InMemoryStateStore()
    member = Member("p-1", 0, 20, "staff", NOW - timedelta(days=1))
    state.set_fingerprints(MEMBER_KIND, {
        "p-1": encode_member("a-1", member, ["hubspot:contact:1"], noted=NOW),
        "p-2": encode_member("a-2", member, ["hubspot:contact:2"], noted=NOW),
        "p-3": encode_member(None, member, ["hubspot:contact:3"], noted=NOW)})
    state.set_fingerprints(STATE_KIND, {"a-1": '{"s":80,"m":1}', "a-2": "garbage"})
    people = [Person(id=f"p-{i}", records=(), profile=Profile(id=f"p-{i}",
                                                                attributes={"state": "東京都"}))
              for i in range(1, 5)]
    out = with_account_facts(state, model, people)
    assert [dict(p.profile.attributes) for p in out] == [
        {"state": "東京都", "account_score": 80, "account_mqa": True},
        {"state": "東京都"}, {"state": "東京都"}, {"state": "東京都"}]
    assert decode_state("garbage") is None and decode_state('{"s":80,"m":1}') == (80, True)
    plain = parse_rules({"version": "t", "accounts": {"mqa": 60, "rules": [RULE]}}, "t.yaml")
    assert with_account_facts(state, plain, people) == people  # no inherit: untouched
