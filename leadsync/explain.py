"""`leadsync explain EMAIL`: one person's score breakdown, stage reasoning and SLA clock.

Reads the person's records in every enabled CRM (and the records they link to), their
engagement over the model's look-back window, evaluates them exactly as a cycle would, and
prints why. Writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.console import Console
from rich.table import Table

from leadsync.config.settings import Settings
from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.identity import group_records, merge_profile, normalise_email
from leadsync.runtime import Runtime, build_runtime
from leadsync.scoring import Evaluation, Event, ScoringModel, evaluate, render_reasons


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
    since = runtime.model.events_since(runtime.clock())  # the sync's look-back
    events: dict[str, list[Event]] = {key: [] for key in records}
    for key, stored in runtime.state.get_events(list(records)).items():
        events.setdefault(key, []).extend(stored)
    for system, conn in runtime.connectors.items():
        people = [r for r in records.values() if r.ref.system == system]
        if people:
            for found in conn.iter_engagement_for(people, since):
                events.setdefault(found.person.key, []).append(found.event)
    return list(records.values()), events


def explain_person(settings: Settings, email: str, console: Console) -> None:
    runtime = build_runtime(settings)
    records, events = gather(runtime, email)
    if not records:
        console.print("No record with that email in the configured CRMs.")
        raise SystemExit(1)
    now = runtime.clock()
    for group in group_records(records):
        pid = group[0].ref.key  # as a cycle names the person, so its remembered state applies
        memory = runtime.state.get_person_state([pid]).get(pid, {})
        own = [ev for rec in group for ev in events.get(rec.ref.key, ())]
        profile = merge_profile(pid, group, own, memory)
        ev = evaluate(profile, runtime.model, now)
        render(console, group, ev, runtime.model, profile.stage)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def render(console: Console, group: Iterable[CrmPerson], ev: Evaluation, model: ScoringModel,
           previous_stage: str | None) -> None:
    console.print(f"[bold]Person {ev.person_id}[/bold]  records: "
                  + ", ".join(r.ref.key for r in group))
    table = Table(title=f"Score {ev.score} = fit {ev.fit} + engagement {ev.engagement}  "
                        f"(grade {ev.grade}, model {ev.model})", title_justify="left")
    table.add_column("rule")
    table.add_column("why")
    table.add_column("points", justify="right")
    for reason in ev.reasons:
        table.add_row(reason.rule, reason.label, render_reasons((reason,), 40).split(" ")[0])
    if not ev.reasons:
        table.add_row("—", "no rule matched", "0")
    console.print(table)
    why = []
    if ev.instant_mql:
        why.append("an instant-MQL action happened")
    why.append(f"score {ev.score} vs MQL threshold {model.mql_threshold:g}")
    arrow = f"{previous_stage or 'new'} → {ev.stage}" if ev.stage_changed else ev.stage
    console.print(f"Stage: [bold]{arrow}[/bold] ({'; '.join(why)})")
    if ev.mql_at or ev.sql_at:
        console.print(f"MQL at: {_when(ev.mql_at)}   SQL at: {_when(ev.sql_at)}")
    console.print(f"SLA: [bold]{ev.sla_status}[/bold]"
                  + (f", due {ev.sla_due:%Y-%m-%d %H:%M} UTC" if ev.sla_due else ""))
    if ev.follow_up:
        fu = ev.follow_up
        console.print(f"Follow-up owed: {fu.kind} ({fu.priority}), key {fu.key}")
