"""HubSpot value mapping and write planning (pure; table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.config.settings import HubSpotFieldNames
from leadsync.connectors.base import FieldUpdate, RecordRef
from leadsync.connectors.hubspot.mapping import (
    contact_to_person,
    employees_from_range,
    event_from_raw,
    format_datetime,
    is_backward,
    lifecycle_stage,
    parse_datetime,
    same_value,
)
from leadsync.connectors.hubspot.writes import plan_update
from leadsync.connectors.values import InvalidValue
from leadsync.scoring.evaluation import Reason

FIELDS = HubSpotFieldNames()
REF = RecordRef("hubspot", "contact", "101")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1-5", 1), ("5-25", 5), ("25-50", 25), ("50-100", 50), ("100-500", 100),
     ("500-1000", 500), ("1000+", 1000), ("10,001+", 10001), ("250", 250), ("", None),
     (None, None), ("many", None)],
)  # fmt: skip
def test_numemployees_range_lower_bound(value: str | None, expected: int | None) -> None:
    assert employees_from_range(value) == expected


@pytest.mark.parametrize(
    ("props", "expected"),
    [({"leadsync_stage": "sql", "lifecyclestage": "lead"}, "sql"),
     ({"leadsync_stage": "recycled", "lifecyclestage": "lead"}, "recycled"),
     ({"leadsync_stage": "bogus", "lifecyclestage": "marketingqualifiedlead"}, "mql"),
     ({"lifecyclestage": "subscriber"}, "subscriber"),
     ({"lifecyclestage": "lead"}, "lead"),
     ({"lifecyclestage": "salesqualifiedlead"}, "sql"),
     ({"lifecyclestage": "opportunity"}, "opportunity"),
     ({"lifecyclestage": "customer"}, "customer"),
     ({"lifecyclestage": "evangelist"}, "customer"),
     ({"lifecyclestage": "other"}, None),
     ({"lifecyclestage": "1234567"}, None),
     ({}, None)],
)  # fmt: skip
def test_stage_from_own_field_else_lifecyclestage(props: dict[str, str], expected: str) -> None:
    assert lifecycle_stage(props, FIELDS) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [("IN_PROGRESS", "working"), ("ATTEMPTED_TO_CONTACT", "working"), ("CONNECTED", "working"),
     ("OPEN_DEAL", "opportunity_open"), ("UNQUALIFIED", "disqualified"),
     ("BAD_TIMING", "rejected"), ("NEW", None), ("OPEN", None), ("WHATEVER", None), ("", None)],
)  # fmt: skip
def test_hs_lead_status_to_sales_status(status: str, expected: str | None) -> None:
    person = contact_to_person({"id": "1", "properties": {"hs_lead_status": status}}, {}, FIELDS)
    assert person.profile.sales_status == expected
    assert person.profile.sales_status_at is None


def test_contact_to_person_maps_fields_links_owner_and_current() -> None:
    raw = {"id": "101", "properties": {
        "email": "Taro.Yamada@Example.co.jp", "firstname": "太郎", "lastname": "山田",
        "jobtitle": "営業部長", "company": "Example KK", "numemployees": "100-500",
        "industry": "manufacturing", "country": "JP", "annualrevenue": "1.5e6",
        "hs_analytics_source": "webinar", "hubspot_owner_id": "7",
        "lastmodifieddate": "2026-11-01T10:00:00.000Z", "salesforceleadid": "00Q000000000001",
        "bant_budget": "true", "bant_authority": "false", "leadsync_score": "85",
        "leadsync_mql_at": "2026-10-30T09:00:00.000Z", "lifecyclestage": "marketingqualifiedlead",
    }}  # fmt: skip
    person = contact_to_person(raw, {"7": "rep@example.com"}, FIELDS)
    p = person.profile
    assert person.ref == REF and p.id == "hubspot:contact:101"
    assert p.email == "taro.yamada@example.co.jp" and p.employees == 100
    assert p.annual_revenue == 1.5e6 and p.lead_source == "webinar"
    assert (p.bant.budget, p.bant.authority, p.bant.need) == (True, False, None)
    assert p.owner == "rep@example.com" and person.owner_id == "7"
    assert p.stage == "mql" and p.mql_at == datetime(2026, 10, 30, 9, tzinfo=UTC)
    assert person.links == (RecordRef("salesforce", "Lead", "00Q000000000001"),)
    assert person.modified_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert person.current == {"score": "85", "mql_at": "2026-10-30T09:00:00.000Z",
                              "lifecyclestage": "marketingqualifiedlead"}  # fmt: skip
    assert dict(p.attributes) == {}  # no state property: no state attribute


def test_state_property_is_the_state_attribute() -> None:
    raw = {"id": "102", "properties": {"email": "a@example.co.jp", "state": "神奈川県"}}
    assert dict(contact_to_person(raw, {}, FIELDS).profile.attributes) == {"state": "神奈川県"}


def test_hostile_contact_does_not_crash() -> None:
    raw = {"id": "9", "properties": {"email": None, "numemployees": "\x00", "annualrevenue": "inf",
                                     "lastmodifieddate": "not a date", "jobtitle": "x" * 100_000,
                                     "firstname": "\u202e\u0000👩‍💻"}}  # fmt: skip
    person = contact_to_person(raw, {}, FIELDS)
    assert person.profile.employees is None and person.profile.annual_revenue is None
    assert "\x00" not in (person.profile.first_name or "")


@pytest.mark.parametrize(
    ("raw", "type_", "props"),
    [({"eventType": "e_visited_page", "properties": {"hs_url": "https://x/pricing"}},
      "page_view", {"url": "https://x/pricing"}),
     ({"eventType": "e_attended_webinar", "properties": {"hs_webinar_id": "w"}},
      "webinar_attended", {"webinar": "w"}),
     ({"eventType": "e_booked_meeting"}, "meeting_booked", {})],
)  # fmt: skip
def test_events_map_per_wire_contract(raw: dict, type_: str, props: dict) -> None:  # type: ignore[type-arg]
    item = event_from_raw({**raw, "id": "e1", "objectId": "101",
                           "occurredAt": "2026-11-01T10:00:00.000Z"})  # fmt: skip
    assert item is not None
    assert item.person == REF and item.event.type == type_ and dict(item.event.props) == props
    assert item.event.at == item.seen_at == datetime(2026, 11, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [{"eventType": "e_unknown", "objectId": "1", "occurredAt": "2026-11-01T00:00:00Z"},
     # email and form events come from their own APIs; never counted twice from v3
     {"eventType": "e_submitted_form", "objectId": "1", "occurredAt": "2026-11-01T00:00:00Z",
      "properties": {"hs_form_id": "demo_request"}},
     {"eventType": "e_opened_email", "objectId": "1", "occurredAt": "2026-11-01T00:00:00Z"},
     {"eventType": "e_visited_page", "objectId": "1", "occurredAt": "yesterday"},
     {"eventType": "e_visited_page", "occurredAt": "2026-11-01T00:00:00Z"}],
)  # fmt: skip
def test_unusable_events_are_skipped(raw: dict) -> None:  # type: ignore[type-arg]
    assert event_from_raw(raw) is None


def test_dates_round_trip_and_epoch_ms() -> None:
    when = datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert format_datetime(when) == "2026-11-01T10:00:00.123Z"
    assert parse_datetime(format_datetime(when)) == when
    ms = str(int(datetime(2026, 11, 1, 8, tzinfo=UTC).timestamp() * 1000))
    assert parse_datetime(ms) == datetime(2026, 11, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "new", "backward"),
    [(None, "lead", False), ("lead", "marketingqualifiedlead", False),
     ("salesqualifiedlead", "lead", True), ("customer", "lead", True),
     ("lead", "other", False), ("other", "lead", True), ("lead", "lead", False)],
)  # fmt: skip
def test_backward_lifecycle_moves(current: str | None, new: str, backward: bool) -> None:
    assert is_backward(current, new) is backward


def test_plan_sends_only_changed_values_in_hubspot_form() -> None:
    update = FieldUpdate(REF, {
        "score": 85, "engagement": 40.4, "fit_grade": "A", "stage": "mql",
        "reasons": (Reason("demo", "デモをリクエスト", 50.0),
                    Reason("free", "フリーメール", -20.0)),
        "mql_at": datetime(2026, 10, 30, 9, tzinfo=UTC), "sla_due": None, "model": "m" * 60,
    }, previous={"score": "85.0", "mql_at": "2026-10-30T09:00:00Z",
                 "lifecyclestage": "lead", "fit_grade": "B"})  # fmt: skip
    props, second = plan_update(update, FIELDS)
    assert second is None
    assert props == {
        "leadsync_engagement": "40",
        "leadsync_fit_grade": "A",
        "leadsync_stage": "mql",
        "lifecyclestage": "marketingqualifiedlead",
        "leadsync_reasons": "+50 デモをリクエスト; −20 フリーメール",
        "leadsync_model": "m" * 39 + "…",
    }  # score, mql_at equal after normalising; sla_due already empty


def test_backward_stage_is_cleared_then_set() -> None:
    update = FieldUpdate(
        REF,
        {"stage": "recycled"},
        previous={"stage": "sql", "lifecyclestage": "salesqualifiedlead"},
    )
    props, second = plan_update(update, FIELDS)
    assert props == {"leadsync_stage": "recycled", "lifecyclestage": ""}
    assert second == "lead"


def test_clearing_a_datetime_sends_empty_string() -> None:
    update = FieldUpdate(REF, {"sla_due": None}, previous={"sla_due": "2026-11-01T00:00:00.000Z"})
    assert plan_update(update, FIELDS) == ({"leadsync_sla_due": ""}, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [({"score": "high"}, "score: expected an integer"), ({"score": 123456}, "Number"),
     ({"stage": "vip"}, "stage"), ({"sla_status": "late"}, "sla_status"),
     ({"mql_at": datetime(2026, 1, 1)}, "naive"), ({"fit_grade": "AB"}, "one character"),
     ({"nonsense": 1}, "unknown written field"), ({"score": None}, "cannot be cleared")],
)  # fmt: skip
def test_bad_values_reject_the_record_with_a_reason(values: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidValue, match=message):
        plan_update(FieldUpdate(REF, values), FIELDS)


def test_same_value_normalises() -> None:
    assert same_value("score", "85", "85.0")
    assert same_value("mql_at", "2026-11-01T00:00:00.000Z", "2026-11-01T00:00:00Z")
    assert not same_value("model", "a", "b")
    assert same_value("reasons", "", None)
