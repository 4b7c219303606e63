"""The MQA hand-off: one task per MQA episode, with the people's idempotency
(leadsync.accounts.handoff, docs/accounts.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadsync.accounts.handoff import (
    Handoff,
    build_mqa_task,
    choose_target,
    hand_off,
    mqa_task_key,
)
from leadsync.connectors.base import CrmAccount, FollowUpTask, RecordRef, TaskResult
from leadsync.scoring import Reason
from leadsync.scoring.accounts import AccountEvaluation, Member
from leadsync.state import InMemoryStateStore
from tests.fakes import FakeConnector

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
EPISODE = NOW - timedelta(hours=2)
PEOPLE = [Member("p-1", 20, 60, "director", NOW, "山田 太郎"),
          Member("p-2", 10, 40, "staff", NOW, "佐藤 花子"),
          Member("p-3", 5, 30, "staff", NOW, "鈴木 一郎"),
          Member("p-4", 0, 20, "manager", NOW, "Jane Doe")]


def evaluation(mqa_at: datetime | None = EPISODE, people: int = 4) -> AccountEvaluation:
    return AccountEvaluation(
        key="a-1", score=80, score_raw=80.0,
        reasons=(Reason("acct-engaged-3", "3名以上がエンゲージ", 40.0),
                 Reason("acct-buying-group", "部長以上がエンゲージ", 20.0)),
        engaged=tuple(PEOPLE[:people]), mqa=mqa_at is not None, mqa_at=mqa_at,
        became_mqa=mqa_at == NOW, model="default-2026.11", members=5)


def crm() -> tuple[FakeConnector, list[RecordRef]]:
    conn = FakeConnector("salesforce", lambda: NOW)
    refs = [conn.add("Contact", f"003{i}", email=f"p{i}@sample.co.jp") for i in range(1, 6)]
    return conn, refs


def handoff(refs: list[RecordRef], ev: AccountEvaluation | None = None) -> Handoff:
    return Handoff("a-1", "サンプル", ev or evaluation(), refs[0], "005R", tuple(refs))


def test_the_task_names_the_account_and_its_engaged_people() -> None:
    _, refs = crm()
    task = build_mqa_task(handoff(refs), NOW)
    assert task.subject == ("[LeadSync] MQA: サンプル — 4 people engaged: 山田 太郎, 佐藤 花子, "
                            "鈴木 一郎, …")
    assert (task.person, task.owner_id, task.due, task.priority) == (
        refs[0], "005R", NOW + timedelta(days=1), "normal")
    assert task.body.splitlines() == [
        "Account score 80 (MQA since 2026-12-01 07:00 UTC).",
        "Why: +40 3名以上がエンゲージ; +20 部長以上がエンゲージ",
        "Engaged: 山田 太郎 (60); 佐藤 花子 (40); 鈴木 一郎 (30); Jane Doe (20)",
        "Model: default-2026.11",
        f"leadsync-key: {mqa_task_key('a-1', EPISODE)}"]
    one = build_mqa_task(handoff(refs, evaluation(people=1)), NOW)
    assert one.subject == "[LeadSync] MQA: サンプル — 1 person engaged: 山田 太郎"


def test_one_task_per_episode_across_runs_a_wiped_ledger_and_a_new_episode() -> None:
    conn, refs = crm()
    state = InMemoryStateStore()
    first = hand_off([handoff(refs), handoff(refs)], {"salesforce": conn}, state, NOW)
    assert (len(first.created), first.known, first.failed) == (1, set(), {})
    assert len(conn.tasks) == 1 and conn.tasks[0].key == mqa_task_key("a-1", EPISODE)
    calls = conn.calls
    again = hand_off([handoff(refs)], {"salesforce": conn}, state, NOW + timedelta(hours=1))
    assert (again.created, again.known) == ({}, {mqa_task_key("a-1", EPISODE)})
    assert conn.calls == calls  # the ledger answered: no CRM check, no create
    wiped = InMemoryStateStore()  # Redis lost: the CRM check finds the task on a member
    cold = hand_off([handoff(refs[1:] + refs[:1])], {"salesforce": conn}, wiped, NOW)
    assert (cold.created, len(conn.tasks)) == ({}, 1)
    assert wiped.known_task_keys([mqa_task_key("a-1", EPISODE)]) == {
        mqa_task_key("a-1", EPISODE)}  # learned back into the ledger
    later = NOW + timedelta(days=20)  # the episode ended and a new one started
    new = hand_off([handoff(refs, evaluation(mqa_at=later))], {"salesforce": conn}, state, later)
    assert len(new.created) == 1 and len(conn.tasks) == 2


def test_a_claimed_key_is_left_to_its_worker_and_a_failed_create_is_retried() -> None:
    conn, refs = crm()
    state = InMemoryStateStore()
    key = mqa_task_key("a-1", EPISODE)
    assert state.claim_task_key(key, 60)
    busy = hand_off([handoff(refs)], {"salesforce": conn}, state, NOW)
    assert (busy.busy, busy.created, conn.tasks) == ({key}, {}, [])
    state.release_task_key(key)

    class Refusing(FakeConnector):
        def create_tasks(self, tasks: list[FollowUpTask]) -> TaskResult:  # type: ignore[override]
            self.calls += 1
            return TaskResult(failed={t.key: "INVALID_CROSS_REFERENCE_KEY" for t in tasks})

    refusing = Refusing("salesforce", lambda: NOW)
    refused = hand_off([handoff(refs)], {"salesforce": refusing}, state, NOW)
    assert refused.failed == {key: "INVALID_CROSS_REFERENCE_KEY"}
    retried = hand_off([handoff(refs)], {"salesforce": conn}, state, NOW)  # claim released
    assert list(retried.created) == [key] and len(conn.tasks) == 1


def test_dry_run_claims_and_creates_nothing() -> None:
    conn, refs = crm()
    state = InMemoryStateStore()
    result = hand_off([handoff(refs)], {"salesforce": conn}, state, NOW, dry_run=True)
    assert result.created == {mqa_task_key("a-1", EPISODE): ""} and conn.tasks == []
    assert state.claim_task_key(mqa_task_key("a-1", EPISODE), 60)


def test_the_task_goes_to_salesforce_when_sales_holds_the_account_there() -> None:
    sf_acc = CrmAccount(RecordRef("salesforce", "Account", "001A"), "S", owner_id="005R")
    hs_acc = CrmAccount(RecordRef("hubspot", "company", "11"), "S", owner_id="77")
    sf1, hs1 = RecordRef("salesforce", "Contact", "0031"), RecordRef("hubspot", "contact", "1")
    hs5 = RecordRef("hubspot", "contact", "5")
    members = {"p-1": [hs1, sf1], "p-2": [], "p-5": [hs5]}  # p-5 is a member, not engaged
    ev = evaluation(people=2)
    assert choose_target(ev, [hs_acc, sf_acc], members) == (sf1, "005R", (sf1,))
    assert choose_target(ev, [hs_acc], members) == (hs1, "77", (hs1, hs5))
    assert choose_target(ev, [sf_acc], {"p-1": [hs1]}) is None  # no engaged Salesforce record
