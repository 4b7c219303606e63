"""Routing (docs/routing.md): the `routing:` section, the pure decision, and pool turns."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from leadsync.config.rules import RulesError, parse_rules
from leadsync.scoring import Event, Profile
from leadsync.scoring.routing import (
    OwnerState,
    PoolMember,
    RoutingPolicy,
    decide,
    owner_state,
    pick_member,
    routed_by,
    routing_facts,
)

NOW = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
MQL_AT = NOW - timedelta(hours=2)

ROUTING: dict[str, Any] = {
    "unassigned_owners": ["Integration@Example.com"],
    "pools": {
        "kanto": {"members": [{"email": "a@example.com", "weight": 2}, "b@example.com"],
                  "capacity": 3},
        "global": {"members": ["c@example.com"]},
    },
    "rules": [
        {"id": "enterprise", "when": {"field": "employees", "gte": 1000},
         "owner": "key.accounts@example.com"},
        {"id": "kanto", "label": "関東",
         "when": {"field": "state", "in": ["東京都", "神奈川県"]}, "pool": "kanto"},
        {"id": "pricing-interest", "when": {"field": "pages", "contains": "/pricing"},
         "pool": "kanto"},
        {"id": "webinar", "when": {"field": "lead_source", "eq": "Webinar"}, "pool": "global"},
    ],
}


def policy(routing: dict[str, Any] | None = None) -> RoutingPolicy:
    doc = {"version": "t", "routing": ROUTING if routing is None else routing}
    return parse_rules(doc, "rules.yaml").routing


def person(**kw: Any) -> Profile:
    base: dict[str, Any] = {"id": "p-1", "stage": "mql", "mql_at": MQL_AT}
    base.update(kw)
    return Profile(**base)


def touch(at: datetime) -> Event:
    return Event("sales_touch", at, MappingProxyType({"channel": "call"}))


def page(url: str) -> Event:
    return Event("page_view", NOW - timedelta(days=1), MappingProxyType({"url": url}))


ROUTE_CASES = [
    # (case, profile kwargs, stage, owner state, outcome, rule id)
    ("first matching rule wins", {"employees": 5000, "attributes": {"state": "東京都"}},
     "mql", "missing", "routed", "enterprise"),
    ("territory by prefecture", {"employees": 50, "attributes": {"state": "東京都"}},
     "mql", "missing", "routed", "kanto"),
    ("product interest from pages", {"events": (page("https://x.example/pricing"),)},
     "sql", "queue", "routed", "pricing-interest"),
    ("lead source, case-insensitive", {"lead_source": "webinar"}, "mql", "inactive",
     "routed", "webinar"),
    ("the integration user counts as nobody", {"lead_source": "webinar"}, "mql",
     "unassigned", "routed", "webinar"),
    ("no rule matches", {"country": "US"}, "mql", "missing", "no_match", None),
    ("an active owner keeps the person", {"employees": 5000}, "mql", "active",
     "not_needed", None),
    ("a lead is not routed", {"employees": 5000}, "lead", "missing", "not_needed", None),
    ("an opportunity is not routed", {"employees": 5000}, "opportunity", "queue",
     "not_needed", None),
    ("never steal: a Lead Status past new", {"employees": 5000, "sales_status": "working"},
     "mql", "inactive", "not_needed", None),
    ("never steal: a sales touch since the MQL", {"employees": 5000,
                                                  "events": (touch(MQL_AT + timedelta(hours=1)),)},
     "mql", "queue", "not_needed", None),
    ("a touch before the stage began is not work now", {
        "employees": 5000, "events": (touch(MQL_AT - timedelta(days=40)),)},
     "mql", "missing", "routed", "enterprise"),
    ("a touch dated after now is ignored", {
        "employees": 5000, "events": (touch(NOW + timedelta(hours=1)),)},
     "mql", "missing", "routed", "enterprise"),
]


@pytest.mark.parametrize("row", ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_decide(row: tuple[str, dict[str, Any], str, OwnerState, str, str | None]) -> None:
    _case, kw, stage, owner, outcome, rule_id = row
    pol = policy()
    profile = person(**kw)
    facts = routing_facts(profile, pol, frozenset())
    got = decide(profile, stage=stage, stage_start=MQL_AT, owner=owner, policy=pol,
                 facts=facts, now=NOW)
    assert (got.outcome, got.rule.id if got.rule else None) == (outcome, rule_id), got.why


OWNER_CASES = [
    # (owner id, owner email, queue flag, expected)
    (None, None, False, "missing"),
    ("", None, False, "missing"),
    ("00G1", None, True, "queue"),
    ("005-gone", "former@example.com", False, "inactive"),  # not among the active owners
    ("005-int", "integration@example.com", False, "unassigned"),
    ("005-rep", "rep@example.com", False, "active"),
]


@pytest.mark.parametrize(("owner_id", "email", "queue", "expected"), OWNER_CASES)
def test_owner_state(owner_id: str | None, email: str | None, queue: bool,
                     expected: str) -> None:
    active = {"005-int": "integration@example.com", "005-rep": "rep@example.com"}
    got = owner_state(owner_id, email, active=active, queue=queue,
                      unassigned=policy().unassigned_owners)
    assert got == expected


WEIGHTS = (PoolMember("a", 2), PoolMember("b", 1), PoolMember("c", 1))


def turns(n: int, members: tuple[PoolMember, ...], capacity: int | None = None,
          open_now: dict[str, int] | None = None) -> list[str | None]:
    served: Counter[str] = Counter()
    opened: Counter[str] = Counter(open_now or {})
    out: list[str | None] = []
    for _ in range(n):
        got = pick_member(members, served, opened, capacity)
        out.append(got)
        if got is not None:
            served[got] += 1
            opened[got] += 1
    return out


def test_weighted_round_robin_order() -> None:
    assert turns(8, WEIGHTS) == ["a", "b", "c", "a", "a", "b", "c", "a"]


@pytest.mark.parametrize("n", [1, 7, 100, 1001])
def test_each_share_within_one(n: int) -> None:
    counts = Counter(turns(n, WEIGHTS))
    for member in WEIGHTS:
        assert abs(counts[member.email] - n * member.weight / 4) < 1


def test_capacity_skips_a_full_rep_and_stops_when_all_are_full() -> None:
    got = turns(5, (PoolMember("a"), PoolMember("b")), capacity=2, open_now={"a": 1})
    assert got == ["a", "b", "b", None, None]  # turns go by served; a was full after one


def test_routed_by_names_rule_and_target_never_an_email() -> None:
    pol = policy()
    by_id = {r.id: r for r in pol.rules}
    assert routed_by(by_id["kanto"]) == "rule kanto (pool kanto)"
    assert routed_by(by_id["enterprise"]) == "rule enterprise (owner)"
    assert routed_by(None) == "fallback owner"


def test_section_loads() -> None:
    pol = policy()
    assert [r.id for r in pol.rules] == ["enterprise", "kanto", "pricing-interest", "webinar"]
    kanto = pol.pools["kanto"]
    assert (kanto.members, kanto.capacity) == (
        (PoolMember("a@example.com", 2), PoolMember("b@example.com", 1)), 3)
    assert pol.unassigned_owners == frozenset({"integration@example.com"})
    assert parse_rules({"version": "t"}, "r.yaml").routing == RoutingPolicy()


def bad(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {**ROUTING, **changes}
    return doc


BAD_CASES = [
    ("not a mapping", ["x"], "rules.yaml: routing: expected a mapping"),
    ("unknown key", bad(pool={}), "rules.yaml: routing.pool: unknown key"),
    ("rule without when", bad(rules=[{"id": "r1", "owner": "a@example.com"}]),
     "rules.yaml: rule 'r1': when: required"),
    ("two targets", bad(rules=[{"id": "r1", "when": {"field": "country", "eq": "JP"},
                                "owner": "a@example.com", "pool": "kanto"}]),
     "rules.yaml: rule 'r1': owner: exactly one target"),
    ("unknown pool", bad(rules=[{"id": "r1", "when": {"field": "country", "eq": "JP"},
                                 "pool": "kantoo"}]),
     "rules.yaml: rule 'r1': pool: 'kantoo' is not one of routing.pools (global, kanto)"),
    ("bad owner email", bad(rules=[{"id": "r1", "when": {"field": "country", "eq": "JP"},
                                    "owner": "bob"}]),
     "rules.yaml: rule 'r1': owner: expected an owner's email address"),
    ("bad condition op", bad(rules=[{"id": "r1", "when": {"field": "country", "equals": "JP"},
                                     "owner": "a@example.com"}]),
     "rules.yaml: rule 'r1': when.equals:"),
    ("duplicate id", bad(rules=[ROUTING["rules"][0], ROUTING["rules"][0]]),
     "rules.yaml: rule 'enterprise': id: duplicate routing rule id"),
    ("weight zero", bad(pools={"kanto": {"members": [{"email": "a@example.com", "weight": 0}]}}),
     "rules.yaml: routing.pools.kanto.members[0].weight: must be >= 1"),
    ("capacity text", bad(pools={"kanto": {"members": ["a@example.com"], "capacity": "ten"}}),
     "rules.yaml: routing.pools.kanto.capacity: expected a number"),
    ("empty pool", bad(pools={"kanto": {"members": []}}),
     "rules.yaml: routing.pools.kanto.members: required"),
    ("member twice", bad(pools={"kanto": {"members": ["a@example.com", "A@example.com"]}}),
     "rules.yaml: routing.pools.kanto.members: member 0 is listed twice"),
    ("unused pool", bad(rules=ROUTING["rules"][:2]),
     "rules.yaml: routing.pools.global: defined but no routing rule uses it"),
    ("unassigned not an email", bad(unassigned_owners=["nobody"]),
     "rules.yaml: routing.unassigned_owners[0]: expected an owner's email address"),
]


@pytest.mark.parametrize(("case", "routing", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_section_names_file_rule_and_key(case: str, routing: Any, message: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules({"version": "t", "routing": routing}, "rules.yaml")
    assert str(err.value).startswith(message), str(err.value)
