"""Sales outcomes reach people in every incremental cycle (issue 9 item 5), against the sandbox
over HTTPS with the real SDKs (simple-salesforce, hubspot-api-client) and the real connectors.

Closing an Opportunity leaves its Contact untouched, as in Salesforce, so only the sales read
(`iter_sales_changes`: contact roles, opportunities and conversions by their own SystemModstamp)
can bring the person in; the decision is dated by CloseDate / stage history, so editing an old
lost opportunity never demotes a re-qualified person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from simple_salesforce import Salesforce

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.connectors.base import RecordRef
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.connectors.salesforce.mapping import parse_datetime
from leadsync.pipeline import run_job
from leadsync.report import CycleReport
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox, pools
from leadsync.sandbox.hs_marketing import route_events
from leadsync.sandbox.store import Person, hs_time, sf_time
from leadsync.state import InMemoryStateStore
from tests.sandbox_support import hubspot_client, salesforce

PEOPLE = 60
SEED = 11


@dataclass
class World:
    sb: Sandbox
    runtime: Runtime
    sf: Salesforce
    ops: Counter[str]  # Salesforce queries by the connector's operation name


@pytest.fixture
def world() -> Iterator[World]:
    with Sandbox(contacts=PEOPLE, seed=SEED) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):  # fmt: skip
        settings = load_settings().model_copy(update={"redis_url": None})
        runtime = build_runtime(settings, state=InMemoryStateStore(), clock=sb.now)
        conn = runtime.connectors["salesforce"]
        assert isinstance(conn, SalesforceConnector)
        ops: Counter[str] = Counter()
        query_pages = conn.client.query_pages

        def counted(op: str, soql: str, *,
                    include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
            ops[op] += 1
            return query_pages(op, soql, include_deleted=include_deleted)

        conn.client.query_pages = counted  # type: ignore[method-assign]
        first = run_job(runtime, "full")
        assert first.stopped_reason is None and not first.failed
        yield World(sb, runtime, salesforce(sb), ops)


def cycle(w: World) -> CycleReport:
    w.sb.advance(60)
    w.ops.clear()
    report = run_job(w.runtime, "incremental")
    assert report.stopped_reason is None and not report.failed
    return report


def pick(w: World, *, contact: bool) -> Person:
    """A seeded person with a HubSpot twin, still a `lead`, with no opportunity: a Contact
    (`contact=True`) or an unconverted Lead."""
    data = w.sb.data
    with_opps = {r["ContactId"] for r in data.sf["OpportunityContactRole"].values()}
    for person in data.people:
        if not person.hs_ids or not data.hs_contacts[person.hs_ids[0]].get("email"):
            continue
        if contact and person.sf_contact_id and person.sf_contact_id not in with_opps:
            record = data.sf["Contact"][person.sf_contact_id]
        elif not contact and person.sf_lead_id and not person.sf_contact_id:
            record = data.sf["Lead"][person.sf_lead_id]
        else:
            continue
        if record.get("LeadSync_Stage__c") == "lead":
            return person
    raise AssertionError("the seed has no such person")


def request_demo(w: World, person: Person) -> None:
    """The person submits the demo form on the website (an instant MQL, DESIGN.md §3)."""
    data, now = w.sb.data, w.sb.now()
    with data.lock:
        data.counters["event"] += 1
        cid = person.hs_ids[0]
        row = (int(now.timestamp() * 1000), data.counters["event"], cid, "e_submitted_form",
               {"hs_form_id": "demo_request", "hs_url": pools.DEMO_PAGE})  # fmt: skip
        assert route_events(data, [row]) == []  # filed as a form submission
        data.hs_contacts[cid]["lastmodifieddate"] = hs_time(now)


def stages(w: World, person: Person, sf_object: str, sf_id: str) -> tuple[str, str, str]:
    """(LeadSync_Stage__c, HubSpot leadsync_stage, HubSpot lifecyclestage) read over the APIs."""
    sf_stage = w.sf.query(f"SELECT LeadSync_Stage__c FROM {sf_object} WHERE Id = '{sf_id}'")
    hs = hubspot_client(w.sb).crm.contacts.basic_api.get_by_id(
        person.hs_ids[0], properties=["leadsync_stage", "lifecyclestage"])
    props = hs.properties
    return (sf_stage["records"][0]["LeadSync_Stage__c"], props["leadsync_stage"],
            props["lifecyclestage"])  # fmt: skip


def contact_stamps(w: World, contact_id: str) -> tuple[str, str]:
    row = w.sf.query("SELECT SystemModstamp, LastModifiedDate FROM Contact "
                     f"WHERE Id = '{contact_id}'")["records"][0]  # fmt: skip
    return row["SystemModstamp"], row["LastModifiedDate"]


def open_opportunity(w: World, contact_id: str | None) -> str:
    """A rep opens an opportunity (REST), with the Contact in a contact role when given."""
    today = w.sb.now().date().isoformat()
    opp = w.sf.Opportunity.create({"Name": "導入", "StageName": "Qualification",
                                   "CloseDate": today, "Amount": 500000})  # fmt: skip
    if contact_id is not None:
        role = {"OpportunityId": opp["id"], "ContactId": contact_id, "IsPrimary": True,
                "Role": "Decision Maker"}
        w.sf.OpportunityContactRole.create(role)
    return str(opp["id"])


def quiet_down(w: World, person: Person) -> None:
    """Let the people cursor move past leadsync's own last write to the person: another record
    changes later (a rep edits someone else) and a cycle reads it. From then on only the sales
    read can bring the person in again."""
    w.sb.advance(600)
    other = next(p for p in w.sb.data.people
                 if p.sf_lead_id and not p.sf_contact_id and p is not person)  # fmt: skip
    w.sf.Lead.update(other.sf_lead_id, {"Title": "部長"})
    cycle(w)
    w.sb.advance(600)


def close(w: World, opportunity_id: str, stage: str) -> None:
    w.sf.Opportunity.update(opportunity_id, {"StageName": stage,
                                             "CloseDate": w.sb.now().date().isoformat()})


def mql_contact(w: World) -> Person:
    """A Contact made an MQL by a demo request, then given an open opportunity."""
    person = pick(w, contact=True)
    assert person.sf_contact_id is not None
    request_demo(w, person)
    report = cycle(w)
    assert report.transitions == {"lead->mql": 1}
    assert stages(w, person, "Contact", person.sf_contact_id) == (
        "mql", "mql", "marketingqualifiedlead")
    return person


def test_won_opportunity_makes_a_customer_in_the_next_incremental(world: World) -> None:
    person = mql_contact(world)
    cid = person.sf_contact_id
    assert cid is not None
    oid = open_opportunity(world, cid)
    report = cycle(world)
    assert report.transitions == {"mql->opportunity": 1}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    quiet_down(world, person)
    before = contact_stamps(world, cid)
    close(world, oid, "Closed Won")
    assert contact_stamps(world, cid) == before  # closing it did not touch the Contact
    opp = world.sf.query(f"SELECT IsClosed, IsWon FROM Opportunity WHERE Id = '{oid}'")
    assert opp["records"][0]["IsClosed"] is True and opp["records"][0]["IsWon"] is True
    report = cycle(world)
    assert report.transitions == {"opportunity->customer": 1}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert world.ops["changed contact roles"] == 1 and world.ops["contacts by id"] == 1
    assert stages(world, person, "Contact", cid) == ("customer", "customer", "customer")


def lose(w: World) -> tuple[Person, str]:
    """An MQL Contact whose opportunity opens and is then lost: recycled."""
    person = mql_contact(w)
    cid = person.sf_contact_id
    assert cid is not None
    oid = open_opportunity(w, cid)
    assert cycle(w).transitions == {"mql->opportunity": 1}
    quiet_down(w, person)
    before = contact_stamps(w, cid)
    close(w, oid, "Closed Lost")
    assert contact_stamps(w, cid) == before
    report = cycle(w)
    assert report.transitions == {"opportunity->recycled": 1}
    assert report.records_written == {"hubspot": 1, "salesforce": 1}
    assert stages(w, person, "Contact", cid) == ("recycled", "recycled", "lead")
    return person, oid


def test_lost_opportunity_recycles_in_the_next_incremental(world: World) -> None:
    lose(world)


def test_editing_an_old_lost_opportunity_does_not_demote_a_requalified_person(
    world: World,
) -> None:
    person, oid = lose(world)
    cid = person.sf_contact_id
    assert cid is not None
    world.sb.advance(1200)
    request_demo(world, person)  # re-qualifies after the recycling (re-MQL rule)
    report = cycle(world)
    assert report.transitions == {"recycled->mql": 1}
    assert stages(world, person, "Contact", cid)[0] == "mql"
    mql_at = world.sf.query(f"SELECT LeadSync_MQL_At__c FROM Contact WHERE Id = '{cid}'")
    quiet_down(world, person)
    world.sf.Opportunity.update(oid, {"Description": "lost to a competitor on price"})
    opp = world.sf.query(f"SELECT LastModifiedDate FROM Opportunity WHERE Id = '{oid}'")
    edited = parse_datetime(opp["records"][0]["LastModifiedDate"])
    requalified = parse_datetime(mql_at["records"][0]["LeadSync_MQL_At__c"])
    assert edited is not None and requalified is not None and edited > requalified
    report = cycle(world)
    assert world.ops["changed contact roles"] == 1 and world.ops["contacts by id"] == 1
    assert report.transitions == {}  # the person was re-evaluated, and not demoted
    assert report.people == 1 and sum(report.records_written.values()) == 0
    assert report.records_unchanged == {"hubspot": 1, "salesforce": 1}
    assert stages(world, person, "Contact", cid) == ("mql", "mql", "marketingqualifiedlead")
    again = world.sf.query(f"SELECT LeadSync_MQL_At__c FROM Contact WHERE Id = '{cid}'")
    assert again["records"][0]["LeadSync_MQL_At__c"] == mql_at["records"][0]["LeadSync_MQL_At__c"]


def convert(w: World, person: Person, opportunity_id: str) -> str:
    """Lead conversion with an opportunity, without a contact role. Salesforce converts through
    convertLead (SOAP/Apex), not REST, and its Converted* fields are read-only over REST, so the
    Lead's side is written in the sandbox's store as convertLead would."""
    assert person.sf_lead_id is not None
    data = w.sb.data
    lead = data.sf["Lead"][person.sf_lead_id]
    contact = w.sf.Contact.create({k: lead[k] for k in ("FirstName", "LastName", "Email")
                                   if lead.get(k)})  # fmt: skip
    stamp = sf_time(w.sb.now())
    with data.lock:
        lead.update({"IsConverted": True, "ConvertedContactId": contact["id"],
                     "ConvertedOpportunityId": opportunity_id, "ConvertedDate": stamp[:10],
                     "Status": "Qualified", "LastModifiedDate": stamp, "SystemModstamp": stamp})
    person.sf_contact_id = str(contact["id"])
    return str(contact["id"])


def test_converted_leads_opportunity_is_picked_up_for_the_contact(world: World) -> None:
    person = pick(world, contact=False)
    oid = open_opportunity(world, None)  # no contact role: linked only by the conversion
    cid = convert(world, person, oid)
    roles = world.sf.query(f"SELECT COUNT() FROM OpportunityContactRole WHERE ContactId = '{cid}'")
    assert roles["totalSize"] == 0
    report = cycle(world)
    assert report.transitions == {"lead->opportunity": 1}
    quiet_down(world, person)
    before = contact_stamps(world, cid)
    lead_before = world.sf.query(
        f"SELECT SystemModstamp FROM Lead WHERE Id = '{person.sf_lead_id}'")["records"]
    close(world, oid, "Closed Won")
    assert contact_stamps(world, cid) == before
    lead_after = world.sf.query(
        f"SELECT SystemModstamp FROM Lead WHERE Id = '{person.sf_lead_id}'")["records"]
    assert lead_after == lead_before
    report = cycle(world)
    assert report.transitions == {"opportunity->customer": 1}
    assert world.ops["changed conversions"] == 1 and world.ops["contacts by id"] == 1
    assert stages(world, person, "Contact", cid) == ("customer", "customer", "customer")


def test_an_incremental_with_no_sales_changes_costs_two_sales_queries(world: World) -> None:
    cycle(world)
    report = cycle(world)
    assert report.people == 0 and sum(report.records_written.values()) == 0
    # Salesforce, 11 calls, one page each: people (Leads, Contacts; here the echo of the full
    # run's own writes, which the people cursor re-reads, with their Lead Status history and
    # their opportunities: contact roles, converted Leads, stage history), engagement (Tasks,
    # Events, CampaignMembers) and the sales read: 2 queries and nothing more.
    assert dict(world.ops) == {
        "leads": 1, "lead history": 1, "contacts": 1, "contact roles": 1, "converted leads": 1,
        "opportunity history": 1, "tasks": 1, "events": 1, "campaign members": 1,
        "changed contact roles": 1, "changed conversions": 1,
    }  # fmt: skip
    assert report.api_calls["salesforce"] == 11
    hubspot = world.runtime.connectors["hubspot"]
    before = hubspot.api_calls()
    assert list(hubspot.iter_sales_changes(world.sb.now())) == []
    assert hubspot.api_calls() == before  # HubSpot has no sales read (no request at all)


def test_a_reopened_opportunity_is_dated_by_its_reopening(world: World) -> None:
    """Lost, then reopened: `opportunity_open` from the reopening (its history row), which
    needs the org's closed stages: read once from OpportunityStage, then cached."""
    person = pick(world, contact=True)
    cid = person.sf_contact_id
    assert cid is not None
    oid = open_opportunity(world, cid)
    world.sb.advance(600)
    close(world, oid, "Closed Lost")
    world.sb.advance(600)
    world.sf.Opportunity.update(oid, {"StageName": "Negotiation"})
    rows = world.sf.query("SELECT StageName, CreatedDate FROM OpportunityHistory "
                          f"WHERE OpportunityId = '{oid}' ORDER BY CreatedDate")["records"]
    assert [r["StageName"] for r in rows] == ["Qualification", "Closed Lost", "Negotiation"]
    conn = world.runtime.connectors["salesforce"]
    world.ops.clear()
    ref = RecordRef("salesforce", "Contact", cid)
    [contact] = conn.read_people([ref])
    assert contact.profile.sales_status == "opportunity_open"
    assert contact.profile.sales_status_at == parse_datetime(rows[-1]["CreatedDate"])
    [again] = conn.read_people([ref])
    assert again.profile.sales_status_at == contact.profile.sales_status_at
    assert world.ops["opportunity stages"] == 1 and world.ops["contacts by id"] == 2


def test_the_full_sales_read_dates_each_opportunity_from_its_own_history(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full read's OpportunityHistory is read ordered by OpportunityId and worked one
    opportunity at a time (issue 9: it held every row of the org): with query pages of 7
    rows, so opportunities' rows span pages, and opportunities dated two at a time, every
    Contact's sales status is what dating each opportunity from all of its rows gives (rows
    read plainly and grouped here)."""
    from leadsync.connectors.salesforce import sales_facts
    from leadsync.connectors.salesforce.mapping import (
        CLOSED_STAGES,
        opportunity_outcome,
        opportunity_status,
    )
    from leadsync.sandbox import sf_query

    # six opportunities moved in step, so their history rows interleave in time: all opened,
    # all to another open stage, half closed (won / lost) and their amount edited after
    # (a row in the same closed stage), one of those reopened. Dating reads more than an
    # opportunity's last row: an open one from its first open row, a closed one from the
    # first row of its closing run
    people = [p for p in world.sb.data.people if p.sf_contact_id][:6]
    oids = [open_opportunity(world, p.sf_contact_id) for p in people]
    world.sb.advance(60)
    for oid in oids:
        world.sf.Opportunity.update(oid, {"StageName": "Negotiation"})
    world.sb.advance(60)
    for n, oid in enumerate(oids[:3]):
        close(world, oid, ("Closed Won", "Closed Lost")[n % 2])
    world.sb.advance(60)
    for oid in oids[:3]:
        world.sf.Opportunity.update(oid, {"Amount": 750000})
    world.sb.advance(60)
    world.sf.Opportunity.update(oids[1], {"StageName": "Proposal"})
    monkeypatch.setattr(sf_query, "PAGE_SIZE", 7)
    conn = world.runtime.connectors["salesforce"]
    assert isinstance(conn, SalesforceConnector)
    monkeypatch.setattr(sales_facts, "GROUPS", 2)
    world.ops.clear()
    facts = sales_facts.SalesFacts(conn.client.query_pages, InMemoryStateStore(), conn._outcome)
    facts.read_sales(None)
    assert world.ops["opportunity history"] == 1  # one paged query, not one per opportunity

    fields = "StageName, IsClosed, IsWon, CloseDate, CreatedDate, LastModifiedDate"
    links: dict[str, set[str]] = {}
    opps: dict[str, dict[str, Any]] = {}
    for query, contact_f, opp_f, rel in (
            ("SELECT ContactId, OpportunityId, Opportunity.{f} FROM OpportunityContactRole",
             "ContactId", "OpportunityId", "Opportunity"),
            ("SELECT ConvertedContactId, ConvertedOpportunityId, ConvertedOpportunity.{f} "
             "FROM Lead WHERE IsConverted = true AND ConvertedOpportunityId != null",
             "ConvertedContactId", "ConvertedOpportunityId", "ConvertedOpportunity")):
        text = query.replace(".{f}", "." + f", {rel}.".join(fields.split(", ")))
        for row in world.sf.query_all(text)["records"]:
            if row.get(contact_f) and row.get(opp_f) and row.get(rel):
                opps[row[opp_f]] = row[rel]
                links.setdefault(row[contact_f], set()).add(row[opp_f])
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in world.sf.query_all(
            "SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory")["records"]:
        rows.setdefault(row["OpportunityId"], []).append(row)
    closed = frozenset(r["ApiName"] for r in world.sf.query_all(
        "SELECT ApiName FROM OpportunityStage WHERE IsClosed = true")["records"])
    expected = {contact: opportunity_status(
        opportunity_outcome(opps[o], rows.get(o, ()),
                            closed if any(r["StageName"] != opps[o]["StageName"]
                                          for r in rows.get(o, ()))
                            and not opps[o]["IsClosed"] else CLOSED_STAGES)
        for o in oids) for contact, oids in links.items()}
    assert len(expected) >= 6 and sum(len(v) for v in rows.values()) > 7 * 3
    found = facts.sales(sorted(expected))
    assert found == expected
    for person in people:
        assert found[str(person.sf_contact_id)][0] in ("won", "lost", "opportunity_open")


def test_the_resumable_read_keeps_its_sales_facts_in_the_store_until_it_is_done(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 (memory): the whole read's Lead Status dates and Contacts' sales facts are in
    the scratch store (the state store in a sync) while its pages are mapped, not in the
    process, and dropped once the read is done; the people come out dated exactly as the
    in-process read dates them, with the same Salesforce queries."""
    from leadsync.connectors.salesforce.sales_facts import KINDS
    from leadsync.sandbox import sf_query
    from leadsync.state import walk_fingerprints

    for n, person in enumerate(p for p in world.sb.data.people if p.sf_contact_id):
        if n == 4:
            break
        oid = open_opportunity(world, person.sf_contact_id)
        if n % 2:
            close(world, oid, "Closed Won")
    monkeypatch.setattr(sf_query, "PAGE_SIZE", 7)
    conn = world.runtime.connectors["salesforce"]
    assert isinstance(conn, SalesforceConnector)
    store = InMemoryStateStore()

    def held() -> dict[str, int]:
        return {kind: len({k for found in walk_fingerprints(store, kind, 50) for k in found})
                for kind in KINDS}  # fmt: skip

    world.ops.clear()
    resumable: dict[RecordRef, tuple[object, object]] = {}
    during: list[dict[str, int]] = []
    for recs, _ in conn.iter_people_resumable(None, scratch=store):
        during.append(held())
        resumable.update({r.ref: (r.profile.sales_status, r.profile.sales_status_at)
                          for r in recs})
    queries = Counter(world.ops)
    world.ops.clear()
    whole = {r.ref: (r.profile.sales_status, r.profile.sales_status_at)
             for r in conn.iter_changed_people(None)}

    linked = {row["ContactId"] for row in world.sf.query_all(
        "SELECT ContactId FROM OpportunityContactRole")["records"]} | {
        row["ConvertedContactId"] for row in world.sf.query_all(
            "SELECT ConvertedContactId FROM Lead WHERE IsConverted = true "
            "AND ConvertedOpportunityId != null")["records"]}  # fmt: skip
    status_changed = {row["LeadId"] for row in world.sf.query_all(
        "SELECT LeadId FROM LeadHistory WHERE Field = 'Status'")["records"]}
    assert resumable == whole
    assert sum(1 for s, _ in resumable.values() if s in ("won", "opportunity_open")) >= 4
    # the last page is mapped from the store: every linked Contact's links are there
    assert during[-1]["sf_read_links"] == len(linked) > 0
    assert during[0]["sf_read_status_at"] == len(status_changed) > 0
    assert held() == dict.fromkeys(KINDS, 0)
    for op in ("lead history", "contact roles", "converted leads", "opportunity history"):
        assert queries[op] == world.ops[op] == 1
