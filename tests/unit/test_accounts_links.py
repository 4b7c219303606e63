"""The account links a person read carries (docs/accounts.md, API cost): a Salesforce Contact's
AccountId, a Lead's ConvertedAccountId, a HubSpot list read's inline `associations=companies`."""

from __future__ import annotations

from typing import Any

import pytest

from leadsync.config.settings import HubSpotFieldNames, SalesforceFieldNames
from leadsync.connectors.base import AccountLinks, RecordRef
from leadsync.connectors.hubspot.mapping import contact_to_person, inline_company_links
from leadsync.connectors.salesforce.mapping import record_to_person

REF = RecordRef("hubspot", "contact", "7")
UNLABELED = "contact_to_company_unlabeled"


@pytest.mark.parametrize(("raw", "expected"), [
    ({}, None),  # a search or batch read: not asked
    ({"associations": None}, None),
    ({"associations": {}}, AccountLinks(REF, ())),  # asked, the key absent: no company
    ({"associations": {"companies": {"results": [
        {"id": "11", "type": "contact_to_company"}, {"id": "11", "type": UNLABELED}]}}},
     AccountLinks(REF, ("11",), "11")),
    ({"associations": {"companies": {"results": [
        {"id": "11", "type": UNLABELED}, {"id": "12", "type": UNLABELED}]}}},
     AccountLinks(REF, ("11", "12"), None)),  # two companies, no primary
    ({"associations": {"companies": {"results": [
        {"id": "11", "type": UNLABELED}, {"id": "12", "type": "contact_to_company"},
        {"id": "12", "type": UNLABELED}]}}},
     AccountLinks(REF, ("11", "12"), "12")),
    ({"associations": {"companies": {"results": [{"id": "11", "type": UNLABELED}],
                                     "paging": {"next": {"after": "1"}}}}}, None),  # paged
    ({"associations": {"companies": {"results": [{"id": "11", "type": UNLABELED}],
                                     "paging": None}}}, AccountLinks(REF, ("11",))),
    ({"associations": {"companies": {"results": [{"type": UNLABELED}, "x"]}}},
     AccountLinks(REF, ())),  # rows without an id are skipped
    ({"associations": {"companies": {"results": "oops"}}}, None),
])
def test_inline_company_links(raw: dict[str, Any], expected: AccountLinks | None) -> None:
    assert inline_company_links(REF, raw) == expected


def test_a_listed_contact_carries_its_companies() -> None:
    raw = {"id": "7", "properties": {"email": "a@example.com"},
           "associations": {"companies": {"results": [{"id": "3", "type": UNLABELED}]}}}
    person = contact_to_person(raw, {}, HubSpotFieldNames())
    assert person.account_links == AccountLinks(REF, ("3",))
    del raw["associations"]
    assert contact_to_person(raw, {}, HubSpotFieldNames()).account_links is None


@pytest.mark.parametrize(("object_type", "raw", "expected"), [
    ("Contact", {"AccountId": "001A"}, ("001A",)),
    ("Contact", {"AccountId": None}, ()),
    ("Contact", {}, None),  # a read without the column: left to read_account_links
    ("Lead", {"ConvertedAccountId": "001B", "IsConverted": True}, ("001B",)),
    ("Lead", {"ConvertedAccountId": None}, ()),
    ("Lead", {}, None),
])
def test_salesforce_records_carry_their_account(object_type: str, raw: dict[str, Any],
                                                expected: tuple[str, ...] | None) -> None:
    person = record_to_person({"Id": "X1", **raw}, object_type, owners={},
                              fields=SalesforceFieldNames())
    ref = RecordRef("salesforce", object_type, "X1")
    assert person.account_links == (None if expected is None else AccountLinks(ref, expected))


def test_a_search_or_batch_read_carries_the_primary_company() -> None:
    """`associatedcompanyid` (HubSpot's read-only primary company id) is the account link of
    a contact read by search or batch read; a list read's inline companies take precedence
    (paged ones: None, the v4 read); no property asked: None."""
    from leadsync.connectors.base import AccountLinks, RecordRef
    from leadsync.connectors.hubspot.mapping import primary_company_links

    ref = RecordRef("hubspot", "contact", "7")
    assert primary_company_links(ref, {"id": "7", "properties": {
        "associatedcompanyid": "901"}}) == AccountLinks(ref, ("901",), "901")
    assert primary_company_links(ref, {"id": "7", "properties": {
        "associatedcompanyid": ""}}) == AccountLinks(ref, ())
    assert primary_company_links(ref, {"id": "7", "properties": {
        "associatedcompanyid": None}}) == AccountLinks(ref, ())
    assert primary_company_links(ref, {"id": "7", "properties": {"email": "a@b.jp"}}) is None
    assert primary_company_links(ref, {"id": "7", "associations": {}, "properties": {
        "associatedcompanyid": "901"}}) is None
