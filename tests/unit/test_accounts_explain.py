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
])
def test_unknown_or_ambiguous_accounts_are_refused(target: str, message: str) -> None:
    with pytest.raises(AccountNotFound) as err:
        find_account(INDEX, ACCOUNTS, target, {})
    assert message in str(err.value)
    assert len(str(err.value)) < 300
