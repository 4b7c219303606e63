"""`explain --account`'s argument: which account a domain, an id or a key names."""

from __future__ import annotations

import pytest

from leadsync.accounts.resolve import AccountIndex, AccountRecord, domain_key
from leadsync.connectors.base import CrmAccount, RecordRef
from leadsync.explain_account import AccountNotFound, find_account

ACCOUNTS = [
    CrmAccount(RecordRef("salesforce", "Account", "001A"), "Sample株式会社",
               "https://www.sample.co.jp/"),
    CrmAccount(RecordRef("hubspot", "company", "501"), "Sample", "sample.co.jp"),
    CrmAccount(RecordRef("salesforce", "Account", "001B"), "Twin One", "twin.example"),
    CrmAccount(RecordRef("salesforce", "Account", "001C"), "Twin Two", "twin.example"),
    CrmAccount(RecordRef("salesforce", "Account", "0015g0000000009AAA"), "Long Id", None),
]
INDEX = AccountIndex(AccountRecord(a.ref.key, a.name, a.website) for a in ACCOUNTS)
SAMPLE = domain_key("sample.co.jp")
BARE = domain_key("bare.example")


@pytest.mark.parametrize(("target", "expected"), [
    ("sample.co.jp", SAMPLE),
    ("https://WWW.Sample.co.jp/about", SAMPLE),
    ("someone@sample.co.jp", SAMPLE),
    ("ＳＡＭＰＬＥ．ｃｏ．ｊｐ", SAMPLE),
    ("001A", SAMPLE),
    ("501", SAMPLE),
    ("hubspot:company:501", SAMPLE),
    (SAMPLE, SAMPLE),
    ("  sample.co.jp  ", SAMPLE),
    ("bare.example", BARE),  # no CRM account, but stored members
    (BARE, BARE),
    ("001B", INDEX.key_for_ref("salesforce:Account:001B")),  # an id is never ambiguous
    # the classic UI's 15-character Account id (case-sensitive) names the 18-character one
    ("0015g0000000009", INDEX.key_for_ref("salesforce:Account:0015g0000000009AAA")),
])
def test_the_account_an_argument_names(target: str, expected: str) -> None:
    assert find_account(INDEX, ACCOUNTS, target, {BARE: "p-1 p-2"}) == expected


@pytest.mark.parametrize(("target", "message"), [
    ("nowhere.example", "'nowhere.example' names no account"),
    ("001Z", "'001Z' names no account"),
    ("a-000000000000000000000000", "names no account"),
    ("bare.example", "names no account"),  # without stored members: unknown
    ("twin.example", "'twin.example' is the domain of 2 accounts"),
    ("x" * 500, "names no account"),
    # a person's id or record key instead of an account's: said so
    ("0035g0000000001AAA", "'0035g0000000001AAA' is a Salesforce Contact id, not an account: "
     "give its account's domain or Salesforce Account / HubSpot company id"),
    ("00Q5g0000000001", "'00Q5g0000000001' is a Salesforce Lead id, not an account"),
    ("salesforce:Contact:0035g0000000001AAA", "is a Salesforce Contact, not an account"),
    ("hubspot:contact:1001", "'hubspot:contact:1001' is a HubSpot contact, not an account"),
    ("0015g0000000001", "names no account"),  # an Account id no CRM holds
    ("0015G0000000009", "names no account"),  # 15 characters are case-sensitive
])
def test_unknown_or_ambiguous_accounts_are_refused(target: str, message: str) -> None:
    with pytest.raises(AccountNotFound) as err:
        find_account(INDEX, ACCOUNTS, target, {})
    assert message in str(err.value)
    assert len(str(err.value)) < 300
