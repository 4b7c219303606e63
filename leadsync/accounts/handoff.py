"""The MQA hand-off: one task for the account owner per MQA episode (docs/accounts.md).

When an account becomes an MQA (`AccountEvaluation.became_mqa`, or an MQA whose task is not
known yet), its owner gets one task: `[LeadSync] MQA: <account> — 4 people engaged: …`. The
idempotency is the people's (RELIABILITY.md §3, `followups.TaskPlan`): the key is derived from
the account key and the episode's start (`mqa_at`, itself read back from the CRM's MQA-at field
on a cold start), so it is the same in every run; a key is skipped when the ledger knows it,
when a `[LeadSync]` task carrying it exists on any of the account's member records in the
target CRM (the ledger may have been wiped), or when another worker holds its claim; the
ledger records what was created and a failed create releases its claim for the next cycle.

The task goes where sales works: to Salesforce when the account has a Salesforce Account and an
engaged person has a Salesforce record, else to HubSpot. It is attached to the most engaged
person's record there (a task must name a person in both CRMs) and assigned to the account's
owner in that CRM; without an owner the CRM's default applies (the integration user).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from leadsync.connectors.base import (
    BudgetExhausted,
    Connector,
    CrmAccount,
    FollowUpTask,
    RecordRef,
    tasks_done,
)
from leadsync.scoring import render_reasons
from leadsync.scoring.accounts import AccountEvaluation
from leadsync.state import StateStore

log = logging.getLogger("leadsync.accounts.handoff")
CLAIM_TTL_SECONDS = 600.0
TASK_DUE = timedelta(days=1)
_SHOWN_PEOPLE = 3


def mqa_task_key(account_key: str, mqa_at: datetime) -> str:
    """The idempotency key of an MQA episode's task (stable across runs and cold starts)."""
    start = mqa_at.astimezone(UTC).replace(microsecond=mqa_at.microsecond // 1000 * 1000)
    digest = hashlib.sha256(f"{account_key}|mqa|{start.isoformat()}".encode()).hexdigest()
    return "mqa-" + digest[:24]


@dataclass(frozen=True, slots=True)
class Handoff:
    """One MQA account's task: where it goes (`target`, `owner_id`) and which records the CRM
    check searches (`search`: every member record in the target CRM)."""

    account_key: str
    account_name: str
    evaluation: AccountEvaluation
    target: RecordRef
    owner_id: str | None
    search: tuple[RecordRef, ...]

    @property
    def key(self) -> str:
        if self.evaluation.mqa_at is None:
            raise ValueError(f"account {self.account_key}: not an MQA, no hand-off task")
        return mqa_task_key(self.account_key, self.evaluation.mqa_at)


def choose_target(evaluation: AccountEvaluation, accounts: Sequence[CrmAccount],
                  member_records: Mapping[str, Sequence[RecordRef]]
                  ) -> tuple[RecordRef, str | None, tuple[RecordRef, ...]] | None:
    """(the record to attach the task to, the owner id there, the records to search) for an
    MQA account, or None when no engaged person has a record in a CRM holding the account."""
    for system in ("salesforce", "hubspot"):
        owned = [a for a in accounts if a.ref.system == system]
        if not owned:
            continue
        records = [r for m in evaluation.engaged for r in member_records.get(m.key, ())
                   if r.system == system]
        if records:
            everyone = tuple(sorted({r for refs in member_records.values() for r in refs
                                     if r.system == system}, key=lambda r: r.key))
            owner = next((a.owner_id for a in sorted(owned, key=lambda a: a.ref.id)
                          if a.owner_id), None)
            return records[0], owner, everyone
    return None


def build_mqa_task(handoff: Handoff, now: datetime) -> FollowUpTask:
    """`[LeadSync] MQA: <account> — 4 people engaged: 山田 太郎, 佐藤 花子, 鈴木 一郎, …`"""
    ev = handoff.evaluation
    names = [m.label or "?" for m in ev.engaged]
    shown = ", ".join(names[:_SHOWN_PEOPLE]) + (", …" if len(names) > _SHOWN_PEOPLE else "")
    people = "person" if len(names) == 1 else "people"
    subject = f"[LeadSync] MQA: {handoff.account_name} — {len(names)} {people} engaged: {shown}"
    since = ev.mqa_at or now
    body = "\n".join([
        f"Account score {ev.score} (MQA since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC).",
        f"Why: {render_reasons(ev.reasons, 1000)}",
        "Engaged: " + "; ".join(f"{n} ({m.engagement})" for n, m in zip(names, ev.engaged,
                                                                        strict=True)),
        f"Model: {ev.model}",
        f"leadsync-key: {handoff.key}",
    ])
    return FollowUpTask(key=handoff.key, person=handoff.target, owner_id=handoff.owner_id,
                        subject=subject[:255], body=body, due=now + TASK_DUE, priority="normal")


@dataclass(slots=True)
class HandoffResult:
    created: dict[str, str] = field(default_factory=dict)  # key -> CRM task id
    known: set[str] = field(default_factory=set)  # ledger or CRM check: already there
    busy: set[str] = field(default_factory=set)  # another worker holds the claim
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason (retried next cycle)


def hand_off(handoffs: Sequence[Handoff], connectors: Mapping[str, Connector],
             state: StateStore, now: datetime, *, dry_run: bool = False) -> HandoffResult:
    """Create each MQA task at most once (module doc). With `dry_run`, nothing is claimed
    or created: `created` lists the keys that would be, with an empty id."""
    result = HandoffResult()
    unique = {h.key: h for h in handoffs}
    result.known |= state.known_task_keys(sorted(unique))
    for system, conn in connectors.items():
        todo = [h for k, h in unique.items() if h.target.system == system and k not in result.known]
        if not todo:
            continue
        found = conn.find_task_keys(sorted({r for h in todo for r in h.search},
                                           key=lambda r: r.key)) & {h.key for h in todo}
        if found and not dry_run:
            state.record_task_keys(dict.fromkeys(sorted(found), "found"))
        result.known |= found
        todo = [h for h in todo if h.key not in found]
        if dry_run:
            result.created.update(dict.fromkeys((h.key for h in todo), ""))
            continue
        claimed = [h for h in todo if state.claim_task_key(h.key, CLAIM_TTL_SECONDS)]
        result.busy |= {h.key for h in todo} - {h.key for h in claimed}
        if claimed:
            _create(conn, [build_mqa_task(h, now) for h in claimed], state, result)
    log.info("mqa hand-off", extra={"tasks_created": len(result.created),
                                    "tasks_known": len(result.known),
                                    "tasks_failed": len(result.failed)})
    return result


def _create(conn: Connector, tasks: list[FollowUpTask], state: StateStore,
            result: HandoffResult) -> None:
    try:
        done = conn.create_tasks(tasks)
    except BudgetExhausted as exc:
        done = tasks_done(exc)
        state.record_task_keys(done.created)
        result.created.update(done.created)
        for task in tasks:
            if task.key not in done.created:
                state.release_task_key(task.key)
                result.failed[task.key] = "API budget spent"
        return
    state.record_task_keys(done.created)
    result.created.update(done.created)
    for task in tasks:
        if task.key not in done.created:
            state.release_task_key(task.key)
            result.failed[task.key] = done.failed.get(task.key, "not confirmed")
