"""What a cycle did, as numbers a person (or a test) can read at a glance."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_LISTED_FAILURES = 50


@dataclass
class CycleReport:
    job: str
    dry_run: bool
    now: datetime
    people: int = 0  # persons evaluated
    records_read: Counter[str] = field(default_factory=Counter)  # by system
    skipped_unchanged: int = 0  # changed records whose inputs did not change (our own echoes)
    stale_skipped: int = 0  # persons a newer evaluation already wrote
    stages: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)  # "lead->mql"
    sla: Counter[str] = field(default_factory=Counter)
    records_written: Counter[str] = field(default_factory=Counter)
    records_unchanged: Counter[str] = field(default_factory=Counter)
    # hand edits of leadsync's own fields restored by this cycle: system -> field -> records
    drift: dict[str, Counter[str]] = field(default_factory=dict)
    lifecycle_adopted: Counter[str] = field(default_factory=Counter)  # hand moves kept, by CRM
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)
    tasks_created: Counter[str] = field(default_factory=Counter)
    tasks_existing: int = 0  # owed tasks found in the ledger or the CRM: not created again
    tasks_unassigned: list[str] = field(default_factory=list)  # person ids with no owner at all
    task_failures: list[dict[str, str]] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    stopped_reason: str | None = None
    budget_stopped: list[str] = field(default_factory=list)  # CRMs whose API budget ran out
    resumed: bool = False  # a paged people read went on after a killed run's last page
    deferred: int = 0  # people left for next cycle: a record of theirs sat in a stopped CRM
    # routing (docs/routing.md): people given an owner, by rule id ("fallback": the fallback
    # owner), and person keys that needed an owner and got none
    routed: Counter[str] = field(default_factory=Counter)
    routing_unrouted: list[str] = field(default_factory=list)
    # the account phase (docs/accounts.md): accounts evaluated, of them MQAs, Account/company
    # records written (by system), MQA tasks created (by system; also in tasks_created) and
    # found already there
    accounts_evaluated: int = 0
    accounts_mqa: int = 0
    account_records_written: Counter[str] = field(default_factory=Counter)
    mqa_tasks_created: Counter[str] = field(default_factory=Counter)
    mqa_tasks_existing: int = 0
    # cycles whose account phase evaluated nothing (a CRM's budget stopped its account reads;
    # this cycle's people are retried next cycle), and stored members a full run no longer
    # found in either CRM (dropped from their accounts)
    accounts_not_evaluated: int = 0
    account_members_pruned: int = 0
    accounts_deleted: int = 0  # accounts whose every CRM record was deleted: left the store
    # the highest-scoring accounts of the cycle (`accounts.phase.TOP_ACCOUNTS`), with reasons
    top_accounts: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    # person id -> (stage, sla status, score) of everyone evaluated; not serialised (size)
    outcomes: dict[str, tuple[str, str, int]] = field(default_factory=dict, repr=False)
    # person key -> its primary record's key, of everyone evaluated; not serialised (size)
    primary: dict[str, str] = field(default_factory=dict, repr=False)
    # whether the cycle fills `outcomes` and `primary` (the demo folds them; `leadsync sync`
    # and the workers do not ask: their memory stays flat in the number of people)
    keep_people: bool = field(default=True, repr=False)

    @property
    def stage_changes(self) -> int:
        return sum(self.transitions.values())

    def add_failure(self, record_key: str, reason: str) -> None:
        system = record_key.split(":", 1)[0]
        self.failed[system] += 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append({"record": record_key, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "people": self.people,
            "records_read": dict(self.records_read),
            "skipped_unchanged": self.skipped_unchanged,
            "stale_skipped": self.stale_skipped,
            "stages": dict(self.stages),
            "stage_changes": self.stage_changes,
            "transitions": dict(self.transitions),
            "sla": dict(self.sla),
            "records_written": dict(self.records_written),
            "records_unchanged": dict(self.records_unchanged),
            "drift": {system: dict(fields) for system, fields in sorted(self.drift.items())},
            "lifecycle_adopted": dict(self.lifecycle_adopted),
            "failed": dict(self.failed),
            "failures": list(self.failures),
            "tasks_created": dict(self.tasks_created),
            "tasks_existing": self.tasks_existing,
            "tasks_unassigned": list(self.tasks_unassigned),
            "task_failures": list(self.task_failures),
            "api_calls": dict(self.api_calls),
            "stopped_reason": self.stopped_reason,
            "budget_stopped": list(self.budget_stopped),
            "deferred": self.deferred,
            "routed": dict(self.routed),
            "routing_unrouted": list(self.routing_unrouted),
            "accounts": {"evaluated": self.accounts_evaluated, "mqa": self.accounts_mqa,
                         "not_mqa": self.accounts_evaluated - self.accounts_mqa},
            "accounts_evaluated": self.accounts_evaluated,
            "accounts_mqa": self.accounts_mqa,
            "account_records_written": dict(self.account_records_written),
            "mqa_tasks_created": dict(self.mqa_tasks_created),
            "mqa_tasks_existing": self.mqa_tasks_existing,
            "accounts_not_evaluated": self.accounts_not_evaluated,
            "account_members_pruned": self.account_members_pruned,
            "accounts_deleted": self.accounts_deleted,
            "top_accounts": list(self.top_accounts),
            "top": list(self.top),
            "duration_s": round(self.duration_s, 3),
        }
