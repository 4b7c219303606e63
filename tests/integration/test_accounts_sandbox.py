"""Accounts through the real SDKs against the sandbox: Salesforce Accounts and HubSpot
companies are read, person records' account links come back, and account resolution gives one
key per company across both CRMs (docs/accounts.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leadsync.accounts.resolve import AccountIndex, AccountRecord, PersonAccountFacts
from leadsync.config.settings import load_settings
from leadsync.connectors.account_values import (
    HUBSPOT_ACCOUNT_PROPERTIES,
    SALESFORCE_ACCOUNT_FIELDS,
)
from leadsync.connectors.base import Connector, FieldUpdate
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.scoring import Reason

sandbox = pytest.importorskip("leadsync.sandbox")
N = 200


@pytest.fixture(scope="module")
def sb() -> Iterator[Any]:
    with sandbox.Sandbox(contacts=N, seed=5) as box:
        yield box


@pytest.fixture()
def crms(sb: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[SalesforceConnector,
                                                               HubSpotConnector]:
    for key, value in sb.env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.salesforce is not None and settings.hubspot is not None
    return SalesforceConnector(settings.salesforce), HubSpotConnector(settings.hubspot)


def _requests(sb: Any, system: str) -> Counter[str]:
    return Counter(sb.stats()[system]["requests"])


def test_accounts_and_links_are_read_with_a_few_calls(sb: Any, crms: tuple[Any, Any]) -> None:
    sf, hs = crms
    assert isinstance(sf, Connector) and isinstance(hs, Connector)
    data = sb.data
    sf_accounts, hs_companies = data.sf["Account"], data.hs_companies
    sf.list_owners()  # logs in: the calls below are the accounts' own
    before_sf, before_hs = sf.api_calls(), hs.api_calls()
    accounts = list(sf.iter_accounts()) + list(hs.iter_accounts())
    sf_calls = sf.api_calls() - before_sf
    hs_calls = hs.api_calls() - before_hs
    assert len(accounts) == len(sf_accounts) + len(hs_companies)
    # Salesforce: one describe (the target flag) and one query page (<= 2000 Accounts);
    # HubSpot: one list call per 100 companies
    assert sf_calls == 2
    assert hs_calls == -(-len(hs_companies) // 100)
    by_ref = {a.ref.key: a for a in accounts}
    for aid, raw in sf_accounts.items():
        acc = by_ref[f"salesforce:Account:{aid}"]
        assert (acc.name, acc.website, acc.owner_id) == (raw["Name"], raw["Website"],
                                                         raw.get("OwnerId"))
        assert acc.attributes == {"target_account": raw["Target_Account__c"]}
    for cid, props in hs_companies.items():
        acc = by_ref[f"hubspot:company:{cid}"]
        assert (acc.name, acc.website) == (props["name"], props["domain"])
        assert acc.attributes == {"target_account": props["hs_is_target_account"] == "true"}

    people = list(sf.iter_changed_people(None)) + list(hs.iter_changed_people(None))
    refs = [p.ref for p in people]
    before = _requests(sb, "hubspot")
    links = sf.read_account_links(refs) + hs.read_account_links(refs)
    hs_contacts = [r for r in refs if r.system == "hubspot"]
    assert _requests(sb, "hubspot") - before == Counter(
        {"POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read":
         -(-len(hs_contacts) // 100)})
    by_record = {lk.record.key: lk for lk in links}
    contacts = [r for r in refs if r.object_type == "Contact"]
    assert len(contacts) > 0
    for ref in contacts:  # every seeded Contact has its Account
        assert by_record[ref.key].account_ids == (data.sf["Contact"][ref.id]["AccountId"],)
    associated = [r for r in hs_contacts if data.hs_contact_companies.get(r.id)]
    assert 0 < len(associated) < len(hs_contacts)  # one in ten has no company
    for ref in hs_contacts:
        expected = data.hs_contact_companies.get(ref.id)
        if expected:
            assert by_record[ref.key].account_ids == tuple(expected)
            assert by_record[ref.key].primary == expected[0]
        else:
            assert ref.key not in by_record


def test_the_full_read_carries_the_account_links(sb: Any, crms: tuple[Any, Any]) -> None:
    """The full read brings every record's account links (Contact AccountId, Lead
    ConvertedAccountId, HubSpot `associations=companies`): no association call for them."""
    sf, hs = crms
    data = sb.data
    hs.list_owners()
    sf.list_owners()
    before_sf, before_hs = _requests(sb, "salesforce"), _requests(sb, "hubspot")
    people = list(sf.iter_changed_people(None)) + list(hs.iter_changed_people(None))
    hs_contacts = [p for p in people if p.ref.system == "hubspot"]
    assert _requests(sb, "hubspot") - before_hs == Counter(
        {"GET /crm/v3/objects/contacts": -(-len(hs_contacts) // 100)})
    assert not any("associations" in k or "Account" in k
                   for k in _requests(sb, "salesforce") - before_sf)
    for person in people:
        links = person.account_links
        assert links is not None and links.record == person.ref
        if person.ref.object_type == "Contact":
            assert links.account_ids == (data.sf["Contact"][person.ref.id]["AccountId"],)
        elif person.ref.object_type == "Lead":
            converted = data.sf["Lead"][person.ref.id].get("ConvertedAccountId")
            assert links.account_ids == ((converted,) if converted else ())
        else:
            expected = tuple(data.hs_contact_companies.get(person.ref.id, ()))
            assert links.account_ids == expected
            assert links.primary == (expected[0] if expected else None)
    assert sum(1 for p in hs_contacts if p.account_links and p.account_links.account_ids) \
        == sum(1 for p in hs_contacts if data.hs_contact_companies.get(p.ref.id))


def test_a_contact_with_more_companies_than_listed_inline_is_read_by_association(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot lists at most INLINE_ASSOCIATIONS association rows inline, then pages: such a
    contact's links are left to the v4 batch read, which has them all."""
    from leadsync.sandbox.hs_companies import add_company, associate_company
    from leadsync.sandbox.hs_contacts import INLINE_ASSOCIATIONS

    with sandbox.Sandbox(contacts=20, seed=5) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.hubspot is not None
        hs = HubSpotConnector(settings.hubspot)
        contact = sorted(box.data.hs_contacts, key=int)[0]
        many = [add_company(box.data, f"Co {i}", domain=f"co-{i}.example",
                            created=datetime(2026, 1, 1, tzinfo=UTC))
                for i in range(INLINE_ASSOCIATIONS)]  # 100 companies: 101 rows with the primary
        for cid in many:
            associate_company(box.data, contact, cid, primary=False)
        expected = tuple(box.data.hs_contact_companies[contact])
        people = {p.ref.id: p for p in hs.iter_changed_people(None)}
        assert people[contact].account_links is None
        assert all(p.account_links is not None for cid, p in people.items() if cid != contact)
        before = _requests(box, "hubspot")
        links = hs.read_account_links([people[contact].ref])
        assert _requests(box, "hubspot") - before == Counter(
            {"POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read": 1})
        assert [lk.account_ids for lk in links] == [expected]


def test_one_account_key_per_company_across_both_crms(sb: Any, crms: tuple[Any, Any]) -> None:
    sf, hs = crms
    accounts = list(sf.iter_accounts()) + list(hs.iter_accounts())
    index = AccountIndex(AccountRecord(a.ref.key, a.name, a.website) for a in accounts)
    # the seed reuses company names across domains: reported, and harmless to domain keys
    assert {a.kind for a in index.ambiguities} == {"name"}
    sf_keys = {index.key_of[a.ref.key] for a in accounts if a.ref.system == "salesforce"}
    hs_keys = {index.key_of[a.ref.key] for a in accounts if a.ref.system == "hubspot"}
    assert len(sf_keys) == len(sb.data.sf["Account"])  # one key per Account ...
    assert sf_keys & hs_keys  # ... shared with the HubSpot company of the same domain
    people = list(sf.iter_changed_people(None)) + list(hs.iter_changed_people(None))
    links = {lk.record.key: lk for lk in
             sf.read_account_links([p.ref for p in people]) +
             hs.read_account_links([p.ref for p in people])}
    via: Counter[str] = Counter()
    for person in people:
        lk = links.get(person.ref.key)
        facts = PersonAccountFacts(
            person.ref.key, email=person.profile.email, company=person.profile.company,
            account_id=lk.account_ids[0] if lk and person.ref.object_type == "Contact" else None,
            converted_account_id=lk.account_ids[0] if lk and person.ref.object_type == "Lead"
            else None,
            company_ids=lk.account_ids if lk and person.ref.system == "hubspot" else (),
            primary_company_id=lk.primary if lk else None)
        match = index.resolve(facts)
        via[match.via] += 1
        assert match.ambiguous == () or match.via == "company_name"
        if match.via in ("account_id", "association"):
            assert match.key in sf_keys | hs_keys
    assert via["account_id"] > 0 and via["association"] > 0 and via["email_domain"] > 0


def _values(i: int) -> dict[str, object]:
    return {"account_score": 60 + i, "engaged_people": 4,
            "account_reasons": (Reason("acct-engaged-3", "3名以上がエンゲージ", 40.0),
                                Reason("acct-buying-group", "部長以上がエンゲージ", 20.0)),
            "mqa_at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "model": "default-2026.11"}


def test_account_fields_are_written_once_in_both_crms(sb: Any, crms: tuple[Any, Any]) -> None:
    sf, hs = crms
    for conn, api_names in ((sf, SALESFORCE_ACCOUNT_FIELDS), (hs, HUBSPOT_ACCOUNT_PROPERTIES)):
        accounts = sorted(conn.iter_accounts(), key=lambda a: a.ref.id)[:3]
        updates = [FieldUpdate(a.ref, _values(i), a.current) for i, a in enumerate(accounts)]
        before = conn.api_calls()
        first = conn.write_account_updates(updates)
        assert (len(first.written), first.failed) == (3, [])
        assert conn.api_calls() - before == 1  # one collection / one batch update
        again = {a.ref: a for a in conn.iter_accounts()}
        for i, acc in enumerate(accounts):
            current = again[acc.ref].current
            assert set(current) == set(api_names)
            assert float(str(current["account_score"])) == 60 + i
            assert current["account_reasons"] == "+40 3名以上がエンゲージ; +20 部長以上がエンゲージ"
        before = conn.api_calls()
        second = conn.write_account_updates(
            [FieldUpdate(a.ref, _values(i), again[a.ref].current) for i, a in enumerate(accounts)])
        assert (second.written, len(second.unchanged)) == ([], 3)
        assert conn.api_calls() == before  # nothing changed: nothing sent
        cleared = conn.write_account_updates(
            [FieldUpdate(accounts[0].ref, {"mqa_at": None}, again[accounts[0].ref].current)])
        assert len(cleared.written) == 1
        assert {a.ref: a for a in conn.iter_accounts()}[accounts[0].ref].current.get(
            "mqa_at") in (None, "")


def test_bad_account_values_are_refused_per_record(crms: tuple[Any, Any]) -> None:
    sf, hs = crms
    for conn in (sf, hs):
        acc = next(iter(conn.iter_accounts()))
        result = conn.write_account_updates([
            FieldUpdate(acc.ref, {"account_score": 10_000}, acc.current),
            FieldUpdate(acc.ref, {"colour": "red"}, acc.current),
            FieldUpdate(acc.ref, {"engaged_people": -1}, acc.current)])
        assert [f.reason for f in result.failed] == [
            "invalid value: account_score: 10000 does not fit Number(4,0)",
            "invalid value: unknown written account field 'colour'",
            "invalid value: engaged_people: must be >= 0, got -1"]


def test_provision_creates_the_company_properties_and_check_verifies_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with sandbox.Sandbox(contacts=20, seed=3, provision_hubspot=False) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.hubspot is not None and settings.salesforce is not None
        hs = HubSpotConnector(settings.hubspot)
        problems = hs.check()
        assert [p for p in problems if "company property" in p] == [
            f"HubSpot: company property {n} is missing (run leadsync provision)"
            for n in HUBSPOT_ACCOUNT_PROPERTIES.values()]
        done = hs.provision()
        assert [d for d in done if d.startswith("company")] == [
            "company group leadsync: created",
            *(f"company property {n}: created" for n in HUBSPOT_ACCOUNT_PROPERTIES.values())]
        assert hs.check() == []
        again = hs.provision()
        assert [d for d in again if d.startswith("company")][1:] == [
            f"company property {n}: exists" for n in HUBSPOT_ACCOUNT_PROPERTIES.values()]
        assert box.data.hs_company_properties["leadsync_mqa_at"]["type"] == "datetime"
        sf = SalesforceConnector(settings.salesforce)
        assert sf.check() == []
        files = sf.provision(tmp_path / "meta")
        account = sorted(Path(f).name for f in files if "/Account/" in f)
        assert account == sorted(f"{n}.field-meta.xml" for n in SALESFORCE_ACCOUNT_FIELDS.values())
