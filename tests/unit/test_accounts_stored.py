"""The account index kept in the state store (leadsync.accounts.stored): the same keys,
members and matches as the in-process index (`resolve.AccountIndex`), built and read a batch
at a time."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadsync.accounts import stored as stored_module
from leadsync.accounts.resolve import (
    AccountIndex,
    AccountRecord,
    PersonAccountFacts,
    domain_key,
)
from leadsync.accounts.stored import StoredAccountIndex
from leadsync.scoring.derived import FREE_EMAIL_DOMAINS
from leadsync.state import InMemoryStateStore, StateStore

NAMES = ["Acme Inc.", "acme", "株式会社アクメ", "Beta LLC", "beta", None, "", "Gamma"]
SITES = ["acme.com", "https://www.acme.com/x", "beta.co.jp", "gmail.com", None, "x",
         "gamma.io"]
EMAILS = ["a@acme.com", "b@beta.co.jp", "c@gmail.com", "d@gamma.io", "e@delta.net", None]

record = st.builds(
    AccountRecord,
    st.builds(lambda s, i: f"{s}:{'Account' if s == 'salesforce' else 'company'}:{i}",
              st.sampled_from(["hubspot", "salesforce"]), st.integers(0, 25)),
    st.sampled_from(NAMES), st.sampled_from(SITES))
facts = st.builds(
    PersonAccountFacts,
    st.sampled_from(["salesforce:Contact:1", "salesforce:Lead:2", "hubspot:contact:3"]),
    st.sampled_from(EMAILS), st.sampled_from(NAMES),
    st.sampled_from([None, "0", "1", "7", "99"]), st.sampled_from([None, "2", "5"]),
    st.lists(st.sampled_from(["0", "3", "4", "9"]), max_size=3).map(tuple),
    st.sampled_from([None, "3", "4"]))


def build(state: StateStore, records: list[AccountRecord], batch: int
          ) -> StoredAccountIndex:
    index = StoredAccountIndex(state, FREE_EMAIL_DOMAINS)
    index.clear()
    unique = list({a.ref: a for a in records}.values())  # a record key once a build
    for at in range(0, len(unique), batch):
        index.add(unique[at:at + batch])
    index.key()
    return index


def walked(index: StoredAccountIndex) -> dict[str, tuple[str, ...]]:
    keys = sorted({k for chunk in index.walk(3) for k in chunk})
    return index.members_of(keys)


@settings(max_examples=300, deadline=None)
@given(st.lists(record, max_size=16), st.lists(facts, max_size=6), st.integers(1, 5),
       st.sets(st.integers(0, 15), max_size=4))
def test_the_stored_index_keys_and_resolves_as_the_process_index(
        records: list[AccountRecord], people: list[PersonAccountFacts], batch: int,
        gone_at: set[int]) -> None:
    unique = list({a.ref: a for a in records}.values())
    gone = [a for n, a in enumerate(unique) if n in gone_at]
    kept = [a for a in unique if a not in gone]
    mine = AccountIndex(kept)
    original = pytest.MonkeyPatch()
    original.setattr(stored_module, "BATCH", batch)
    try:
        index = build(InMemoryStateStore(), kept, batch)
        assert walked(index) == mine.members
        view = index.view(people)
        for one in people:
            assert view.resolve(one) == mine.resolve(one)
        before = AccountIndex([*kept, *gone])
        assert index.keys_with(gone) == {a.ref: before.key_for_ref(a.ref) for a in gone}
    finally:
        original.undo()


def test_a_rebuild_forgets_the_previous_build() -> None:
    state = InMemoryStateStore()
    build(state, [AccountRecord("hubspot:company:1", "Acme", "acme.com"),
                  AccountRecord("hubspot:company:2", "Beta", "beta.com")], 10)
    index = build(state, [AccountRecord("hubspot:company:2", "Beta", "acme.com")], 10)
    assert walked(index) == AccountIndex(
        [AccountRecord("hubspot:company:2", "Beta", "acme.com")]).members
    fact = PersonAccountFacts("hubspot:contact:9", email="x@beta.com")
    assert index.view([fact]).resolve(fact) == AccountIndex(
        [AccountRecord("hubspot:company:2", "Beta", "acme.com")]).resolve(fact)


@pytest.mark.redis
def test_the_stored_index_in_redis_keys_thousands_of_records_as_the_process_index(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.redis_support import redis_store

    rng = random.Random(9)
    stems = [f"co{n}" for n in range(400)]
    records = []
    for n in range(3_000):
        stem = rng.choice(stems)
        system = rng.choice(["hubspot", "salesforce"])
        kind = "company" if system == "hubspot" else "Account"
        records.append(AccountRecord(f"{system}:{kind}:{n}",
                                     rng.choice([f"{stem} Inc.", stem, None]),
                                     rng.choice([f"{stem}.com", f"www.{stem}.com", None])))
    monkeypatch.setattr(stored_module, "BATCH", 250)
    with redis_store("stored-index") as state:
        index = build(state, records, 250)
        mine = AccountIndex(records)
        assert walked(index) == mine.members
        people = [PersonAccountFacts(f"salesforce:Lead:{n}", email=f"p@{rng.choice(stems)}.com",
                                     company=rng.choice(stems)) for n in range(300)]
        view = index.view(people)
        assert [view.resolve(p) for p in people] == [mine.resolve(p) for p in people]


def test_a_value_hundreds_of_accounts_share_keeps_its_entries_and_pages_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 (memory): 300 Accounts named "Self-employed" and 200 companies on one hosting
    domain. Keyed and resolved as the in-process index does, but the store keeps 2 record
    keys a CRM per record group and 20 account keys per value, and a page of people who
    match them reads the members of no ambiguous candidate."""
    monkeypatch.setattr(stored_module, "BATCH", 50)
    records = [AccountRecord(f"salesforce:Account:{n:03}", "Self-employed", None)
               for n in range(300)]
    records += [AccountRecord(f"hubspot:company:{n:03}", f"Shop {n}", "myshop.example")
                for n in range(200)]
    records += [AccountRecord("hubspot:company:999", "Self-employed", None),
                AccountRecord("salesforce:Account:999", "Acme", "acme.com")]
    state = InMemoryStateStore()
    index = build(state, records, 50)
    mine = AccountIndex(records)
    assert walked(index) == mine.members

    def entry(kind: str, value: str) -> list[str]:
        return state.get_fingerprints(kind, [value])[value].split()

    assert entry(stored_module.BY_NAME, "selfemployed") == [
        "hubspot:company:999", "salesforce:Account:000", "salesforce:Account:001"]
    assert entry(stored_module.BY_DOMAIN, "myshop.example") == [
        "hubspot:company:000", "hubspot:company:001"]
    assert len(entry(stored_module.NAME_KEYS, "selfemployed")) == 20
    assert len(entry(stored_module.DOMAIN_KEYS, "myshop.example")) == 20

    people = [PersonAccountFacts(f"salesforce:Lead:{n}", email=None, company="Self-Employed")
              for n in range(50)]
    people += [PersonAccountFacts(f"hubspot:contact:{n}", email=f"p{n}@myshop.example")
               for n in range(50)]
    people.append(PersonAccountFacts("salesforce:Lead:acme", email="x@acme.com"))
    view = index.view(people)
    assert [view.resolve(p) for p in people] == [mine.resolve(p) for p in people]
    assert {len(view.resolve(p).ambiguous) for p in people[:-1]} == {20}
    acme = domain_key("acme.com")
    assert view.resolve(people[-1]).key == acme
    assert view.members == {acme: ("salesforce:Account:999",)}


def test_an_account_whose_records_have_different_names_is_found_by_each_name() -> None:
    """One account (a shared domain) whose HubSpot and Salesforce records carry different
    names: a Salesforce Lead with a free-mail address finds it by either name. The stored
    name list kept one name per account key (a mapping keyed by the account), so the other
    name matched nothing (found by hypothesis)."""
    records = [AccountRecord("hubspot:company:0", "Acme Inc.", "acme.com"),
               AccountRecord("salesforce:Account:0", "株式会社アクメ", "acme.com")]
    index = build(InMemoryStateStore(), records, 2)
    mine = AccountIndex(records)
    people = [PersonAccountFacts("salesforce:Lead:1", "c@gmail.com", "Acme Inc."),
              PersonAccountFacts("salesforce:Lead:2", "d@gmail.com", "株式会社アクメ")]
    view = index.view(people)
    assert [(m.key, m.via) for m in map(view.resolve, people)] == [
        (domain_key("acme.com"), "company_name")] * 2
    assert [view.resolve(p) for p in people] == [mine.resolve(p) for p in people]
