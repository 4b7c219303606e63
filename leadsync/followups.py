"""Follow-up tasks: who gets them, what they say, and creating each key at most once.

The core says which task is owed (`Evaluation.follow_up`, with its idempotency key, built from
the durable person key and the clock). A task counts as existing under any of its equivalent
keys (`person.equivalent_keys`: the key, the same clock step under the person's former keys,
and the "ls1" keys of earlier versions). Each owed task is checked against the person's record
(created on this clock), the local ledger, then every record the person has had in both CRMs
(all aliases: a converted Lead's tasks move to its Contact; the ledger may have been wiped);
only then is it claimed (so two workers cannot both create it) and created on the person's task
target (RELIABILITY.md §3). What is not created (a failed create, no owner, a CRM whose budget
is spent) stays owed in the person record and is retried by the next cycle (`TaskPlan.outcome`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from leadsync.owner_fallback import fallback_owner_id, reassign_refused
from leadsync.person import PersonRecord, equivalent_keys
from leadsync.report import CycleReport
from leadsync.scoring import Evaluation, FollowUp, render_reasons
from leadsync.scoring.business_time import BusinessCalendar, add_working
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
    record: PersonRecord | None = None  # the person's stored record (former keys, created)


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


def task_due(follow_up: FollowUp, now: datetime, escalation_due: timedelta,
             calendar: BusinessCalendar | None = None) -> datetime:
    """When the task is due: a due-soon reminder by the SLA deadline; an escalation (the
    deadline has passed) `escalation_due` after now, so no task is born overdue: working
    time on the business calendar when the rules have one (not due at 03:00 on a Sunday)."""
    if follow_up.kind == "breached":
        if calendar is not None:
            return add_working(now, escalation_due, calendar)
        return now + escalation_due
    return max(follow_up.due, now)


def build_task(
    owed: OwedTask, owner_id: str | None, *, now: datetime, tz: tzinfo = UTC,
    escalation_due: timedelta = timedelta(hours=4), calendar: BusinessCalendar | None = None,
) -> FollowUpTask:
    """The task a rep sees: subject names person, stage and deadline; the body says why.

    Times are shown in `tz` with the zone named; `now` is the cycle's time, which an
    escalation's due date is counted from. The idempotency key is the core's, independent
    of `now`, so a retry or a later cycle finds the same task."""
    fu, ev = owed.follow_up, owed.evaluation
    due = task_due(fu, now, escalation_due, calendar)
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
                        priority="high" if fu.kind == "breached" else "normal",
                        due_date=due.astimezone(tz).date())


def _is_queue(conn: Connector, owner_id: str) -> bool:
    check = getattr(conn, "is_queue_owner", None)
    return bool(check(owner_id)) if check is not None else False


def _owner_id(owed: OwedTask, sla: SlaSettings, owners_by_email: Mapping[str, str],
              conn: Connector | None = None) -> str | None:
    """Escalations go to the escalation owner when configured; otherwise the record's owner
    unless it is a queue (a Task must be assigned to a user: Salesforce refuses a queue with
    FIELD_INTEGRITY_EXCEPTION, docs/routing.md); with no owner or a queue, the fallback owner;
    None means nobody can be assigned."""
    if owed.follow_up.kind == "breached" and sla.escalation_owner:
        esc = owners_by_email.get(sla.escalation_owner.strip().lower())
        if esc:
            return esc
    target = owed.person.task_target()
    if target.owner_id and not (conn is not None and _is_queue(conn, target.owner_id)):
        return target.owner_id
    if sla.fallback_owner:
        return owners_by_email.get(sla.fallback_owner.strip().lower())
    return None


@dataclass
class TaskOutcome:
    """Per person key: task keys seen created this cycle (key -> CRM task id, "" when only the
    ledger or a key search knows it) and the follow-up still owed."""

    created: dict[str, dict[str, str]] = field(default_factory=dict)
    pending: dict[str, FollowUp] = field(default_factory=dict)


class TaskPlan:
    """One cycle's owed tasks through the checks and the creates (see the module docstring).
    `check` and `create` run per CRM (under that CRM's budget stop); `outcome` says what was
    created and what stays owed."""

    def __init__(self, owed: Sequence[OwedTask], state: StateStore, report: CycleReport, *,
                 dry_run: bool) -> None:
        self.state, self.report, self.dry_run = state, report, dry_run
        self.items = list(owed)
        self.equivalents = {
            i.follow_up.key: equivalent_keys(i.follow_up, i.person.id, i.record, i.person.aliases)
            for i in self.items}
        self.existing: dict[str, str] = {}  # owed key -> task id ("" unknown)
        self.created: dict[str, str] = {}
        self.checked: set[str] = set()  # systems whose records were searched
        self._ledger()

    def _ledger(self) -> None:
        open_items = []
        for item in self.items:
            key = item.follow_up.key
            done = item.record.tasks_created if item.record is not None else {}
            if key in done:
                self.existing[key] = done[key]
            else:
                open_items.append(item)
        wanted = sorted({k for i in open_items for k in self.equivalents[i.follow_up.key]})
        known = self.state.known_task_keys(wanted) if wanted else set()
        for item in open_items:
            if self.equivalents[item.follow_up.key] & known:
                self.existing[item.follow_up.key] = ""
        self.report.tasks_existing += len(self.existing)

    def _open(self) -> list[OwedTask]:
        return [i for i in self.items
                if i.follow_up.key not in self.existing and i.follow_up.key not in self.created]

    def check(self, system: str, conn: Connector) -> None:
        """Search every record the open items' people have had in this CRM for their keys."""
        items = self._open()
        refs = sorted({r for i in items for r in i.person.alias_refs() if r.system == system})
        found = conn.find_task_keys(refs) if refs else set()
        self.checked.add(system)
        hits: dict[str, str] = {}
        for item in items:
            match = self.equivalents[item.follow_up.key] & found
            if match:
                self.existing[item.follow_up.key] = ""
                hits.update(dict.fromkeys(match, ""))
                hits[item.follow_up.key] = ""
                self.report.tasks_existing += 1
        if hits and not self.dry_run:
            self.state.record_task_keys(hits)

    def create(self, system: str, conn: Connector, sla: SlaSettings, *, tz: tzinfo = UTC,
               calendar: BusinessCalendar | None = None, stopped: Iterable[str] = ()) -> None:
        """Create this CRM's open tasks whose people were searched in every CRM they have
        records in (a CRM not searched may hold the task: those wait for the next cycle),
        except CRMs whose budget is `stopped` for the day: there the ledger answers, so an SLA
        task is not held back for up to a day (the one gap: a wiped ledger, and a task the
        stopped CRM holds for a person whose task target moved to the other CRM)."""
        reachable = self.checked | set(stopped)
        todo = [i for i in self._open() if i.person.task_target().ref.system == system
                and {r.system for r in i.person.alias_refs()} <= reachable]
        if not todo:
            return
        owners = {email: oid for oid, email in conn.list_owners().items()}
        tasks: list[FollowUpTask] = []
        for item in todo:
            owner_id = _owner_id(item, sla, owners, conn)
            queue = item.person.task_target().owner_id or ""
            if owner_id is None and queue and _is_queue(conn, queue):
                self._queue_owned(conn.system, item, queue)
                continue
            if owner_id is None:
                self.report.tasks_unassigned.append(item.person.id)
                log.warning("follow-up task has no owner and no fallback owner is configured",
                            extra={"person": item.person.id, "task_key": item.follow_up.key})
                continue
            if self.dry_run:
                self.report.tasks_created[conn.system] += 1
                continue
            if not self.state.claim_task_key(item.follow_up.key, CLAIM_TTL_SECONDS):
                self.report.tasks_existing += 1  # another worker is creating it right now
                continue
            tasks.append(build_task(item, owner_id, now=self.report.now, tz=tz, calendar=calendar,
                                    escalation_due=timedelta(hours=sla.escalation_due_hours)))
        if not tasks:
            return
        try:
            result = conn.create_tasks(tasks)
        except BudgetExhausted as exc:  # the tasks created before the stop are real: count them
            self._settle(conn.system, tasks_done(exc), stopped=tasks)
            raise
        result = reassign_refused(conn, tasks, result, fallback_owner_id(sla, owners))
        self._settle(conn.system, result)

    def _queue_owned(self, system: str, item: OwedTask, queue: str) -> None:
        """The task's record is owned by a queue and no fallback owner is configured: not sent
        (Salesforce would refuse it every cycle: FIELD_INTEGRITY_EXCEPTION, "Assigned To ID: id
        value of incorrect type"), reported like a task with no owner (DESIGN.md §5); it stays
        owed, and the cycle after a fallback owner is configured creates it."""
        self.report.tasks_unassigned.append(item.person.id)
        log.warning("follow-up task for a queue-owned record and no fallback owner is "
                    "configured: reported, not sent (a task must be assigned to a user)",
                    extra={"person": item.person.id, "task_key": item.follow_up.key,
                           "system": system, "owner": queue})

    def _settle(self, system: str, result: TaskResult, stopped: Sequence[FollowUpTask] = ()
                ) -> None:
        """Record and count what the CRM created; release the claims of the failed ones (they
        stay owed) and, after a budget stop (`stopped`: the tasks of the stopped call), of
        those never sent."""
        self.state.record_task_keys(result.created)
        self.created.update(result.created)
        self.report.tasks_created[system] += len(result.created)
        for key, reason in result.failed.items():
            self.state.release_task_key(key)
            self.report.task_failures.append({"task_key": key, "reason": reason})
            log.warning("follow-up task not created: stays owed", extra={"task_key": key})
        for task in stopped:
            if task.key not in result.created and task.key not in result.failed:
                self.state.release_task_key(task.key)

    def outcome(self) -> TaskOutcome:
        out = TaskOutcome()
        for item in self.items:
            key, pid = item.follow_up.key, item.person.id
            if key in self.created:
                out.created.setdefault(pid, {})[key] = self.created[key]
            elif key in self.existing:
                out.created.setdefault(pid, {})[key] = self.existing[key]
            else:
                out.pending[pid] = item.follow_up
        return out

