"""The staging codec (`leadsync.staging`): a staged record comes back as it was read, so its
input fingerprint (what decides "unchanged") is the same; bad payloads are named errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.memory import input_fingerprint
from leadsync.scoring.profile import Bant, Event, Profile
from leadsync.staging import decode_person, encode_person, index_tokens, lookup_tokens
from leadsync.state import InMemoryStateStore, StateError

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
LEAD = RecordRef("salesforce", "Lead", "00Q000000000001")
HS = RecordRef("hubspot", "contact", "101")


def full_record() -> CrmPerson:
    profile = Profile(
        id=LEAD.key, email="Taro.Yamada@Example.co.jp", first_name="太郎", last_name="山田",
        title="営業部長", company="Example KK", employees=150, industry="Software",
        country="JP", annual_revenue=1.5e9, lead_source="Web",
        attributes=MappingProxyType({"state": "東京都", "n": 3, "f": 2.0, "ok": True,
                                     "tags": ("a", "b"), "on": date(2026, 1, 2)}),
        bant=Bant(budget=True, authority=None, need=False, timeline=True),
        events=(Event("page_view", T0, MappingProxyType({"url": "/pricing"}), "salesforce"),),
        stage="mql", stage_entered_at=T0, sales_status="working",
        sales_status_at=T0 + timedelta(hours=1), mql_at=T0, owner="rep@example.com")
    return CrmPerson(ref=LEAD, profile=profile, modified_at=T0 + timedelta(minutes=5),
                     current={"score": "42", "stage": "mql", "at": None},
                     links=(HS,), owner_id="005000000000001",
                     created_at=datetime(2025, 1, 1, 9, tzinfo=timezone(timedelta(hours=9))))


def test_a_staged_record_comes_back_equal_with_the_same_fingerprint() -> None:
    rec = full_record()
    back = decode_person(encode_person(rec))
    assert back == CrmPerson(ref=rec.ref, profile=back.profile, modified_at=rec.modified_at,
                             current=dict(rec.current), links=rec.links,
                             owner_id=rec.owner_id, created_at=rec.created_at)
    assert back.profile == rec.profile
    assert input_fingerprint(back) == input_fingerprint(rec)


def test_a_bare_record_is_small_and_round_trips() -> None:
    rec = CrmPerson(ref=HS, profile=Profile(id=HS.key), modified_at=T0)
    text = encode_person(rec)
    assert '"p":{}' in text and len(text) < 120
    assert decode_person(text) == CrmPerson(ref=HS, profile=Profile(id=HS.key), modified_at=T0,
                                            current={})


def test_tokens_find_a_record_by_email_and_by_the_record_it_links_to() -> None:
    rec = full_record()
    hubspot = CrmPerson(ref=HS, profile=Profile(id=HS.key, email=" taro.yamada@example.co.jp"),
                        modified_at=T0)
    assert set(index_tokens(rec)) & set(lookup_tokens([hubspot])) == set(index_tokens(rec))
    assert len(index_tokens(rec)) == 2 and "Taro" not in "".join(index_tokens(rec))


def test_what_cannot_be_staged_or_read_back_is_a_named_error() -> None:
    rec = full_record()
    odd = CrmPerson(ref=rec.ref, profile=rec.profile, modified_at=T0,
                    current={"score": {1, 2}})
    with pytest.raises(TypeError, match="current holds a set"):
        encode_person(odd)
    with pytest.raises(StateError, match="unreadable staged record"):
        decode_person('{"r": "nosystem:x:1"}')
    store = InMemoryStateStore()
    store.stage({"k": encode_person(rec)}, {})
    assert decode_person(store.get_staged(["k"])["k"]).profile.email == rec.profile.email
