"""Hostile CRM records and values never crash the mapping or the write planning (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from leadsync.config.settings import HubSpotFieldNames, SalesforceFieldNames
from leadsync.connectors.base import WRITTEN_FIELDS, FieldUpdate, RecordRef
from leadsync.connectors.hubspot import writes as hs_writes
from leadsync.connectors.hubspot.mapping import contact_to_person, event_from_raw
from leadsync.connectors.salesforce import writes as sf_writes
from leadsync.connectors.salesforce.mapping import activity_to_event, record_to_person
from leadsync.connectors.values import InvalidValue

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=300), st.binary(max_size=20).map(repr))  # fmt: skip
hs_keys = st.sampled_from(
    [
        "email",
        "numemployees",
        "annualrevenue",
        "lastmodifieddate",
        "lifecyclestage",
        "hs_lead_status",
        "hubspot_owner_id",
        "bant_need",
        "leadsync_stage",
        "leadsync_mql_at",
        "salesforceleadid",
        "jobtitle",
    ]
)
sf_keys = st.sampled_from(
    [
        "Email",
        "NumberOfEmployees",
        "AnnualRevenue",
        "SystemModstamp",
        "OwnerId",
        "BANT_Need__c",
        "LeadSync_Stage__c",
        "LeadSync_SQL_At__c",
        "Account",
        "Title",
        "WhoId",
        "Subject",
        "Type",
        "CreatedDate",
    ]
)
values = st.one_of(scalars, st.datetimes(timezones=st.sampled_from([UTC])),
                   st.datetimes(), st.lists(st.integers(), max_size=3).map(tuple))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(hs_keys, scalars), st.dictionaries(st.text(max_size=5), scalars))
def test_hubspot_mapping_survives_anything(props: dict, event: dict) -> None:  # type: ignore[type-arg]
    person = contact_to_person({"id": "1", "properties": props}, {}, HubSpotFieldNames())
    assert person.modified_at.tzinfo is not None
    event_from_raw({**event, "objectId": "1", "eventType": "e_visited_page"})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(sf_keys, scalars))
def test_salesforce_mapping_survives_anything(raw: dict) -> None:  # type: ignore[type-arg]
    raw = {**raw, "Id": "00Q000000000001"}
    person = record_to_person(raw, "Lead", owners={}, fields=SalesforceFieldNames())
    assert person.profile.employees is None or isinstance(person.profile.employees, int)
    activity_to_event(raw, "Task")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*WRITTEN_FIELDS, "bogus"]), values, min_size=1),
       st.dictionaries(st.sampled_from(WRITTEN_FIELDS), scalars))  # fmt: skip
def test_write_planning_only_ever_rejects_with_invalid_value(new: dict, old: dict) -> None:  # type: ignore[type-arg]
    planners = (("hubspot", hs_writes.plan_update, HubSpotFieldNames()),
                ("salesforce", sf_writes.plan_update, SalesforceFieldNames()))  # fmt: skip
    for system, plan, fields in planners:
        update = FieldUpdate(RecordRef(system, "Lead", "1"), new, old)  # type: ignore[arg-type]
        try:
            planned = plan(update, fields)  # type: ignore[operator]
        except InvalidValue as exc:
            assert str(exc)
            continue
        props = planned[0] if isinstance(planned, tuple) else planned
        for value in props.values():
            assert value is None or isinstance(value, str | int)
            if isinstance(value, str):
                assert "\x00" not in value and len(value) <= 1000


def test_datetime_fields_refuse_naive_values() -> None:
    update = FieldUpdate(RecordRef("salesforce", "Lead", "1"), {"sla_due": datetime(2026, 1, 1)})
    try:
        sf_writes.plan_update(update, SalesforceFieldNames())
    except InvalidValue as exc:
        assert "sla_due" in str(exc)
    else:
        raise AssertionError("a naive datetime was accepted")
