"""Hand edits of leadsync's fields and of HubSpot `lifecyclestage`, against the sandbox through the
real SDKs (hubspot-api-client, simple-salesforce) and connectors.

- A hand-edited own field (score 999, stage customer) is restored by the next incremental run,
  counted as drift per CRM and field, and never adopted as the person's stage.
- A human's forward `lifecyclestage` move is a fact for incremental and full runs alike; a
  backward one is restored by both (clear, then set).
- A cycle with no hand edits writes nothing: our own writes are no change (no echo).

Every cycle runs on one frozen clock, so nothing but the hand edits can change an evaluation and
every figure is exact. The sandbox's own write counters check the report.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hubspot.crm.contacts import SimplePublicObjectInput

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.connectors.base import RecordRef
from leadsync.person import decode_records
from leadsync.pipeline import run_job
from leadsync.report import CycleReport
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.state import InMemoryStateStore, StateStore
from tests.redis_support import redis_store
from tests.sandbox_support import hubspot_client, salesforce

PEOPLE = 150
SEED = 11
HS_OWN = ["leadsync_score", "leadsync_stage", "leadsync_reasons", "lifecyclestage"]
SF_OWN = ["LeadSync_Score__c", "LeadSync_Stage__c", "LeadSync_Reasons__c"]


@dataclass
class World:
    sb: Sandbox
    state: StateStore
    rt: Runtime
    first: CycleReport
    hs: Any  # hubspot contacts basic_api
    sf: Any  # simple_salesforce.Salesforce

    def cycle(self, job: str) -> tuple[CycleReport, dict[str, int]]:
        """One run, and the records the sandbox counted written during it, per CRM."""
        self.sb.reset_stats()
        report = run_job(self.rt, job)  # type: ignore[arg-type]
        stats = self.sb.stats()
        return report, {s: stats[s]["records_written"] for s in ("hubspot", "salesforce")}

    def people(self, stages: Sequence[str], systems: Sequence[str]) -> list[list[RecordRef]]:
        """Records of the people in one of `stages` made of exactly `systems` (sorted)."""
        found = []
        stored = decode_records(self.state.get_person_state(sorted(self.first.outcomes)))
        for pid, (stage, _sla, _score) in sorted(self.first.outcomes.items()):
            refs = [RecordRef.parse(k) for k in stored[pid].records]
            if stage in stages and sorted(r.system for r in refs) == sorted(systems):
                found.append(refs)
        return found

    def hs_get(self, ref: RecordRef) -> dict[str, str | None]:
        props = self.hs.get_by_id(ref.id, properties=HS_OWN).properties
        return {name: props.get(name) for name in HS_OWN}

    def hs_set(self, ref: RecordRef, **props: str) -> None:
        self.hs.update(ref.id, SimplePublicObjectInput(properties=props))

    def sf_get(self, ref: RecordRef) -> dict[str, object]:
        raw = getattr(self.sf, ref.object_type).get(ref.id)
        return {name: raw.get(name) for name in SF_OWN}

    def sf_set(self, ref: RecordRef, **fields: object) -> None:
        getattr(self.sf, ref.object_type).update(ref.id, fields)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    """The in-memory store, and the Redis store on LEADSYNC_TEST_REDIS_URL (own namespace)."""
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    with redis_store("leadsync-drift-test") as state:
        yield state


@pytest.fixture
def world(store: StateStore) -> Iterator[World]:
    with Sandbox(contacts=PEOPLE, seed=SEED) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        frozen: datetime = sb.now()
        settings = load_settings().model_copy(update={"redis_url": None})
        state = store
        rt = build_runtime(settings, state=state, clock=lambda: frozen)
        first = run_job(rt, "incremental")
        assert first.stopped_reason is None and not first.failed
        yield World(sb, state, rt, first, hubspot_client(sb).crm.contacts.basic_api,
                    salesforce(sb))


def test_a_cycle_without_hand_edits_reports_no_drift_and_writes_nothing(world: World) -> None:
    for job in ("incremental", "full"):
        report, written = world.cycle(job)
        assert report.drift == {} and report.lifecycle_adopted == {}
        assert report.records_written == {} and written == {"hubspot": 0, "salesforce": 0}
        assert report.tasks_created == {}
    incremental, _ = world.cycle("incremental")
    assert incremental.people == 0  # our own writes are no change: nobody is evaluated
    read = sum(incremental.records_read.values())
    assert read > 0 and incremental.skipped_unchanged == read


def test_hand_edited_score_and_stage_are_restored_counted_and_never_adopted(world: World) -> None:
    (hs_ref,) = world.people(["lead"], ["hubspot"])[0]
    (sf_ref,) = world.people(["lead"], ["salesforce"])[0]
    hs_before, sf_before = world.hs_get(hs_ref), world.sf_get(sf_ref)
    assert hs_before["leadsync_stage"] == "lead" and hs_before["lifecyclestage"] == "lead"
    assert sf_before["LeadSync_Stage__c"] == "lead"
    world.hs_set(hs_ref, leadsync_score="999", leadsync_stage="customer")
    world.sf_set(sf_ref, LeadSync_Score__c=999, LeadSync_Stage__c="customer")

    report, written = world.cycle("incremental")
    assert report.drift == {"hubspot": {"score": 1, "stage": 1},
                            "salesforce": {"score": 1, "stage": 1}}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert written == {"hubspot": 1, "salesforce": 1}
    assert report.people == 2 and report.stages == {"lead": 2}  # customer was not adopted
    assert report.transitions == {} and report.lifecycle_adopted == {}
    assert world.hs_get(hs_ref) == hs_before  # lifecyclestage was not moved to customer
    assert world.sf_get(sf_ref) == sf_before

    again, written = world.cycle("incremental")  # restored values are our own: no echo
    assert again.drift == {} and again.records_written == {} and again.people == 0
    assert written == {"hubspot": 0, "salesforce": 0}

    world.hs_set(hs_ref, leadsync_stage="customer")  # the full run applies the same policy
    full, written = world.cycle("full")
    assert full.drift == {"hubspot": {"stage": 1}} and full.records_written == {"hubspot": 1}
    assert written == {"hubspot": 1, "salesforce": 0}
    assert full.stages == world.first.stages
    assert world.hs_get(hs_ref) == hs_before


def test_a_forward_lifecyclestage_move_is_a_fact_for_incremental_and_full_runs(
        world: World) -> None:
    (by_incremental,), (by_full,) = world.people(["lead"], ["hubspot"])[:2]
    world.hs_set(by_incremental, lifecyclestage="opportunity")  # a rep moves it on by hand

    report, written = world.cycle("incremental")
    assert report.lifecycle_adopted == {"hubspot": 1} and report.drift == {}
    assert report.records_written == {"hubspot": 1} and written["hubspot"] == 1
    assert report.stages == {"opportunity": 1}
    after = world.hs_get(by_incremental)
    assert after["leadsync_stage"] == "opportunity" and after["lifecyclestage"] == "opportunity"

    full, written = world.cycle("full")  # the nightly run keeps it: nothing to write anywhere
    assert full.records_written == {} and written == {"hubspot": 0, "salesforce": 0}
    assert full.drift == {} and full.lifecycle_adopted == {}
    assert full.stages["opportunity"] == world.first.stages["opportunity"] + 1
    assert world.hs_get(by_incremental) == after

    world.hs_set(by_full, lifecyclestage="customer")
    full, written = world.cycle("full")
    assert full.lifecycle_adopted == {"hubspot": 1} and full.drift == {}
    assert full.records_written == {"hubspot": 1} and written["hubspot"] == 1
    assert full.stages["customer"] == world.first.stages["customer"] + 1
    kept = world.hs_get(by_full)
    assert kept["leadsync_stage"] == "customer" and kept["lifecyclestage"] == "customer"
    again, written = world.cycle("incremental")
    assert again.records_written == {} and again.lifecycle_adopted == {}
    assert world.hs_get(by_full) == kept


def test_a_backward_lifecyclestage_move_is_restored_by_incremental_and_full_runs(
        world: World) -> None:
    qualified = [refs for refs in world.people(["mql", "sql"], ["hubspot", "salesforce"])]
    assert len(qualified) >= 2
    for refs, job in zip(qualified[:2], ("incremental", "full"), strict=True):
        hs_ref = next(r for r in refs if r.system == "hubspot")
        before = world.hs_get(hs_ref)
        assert before["lifecyclestage"] in ("marketingqualifiedlead", "salesqualifiedlead")
        world.hs_set(hs_ref, lifecyclestage="")  # HubSpot refuses a backward move uncleared
        world.hs_set(hs_ref, lifecyclestage="lead")

        report, written = world.cycle(job)
        assert report.drift == {"hubspot": {"lifecyclestage": 1}}, job
        assert report.lifecycle_adopted == {} and report.stages == (
            world.first.stages if job == "full" else {before["leadsync_stage"]: 1})
        assert report.records_written == {"hubspot": 1}, job
        assert written == {"hubspot": 1, "salesforce": 0}, job  # forward again: one request
        assert world.hs_get(hs_ref) == before, job


def test_after_a_wiped_store_a_hand_edit_is_still_restored_but_not_counted(world: World) -> None:
    """Redis is a cache: with no memory of what leadsync wrote, the next cycle compares with
    what it would write now, puts the score back, and counts no drift (it cannot tell)."""
    (hs_ref,) = world.people(["lead"], ["hubspot"])[0]
    before = world.hs_get(hs_ref)
    world.hs_set(hs_ref, leadsync_score="999")
    world.state.clear()
    report, written = world.cycle("incremental")
    assert report.drift == {} and report.records_written == {"hubspot": 1}
    assert written == {"hubspot": 1, "salesforce": 0}
    assert report.tasks_created == {}  # the tasks are found in the CRMs, not created again
    assert world.hs_get(hs_ref) == before
    again, written = world.cycle("incremental")  # and the memory is back: no echo
    assert again.records_written == {} and again.people == 0
