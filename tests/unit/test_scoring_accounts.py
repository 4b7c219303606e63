"""Account rules: the `accounts:` section and the pure account evaluation (docs/accounts.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from leadsync.config.rules import RulesError, load_default_rules, parse_rules
from leadsync.scoring import Event, Profile, evaluate
from leadsync.scoring.accounts import (
    AccountFields,
    AccountModel,
    Member,
    engaged_members,
    evaluate_account,
    member_of,
)

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
ACCOUNT = AccountFields("a-1", name="サンプル", domain="sample.co.jp", industry="Manufacturing",
                        employees=800, attributes={"target_account": True})


def m(key: str, engagement: int, *, fit: int = 0, seniority: str = "staff",
      days_ago: float | None = 1) -> Member:
    active = None if days_ago is None else NOW - timedelta(days=days_ago)
    return Member(key, fit, engagement, seniority, active)


def model_of(rules: list[dict[str, object]], **section: object) -> AccountModel:
    doc = {"version": "t", "accounts": {"mqa": 50, "engaged": {"engagement_min": 15,
                                                                "within_days": 30},
                                        "rules": rules, **section}}
    accounts = parse_rules(doc, "t.yaml").accounts
    assert accounts is not None
    return accounts


RULES = [
    # (name, rule, members, fires)
    ("engaged people: 3 of 3 needed",
     {"engaged_people": {"min": 3}}, [m("p1", 15), m("p2", 40), m("p3", 99)], True),
    ("engaged people: below engagement_min does not count",
     {"engaged_people": {"min": 3}}, [m("p1", 14), m("p2", 40), m("p3", 99)], False),
    ("engaged people: active 31 days ago is outside within_days",
     {"engaged_people": {"min": 2}}, [m("p1", 50, days_ago=31), m("p2", 40)], False),
    ("engaged people: exactly 30 days ago counts",
     {"engaged_people": {"min": 2}}, [m("p1", 50, days_ago=30), m("p2", 40)], True),
    ("engaged people: no marketing activity at all",
     {"engaged_people": {"min": 1}}, [m("p1", 50, days_ago=None)], False),
    ("best fit reaches the min",
     {"best_fit": {"min": 40}}, [m("p1", 0, fit=10), m("p2", 0, fit=40)], True),
    ("best fit below the min",
     {"best_fit": {"min": 40}}, [m("p1", 0, fit=39)], False),
    ("best fit of an account without people",
     {"best_fit": {"min": -100}}, [], False),
    ("top-2 engagement sum: the two highest",
     {"top_engagement": {"k": 2, "min": 100}}, [m("p1", 60), m("p2", 40), m("p3", 39)], True),
    ("top-2 engagement sum: 99",
     {"top_engagement": {"k": 2, "min": 100}}, [m("p1", 60), m("p2", 39), m("p3", 39)], False),
    ("top-k counts people who are not engaged (stale activity)",
     {"top_engagement": {"k": 1, "min": 50}}, [m("p1", 60, days_ago=200)], True),
    ("buying group: an engaged director",
     {"buying_group": {"seniority": ["executive", "vp", "director"]}},
     [m("p1", 20, seniority="director")], True),
    ("buying group: a director who is not engaged",
     {"buying_group": {"seniority": ["executive", "vp", "director"]}},
     [m("p1", 10, seniority="director"), m("p2", 90, seniority="manager")], False),
    ("buying group: two seniors needed",
     {"buying_group": {"seniority": ["executive", "vp"], "min": 2}},
     [m("p1", 20, seniority="vp"), m("p2", 20, seniority="executive")], True),
    ("target account attribute",
     {"when": {"field": "target_account", "eq": True}}, [], True),
    ("industry, case-insensitive",
     {"when": {"field": "industry", "eq": "manufacturing"}}, [], True),
    ("employees",
     {"when": {"field": "employees", "gte": 1000}}, [], False),
    ("a missing account field fails",
     {"when": {"field": "region", "eq": "apac"}}, [], False),
]


@pytest.mark.parametrize(("rule", "members", "fires"), [c[1:] for c in RULES],
                         ids=[c[0] for c in RULES])
def test_account_rules(rule: dict[str, object], members: list[Member], fires: bool) -> None:
    model = model_of([{"id": "r", "label": "ラベル", "points": 30, **rule}])
    ev = evaluate_account(ACCOUNT, members, model, "t", NOW)
    assert ev.score == (30 if fires else 0)
    assert [(r.rule, r.label, r.points) for r in ev.reasons] == (
        [("r", "ラベル", 30.0)] if fires else [])


def test_score_sums_rules_caps_and_lists_reasons_biggest_first() -> None:
    model = model_of([{"id": "three", "label": "3名", "points": 40, "engaged_people": {"min": 3}},
                      {"id": "target", "label": "ターゲット", "points": 25,
                       "when": {"field": "target_account", "eq": True}},
                      {"id": "big", "label": "大企業", "points": 70,
                       "when": {"field": "employees", "gte": 500}}],
                     caps={"max": 120})
    people = [m("p1", 20), m("p2", 30), m("p3", 90), m("p4", 5)]
    ev = evaluate_account(ACCOUNT, people, model, "t", NOW)
    assert ev.score == 120 and ev.members == 4
    assert [(r.rule, r.points) for r in ev.reasons] == [
        ("big", 70.0), ("three", 40.0), ("target", 25.0), ("cap:account", -15.0)]
    assert [p.key for p in ev.engaged] == ["p3", "p2", "p1"]  # most engaged first


EPISODES = [
    # (name, score rule points, previous_mqa_at, mqa, mqa_at, became)
    ("crosses the line: a new episode", 60, None, True, NOW, True),
    ("below the line, no episode", 40, None, False, None, False),
    ("still above: the episode goes on", 60, NOW - timedelta(days=3), True,
     NOW - timedelta(days=3), False),
    ("between exit and mqa: the episode goes on", 45, NOW - timedelta(days=3), True,
     NOW - timedelta(days=3), False),
    ("below exit: the episode ends", 44, NOW - timedelta(days=3), False, None, False),
    ("between exit and mqa without an episode: none starts", 45, None, False, None, False),
]


@pytest.mark.parametrize(("points", "previous", "mqa", "mqa_at", "became"),
                         [c[1:] for c in EPISODES], ids=[c[0] for c in EPISODES])
def test_mqa_episodes(points: int, previous: datetime | None, mqa: bool,
                      mqa_at: datetime | None, became: bool) -> None:
    model = model_of([{"id": "r", "points": points, "when": {"field": "name", "exists": True}}],
                     mqa=50, mqa_exit=45)
    ev = evaluate_account(ACCOUNT, [], model, "t", NOW, previous_mqa_at=previous)
    assert (ev.mqa, ev.mqa_at, ev.became_mqa) == (mqa, mqa_at, became)


def test_member_of_takes_the_persons_evaluation_and_newest_marketing_event() -> None:
    model = load_default_rules()
    profile = Profile(id="p", title="営業部長", last_name="山田", first_name="太郎", events=(
        Event("form_submit", NOW - timedelta(days=2), {"form": "demo_request"}),
        Event("sales_touch", NOW - timedelta(hours=1), {"channel": "call"}),
        Event("page_view", NOW + timedelta(days=1), {"url": "/pricing"})))  # future: ignored
    member = member_of(profile, evaluate(profile, model, NOW), NOW, key="p-1")
    assert member == Member("p-1", 15, 50, "director", NOW - timedelta(days=2), "山田 太郎")


def test_default_model_makes_four_engaged_people_an_mqa() -> None:
    model = load_default_rules()
    assert model.accounts is not None
    people = [m(f"p{i}", 30, seniority="director" if i == 0 else "staff") for i in range(4)]
    plain = AccountFields("a-2", employees=50)
    ev = evaluate_account(plain, people, model.accounts, model.version, NOW)
    assert (ev.score, ev.mqa, len(ev.engaged)) == (80, True, 4)
    assert [r.label for r in ev.reasons] == ["3名以上がエンゲージ", "2名以上がエンゲージ",
                                             "部長以上がエンゲージ"]
    one = evaluate_account(plain, people[:1], model.accounts, model.version, NOW)
    assert (one.score, one.mqa) == (20, False)
    assert engaged_members(people, model.accounts, NOW + timedelta(days=31)) == ()


ERRORS = [
    # (accounts section, message)
    ({"rules": [{"id": "r", "points": 1, "best_fit": {"min": 1}}]},
     "t.yaml: accounts.mqa: required"),
    ({"mqa": 50}, "t.yaml: accounts.rules: expected a non-empty list of account rules"),
    ({"mqa": 50, "mqa_exit": 60, "rules": []}, "t.yaml: accounts.mqa_exit: must not exceed mqa"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1}]},
     "t.yaml: rule 'r': points: give exactly one of engaged_people, best_fit"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "best_fit": {"min": 1},
                            "engaged_people": {"min": 1}}]},
     "t.yaml: rule 'r': points: give exactly one of"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "engaged_people": {"mni": 1}}]},
     "t.yaml: rule 'r': engaged_people.mni: unknown key (expected min)"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "engaged_people": {}}]},
     "t.yaml: rule 'r': engaged_people: expected a mapping with min"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "top_engagement": {"min": 5}}]},
     "t.yaml: rule 'r': top_engagement.k: required"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1,
                            "buying_group": {"seniority": ["boss"]}}]},
     "t.yaml: rule 'r': buying_group.seniority: 'boss' is not one of"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "when": {"field": "x", "eqq": 1}}]},
     "t.yaml: rule 'r': when.eqq"),
    ({"mqa": 50, "rules": [{"id": "r", "points": 1, "weight": 2, "best_fit": {"min": 1}}]},
     "t.yaml: rule 'r': weight: unknown key for an account rule"),
    ({"mqa": 50, "rules": [{"id": "pricing", "points": 1, "best_fit": {"min": 1}}]},
     "t.yaml: rule 'pricing': id: duplicate rule id"),
    ({"mqa": 50, "rules": [{"id": "cap:x", "points": 1, "best_fit": {"min": 1}}]},
     "t.yaml: accounts.rules[0].id: 'cap:x': ids starting with 'cap:' are reserved for the caps'"),
    ({"mqa": 50, "caps": {"min": 10, "max": 5}, "rules": []},
     "t.yaml: accounts.caps.min: must not exceed max"),
    ({"mqa": 50, "engaged": {"within_days": 0}, "rules": []},
     "t.yaml: accounts.engaged.within_days: must be > 0"),
    ({"mqa": 50, "mql": 3, "rules": []}, "t.yaml: accounts.mql: unknown key"),
    ({"mqa": 99999, "rules": []}, "t.yaml: accounts.mqa: 99999 is beyond what the CRM"),
]


@pytest.mark.parametrize(("section", "message"), ERRORS, ids=[e[1][8:60] for e in ERRORS])
def test_bad_account_sections_name_file_rule_and_key(section: dict[str, object],
                                                     message: str) -> None:
    doc = {"version": "t", "engagement": [{"id": "pricing", "points": 5, "event": "page_view"}],
           "accounts": section}
    with pytest.raises(RulesError) as err:
        parse_rules(doc, "t.yaml")
    assert str(err.value).startswith(message), str(err.value)


def test_a_file_without_accounts_scores_no_accounts() -> None:
    assert parse_rules(yaml.safe_load("version: x"), "t.yaml").accounts is None
