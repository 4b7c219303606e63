"""leadsync.drift: what leadsync last wrote to its own fields, hand edits of them, and the
HubSpot lifecyclestage policy (pure parts, and the memory over the in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.config.settings import HubSpotFieldNames, SalesforceFieldNames
from leadsync.connectors.base import CrmPerson, FieldUpdate, RecordRef
from leadsync.connectors.hubspot import mapping as hs_mapping
from leadsync.connectors.hubspot import writes as hs_writes
from leadsync.connectors.salesforce import mapping as sf_mapping
from leadsync.connectors.salesforce import writes as sf_writes
from leadsync.drift import OwnFields, adopt_lifecycle, decode, encode, held, normalise, target
from leadsync.report import CycleReport
from leadsync.scoring import Profile
from leadsync.scoring.evaluation import Reason
from leadsync.state import InMemoryStateStore

NOW = datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)
HS = RecordRef("hubspot", "contact", "101")
SF = RecordRef("salesforce", "Lead", "00Q1")
VALUES: dict[str, object] = {
    "score": 75, "fit_grade": "B", "engagement": 50, "stage": "mql",
    "reasons": (Reason("demo", "デモをリクエスト", 50.0), Reason("t", "役職", 15.0)),
    "mql_at": NOW, "sql_at": None, "sla_due": datetime(2026, 11, 21, 9, tzinfo=UTC),
    "sla_status": "on_track", "model": "default-2026.11",
}  # fmt: skip


def record(ref: RecordRef, current: dict[str, object], stage: str | None = None) -> CrmPerson:
    return CrmPerson(ref=ref, profile=Profile(id=ref.key, stage=stage), modified_at=NOW,
                     current=current)


@pytest.mark.parametrize(("name", "forms"), [
    ("score", [75, "75", 75.0, "75.0"]),
    ("mql_at", [NOW, "2026-11-20T09:00:00.123Z", "2026-11-20T09:00:00.123+0000",
                "2026-11-20T18:00:00.123+09:00", "1795165200123"]),
    ("sla_status", ["on_track"]),
    ("reasons", ["+50 デモをリクエスト"]),
])  # fmt: skip
def test_each_crm_representation_normalises_alike(name: str, forms: list[object]) -> None:
    assert len({normalise(name, f) for f in forms}) == 1
    assert normalise(name, None) == normalise(name, "") == ""


def test_what_a_hubspot_write_leaves_is_what_is_remembered() -> None:
    """The connector's own plan of a write, read back through its own mapping, is no drift."""
    fields = HubSpotFieldNames()
    props, second = hs_writes.plan_update(FieldUpdate(HS, VALUES, {}), fields)
    assert second is None
    after = record(HS, hs_mapping.current_values(props, fields))
    assert held(after) == target(record(HS, {}), VALUES)
    assert held(after)["lifecyclestage"] == "marketingqualifiedlead"


def test_what_a_salesforce_write_leaves_is_what_is_remembered() -> None:
    fields = SalesforceFieldNames()
    sent = sf_writes.plan_update(FieldUpdate(SF, VALUES, {}), fields)
    stored = {k: float(v) if isinstance(v, int) else v for k, v in sent.items()}  # 75 -> 75.0
    after = record(SF, sf_mapping.current_values(stored, fields))
    assert held(after) == target(record(SF, {}), VALUES)
    assert held(after)["lifecyclestage"] == ""


def test_memory_round_trips_and_refuses_other_layouts() -> None:
    own = target(record(HS, {}), VALUES)
    assert own is not None and decode(encode(own)) == own
    assert decode("[1,2]") is None and decode("not json") is None


@pytest.mark.parametrize(("ours", "theirs", "adopted"), [
    ("lead", "opportunity", "opportunity"),  # a rep moves it on: a fact
    ("lead", "salesqualifiedlead", "sql"),
    ("recycled", "marketingqualifiedlead", "mql"),  # recycled shows as lead: mql is forward
    ("mql", "lead", None),  # backward: restored, not adopted
    ("mql", "marketingqualifiedlead", None),  # what we wrote
    ("customer", "evangelist", None),  # the same stage for leadsync
    ("lead", "other", None),  # no leadsync stage: restored
    ("disqualified", "customer", None),  # `other` is HubSpot's last stage: nothing is forward
    (None, "customer", None),  # no stage of ours to compare with
])  # fmt: skip
def test_lifecyclestage_policy(ours: str | None, theirs: str, adopted: str | None) -> None:
    profile = Profile(id=HS.key, stage=ours)
    result, moved = adopt_lifecycle(profile, [record(HS, {"lifecyclestage": theirs})], NOW)
    assert moved is (adopted is not None)
    assert result.stage == (adopted or ours)
    if adopted:
        assert result.stage_entered_at == NOW
        assert result.sql_at == (NOW if adopted == "sql" else None)
        assert result.mql_at == (NOW if adopted == "mql" else None)


def test_salesforce_records_never_adopt_a_lifecycle() -> None:
    profile = Profile(id=SF.key, stage="lead")
    assert adopt_lifecycle(profile, [record(SF, {"lifecyclestage": "customer"})], NOW) == (
        profile, False)


def test_hand_edits_are_unsettled_drift_and_not_facts() -> None:
    state = InMemoryStateStore()
    own = OwnFields(state)
    fields = HubSpotFieldNames()
    props, _ = hs_writes.plan_update(FieldUpdate(HS, VALUES, {}), fields)
    written = hs_mapping.current_values(props, fields)
    rec = record(HS, written, stage="mql")
    own.note(rec, VALUES)
    own.save(failed=set())

    later = OwnFields(state)
    assert later.unsettled({HS.key: rec}) == set()  # our own write: no change
    edited = record(HS, {**written, "score": "999", "stage": "customer",
                         "mql_at": "2026-01-01T00:00:00.000Z"}, stage="customer")
    assert later.unsettled({HS.key: edited}) == {HS.key}
    (trusted,) = later.trusted([edited])
    assert trusted.profile.stage == "mql" and trusted.profile.mql_at == NOW.replace(
        microsecond=123000)
    later.note(edited, VALUES)
    report = CycleReport(job="incremental", dry_run=False, now=NOW)
    later.count_written("hubspot", [], report)
    assert report.drift == {}  # not written (failed, budget): not counted yet
    later.count_written("hubspot", [HS], report)
    assert report.drift == {"hubspot": {"score": 1, "stage": 1, "mql_at": 1}}
    assert OwnFields(InMemoryStateStore()).unsettled({HS.key: rec}) == {HS.key}  # no memory


def test_a_failed_record_keeps_its_old_memory() -> None:
    state = InMemoryStateStore()
    own = OwnFields(state)
    own.note(record(HS, {}), VALUES)
    own.save(failed={HS.key})
    assert state.get_fingerprints("own", [HS.key]) == {}


def test_a_cleared_lifecyclestage_is_restored_but_not_counted_as_drift() -> None:
    """What our own backward move leaves when its second request failed: not a hand edit."""
    state = InMemoryStateStore()
    fields = HubSpotFieldNames()
    props, _ = hs_writes.plan_update(FieldUpdate(HS, VALUES, {}), fields)
    written = hs_mapping.current_values(props, fields)
    own = OwnFields(state)
    own.note(record(HS, written), VALUES)
    own.save(failed=set())
    cleared = {k: v for k, v in written.items() if k != "lifecyclestage"}
    later = OwnFields(state)
    assert later.unsettled({HS.key: record(HS, cleared)}) == {HS.key}  # looked at, rewritten
    later.note(record(HS, cleared), VALUES)
    report = CycleReport(job="incremental", dry_run=False, now=NOW)
    later.count_written("hubspot", [HS], report)
    assert report.drift == {}


@pytest.mark.parametrize(("held_value", "sent"), [
    ("evangelist", None),  # a human's evangelist is a customer: kept
    ("customer", None),
    ("opportunity", ("customer", None)),  # forward: one request
    ("other", ("", "customer")),  # backward for HubSpot: cleared, then set
])  # fmt: skip
def test_a_customer_s_lifecyclestage_as_the_hubspot_write_plans_it(
        held_value: str, sent: tuple[str, str | None] | None) -> None:
    values = {**VALUES, "stage": "customer"}
    previous = {"lifecyclestage": held_value}
    props, second = hs_writes.plan_update(FieldUpdate(HS, values, previous),
                                          HubSpotFieldNames())
    assert (None if "lifecyclestage" not in props else (props["lifecyclestage"], second)) == sent
    own = target(record(HS, previous), values)
    assert own is not None and own["lifecyclestage"] == (
        held_value if sent is None else "customer")
