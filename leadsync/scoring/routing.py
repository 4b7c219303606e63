"""Lead routing decisions (issue 13): who should own a person who just became an MQL or SQL.

Pure and typed, like the rest of `scoring`: the shell says what it knows about the person's
current owner (`OwnerState`) and hands in the compiled `RoutingPolicy`; `decide` returns a
`RoutingDecision` saying whether the person is routed, and by which rule, or why not. Which
member of a pool gets the turn is `pick_member`, a pure function over the pool's counts; the
state store applies it atomically (both stores, one turn per claim), so two workers never hand
out the same turn.

Routing applies to a person whose evaluated stage is mql or sql, whose owner is missing,
inactive (Salesforce User.IsActive false, HubSpot owner archived), a queue or one of the rules
file's `unassigned_owners` (e.g. the integration user), and whom no rep is working yet: no
sales status past new (`sales_status` is None) and no sales touch since the stage began. The
first rule whose condition holds routes; none matching is `no_match` (the shell then takes the
fallback owner, or reports the person).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from leadsync.scoring.conditions import Condition, Facts, normalize_fact
from leadsync.scoring.facts import fact_getter
from leadsync.scoring.profile import Profile

OwnerState = Literal["active", "missing", "inactive", "queue", "unassigned"]
OWNER_STATES: tuple[str, ...] = ("active", "missing", "inactive", "queue", "unassigned")
ROUTED_STAGES: frozenset[str] = frozenset({"mql", "sql"})
Outcome = Literal["routed", "no_match", "not_needed"]


@dataclass(frozen=True, slots=True)
class PoolMember:
    """One rep of a pool, by owner email (lower-cased); `weight` turns per round."""

    email: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Pool:
    """Owners taking turns: weighted round-robin; `capacity` caps each rep's open people
    (MQLs/SQLs routed to them and not yet worked), None for no cap."""

    name: str
    members: tuple[PoolMember, ...]
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """`when` holds -> `owner` (one email) or `pool`; exactly one of them is set."""

    id: str
    label: str
    when: Condition
    fields: frozenset[str]
    owner: str | None = None
    pool: Pool | None = None


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The `routing:` section; `enabled` is False without one (nobody is routed)."""

    rules: tuple[RoutingRule, ...] = ()
    #: owners who count as nobody (an integration user, a catch-all mailbox), lower-cased
    unassigned_owners: frozenset[str] = frozenset()
    enabled: bool = False

    @property
    def fields(self) -> frozenset[str]:
        """The fact names the rules read."""
        return frozenset().union(*(r.fields for r in self.rules))

    @property
    def pools(self) -> dict[str, Pool]:
        return {r.pool.name: r.pool for r in self.rules if r.pool is not None}


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """`routed`: `rule` matched (the shell resolves its owner or pool turn); `no_match`: the
    person needs an owner and no rule matched; `not_needed`: `why` says why not."""

    outcome: Outcome
    why: str
    rule: RoutingRule | None = None


def owner_state(owner_id: str | None, owner_email: str | None, *, active: Mapping[str, str],
                queue: bool, unassigned: frozenset[str]) -> OwnerState:
    """The state of a record's owner. `active` maps the CRM's active owner ids to emails (what
    `Connector.list_owners` returns); `queue` says the id is a queue (Salesforce Group 00G...,
    a HubSpot QUEUE owner)."""
    if not owner_id:
        return "missing"
    if queue:
        return "queue"
    email = active.get(owner_id)
    if email is None:
        return "inactive"
    if email.lower() in unassigned or (owner_email or "").lower() in unassigned:
        return "unassigned"
    return "active"


def worked_by_rep(profile: Profile, stage_start: datetime | None, now: datetime) -> str | None:
    """Why a rep is already working this person (None: nobody is): a sales status past new,
    or a sales touch since the stage began (not dated after `now`)."""
    if profile.sales_status:
        return f"sales status {profile.sales_status}"
    for event in profile.events:
        if event.type != "sales_touch" or event.at > now:
            continue
        if stage_start is None or event.at >= stage_start:
            return "an open sales touch"
    return None


def routing_facts(profile: Profile, policy: RoutingPolicy,
                  free_domains: frozenset[str]) -> dict[str, object]:
    """The facts the routing rules read, normalized as conditions compare them: any field a
    fit rule may name (country, employees, lead_source, the state / prefecture attribute, ...)
    plus `pages` (every page viewed or clicked, space-separated) and `forms` (every form
    submitted), where product interest shows."""
    out: dict[str, object] = {}
    for name in policy.fields:
        if name == "pages":
            urls = (str(e.props.get("url", "")) for e in profile.events
                    if e.type in ("page_view", "email_click"))
            out[name] = normalize_fact(" ".join(u for u in urls if u))
        elif name == "forms":
            forms = (str(e.props.get("form", "")) for e in profile.events
                     if e.type == "form_submit")
            out[name] = normalize_fact(" ".join(f for f in forms if f))
        else:
            out[name] = fact_getter(name, free_domains)(profile)
    return out


def first_match(policy: RoutingPolicy, facts: Facts) -> RoutingRule | None:
    for rule in policy.rules:
        if rule.when(facts):
            return rule
    return None


def decide(profile: Profile, *, stage: str, stage_start: datetime | None, owner: OwnerState,
           policy: RoutingPolicy, facts: Facts, now: datetime) -> RoutingDecision:
    """Whether and how this person is routed (see the module docstring). `facts` are the
    person's condition facts (`routing_facts`)."""
    if stage not in ROUTED_STAGES:
        return RoutingDecision("not_needed", f"stage {stage} is not routed")
    if owner == "active":
        return RoutingDecision("not_needed", "owner is active")
    worked = worked_by_rep(profile, stage_start, now)
    if worked is not None:
        return RoutingDecision("not_needed", f"already worked ({worked})")
    rule = first_match(policy, facts)
    if rule is None:
        return RoutingDecision("no_match", f"owner {owner}; no routing rule matched")
    return RoutingDecision("routed", f"owner {owner}; rule {rule.id}", rule)


def pick_member(members: Sequence[PoolMember], served: Mapping[str, int],
                open_count: Mapping[str, int], capacity: int | None) -> str | None:
    """The member whose turn it is: among those under `capacity` open people, the one
    furthest behind its share after this turn, (turns + 1) * weight / total weight - served
    (smooth weighted round-robin, as nginx balances upstreams), ties to the earlier member.
    Over n turns each rep's share stays within one of n * weight / total. None when every
    member is at capacity. Integer arithmetic: the Redis store runs the same rule in Lua."""
    total_weight = sum(m.weight for m in members)
    turns = sum(served.get(m.email, 0) for m in members)
    best: tuple[int, int] | None = None
    chosen: str | None = None
    for index, member in enumerate(members):
        if capacity is not None and open_count.get(member.email, 0) >= capacity:
            continue
        behind = (turns + 1) * member.weight - total_weight * served.get(member.email, 0)
        rank = (-behind, index)
        if best is None or rank < best:
            best, chosen = rank, member.email
    return chosen


def routed_by(rule: RoutingRule | None) -> str:
    """The written reason (LeadSync_Routed_By__c / leadsync_routed_by): the rule and its
    target kind, never an email: "rule west-pool (pool west)", "rule vip (owner)" or
    "fallback owner"."""
    if rule is None:
        return "fallback owner"
    target = f"pool {rule.pool.name}" if rule.pool is not None else "owner"
    return f"rule {rule.id} ({target})"[:255]
