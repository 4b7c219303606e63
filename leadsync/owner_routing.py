"""The routing step of a cycle (docs/routing.md): people entering MQL or SQL without a rep
working them get an owner, written to every record of the person, and their follow-up task
goes to that owner.

The decision is the core's (`leadsync.scoring.routing.decide`); this module supplies what it
needs from the CRMs (each record's owner: active, inactive, a queue, or missing, from the CRM's
active owners) and from the state store (a pool's turn, taken atomically: `take_turn`), maps
the chosen owner's email to each CRM's owner id, and returns the people with the new owner on
their records (so `followups` assigns the task to them) plus the values to write per record:
`owner_id` (Salesforce OwnerId, HubSpot hubspot_owner_id) and `routed_by`. With no rule
matching (or a pool full), the fallback owner (LEADSYNC_SLA__FALLBACK_OWNER) takes the person;
with none, the person is reported (`CycleReport.routing_unrouted`). Capacity counts every
open person (stage mql or sql) against the active rep who owns their task target, routed by
leadsync or assigned by hand (`StateStore.set_open_owners`); a person past SQL, recycled or
disqualified, or whose owner changes, moves out of that rep's count.
Logs carry person keys and rule ids, never emails.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadsync.connectors.base import Connector, CrmPerson
from leadsync.identity import Person
from leadsync.report import CycleReport
from leadsync.scoring import Evaluation
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.routing import (
    ROUTED_STAGES,
    OwnerState,
    RoutingRule,
    decide,
    owner_state,
    routed_by,
    routing_facts,
    worked_by_rep,
)
from leadsync.state import StateStore

log = logging.getLogger("leadsync.routing")


@dataclass(frozen=True, slots=True)
class RoutingStep:
    """What routing changed this cycle: the people (new owner on their records) and the
    values to write per record key."""

    people: list[Person]
    values: dict[str, dict[str, object]]


def _stage_start(ev: Evaluation) -> datetime | None:
    return ev.sql_at if ev.stage == "sql" else ev.mql_at


def _is_queue(conn: Connector, owner_id: str) -> bool:
    check = getattr(conn, "is_queue_owner", None)
    return bool(check(owner_id)) if check is not None else False


class Router:
    """One cycle's routing (see the module docstring)."""

    def __init__(self, model: ScoringModel, state: StateStore,
                 connectors: Mapping[str, Connector], *, fallback_owner: str | None,
                 report: CycleReport, now: datetime, dry_run: bool) -> None:
        self.model, self.policy, self.state = model, model.routing, state
        self.connectors = connectors
        self.fallback = fallback_owner.strip().lower() if fallback_owner else None
        self.report, self.now, self.dry_run = report, now, dry_run
        self._active: dict[str, dict[str, str]] = {}  # system -> owner id -> email
        self._by_email: dict[str, dict[str, str]] = {}  # system -> email -> owner id

    def active(self, system: str) -> dict[str, str]:
        if system not in self._active:
            owners = self.connectors[system].list_owners()
            self._active[system] = owners
            self._by_email[system] = {email: oid for oid, email in sorted(owners.items())}
        return self._active[system]

    def state_of(self, rec: CrmPerson) -> OwnerState:
        system = rec.ref.system
        if system not in self.connectors:
            return "active"  # a CRM we do not talk to: leave its owner alone
        queue = bool(rec.owner_id) and _is_queue(self.connectors[system], rec.owner_id or "")
        return owner_state(rec.owner_id, rec.profile.owner, active=self.active(system),
                           queue=queue, unassigned=self.policy.unassigned_owners)

    def route(self, people: Sequence[Person], evaluations: Sequence[Evaluation]) -> RoutingStep:
        """Decide for everyone first; count every open person who keeps their owner against
        that rep (so capacity sees this page's hand-assigned people too), then take the pool
        turns, then count the routed people with their new owner."""
        out: list[Person] = []
        values: dict[str, dict[str, object]] = {}
        closed: list[str] = []
        kept: dict[str, str | None] = {}
        todo: list[tuple[int, str, RoutingRule | None]] = []
        for person, ev in zip(people, evaluations, strict=True):
            out.append(person)
            start = _stage_start(ev)
            if ev.stage not in ROUTED_STAGES or worked_by_rep(person.profile, start, self.now):
                closed.append(person.id)
                kept[person.id] = self.open_owner(person, ev)
                continue
            target = person.task_target()
            facts = routing_facts(person.profile, self.policy, self.model.free_email_domains)
            decision = decide(person.profile, stage=ev.stage, stage_start=start,
                              owner=self.state_of(target), policy=self.policy, facts=facts,
                              now=self.now)
            if decision.outcome == "not_needed":
                kept[person.id] = self.open_owner(person, ev)
                continue
            todo.append((len(out) - 1, decision.why, decision.rule))
        if not self.dry_run:
            self.state.set_open_owners(kept)
        routed: dict[str, str | None] = {}
        for index, why, matched in todo:
            person, ev = people[index], evaluations[index]
            rule = matched
            owner = self.owner_for(person.id, rule) if rule is not None else None
            if owner is None:
                rule, owner = None, self.fallback
            if owner is None:
                self.unrouted(person.id, why)
                routed[person.id] = None
                continue
            out[index] = new = self.assign(person, owner, rule, values)
            routed[person.id] = self.open_owner(new, ev)
        if not self.dry_run:
            self.state.set_open_owners(routed)
            if closed:
                self.state.release_routes(closed)
        return RoutingStep(out, values)

    def open_owner(self, person: Person, ev: Evaluation) -> str | None:
        """The rep this person counts against (docs/routing.md, "Capacity"): the active owner
        (by email) of the record sales works on, while leadsync's stage is mql or sql; None
        when not open, owned by nobody, a queue, an inactive or an unassigned owner."""
        if ev.stage not in ROUTED_STAGES:
            return None
        target = person.task_target()
        if target.ref.system not in self.connectors or self.state_of(target) != "active":
            return None
        return self.active(target.ref.system).get(target.owner_id or "", "").lower() or None

    def owner_for(self, person_id: str, rule: RoutingRule) -> str | None:
        """The rule's owner, or its pool's turn (None: every rep of the pool is full)."""
        if rule.owner is not None:
            return rule.owner
        pool = rule.pool
        assert pool is not None  # a rule has exactly one target (rules_routing)
        members = [(m.email, m.weight) for m in pool.members]
        if self.dry_run:  # a dry run takes no turn: shows the rule only
            return members[0][0]
        chosen = self.state.take_turn(pool.name, person_id, members, pool.capacity)
        if chosen is None:
            log.warning("routing pool at capacity: fallback owner", extra={
                "person": person_id, "rule": rule.id, "pool": pool.name})
        return chosen

    def assign(self, person: Person, owner: str, rule: RoutingRule | None,
               values: dict[str, dict[str, object]]) -> Person:
        """`person` with `owner` on every record whose CRM has them as an active owner."""
        why = routed_by(rule)
        records: list[CrmPerson] = []
        missing: list[str] = []
        for rec in person.records:
            system = rec.ref.system
            if system not in self.connectors:
                records.append(rec)
                continue
            self.active(system)
            owner_id = self._by_email[system].get(owner)
            if owner_id is None:
                missing.append(system)
                records.append(rec)
                continue
            if owner_id != rec.owner_id:
                values[rec.ref.key] = {"owner_id": owner_id, "routed_by": why}
            profile = dataclasses.replace(rec.profile, owner=owner)
            records.append(dataclasses.replace(rec, owner_id=owner_id, profile=profile))
        if missing:
            self.unrouted(person.id, f"routed owner is not an active owner in "
                          f"{', '.join(sorted(set(missing)))}")
        if len(missing) == len(person.records):
            return person
        self.report.routed[rule.id if rule is not None else "fallback"] += 1
        log.info("person routed", extra={"person": person.id,
                                         "rule": rule.id if rule else "fallback"})
        return dataclasses.replace(person, records=tuple(records),
                                   profile=dataclasses.replace(person.profile, owner=owner))

    def unrouted(self, person_id: str, why: str) -> None:
        self.report.routing_unrouted.append(person_id)
        log.warning("person needs an owner and none could be given: reported",
                    extra={"person": person_id, "why": why,
                           "fallback_configured": self.fallback is not None})


def sweep_open_owners(state: StateStore, evaluated: Collection[str]) -> int:
    """After a whole full run: people counted against a rep whom the run did not evaluate
    (deleted in the CRMs, merged away) leave the counts, so a count is exact again after every
    complete full run, whatever happened before (a lost Redis, a crash between writes).
    Returns how many left."""
    stale = {p: None for p in state.open_owners() if p not in evaluated}
    if stale:
        log.info("routing counts: people no full run saw dropped", extra={"people": len(stale)})
    return state.set_open_owners(stale) if stale else 0
