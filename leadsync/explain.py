"""`leadsync explain EMAIL`: one person's score breakdown, stage reasoning and SLA clock.

Reads the person's records in every enabled CRM (and the records they link to), their
engagement over the model's look-back window, evaluates them exactly as a cycle would, and
prints why: the score's reasons, the lifecycle rule of DESIGN.md §4 that decided the stage
(from the core's own `StageDecision`), the SLA clock and who the owed task would go to.
Writes nothing. The argument is checked before any call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import click
from rich.console import Console
from rich.table import Table

from leadsync import person as persons
from leadsync.accounts.inherit import with_account_facts
from leadsync.config.settings import Settings
from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.drift import OwnFields, adopt_lifecycle
from leadsync.followups import local_time
from leadsync.identity import (
    Person,
    event_signature,
    group_records,
    merge_profile,
    normalise_email,
)
from leadsync.owner_routing import Router
from leadsync.report import CycleReport
from leadsync.runtime import Runtime, build_runtime
from leadsync.scoring import (
    Evaluation,
    Event,
    ScoringModel,
    StageDecision,
    evaluate,
    format_points,
)
from leadsync.scoring.lifecycle import BACKWARD_FACTS, FORWARD_FACTS
from leadsync.scoring.profile import Bant, Profile
from leadsync.scoring.routing import OwnerState, decide, routing_facts

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_EMAIL = 254


def check_email(text: str) -> str:
    """The argument as a normalised email, or a usage error that shows at most 40 characters
    of it (a 5,000-character argument is not echoed back)."""
    normal = normalise_email(text)
    if normal is not None and len(normal) <= _MAX_EMAIL and _EMAIL.fullmatch(normal):
        return normal
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise click.BadParameter(
        f"{shown!r} ({len(text):,} characters) is not an email address; "
        "expected e.g. taro.yamada@example.co.jp", param_hint="EMAIL")


def gather(runtime: Runtime, email: str) -> tuple[list[CrmPerson], dict[str, list[Event]]]:
    """The records of the person with this email (plus linked ones) and each record's
    engagement (remembered events and the CRMs' own, by record key)."""
    target = normalise_email(email)
    if target is None:
        raise ValueError(f"not an email address: {email!r}")
    records: dict[str, CrmPerson] = {}
    for conn in runtime.connectors.values():
        for rec in conn.find_people_by_email(target):
            records[rec.ref.key] = rec
    linked: dict[str, list[RecordRef]] = {}
    for rec in list(records.values()):
        for link in rec.links:
            if link.key not in records and link.system in runtime.connectors:
                linked.setdefault(link.system, []).append(link)
    for system, refs in linked.items():
        for rec in runtime.connectors[system].read_people(refs):
            records[rec.ref.key] = rec
    return list(records.values()), _engagement(runtime, records)


def _engagement(runtime: Runtime, records: Mapping[str, CrmPerson]) -> dict[str, list[Event]]:
    """Each record's events since the model's look-back: remembered ones and the CRMs' own."""
    since = runtime.model.events_since(runtime.clock())  # the sync's look-back
    events: dict[str, list[Event]] = {key: [] for key in records}
    for key, stored in runtime.state.get_events(list(records)).items():
        events.setdefault(key, []).extend(stored)
    # remembered events and the CRMs' own overlap (the sync stored what it read): once each,
    # by the signature the cycle dedupes with
    seen = {key: {event_signature(ev) for ev in evs} for key, evs in events.items()}
    for system, conn in runtime.connectors.items():
        people = [r for r in records.values() if r.ref.system == system]
        if people:
            for found in conn.iter_engagement_for(people, since):
                key, signature = found.person.key, event_signature(found.event)
                if signature not in seen.setdefault(key, set()):
                    seen[key].add(signature)
                    events.setdefault(key, []).append(found.event)
    return events


def explain_person(settings: Settings, email: str, console: Console) -> None:
    email = check_email(email)  # before any connection is made
    runtime = build_runtime(settings)
    records, events = gather(runtime, email)
    if not records:
        console.print("No record with that email in the configured CRMs.")
        raise SystemExit(1)
    now = runtime.clock()
    for group, _key, profile, ev in evaluate_people(runtime, records, events, now):
        render(console, group, ev, runtime.model, profile.stage,
               fallback_owner=settings.sla.fallback_owner,
               escalation_owner=settings.sla.escalation_owner)
        if runtime.model.routing.enabled:
            owner = Router(runtime.model, runtime.state, runtime.connectors, fallback_owner=None,
                           report=CycleReport(job="incremental", dry_run=True, now=now),
                           now=now, dry_run=True).state_of(group[0])
            console.print(routing_note(profile, ev, runtime.model, owner, now,
                                       fallback_owner=settings.sla.fallback_owner),
                          highlight=False)


def evaluate_people(runtime: Runtime, records: Sequence[CrmPerson],
                    events: Mapping[str, Sequence[Event]], now: datetime
                    ) -> list[tuple[list[CrmPerson], str, Profile, Evaluation]]:
    """The records grouped into people and each evaluated exactly as a cycle would: (records,
    person key, profile, evaluation) per person."""
    out: list[tuple[list[CrmPerson], str, Profile, Evaluation]] = []
    groups = group_records(records)
    # as a cycle names the person (its durable key), so its stored record applies
    for group, found in zip(groups, persons.resolve(runtime.state, groups), strict=True):
        own = [ev for rec in group for ev in events.get(rec.ref.key, ())]
        written = OwnFields(runtime.state)  # hand edits of our fields are no facts (as a cycle)
        written.load(rec.ref.key for rec in group)
        trusted = written.trusted(group)
        profile = merge_profile(found.key, trusted, own, {})
        profile = persons.with_previous(
            profile, persons.previous_decision(found.record, trusted), found.legacy)
        profile, _ = adopt_lifecycle(profile, group, now)
        # what the account inherits, as a cycle gives it (docs/accounts.md)
        [person] = with_account_facts(runtime.state, runtime.model, [
            Person(id=found.key, records=tuple(group), profile=profile)])
        profile = person.profile
        out.append((group, found.key, profile, evaluate(profile, runtime.model, now)))
    return out


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def reasons_table(title: str) -> Table:
    """The rule / why / points table of `explain` (a person's score or an account's)."""
    table = Table(title=title, title_justify="left")
    table.add_column("rule")
    table.add_column("why")
    table.add_column("points", justify="right")
    return table


def render(console: Console, group: Iterable[CrmPerson], ev: Evaluation, model: ScoringModel,
           previous_stage: str | None, *, fallback_owner: str | None = None,
           escalation_owner: str | None = None) -> None:
    console.print(f"[bold]Person {ev.person_id}[/bold]  records: "
                  + ", ".join(r.ref.key for r in group))
    table = reasons_table(f"Score {ev.score} = fit {ev.fit} + engagement {ev.engagement}  "
                          f"(grade {ev.grade}, model {ev.model})")
    for reason in ev.reasons:
        times = f" ×{reason.count}" if reason.count > 1 else ""
        table.add_row(reason.rule, reason.label, format_points(reason.points) + times)
    if not ev.reasons:
        table.add_row("—", "no rule matched", "0")
    console.print(table)
    if model.horizon_days is not None:
        console.print(f"Events older than {model.horizon_days} days are not counted "
                      "(horizon_days).")
    arrow = f"{previous_stage or 'new'} → {ev.stage}" if ev.stage_changed else ev.stage
    console.print(f"Stage: [bold]{arrow}[/bold] — {stage_explanation(ev, model)}",
                  highlight=False)
    if ev.mql_at or ev.sql_at:
        console.print(f"MQL at: {_when(ev.mql_at)}   SQL at: {_when(ev.sql_at)}")
    console.print(f"SLA: [bold]{ev.sla_status}[/bold]"
                  + (f", due {ev.sla_due:%Y-%m-%d %H:%M} UTC" if ev.sla_due else ""))
    calendar = model.sla.calendar
    if calendar is not None:  # the clock counts working time (docs/sla.md)
        local = f", due {local_time(ev.sla_due, calendar.zone)}" if ev.sla_due else ""
        console.print(f"SLA hours are business hours ({calendar.describe()}){local}",
                      highlight=False)
    if ev.follow_up:
        fu = ev.follow_up
        console.print(f"Follow-up owed: {fu.kind} ({fu.priority}), key {fu.key}")
        note = owner_note(ev, fallback_owner, escalation_owner)
        if note:
            console.print(f"[bold]{note}[/bold]", highlight=False)


def routing_note(profile: Profile, ev: Evaluation, model: ScoringModel, owner: OwnerState,
                 now: datetime, *, fallback_owner: str | None) -> str:
    """Which routing rule routes this person, or why none does (docs/routing.md). A pool's
    turn is taken by the cycle, not here: explain names the pool."""
    policy = model.routing
    start = ev.sql_at if ev.stage == "sql" else ev.mql_at
    facts = routing_facts(profile, policy, model.free_email_domains)
    decision = decide(profile, stage=ev.stage, stage_start=start, owner=owner, policy=policy,
                      facts=facts, now=now)
    rule = decision.rule
    if rule is not None:
        if rule.pool is not None:
            cap = f", capacity {rule.pool.capacity}" if rule.pool.capacity else ""
            target = f"pool {rule.pool.name} (weighted round-robin{cap})"
        else:
            target = f"owner {rule.owner}"
        return f"Routing: owner {owner}: rule {rule.id} ({rule.label}) routes to {target}."
    if decision.outcome == "no_match":
        if fallback_owner:
            return (f"Routing: owner {owner} and no routing rule matched: the fallback owner "
                    "(LEADSYNC_SLA__FALLBACK_OWNER) takes the person.")
        return (f"Routing: owner {owner}, no routing rule matched and no fallback owner is "
                "configured: each cycle reports the person.")
    return f"Routing: not routed ({decision.why})."


def owner_note(ev: Evaluation, fallback_owner: str | None,
               escalation_owner: str | None) -> str | None:
    """Who the owed task goes to when that is not the person's own owner; a warning when nobody."""
    fu = ev.follow_up
    if fu is None:
        return None
    if fu.kind == "breached" and escalation_owner:
        return "The escalation goes to the escalation owner (LEADSYNC_SLA__ESCALATION_OWNER)."
    if fu.owner:
        return None
    if fallback_owner:
        return ("The person has no owner: the task goes to the fallback owner "
                "(LEADSYNC_SLA__FALLBACK_OWNER).")
    return ("The owed task has no owner and no fallback owner is configured "
            "(LEADSYNC_SLA__FALLBACK_OWNER): it cannot be assigned; each cycle reports it.")


_BANT_ITEMS = ("budget", "authority", "need", "timeline")


def _bant(bant: Bant | None) -> str:
    if bant is None:
        return "BANT unknown"
    met = [name for name in _BANT_ITEMS if getattr(bant, name)]
    return f"BANT {len(met)} of 4 met ({', '.join(met) or 'none'})"


def _date(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "an unknown date"


def stage_explanation(ev: Evaluation, model: ScoringModel) -> str:
    """Why the stage is what it is, in words, from the core's `StageDecision` (DESIGN.md §4)."""
    decision = ev.stage_decision
    if decision is None:  # an Evaluation built by hand
        return f"score {ev.score} vs MQL threshold {model.mql_threshold:g}"
    threshold = f"MQL threshold {model.mql_threshold:g}"
    text = _EXPLAIN[decision.rule](ev, decision, threshold, model)
    return text


def _sales_forward(ev: Evaluation, d: StageDecision, _threshold: str, _m: ScoringModel) -> str:
    fact = f"sales status {d.sales_status} (decided {_date(d.fact_at)})"
    if d.previous == ev.stage:
        return f"{fact}: stays {ev.stage} (§4.1, a forward sales fact)"
    return f"{fact} moves the person forward to {ev.stage} (§4.1)"


def _sales_backward(ev: Evaluation, d: StageDecision, _threshold: str, _m: ScoringModel) -> str:
    fact = f"sales status {d.sales_status} (decided {_date(d.fact_at)})"
    if d.previous == ev.stage:
        return f"{fact}: stays {ev.stage} (§4.2)"
    return f"{fact}, after the person entered {d.previous}: {ev.stage} (§4.2, applied once)"


def _mql_threshold(ev: Evaluation, _d: StageDecision, threshold: str, _m: ScoringModel) -> str:
    return f"score {ev.score} ≥ {threshold} (§4.3)"


def _mql_instant(ev: Evaluation, d: StageDecision, threshold: str, _m: ScoringModel) -> str:
    return (f"an instant-MQL action on {_date(d.fact_at)} qualifies whatever the score "
            f"(score {ev.score} < {threshold}) (§4.3)")


def _re_mql_instant(ev: Evaluation, d: StageDecision, _threshold: str, _m: ScoringModel) -> str:
    return (f"re-qualified after being recycled: an instant-MQL action on {_date(d.fact_at)}, "
            "after the recycling (§4.3 re-MQL)")


def _re_mql_threshold(ev: Evaluation, d: StageDecision, threshold: str, _m: ScoringModel) -> str:
    return (f"re-qualified after being recycled: score {ev.score} ≥ {threshold} with "
            f"engagement on {_date(d.fact_at)}, after the recycling (§4.3 re-MQL)")


def _bant_sql(ev: Evaluation, d: StageDecision, threshold: str, m: ScoringModel) -> str:
    text = f"{_bant(d.bant)} ≥ {m.bant_min} needed: mql → sql (§4.4)"
    if d.previous in ("subscriber", "lead"):
        how = (f"score {ev.score} ≥ {threshold}" if ev.score >= m.mql_threshold
               else f"an instant-MQL action on {_date(d.fact_at)}")
        text = f"qualified as MQL ({how}), then {text}"
    return text


def _below_threshold(ev: Evaluation, d: StageDecision, threshold: str, m: ScoringModel) -> str:
    text = f"score {ev.score} < {threshold} and no instant-MQL action (§4.3)"
    if d.bant is not None:
        text += (f"; {_bant(d.bant)} would make an SQL, but marketing qualification comes "
                 "first (§4.4)")
    if d.sales_status is not None:
        text += f"; sales status {d.sales_status} moves no one from {ev.stage}"
    return text


def _recycled_waiting(ev: Evaluation, d: StageDecision, threshold: str, _m: ScoringModel) -> str:
    sales = f" (sales status {d.sales_status})" if d.sales_status else ""
    return (f"recycled since {_date(d.fact_at)}{sales}: re-qualifies only through an "
            f"instant-MQL action, or a score ≥ {threshold} with engagement, dated after that "
            f"(§4.3 re-MQL; score now {ev.score})")


def _held(ev: Evaluation, d: StageDecision, threshold: str, _m: ScoringModel) -> str:
    if ev.stage == "disqualified":
        text = "disqualified by sales: stays until sales decides otherwise (§4.1-4.2)"
    else:
        text = (f"stays {ev.stage}: score decay never demotes {ev.stage} (score {ev.score} vs "
                f"{threshold}); only sales facts move a person back (§4.5)")
    status = d.sales_status
    if status in BACKWARD_FACTS:
        text += (f"; sales status {status} (decided {_date(d.fact_at)}) is not newer than the "
                 "stage, so it does not apply (§4.2)")
    elif status in FORWARD_FACTS:
        text += f"; sales status {status} would not move {ev.stage} forward"
    elif status is not None:
        text += f"; sales status {status} does not move the stage"
    return text


_EXPLAIN = {
    "sales_forward": _sales_forward, "sales_backward": _sales_backward,
    "mql_threshold": _mql_threshold, "mql_instant": _mql_instant,
    "re_mql_instant": _re_mql_instant, "re_mql_threshold": _re_mql_threshold,
    "bant_sql": _bant_sql, "below_threshold": _below_threshold,
    "recycled_waiting": _recycled_waiting, "held": _held,
}
