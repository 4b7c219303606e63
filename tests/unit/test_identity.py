"""Identity resolution and profile merging (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.identity import group_records, merge_profile, normalise_email
from leadsync.scoring import Bant, Event, Profile

T = datetime(2026, 11, 1, tzinfo=UTC)


def rec(system: str, object_type: str, rid: str, links: tuple[RecordRef, ...] = (),
        **profile: object) -> CrmPerson:
    ref = RecordRef(system, object_type, rid)  # type: ignore[arg-type]
    return CrmPerson(ref=ref, profile=Profile(id=ref.key, **profile), modified_at=T,  # type: ignore[arg-type]
                     links=links)


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Taro@Example.CO.JP ", "taro@example.co.jp"),
    ("", None), (None, None), ("not-an-email", None), ("x@" + "a" * 400, None),
])
def test_normalise_email(raw: str | None, expected: str | None) -> None:
    assert normalise_email(raw) == expected


def test_groups_by_email_case_insensitively_and_orders_salesforce_first() -> None:
    groups = group_records([
        rec("hubspot", "contact", "1", email="A@x.example"),
        rec("salesforce", "Lead", "00Q1", email="a@x.example"),
        rec("salesforce", "Contact", "003B", email="a@X.example"),
    ])
    assert len(groups) == 1
    assert [r.ref.object_type for r in groups[0]] == ["Contact", "Lead", "contact"]


def test_duplicates_within_one_crm_are_one_person() -> None:
    groups = group_records([rec("hubspot", "contact", "1", email="d@x.example"),
                            rec("hubspot", "contact", "2", email="d@x.example")])
    assert len(groups) == 1


def test_links_join_records_transitively_and_missing_emails_stay_apart() -> None:
    sf = RecordRef("salesforce", "Contact", "003")
    groups = group_records([
        rec("hubspot", "contact", "1", links=(sf,)),
        rec("salesforce", "Contact", "003", email="c@x.example"),
        rec("hubspot", "contact", "2", email="c@x.example"),
        rec("hubspot", "contact", "3"),
        rec("hubspot", "contact", "4"),
    ])
    sizes = sorted(len(g) for g in groups)
    assert sizes == [1, 1, 3]


def test_merge_prefers_salesforce_fields_and_ors_bant_and_unions_events() -> None:
    sf = rec("salesforce", "Lead", "00Q", email="m@x.example", title="Director of IT",
             bant=Bant(budget=True), stage="mql", mql_at=T, sales_status="working",
             sales_status_at=T)
    hs = rec("hubspot", "contact", "9", email="m@x.example", title="Engineer", employees=120,
             bant=Bant(need=True, timeline=True), stage="lead")
    ev = Event("page_view", T, MappingProxyType({"url": "/pricing"}))
    merged = merge_profile(sf.ref.key, [sf, hs], [ev, ev], {})
    assert merged.id == "salesforce:Lead:00Q"
    assert merged.title == "Director of IT" and merged.employees == 120
    assert merged.bant.count() == 3
    assert merged.events == (ev,)
    assert merged.stage == "mql" and merged.mql_at == T
    assert merged.sales_status == "working"


def test_merge_takes_the_newest_dated_sales_decision() -> None:
    later = datetime(2026, 11, 5, tzinfo=UTC)
    a = rec("salesforce", "Lead", "1", sales_status="working", sales_status_at=T)
    b = rec("salesforce", "Contact", "2", sales_status="won", sales_status_at=later)
    assert merge_profile("p", [b, a], [], {}).sales_status == "won"


def test_remembered_stage_entry_is_used_only_for_the_same_stage() -> None:
    r = rec("hubspot", "contact", "1", stage="recycled")
    same = merge_profile("p", [r], [], {"stage": "recycled", "stage_entered_at": T.isoformat()})
    other = merge_profile("p", [r], [], {"stage": "mql", "stage_entered_at": T.isoformat()})
    assert same.stage_entered_at == T
    assert other.stage_entered_at is None
