"""The person: durable key, aliases, stored record, previous decision (leadsync.person)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from leadsync import person
from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.person import (
    PendingTask,
    PersonRecord,
    choose_key,
    equivalent_keys,
    person_key,
    previous_decision,
)
from leadsync.scoring import FollowUp, Profile
from leadsync.scoring.sla import legacy_task_key, task_key
from leadsync.state import InMemoryStateStore

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def rec(system: str, object_type: str, rid: str, **profile: object) -> CrmPerson:
    ref = RecordRef(system, object_type, rid)  # type: ignore[arg-type]
    return CrmPerson(ref=ref, profile=Profile(id=ref.key, **profile), modified_at=T0)  # type: ignore[arg-type]


LEAD = rec("salesforce", "Lead", "00Q1", email="Taro@Example.jp")
CONTACT = rec("salesforce", "Contact", "0031", email="taro@example.jp ")
HS = rec("hubspot", "contact", "7", email="TARO@example.jp")


def test_the_key_is_the_normalised_emails_hash_and_the_same_for_every_record() -> None:
    key = person_key("  Taro@Example.JP ", "salesforce:Lead:00Q1")
    assert key.startswith("p-") and len(key) == 26 and not key.startswith("p-r-")
    assert key == person_key("taro@example.jp", "hubspot:contact:9")  # record does not matter
    assert key != person_key("jiro@example.jp", "salesforce:Lead:00Q1")
    assert "taro" not in key


def test_without_an_email_the_key_comes_from_the_first_record() -> None:
    key = person_key(None, "hubspot:contact:5")
    assert key.startswith("p-r-") and len(key) == 28
    assert key == person_key("not-an-email", "hubspot:contact:5")
    assert key != person_key(None, "hubspot:contact:6")
    with pytest.raises(ValueError, match="first record"):
        person_key(None, "")


def test_conversion_keeps_the_key_and_an_email_change_re_keys_with_the_old_key_merged() -> None:
    before = choose_key([LEAD, HS], {})
    assert before.key == person_key("taro@example.jp", "") and before.merged == ()
    aliases = {LEAD.ref.key: before.key, HS.ref.key: before.key}
    # converted: the Contact (new record) with the HubSpot contact (known) -> same person
    assert choose_key([CONTACT, HS], aliases) == person.KeyChoice(before.key)
    # the email changed: the key follows it (a cold start finds it), the old key is merged
    moved = replace(HS, profile=replace(HS.profile, email="taro@new.example"))
    assert choose_key([moved], aliases) == person.KeyChoice(
        person_key("taro@new.example", ""), (before.key,))


def test_two_stored_people_found_to_be_one_are_merged_under_the_email_key() -> None:
    no_email = rec("hubspot", "contact", "8")
    old = person_key(None, no_email.ref.key)
    email_key = person_key("taro@example.jp", "")
    choice = choose_key([LEAD, no_email], {no_email.ref.key: old, LEAD.ref.key: email_key})
    assert choice.key == email_key and choice.merged == (old,)


def test_record_json_roundtrip_and_an_earlier_versions_memory_is_read() -> None:
    record = PersonRecord(
        key="p-x", records=("hubspot:contact:7", "salesforce:Lead:00Q1"), former_keys=("p-r-y",),
        stage="mql", stage_entered_at=T0, mql_at=T0, score_at_mql=80, sla_status="due_soon",
        sla_clock_start=T0, sla_due=T0 + timedelta(hours=24), sla_check_at=T0,
        tasks_owed={"ls2:a": PendingTask("due_soon", "mql", T0, T0 + timedelta(hours=24))},
        tasks_created={"ls2:b": "00T1"}, evaluated_at=T0, model="v1")
    assert PersonRecord.from_json("p-x", record.to_json()) == record
    old = PersonRecord.from_json("p-x", {"stage": "lead", "records": ["hubspot:contact:7"],
                                         "stage_entered_at": "2026-11-20T09:00:00+00:00"})
    assert old.stage == "lead" and old.stage_entered_at == T0 and old.tasks_owed == {}


def test_our_last_decision_beats_a_crm_whose_write_was_rejected() -> None:
    """HubSpot took the re-MQL at T0+1d; Salesforce refused the write and still says recycled
    (its sales decision dated T0): the previous stage is ours, mql_at kept."""
    mql_at = T0 + timedelta(days=1)
    hs = replace(HS, profile=replace(HS.profile, stage="mql", mql_at=mql_at))
    sf = replace(LEAD, profile=replace(LEAD.profile, stage="recycled", sales_status="rejected",
                                       sales_status_at=T0))
    record = PersonRecord(key="p-x", stage="mql", stage_entered_at=mql_at, mql_at=mql_at,
                          evaluated_at=mql_at + timedelta(hours=2))
    life = previous_decision(record, [sf, hs])
    assert (life.stage, life.mql_at, life.stage_entered_at, life.source) == (
        "mql", mql_at, mql_at, "record")
    # no record (a cold start): the newest dated fact decides, not the fixed rank
    cold = previous_decision(None, [sf, hs])
    assert (cold.stage, cold.mql_at, cold.source) == ("mql", mql_at, "crm")
    # the other way round: recycled after the MQL wins
    later = replace(sf, profile=replace(sf.profile, sales_status_at=mql_at + timedelta(hours=1)))
    assert previous_decision(None, [later, hs]).stage == "recycled"


def test_a_crm_stage_dated_after_our_record_is_taken() -> None:
    """A run wrote sql and stopped before it committed its record: the CRM is newer."""
    sql_at = T0 + timedelta(hours=5)
    sf = replace(LEAD, profile=replace(LEAD.profile, stage="sql", mql_at=T0, sql_at=sql_at))
    record = PersonRecord(key="p-x", stage="mql", mql_at=T0, evaluated_at=T0)
    life = previous_decision(record, [sf])
    assert (life.stage, life.sql_at, life.source) == ("sql", sql_at, "crm-newer")


def test_equivalent_keys_cover_former_keys_and_ls1_keys_of_every_alias() -> None:
    due = T0 + timedelta(hours=24)
    fu = FollowUp(key=task_key("p-x", "mql", T0, "due_soon"), kind="due_soon", stage="mql",
                  clock_start=T0, due=due, priority="normal", owner=None)
    record = PersonRecord(key="p-x", former_keys=("p-r-old",))
    keys = equivalent_keys(fu, "p-x", record, ["salesforce:Lead:00Q1", "salesforce:Contact:003"])
    assert keys == {
        fu.key, task_key("p-r-old", "mql", T0, "due_soon"),
        legacy_task_key("salesforce:Lead:00Q1", "mql", T0, "due_soon"),
        legacy_task_key("salesforce:Contact:003", "mql", T0, "due_soon"),
        legacy_task_key("p-x", "mql", T0, "due_soon"),
    }
    assert all(k.startswith("ls1-") for k in keys - {fu.key, task_key("p-r-old", "mql", T0,
                                                                          "due_soon")})


def test_resolve_finds_the_record_through_the_alias_of_a_converted_lead() -> None:
    state = InMemoryStateStore()
    key = person_key("taro@example.jp", "")
    stored = PersonRecord(key=key, records=(LEAD.ref.key,), stage="mql", mql_at=T0,
                          evaluated_at=T0)
    person.store(state, [stored])
    assert state.get_person_keys([LEAD.ref.key]) == {LEAD.ref.key: key}
    (found,) = person.resolve(state, [[CONTACT]])
    assert found.key == key and found.record == stored
    assert found.aliases == (CONTACT.ref.key, LEAD.ref.key)
    # a merge: a no-email person stored under its record key joins the email person
    lone = rec("hubspot", "contact", "8")
    lone_key = person_key(None, lone.ref.key)
    person.store(state, [PersonRecord(key=lone_key, records=(lone.ref.key,),
                                      tasks_created={"ls2:z": "1"})])
    (merged,) = person.resolve(state, [[CONTACT, lone]])
    assert merged.key == key and merged.merged == (lone_key,)
    assert merged.record is not None and merged.record.former_keys == (lone_key,)
    assert merged.record.tasks_created == {"ls2:z": "1"} and merged.record.stage == "mql"


def test_an_open_sla_entry_left_under_a_record_key_is_replaced_by_the_person_key() -> None:
    """An earlier version kept the open-SLA set by the first record's key (a converted Lead's
    stayed forever): the next cycle that evaluates the person removes it."""
    from leadsync.pipeline import run_job
    from tests.fakes import FakeConnector
    from tests.unit.test_pipeline import Clock, demo_request, make_runtime

    clock, state = Clock(), InMemoryStateStore()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    lead = sf.add("Lead", "00Q1", email="taro@example.jp", title="営業部長", company="X KK")
    sf.add_event(lead, demo_request(clock.now - timedelta(hours=1)))
    runtime = make_runtime((hs, sf), clock, state)
    run_job(runtime, "incremental")
    key = person_key("taro@example.jp", "")
    assert state.get_pending("sla") == {key}
    state.add_pending("sla", [lead.key])  # what the earlier version left
    state.set_person_state({lead.key: {"stage": "mql", "records": [lead.key]}})
    clock.advance(hours=21)
    report = run_job(runtime, "sla")
    assert sum(report.tasks_created.values()) == 1
    assert state.get_pending("sla") == {key}
    assert state.get_pending("owed-tasks") == set()


@pytest.mark.parametrize("wipe_ledger", [False, True])
def test_a_person_re_keyed_mid_clock_gets_one_task_per_step(wipe_ledger: bool) -> None:
    """A HubSpot contact without an email becomes an MQL (key p-r-...) and gets its due-soon
    task; then its email is filled in: the key follows it (p-...) and the due-soon task of the
    same clock is recognised under the former key (by the ledger, or by the CRM check when the
    ledger lost it); the escalation comes once, under the new key."""
    from leadsync.pipeline import run_job
    from tests.fakes import FakeConnector
    from tests.unit.test_pipeline import Clock, demo_request, make_runtime

    clock, state = Clock(), InMemoryStateStore()
    hs, sf = FakeConnector("hubspot", clock), FakeConnector("salesforce", clock)
    ref = hs.add("contact", "9", title="営業部長", employees=150)
    hs.add_event(ref, demo_request(clock.now - timedelta(hours=1)))
    runtime = make_runtime((hs, sf), clock, state)
    run_job(runtime, "incremental")
    old = person_key(None, ref.key)
    assert state.get_person_keys([ref.key]) == {ref.key: old}
    clock.advance(hours=21)
    run_job(runtime, "incremental")
    assert [t.key[:4] for t in hs.tasks] == ["ls2:"]
    clock.advance(minutes=30)
    hs.touch(ref, email="Taro@Example.jp")
    if wipe_ledger:
        state._tasks.clear()  # the ledger lost the key: the CRM check must find it
    report = run_job(runtime, "incremental")
    new = person_key("taro@example.jp", "")
    assert new in report.outcomes and old not in report.outcomes
    assert len(hs.tasks) == 1 and report.tasks_existing == 1
    record = state.get_person_state([new])[new]
    assert record["former_keys"] == [old] and record["tasks_owed"] == {}
    assert state.get_person_keys([ref.key]) == {ref.key: new}
    assert state.get_pending("sla") == {new}
    clock.advance(hours=3)  # past the deadline
    run_job(runtime, "incremental")
    assert [t.priority for t in hs.tasks] == ["normal", "high"]
    assert len({t.key for t in hs.tasks}) == 2
