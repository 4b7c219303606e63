"""The create-once loop (leadsync.connectors.creates) against a fake CRM that can commit a
batch and lose the reply, fail before processing, or fail the read-back."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from leadsync.connectors.base import (
    BudgetExhausted,
    FollowUpTask,
    RecordRef,
    TaskResult,
    TransientError,
)
from leadsync.connectors.creates import create_in_chunks, create_once
from leadsync.connectors.http import OutcomeUnknown

WHO = RecordRef("hubspot", "contact", "1")


def _tasks(n: int) -> list[FollowUpTask]:
    return [FollowUpTask(key=f"k{i}", person=WHO, owner_id=None, subject="[LeadSync] x",
                         body="x", due=datetime(2026, 11, 21, tzinfo=UTC), priority="normal")
            for i in range(n)]  # fmt: skip


@dataclass
class FakeCrm:
    """Each send follows the next script step: "ok" (commit, answer), "lost" (commit all,
    lose the reply), "half" (commit the first half, then the connection breaks), "refused"
    (nothing happens: a rate-limited 429 until the policy gave up). `read_fails` makes that
    many read-backs raise."""

    script: list[str]
    read_fails: int = 0
    held: Counter[str] = field(default_factory=Counter)
    sent: list[list[str]] = field(default_factory=list)
    reads: int = 0

    def send(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        step = self.script.pop(0)
        self.sent.append([t.key for t in tasks])
        if step == "refused":
            raise TransientError("create: gave up after 6 attempts (429 TEN_SECONDLY_ROLLING)")
        committed = tasks[: len(tasks) // 2] if step == "half" else tasks
        for task in committed:
            self.held[task.key] += 1
        if step != "ok":
            raise OutcomeUnknown("create", "connection: ProtocolError")
        return TaskResult(created={t.key: f"id-{t.key}" for t in tasks})

    def existing(self, tasks: Sequence[FollowUpTask]) -> Mapping[str, str]:
        self.reads += 1
        if self.read_fails:
            self.read_fails -= 1
            raise TransientError("tasks search: gave up after 6 attempts (HTTP 503)")
        return {k: f"id-{k}" for k in self.held}

    def run(self, tasks: list[FollowUpTask], rounds: int = 3) -> TaskResult:
        return create_once("create", tasks, self.send, self.existing, rounds=rounds)


def test_a_lost_reply_is_settled_by_one_read_back_without_a_second_send() -> None:
    crm = FakeCrm(["lost"])
    result = crm.run(_tasks(6))
    assert result.created == {f"k{i}": f"id-k{i}" for i in range(6)} and result.failed == {}
    assert crm.held == Counter({f"k{i}": 1 for i in range(6)})
    assert len(crm.sent) == 1 and crm.reads == 1


def test_only_what_is_missing_is_sent_again() -> None:
    crm = FakeCrm(["half", "ok"])
    result = crm.run(_tasks(6))
    assert crm.sent == [[f"k{i}" for i in range(6)], ["k3", "k4", "k5"]]
    assert crm.held == Counter({f"k{i}": 1 for i in range(6)})
    assert sorted(result.created) == [f"k{i}" for i in range(6)] and result.failed == {}


def test_rounds_are_bounded_and_what_stays_unknown_is_failed() -> None:
    crm = FakeCrm(["half", "half", "half", "ok"])
    result = crm.run(_tasks(8), rounds=3)
    assert crm.sent == [[f"k{i}" for i in range(8)], ["k4", "k5", "k6", "k7"], ["k6", "k7"]]
    assert crm.reads == 3  # the last unknown send is read back too: `created` stays truthful
    assert sorted(result.created) == [f"k{i}" for i in range(7)]
    assert list(result.failed) == ["k7"] and "after 3 sends" in result.failed["k7"]
    assert crm.held == Counter({f"k{i}": 1 for i in range(7)})
    assert crm.script == ["ok"]  # never a fourth send


def test_a_failed_read_back_reports_the_batch_failed_and_sends_nothing_again() -> None:
    crm = FakeCrm(["lost", "ok"], read_fails=1)
    result = crm.run(_tasks(4))
    assert result.created == {}
    assert sorted(result.failed) == ["k0", "k1", "k2", "k3"]
    assert "read-back failed" in result.failed["k0"] and "HTTP 503" in result.failed["k0"]
    assert len(crm.sent) == 1 and crm.held == Counter({f"k{i}": 1 for i in range(4)})


def test_a_read_back_failing_after_a_partial_commit_keeps_what_was_settled() -> None:
    crm = FakeCrm(["half", "half"])
    tasks = _tasks(4)
    first = crm.run(tasks[:4], rounds=1)
    assert sorted(first.created) == ["k0", "k1"] and sorted(first.failed) == ["k2", "k3"]
    crm.read_fails = 1
    second = crm.run([t for t in tasks if t.key in first.failed])
    assert second.created == {} and sorted(second.failed) == ["k2", "k3"]
    assert crm.held == Counter({"k0": 1, "k1": 1, "k2": 1})  # k2 exists: the next cycle finds it


def test_a_create_refused_before_processing_is_failed_without_a_read_back() -> None:
    crm = FakeCrm(["refused"])
    result = crm.run(_tasks(3))
    assert result.created == {} and sorted(result.failed) == ["k0", "k1", "k2"]
    assert "429" in result.failed["k0"] and crm.reads == 0 and not crm.held


def test_per_record_failures_of_an_answered_send_are_passed_on() -> None:
    def send(tasks: Sequence[FollowUpTask]) -> TaskResult:
        return TaskResult(created={"k0": "id-0"}, failed={"k1": "CONFLICT: locked"})

    def existing(tasks: Sequence[FollowUpTask]) -> Mapping[str, str]:
        raise AssertionError("no read-back after an answered send")

    result = create_once("create", _tasks(2), send, existing, rounds=3)
    assert result.created == {"k0": "id-0"} and result.failed == {"k1": "CONFLICT: locked"}


@pytest.mark.parametrize("rounds", [0, 1])
def test_at_least_one_send(rounds: int) -> None:
    crm = FakeCrm(["lost"])
    result = crm.run(_tasks(2), rounds=rounds)
    assert sorted(result.created) == ["k0", "k1"] and len(crm.sent) == 1


def test_create_in_chunks_fails_foreign_and_naive_tasks_before_any_call() -> None:
    good = _tasks(3)
    foreign = FollowUpTask(key="sf", person=RecordRef("salesforce", "Lead", "00Q1"), owner_id=None,
                           subject="x", body="x", due=datetime(2026, 11, 21, tzinfo=UTC),
                           priority="normal")  # fmt: skip
    naive = FollowUpTask(key="naive", person=WHO, owner_id=None, subject="x", body="x",
                         due=datetime(2026, 11, 21), priority="normal")  # fmt: skip
    crm = FakeCrm(script=["ok", "ok"])
    result = create_in_chunks("create", "hubspot", [foreign, *good, naive], crm.send,
                              crm.existing, chunk=2, rounds=3)  # fmt: skip
    assert sorted(result.created) == ["k0", "k1", "k2"]
    assert sorted(result.failed) == ["naive", "sf"]
    assert result.failed["sf"] == "not a hubspot record or naive due date"
    assert crm.sent == [["k0", "k1"], ["k2"]]


def test_create_in_chunks_budget_stop_carries_the_earlier_chunks() -> None:
    crm = FakeCrm(script=["ok"])

    def send(tasks: Sequence[FollowUpTask]) -> TaskResult:
        if crm.script:
            return crm.send(tasks)
        raise BudgetExhausted("daily budget spent")

    with pytest.raises(BudgetExhausted) as info:
        create_in_chunks("create", "hubspot", _tasks(5), send, crm.existing, chunk=2, rounds=3)
    assert info.value.done is not None
    assert sorted(info.value.done.created) == ["k0", "k1"]
    assert crm.sent == [["k0", "k1"]]
