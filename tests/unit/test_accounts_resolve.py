"""Account resolution on hostile data (leadsync.accounts.resolve, docs/accounts.md)."""

from __future__ import annotations

import pytest

from leadsync.accounts.resolve import (
    AccountIndex,
    AccountRecord,
    PersonAccountFacts,
    domain_key,
    name_key,
    normalise_company,
    normalise_domain,
    record_key,
)

NAMES = [
    ("株式会社リクルート", "リクルート"),
    ("株式会社 リクルート", "リクルート"),
    ("(株)リクルート", "リクルート"),
    ("㈱リクルート", "リクルート"),          # one code point, NFKC -> (株)
    ("（株）リクルート", "リクルート"),        # full-width parentheses
    ("リクルート株式会社", "リクルート"),
    ("リクルート　株式会社", "リクルート"),     # ideographic space
    ("ｻﾝﾌﾟﾙ有限会社", "サンプル"),            # half-width katakana
    ("ＲＥＣＲＵＩＴ Co., Ltd.", "recruit"),
    ("Recruit Co.,Ltd.", "recruit"),
    ("Recruit Inc.", "recruit"),
    ("recruit inc", "recruit"),
    ("Foo Co., Ltd. Inc.", "foo"),
    ("Acme Co", "acme"),
    ("Acme K.K.", "acme"),
    ("AT&T Inc", "att"),
    ("Cisco", "cisco"),                       # "co" inside a word stays
    ("Incline", "incline"),                   # "inc" inside a word stays
    ("Straße GmbH", "strasse"),               # case folding
    ("株式会社", None),                        # nothing left but the legal form
    ("Inc.", None),
    ("   ", None),
    ("", None),
    (None, None),
    ("・・・", None),
]


@pytest.mark.parametrize(("raw", "expected"), NAMES)
def test_company_names_normalise(raw: str | None, expected: str | None) -> None:
    assert normalise_company(raw) == expected


DOMAINS = [
    ("https://www.Example.co.jp/about?x=1", "example.co.jp"),
    ("http://example.com:8080/", "example.com"),
    ("example.co.jp.", "example.co.jp"),
    ("ＥＸＡＭＰＬＥ．ｃｏｍ", "example.com"),   # full-width, NFKC
    ("WWW.EXAMPLE.COM", "example.com"),
    ("info@example.com", "example.com"),
    ("localhost", None),
    ("not a domain", None),
    ("", None),
    (None, None),
    ("-bad-.com", None),
]


@pytest.mark.parametrize(("raw", "expected"), DOMAINS)
def test_websites_normalise_to_domains(raw: str | None, expected: str | None) -> None:
    assert normalise_domain(raw) == expected


ACCOUNTS = [
    AccountRecord("salesforce:Account:001A", "株式会社サンプル", "https://www.sample.co.jp"),
    AccountRecord("hubspot:company:11", "サンプル株式会社", "sample.co.jp"),
    # two Salesforce Accounts share one domain: neither may own it
    AccountRecord("salesforce:Account:001B", "Twin East", "twin.example"),
    AccountRecord("salesforce:Account:001C", "Twin West", "twin.example"),
    # no domain in Salesforce, the same company with a domain in HubSpot: linked by name
    AccountRecord("salesforce:Account:001D", "(株)ノードメイン", None),
    AccountRecord("hubspot:company:12", "ノードメイン株式会社", "nodomain.co.jp"),
    # no domain anywhere: the name key
    AccountRecord("salesforce:Account:001E", "Acme Co., Ltd.", None),
    # an Account whose website is free mail: the domain is ignored
    AccountRecord("salesforce:Account:001F", "Freelancer Inc.", "gmail.com"),
    # two Accounts with one normalised name and no domain
    AccountRecord("salesforce:Account:001G", "Dup KK", None),
    AccountRecord("salesforce:Account:001H", "DUP Inc.", None),
]
INDEX = AccountIndex(ACCOUNTS)
SAMPLE = domain_key("sample.co.jp")
NODOMAIN = domain_key("nodomain.co.jp")

CASES = [
    # (name, facts, key, via, ambiguous)
    ("contact by AccountId",
     PersonAccountFacts("salesforce:Contact:0031", email="a@gmail.com", account_id="001A"),
     SAMPLE, "account_id", ()),
    ("contact of an Account not read this cycle",
     PersonAccountFacts("salesforce:Contact:0032", account_id="001Z"),
     record_key("salesforce:Account:001Z"), "account_id", ()),
    ("converted lead by ConvertedAccountId, not by its free-mail domain",
     PersonAccountFacts("salesforce:Lead:00Q1", email="x@yahoo.co.jp", company="whatever",
                        converted_account_id="001A"),
     SAMPLE, "converted_account_id", ()),
    ("unconverted lead by email domain, case and subdomain www kept apart",
     PersonAccountFacts("salesforce:Lead:00Q2", email="Taro@SAMPLE.co.jp"),
     SAMPLE, "email_domain", ()),
    ("unconverted lead by a full-width company name when its mail is free",
     PersonAccountFacts("salesforce:Lead:00Q3", email="t@gmail.com", company="㈱サンプル"),
     SAMPLE, "company_name", ()),
    ("free-mail domain never matches, and no company: no account",
     PersonAccountFacts("salesforce:Lead:00Q4", email="t@gmail.com"), None, "none", ()),
    ("free-mail domain never matches even when an Account claims it",
     PersonAccountFacts("salesforce:Lead:00Q5", email="t@gmail.com", company="Nobody"),
     None, "none", ()),
    ("two Accounts with one domain: reported, not guessed",
     PersonAccountFacts("salesforce:Lead:00Q6", email="t@twin.example"), None, "email_domain",
     tuple(sorted([record_key("salesforce:Account:001B"),
                   record_key("salesforce:Account:001C")]))),
    ("two Accounts with one normalised name: reported, not guessed",
     PersonAccountFacts("salesforce:Lead:00Q7", email="t@docomo.ne.jp", company="dup co."),
     None, "company_name",
     tuple(sorted([record_key("salesforce:Account:001G"),
                   record_key("salesforce:Account:001H")]))),
    ("unknown business domain: the domain's own key",
     PersonAccountFacts("salesforce:Lead:00Q8", email="t@newco.example"),
     domain_key("newco.example"), "email_domain", ()),
    ("name-only account",
     PersonAccountFacts("salesforce:Lead:00Q9", company="ACME CO LTD"),
     name_key("acme"), "company_name", ()),
    ("hubspot contact by association",
     PersonAccountFacts("hubspot:contact:1", email="t@other.example", company_ids=("11",)),
     SAMPLE, "association", ()),
    ("hubspot contact with two companies: the primary one",
     PersonAccountFacts("hubspot:contact:2", company_ids=("12", "11"), primary_company_id="11"),
     SAMPLE, "association", ()),
    ("hubspot contact with two companies and no primary: reported",
     PersonAccountFacts("hubspot:contact:3", company_ids=("12", "11")), None, "association",
     tuple(sorted([SAMPLE, NODOMAIN]))),
    ("hubspot contact without company: its email domain",
     PersonAccountFacts("hubspot:contact:4", email="t@sample.co.jp"),
     SAMPLE, "email_domain", ()),
    ("hubspot contact without company, free mail: no account (its company field unused)",
     PersonAccountFacts("hubspot:contact:5", email="t@outlook.jp", company="サンプル"),
     None, "none", ()),
    ("contact with no company, no email",
     PersonAccountFacts("salesforce:Contact:0033"), None, "none", ()),
    ("a Lead's AccountId is not a Contact's: ignored",
     PersonAccountFacts("salesforce:Lead:00QA", account_id="001A"), None, "none", ()),
]


@pytest.mark.parametrize(("facts", "key", "via", "ambiguous"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_person_records_resolve_to_one_account(facts: PersonAccountFacts, key: str | None,
                                               via: str, ambiguous: tuple[str, ...]) -> None:
    match = INDEX.resolve(facts)
    assert (match.key, match.via, match.ambiguous) == (key, via, ambiguous)


def test_one_key_per_company_across_both_crms() -> None:
    assert INDEX.key_of["salesforce:Account:001A"] == INDEX.key_of["hubspot:company:11"] == SAMPLE
    assert INDEX.members[SAMPLE] == ("hubspot:company:11", "salesforce:Account:001A")
    # the Salesforce Account without a domain joins the HubSpot company of the same name
    assert INDEX.key_of["salesforce:Account:001D"] == NODOMAIN
    assert INDEX.key_of["salesforce:Account:001E"] == name_key("acme")
    assert INDEX.key_of["salesforce:Account:001F"] == name_key("freelancer")
    assert len(set(INDEX.key_of.values())) == 8  # 10 records: two pairs linked, 8 keys


def test_shared_domains_and_names_are_reported() -> None:
    assert [(a.system, a.kind, a.value, a.accounts) for a in INDEX.ambiguities] == [
        ("salesforce", "domain", "twin.example",
         ("salesforce:Account:001B", "salesforce:Account:001C")),
        ("salesforce", "name", "dup", ("salesforce:Account:001G", "salesforce:Account:001H")),
    ]


def test_keys_are_derived_from_crm_data_alone() -> None:
    again = AccountIndex(reversed(ACCOUNTS))  # order of reading does not matter
    assert again.key_of == INDEX.key_of
    assert SAMPLE.startswith("a-") and len(SAMPLE) == 26


def test_extra_free_mail_domains_from_the_rules_are_honoured() -> None:
    index = AccountIndex(ACCOUNTS, free_domains=frozenset({"sample.co.jp"}))
    facts = PersonAccountFacts("salesforce:Lead:00Q2", email="t@sample.co.jp")
    assert index.resolve(facts).key is None
    assert index.key_of["salesforce:Account:001A"] == name_key("サンプル") \
        == index.key_of["hubspot:company:11"]


# -- the per-record key (`account_key`) against the keying in record order it replaced ------
def _keyed_in_order(records: list[AccountRecord]) -> dict[str, str]:
    """The keying before `account_key`: every record in record key order, a record keyed
    from the other CRM's record only once that one was keyed (the oracle)."""
    from leadsync.scoring.derived import FREE_EMAIL_DOMAINS

    by_ref = {a.ref: a for a in records}
    refs = sorted(by_ref)
    domain_of: dict[str, str] = {}
    name_of: dict[str, str] = {}
    by_domain: dict[str, list[str]] = {}
    by_name: dict[str, list[str]] = {}
    for ref in refs:
        domain = normalise_domain(by_ref[ref].website)
        if domain is not None and domain not in FREE_EMAIL_DOMAINS:
            domain_of[ref] = domain
            by_domain.setdefault(domain, []).append(ref)
        name = normalise_company(by_ref[ref].name)
        if name is not None:
            name_of[ref] = name
            by_name.setdefault(name, []).append(ref)

    def alone(refs_: list[str], system: str) -> bool:
        return sum(r.split(":", 1)[0] == system for r in refs_) == 1

    key_of: dict[str, str] = {}
    for ref in refs:
        domain = domain_of.get(ref)
        if domain is not None and alone(by_domain[domain], ref.split(":", 1)[0]):
            key_of[ref] = domain_key(domain)
    for ref in refs:
        if ref in key_of:
            continue
        name, system = name_of.get(ref), ref.split(":", 1)[0]
        if ref in domain_of or name is None or not alone(by_name[name], system):
            key_of[ref] = record_key(ref)
            continue
        others = [o for o in by_name[name] if o.split(":", 1)[0] != system]
        other_keys = {key_of.get(o) for o in others}
        only = next(iter(other_keys)) if len(others) == 1 and len(other_keys) == 1 else None
        key_of[ref] = only if only is not None else name_key(name)
    return key_of


_SMALL_NAMES = ["Acme Inc.", "acme", "株式会社アクメ", "Beta LLC", "beta", None, ""]
_SMALL_SITES = ["acme.com", "https://www.acme.com/x", "beta.co.jp", "gmail.com", None, "x"]


def test_the_per_record_key_is_the_key_of_keying_every_record_in_order() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    record = st.builds(
        AccountRecord,
        st.builds(lambda s, i: f"{s}:{'Account' if s == 'salesforce' else 'company'}:{i}",
                  st.sampled_from(["hubspot", "salesforce"]), st.integers(0, 30)),
        st.sampled_from(_SMALL_NAMES), st.sampled_from(_SMALL_SITES))

    @settings(max_examples=600, deadline=None)
    @given(st.lists(record, max_size=14))
    def check(records: list[AccountRecord]) -> None:
        assert AccountIndex(records).key_of == _keyed_in_order(records)

    check()
