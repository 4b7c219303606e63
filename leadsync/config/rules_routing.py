"""The rules file's `routing:` section, validated into a `RoutingPolicy` (docs/routing.md).

```yaml
routing:
  unassigned_owners: [integration@example.com]   # owners who count as nobody
  pools:
    kanto: {members: [{email: a@example.com, weight: 2}, b@example.com], capacity: 20}
  rules:                                          # ordered: the first that holds routes
    - {id: enterprise, when: {field: employees, gte: 1000}, owner: key.accounts@example.com}
    - {id: kanto, when: {field: state, in: [東京都, 神奈川県]}, pool: kanto}
```
Errors name the file, the rule id and the key, e.g.
`rules.yaml: rule 'kanto': pool: 'kantoo' is not one of routing.pools (kanto)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from leadsync.config.rules_parts import Where, number, rule_header, section
from leadsync.scoring.conditions import ConditionError, compile_condition
from leadsync.scoring.routing import Pool, PoolMember, RoutingPolicy, RoutingRule

_KEYS = {"unassigned_owners", "pools", "rules"}
_POOL_KEYS = {"members", "capacity"}
_MEMBER_KEYS = {"email", "weight"}
_RULE_KEYS = frozenset({"id", "label", "when", "owner", "pool"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")
#: weights are small integers: a share of turns, not a percentage to the decimal
MAX_WEIGHT = 100
#: open MQLs/SQLs one rep can hold
MAX_CAPACITY = 100_000


def parse_routing(raw: object, top: Where) -> RoutingPolicy:
    """`routing:` (an empty policy when absent: nobody is routed)."""
    if raw is None:
        return RoutingPolicy()
    data = section({"routing": raw}, "routing", top, _KEYS)
    where = top.at("routing")
    unassigned = frozenset(
        _email(item, where, f"unassigned_owners[{i}]")
        for i, item in enumerate(_list(data, "unassigned_owners", where)))
    pools = _pools(data.get("pools"), where)
    rules: list[RoutingRule] = []
    seen: set[str] = set()
    for index, item in enumerate(_list(data, "rules", where)):
        rules.append(_rule(item, index, where, pools, seen))
    _no_target_counts_as_nobody(rules, unassigned, where)
    used = {r.pool.name for r in rules if r.pool is not None}
    unused = sorted(set(pools) - used)
    if unused:
        raise where.error(f"pools.{unused[0]}", "defined but no routing rule uses it")
    return RoutingPolicy(rules=tuple(rules), unassigned_owners=unassigned, enabled=True)


def _no_target_counts_as_nobody(rules: list[RoutingRule], unassigned: frozenset[str],
                                where: Where) -> None:
    """A rule owner or pool member listed in unassigned_owners would be routed to and then
    count as nobody: the person would be routed again every cycle."""
    why = ("is also in routing.unassigned_owners (owners who count as nobody): a person "
           "routed there would be routed again every cycle")
    for rule in rules:
        if rule.owner is not None and rule.owner in unassigned:
            raise where.rule(rule.id).error("owner", f"{rule.owner} {why}")
        pool = rule.pool
        for i, member in enumerate(pool.members if pool is not None else ()):
            if pool is not None and member.email in unassigned:
                raise where.error(f"pools.{pool.name}.members[{i}]", f"{member.email} {why}")


def _list(data: Mapping[object, object], key: str, where: Where) -> list[object]:
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise where.error(key, "expected a list")
    return raw


def _email(raw: object, where: Where, key: str) -> str:
    if not isinstance(raw, str) or not _EMAIL.match(raw.strip()):
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
        raise where.error(key, f"expected an owner's email address (name@domain), got {shown}")
    return raw.strip().lower()


def _pools(raw: object, where: Where) -> dict[str, Pool]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise where.error("pools", "expected a mapping of pool name to {members, capacity}")
    pools: dict[str, Pool] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise where.error(f"pools.{name}", "a pool name is 1-60 letters, digits, _ . -")
        data = section({name: spec}, name, where.at("pools"), _POOL_KEYS)
        at = where.at(f"pools.{name}")
        members_raw = data.get("members")
        if not isinstance(members_raw, list) or not members_raw:
            raise at.error("members", "required: a non-empty list of owner emails "
                           "(or {email, weight})")
        members = tuple(_member(item, at, i) for i, item in enumerate(members_raw))
        emails = [m.email for m in members]
        dupes = sorted({e for e in emails if emails.count(e) > 1})
        if dupes:
            raise at.error("members", f"member {emails.index(dupes[0])} is listed twice")
        capacity = None
        if data.get("capacity") is not None:
            capacity = int(number(data, "capacity", at, minimum=1, maximum=MAX_CAPACITY,
                                  integer=True))
        pools[name] = Pool(name, members, capacity)
    return pools


def _member(raw: object, where: Where, index: int) -> PoolMember:
    key = f"members[{index}]"
    if isinstance(raw, str):
        return PoolMember(_email(raw, where, key))
    if not isinstance(raw, Mapping):
        raise where.error(key, "expected an owner email or {email, weight}")
    data = section({key: raw}, key, where, _MEMBER_KEYS)
    at = where.at(key)
    weight = number(data, "weight", at, default=1, minimum=1, maximum=MAX_WEIGHT, integer=True)
    return PoolMember(_email(data.get("email"), at, "email"), int(weight))


def _rule(raw: object, index: int, where: Where, pools: Mapping[str, Pool],
          seen: set[str]) -> RoutingRule:
    raw, at, rule_id, label = rule_header(
        raw, f"rules[{index}]", where, allowed=_RULE_KEYS, seen=seen, noun="a routing rule",
        duplicate="duplicate routing rule id", reserved=False, id_max=60)
    if raw.get("when") is None:
        raise at.error("when", "required: the condition under which this rule routes "
                       "(e.g. {field: country, eq: JP}; {not: {field: id, exists: false}} "
                       "for everyone)")
    try:
        condition, fields = compile_condition(raw["when"], "when")
    except ConditionError as exc:
        raise at.error(exc.key, exc.message) from None
    owner, pool_name = raw.get("owner"), raw.get("pool")
    if (owner is None) == (pool_name is None):
        raise at.error("owner", "exactly one target: owner (an email) or pool (a name from "
                       "routing.pools)")
    if owner is not None:
        return RoutingRule(rule_id, label, condition, fields,
                           owner=_email(owner, at, "owner"))
    if not isinstance(pool_name, str) or pool_name not in pools:
        known = ", ".join(sorted(pools)) or "none defined"
        raise at.error("pool", f"{str(pool_name)[:40]!r} is not one of routing.pools ({known})")
    return RoutingRule(rule_id, label, condition, fields, pool=pools[pool_name])
