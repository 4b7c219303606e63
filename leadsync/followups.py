"""Follow-up tasks: who gets them, what they say, and creating each key at most once.

The core says which task is owed (`Evaluation.follow_up`, with its idempotency key). Here the key
is checked against the local ledger, then claimed (so two workers cannot both create it), then
checked against the CRM itself when the ledger does not know it (the ledger may have been wiped),
and only then created (RELIABILITY.md §3).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from leadsync.config.settings import SlaSettings
from leadsync.connectors.base import (
    BudgetExhausted,
    Connector,
    FollowUpTask,
    TaskResult,
    tasks_done,
)
from leadsync.identity import Person
from leadsync.report import CycleReport
from leadsync.scoring import Evaluation, FollowUp, render_reasons
from leadsync.state import StateStore

log = logging.getLogger("leadsync.followups")
CLAIM_TTL_SECONDS = 600.0
_KIND_LABEL = {"due_soon": "SLA due soon", "breached": "SLA breached"}
_SLA_TEXT = {"mql": "first sales contact", "sql": "sales action"}


@dataclass(frozen=True, slots=True)
class OwedTask:
    person: Person
    evaluation: Evaluation
    follow_up: FollowUp


def _display_name(person: Person) -> str:
    p = person.profile
    name = " ".join(x for x in (p.first_name, p.last_name) if x)
    if p.last_name and p.first_name and any(ord(ch) > 0x2E80 for ch in p.last_name):
        name = f"{p.last_name} {p.first_name}"  # Japanese order: family name first
    return (name or p.company or person.task_target().ref.object_type)[:80]


def local_time(at: datetime, tz: tzinfo) -> str:
    """`at` as a rep reads it: "2026-12-04 18:00 JST" (the zone's abbreviation, or its name
    when the zone has none, e.g. "-03" becomes "America/Sao_Paulo")."""
    local = at.astimezone(tz)
    abbr = local.strftime("%Z")
    if not abbr.isalpha():
        abbr = str(getattr(tz, "key", "") or abbr)
    return f"{local:%Y-%m-%d %H:%M} {abbr}"


def task_due(follow_up: FollowUp, now: datetime, escalation_due: timedelta) -> datetime:
    """When the task is due: a due-soon reminder by the SLA deadline; an escalation (the
    deadline has passed) `escalation_due` after now, so no task is born overdue."""
    if follow_up.kind == "breached":
        return now + escalation_due
    return max(follow_up.due, now)


def build_task(
    owed: OwedTask, owner_id: str | None, *, now: datetime, tz: tzinfo = UTC,
    escalation_due: timedelta = timedelta(hours=4),
) -> FollowUpTask:
    """The task a rep sees: subject names person, stage and deadline; the body says why.

    Times are shown in `tz` with the zone named; `now` is the cycle's time, which an
    escalation's due date is counted from. The idempotency key is the core's, independent
    of `now`, so a retry or a later cycle finds the same task."""
    fu, ev = owed.follow_up, owed.evaluation
    due = task_due(fu, now, escalation_due)
    deadline, by = local_time(fu.due, tz), local_time(due, tz)
    stage, who = fu.stage.upper(), _display_name(owed.person)
    sla_text = _SLA_TEXT.get(fu.stage, "follow-up")
    if fu.kind == "breached":
        subject = f"[LeadSync] {_KIND_LABEL[fu.kind]}: {who} ({stage}) missed {deadline}; " \
                  f"act by {by}"
        what = f"{sla_text} was due by {deadline} and has not happened. Escalated: act by {by}."
    else:
        subject = f"[LeadSync] {_KIND_LABEL[fu.kind]}: {who} ({stage}) by {deadline}"
        what = f"{sla_text} is due by {deadline}."
    body = "\n".join([
        f"{stage} since {local_time(fu.clock_start, tz)}: {what}",
        f"Score {ev.score} (fit {ev.fit}, engagement {ev.engagement}, grade {ev.grade}).",
        f"Why: {render_reasons(ev.reasons, 1000)}",
        f"Model: {ev.model}",
        f"leadsync-key: {fu.key}",
    ])
    return FollowUpTask(key=fu.key, person=owed.person.task_target().ref, owner_id=owner_id,
                        subject=subject[:255], body=body, due=due,
                        priority="high" if fu.kind == "breached" else "normal")


def _owner_id(owed: OwedTask, sla: SlaSettings, owners_by_email: Mapping[str, str]) -> str | None:
    """Escalations go to the escalation owner when configured; otherwise the record's owner;
    with no owner, the fallback owner; None means nobody can be assigned."""
    if owed.follow_up.kind == "breached" and sla.escalation_owner:
        esc = owners_by_email.get(sla.escalation_owner.strip().lower())
        if esc:
            return esc
    target = owed.person.task_target()
    if target.owner_id:
        return target.owner_id
    if sla.fallback_owner:
        return owners_by_email.get(sla.fallback_owner.strip().lower())
    return None


def create_owed_tasks(
    owed: Sequence[OwedTask], connectors: Mapping[str, Connector], state: StateStore,
    sla: SlaSettings, report: CycleReport, *, dry_run: bool, tz: tzinfo = UTC,
) -> None:
    by_system: dict[str, list[OwedTask]] = {}
    for item in owed:
        by_system.setdefault(item.person.task_target().ref.system, []).append(item)
    for system, items in by_system.items():
        conn = connectors.get(system)
        if conn is None:
            continue
        _create_for_system(conn, items, state, sla, report, dry_run=dry_run, tz=tz)


def _create_for_system(
    conn: Connector, items: Sequence[OwedTask], state: StateStore, sla: SlaSettings,
    report: CycleReport, *, dry_run: bool, tz: tzinfo = UTC,
) -> None:
    keys = [i.follow_up.key for i in items]
    known = state.known_task_keys(keys)
    fresh = [i for i in items if i.follow_up.key not in known]
    report.tasks_existing += len(items) - len(fresh)
    if not fresh:
        return
    in_crm = conn.find_task_keys(sorted({i.person.task_target().ref for i in fresh}))
    if in_crm and not dry_run:
        state.record_task_keys(dict.fromkeys(in_crm, ""))
    todo = [i for i in fresh if i.follow_up.key not in in_crm]
    report.tasks_existing += len(fresh) - len(todo)
    owners = {email: oid for oid, email in conn.list_owners().items()} if todo else {}
    tasks: list[FollowUpTask] = []
    for item in todo:
        owner_id = _owner_id(item, sla, owners)
        if owner_id is None:
            report.tasks_unassigned.append(item.person.id)
            log.warning("follow-up task has no owner and no fallback owner is configured",
                        extra={"person": item.person.id, "task_key": item.follow_up.key})
            continue
        if dry_run:
            report.tasks_created[conn.system] += 1
            continue
        if not state.claim_task_key(item.follow_up.key, CLAIM_TTL_SECONDS):
            report.tasks_existing += 1  # another worker is creating it right now
            continue
        tasks.append(build_task(item, owner_id, now=report.now, tz=tz,
                                escalation_due=timedelta(hours=sla.escalation_due_hours)))
    if not tasks:
        return
    try:
        result = conn.create_tasks(tasks)
    except BudgetExhausted as exc:  # the tasks created before the stop are real: count them
        _settle(conn.system, tasks_done(exc), state, report, stopped=tasks)
        raise
    _settle(conn.system, result, state, report)


def _settle(system: str, result: TaskResult, state: StateStore, report: CycleReport,
            stopped: Sequence[FollowUpTask] = ()) -> None:
    """Record and count what the CRM created; release the claims of the failed ones and,
    after a budget stop (`stopped`: the tasks of the stopped call), of those never sent."""
    state.record_task_keys(result.created)
    report.tasks_created[system] += len(result.created)
    for key, reason in result.failed.items():
        state.release_task_key(key)
        report.task_failures.append({"task_key": key, "reason": reason})
    for task in stopped:
        if task.key not in result.created and task.key not in result.failed:
            state.release_task_key(task.key)
