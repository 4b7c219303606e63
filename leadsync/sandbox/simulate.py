"""Simulated time passing: what people and reps do while leadsync sleeps.

People produce marketing events at a rate driven by their hidden propensity (the best of them
request demos); reps call open MQLs and SQLs (sooner for better-fit people), move Lead Status,
convert leads and open, win or lose opportunities. Everything is written with the timestamps
the CRMs would give it, so leadsync's incremental reads see it.

Qualification (`_qualify`): an MQL a rep already contacted (in an earlier step) gets a decision
some steps later, sooner and more often positive for better-fit people: qualified (BANT fields
filled on the Lead or Contact, and/or Lead Status moved to Qualified), worked but not yet ready
(Lead Status Working, one or two BANT items), or rejected (Lead Status Unqualified / Nurture).
MQLs nobody called stay untouched, so due-soon and breached clocks keep happening. Decisions
draw from their own random stream, so they do not shift the rest of the simulation.
Buying-group surges (`surge_companies`, `_surges`): about one company in SURGE_EVERY, chosen by
its domain's hash (not the seed's stream, so the rest of the data set is unchanged) among the
companies with at least three HubSpot contacts one of whom is a director or above, has its
buying group wake up in simulated step 1 or 2: up to SURGE_PEOPLE of its contacts (the senior
ones first) each view the pricing page twice and a product page once. With the bundled account
rules such a company becomes an MQA (docs/accounts.md). The surge draws times from its own
stream too.
People only in HubSpot are worked there (`_hubspot_rep`): a rep sets the contact's Lead Status
to In progress / Connected, and later fills the BANT properties (HubSpot keeps no dated status
history leadsync reads, so rejections there would not move anyone; they are not simulated).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from leadsync.sandbox import pools
from leadsync.sandbox.hs_marketing import route_events
from leadsync.sandbox.seed import Seeder
from leadsync.sandbox.seed_journey import KINDS, add_history, add_task, emit, kind_weights
from leadsync.sandbox.sf_convert import convert_lead
from leadsync.sandbox.sf_records import opportunity_changed
from leadsync.sandbox.store import Person, parse_time

if TYPE_CHECKING:
    from leadsync.sandbox.app import Sandbox

HOUR = 3600.0
SURGE_EVERY = 40  # about one company in 40 has a buying-group surge
SURGE_PEOPLE = 4  # contacts of a surging company who engage
SURGE_STEPS = 2  # the surge happens in simulated step 1 or 2 (by the domain's hash)
_SENIOR = ("executive", "vp", "director")
_SENIORITY_OF = {title: level for level, (jp, en) in pools.TITLES.items() for title in (*jp, *en)}
EVENTS_PER_HOUR = 1.5 / (180 * 24)  # seeded histories hold ~(1 + 20p) events per 180 days


def simulate(sb: Sandbox, hours: float) -> dict[str, int]:
    """Generate `hours` of activity ending at the new sandbox time; return what happened."""
    if hours <= 0:
        raise ValueError(f"simulate needs a positive number of hours, got {hours}")
    with sb.data.lock:
        sb.data.counters["simulate"] += 1
        start = sb.clock.now().timestamp()
        seeder = Seeder(sb.data, 0, 0, sb.clock.now(), provision_hubspot=True)
        seeder.rng = random.Random(  # noqa: S311 - reproducible simulation
            f"simulate:{sb.seed}:{sb.data.counters['simulate']}"
        )
        done: Counter[str] = Counter()
        opportunities: dict[str, list[str]] = {}
        for role in sb.data.sf["OpportunityContactRole"].values():
            opportunities.setdefault(role.get("ContactId") or "", []).append(role["OpportunityId"])
        qualify_rng = random.Random(  # noqa: S311 - reproducible simulation
            f"qualify:{sb.seed}:{sb.data.counters['simulate']}"
        )
        for person in sb.data.people:
            _marketing(seeder, person, start, hours, done)
            worked = _contacted_mql(seeder, person)
            _sales(seeder, person, start, hours, done)
            if worked is not None:
                _qualify(seeder, qualify_rng, person, worked, start=start, hours=hours, done=done)
            _hubspot_rep(seeder, qualify_rng, person, start=start, hours=hours, done=done)
            if person.sf_contact_id:
                _close_opportunities(
                    seeder,
                    opportunities.get(person.sf_contact_id, []),
                    person.fit,
                    start=start,
                    hours=hours,
                    done=done,
                )
        _surges(seeder, sb.seed, sb.data.counters["simulate"], start=start, hours=hours,
                done=done)
        _merge_events(seeder)
        sb.clock.advance(hours * HOUR)
    return dict(done)


def surge_companies(data: Any) -> dict[str, tuple[int, list[str]]]:
    """HubSpot company id -> (the simulated step of its surge, the contacts who engage, senior
    first) of every company with a buying-group surge (module doc)."""
    by_company: dict[str, list[str]] = {}
    for person in data.people:
        if person.hs_ids:
            company = data.hs_company_primary.get(person.hs_ids[0])
            if company:
                by_company.setdefault(company, []).append(person.hs_ids[0])
    out: dict[str, tuple[int, list[str]]] = {}
    for company, contacts in sorted(by_company.items(), key=lambda kv: int(kv[0])):
        domain = str((data.hs_companies.get(company) or {}).get("domain") or "")
        digest = int(hashlib.sha256(f"surge:{domain}".encode()).hexdigest()[:12], 16)
        if not domain or digest % SURGE_EVERY or len(contacts) < 3:
            continue

        def rank(cid: str) -> tuple[int, int]:
            level = _SENIORITY_OF.get(str(data.hs_contacts[cid].get("jobtitle") or ""), "")
            return (_SENIOR.index(level) if level in _SENIOR else len(_SENIOR), int(cid))

        ranked = sorted(contacts, key=rank)[:SURGE_PEOPLE]
        if rank(ranked[0])[0] < len(_SENIOR):  # a director or above among them
            out[company] = (1 + (digest // SURGE_EVERY) % SURGE_STEPS, ranked)
    return out


def _surges(seeder: Seeder, seed: int, step: int, *, start: float, hours: float,
            done: Counter[str]) -> None:
    if step > SURGE_STEPS:
        return
    for company, (when_step, contacts) in surge_companies(seeder.data).items():
        if when_step != step:
            continue
        rng = random.Random(f"surge:{seed}:{company}")  # noqa: S311 - reproducible simulation
        for cid in contacts:
            for url in (pools.PRICING_PAGE, pools.PRICING_PAGE, pools.PRODUCT_PAGES[0]):
                seeder.event(start + rng.random() * hours * HOUR, cid, "e_visited_page",
                             hs_url=url)
                done["surge_events"] += 1
        done["surges"] += 1


def _marketing(
    seeder: Seeder, person: Person, start: float, hours: float, done: Counter[str]
) -> None:
    if not person.hs_ids:
        return
    rng, p = seeder.rng, person.propensity
    expected = (1 + 20 * p) * EVENTS_PER_HOUR * hours
    count = int(expected) + (1 if rng.random() < expected % 1 else 0)
    if count:
        for kind in rng.choices(list(KINDS), cum_weights=kind_weights(p), k=count):
            emit(
                seeder,
                person.hs_ids[0],
                kind,
                start + rng.random() * hours * HOUR,
                rng.choice(pools.WEBINARS)[0],
            )
            done["events"] += 1
    if rng.random() < p**3 * 0.004 * hours:
        when = start + rng.random() * hours * HOUR
        seeder.event(
            when,
            person.hs_ids[0],
            "e_submitted_form",
            hs_form_id="demo_request",
            hs_url=pools.DEMO_PAGE,
        )
        done["demo_requests"] += 1


def _record(seeder: Seeder, person: Person) -> tuple[str, dict[str, Any]] | None:
    if person.sf_contact_id:
        return "Contact", seeder.data.sf["Contact"][person.sf_contact_id]
    if person.sf_lead_id:
        return "Lead", seeder.data.sf["Lead"][person.sf_lead_id]
    return None


def _sales(seeder: Seeder, person: Person, start: float, hours: float, done: Counter[str]) -> None:
    found = _record(seeder, person)
    if found is None:
        return
    obj, record = found
    stage = record.get("LeadSync_Stage__c")
    rng = seeder.rng
    if stage in ("mql", "sql"):
        clock = record.get("LeadSync_SQL_At__c" if stage == "sql" else "LeadSync_MQL_At__c")
        if (
            clock
            and person.touched_clock != clock
            and rng.random() < min(1.0, hours / 24 * (0.3 + 0.9 * person.fit))
        ):
            when = start + rng.random() * hours * HOUR
            add_task(
                seeder,
                record["Id"],
                record.get("OwnerId"),
                when,
                rng.choice(["Call", "Call", "Email"]),
            )
            person.touched_clock = clock
            done["rep_touches"] += 1
            if obj == "Lead" and record.get("Status") == "Open - Not Contacted":
                _set_status(seeder, record, "Working - Contacted", when)
                done["status_changes"] += 1
        if stage == "sql" and rng.random() < hours / (24 * 14) * person.fit:
            _open_opportunity(seeder, person, obj, record, start + rng.random() * hours * HOUR)
            done["opportunities_opened"] += 1
        elif (
            stage == "mql" and obj == "Lead" and rng.random() < hours / (24 * 30) * (1 - person.fit)
        ):
            _set_status(
                seeder,
                record,
                rng.choice(["Unqualified", "Nurture"]),
                start + rng.random() * hours * HOUR,
            )
            done["status_changes"] += 1


BANT_FIELDS = ("BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timeline__c")
QUALIFY_PER_DAY = 0.8  # chance per day that a rep decides on an MQL they already contacted
REJECTIONS = ("Unqualified", "Nurture")


def _contacted_mql(seeder: Seeder, person: Person) -> tuple[str, dict[str, Any]] | None:
    """The Salesforce record of an MQL a rep has contacted on its current clock, else None."""
    found = _record(seeder, person)
    if found is None:
        return None
    record = found[1]
    if record.get("LeadSync_Stage__c") != "mql" or record.get("IsConverted"):
        return None
    clock = record.get("LeadSync_MQL_At__c")
    return found if clock and person.touched_clock == clock else None


def _qualify(
    seeder: Seeder,
    rng: random.Random,
    person: Person,
    found: tuple[str, dict[str, Any]],
    *,
    start: float,
    hours: float,
    done: Counter[str],
) -> None:
    """A rep's decision on a contacted MQL: qualify, keep working, or reject (module docstring)."""
    obj, record = found
    status = record.get("Status")
    if status == "Qualified" or status in REJECTIONS or _bant_count(record) >= 3:
        return  # already decided; leadsync has not caught up yet
    if rng.random() >= min(1.0, hours / 24 * QUALIFY_PER_DAY):
        return
    when = start + rng.random() * hours * HOUR
    roll = rng.random()
    if roll < 0.35 + 0.5 * person.fit:
        mode = "bant" if obj == "Contact" else rng.choice(["bant", "bant", "status", "both"])
        if mode in ("bant", "both"):
            _fill_bant(seeder, record, rng.choice([3, 3, 4]), when)
        if mode in ("status", "both"):
            _set_status(seeder, record, "Qualified", when)
        done["qualified"] += 1
    elif roll < 0.75 + 0.2 * person.fit or obj == "Contact":
        _fill_bant(seeder, record, rng.choice([1, 2]), when)
        if obj == "Lead" and status != "Working - Contacted":
            _set_status(seeder, record, "Working - Contacted", when)
        done["bant_partial"] += 1
    else:
        _set_status(seeder, record, rng.choice(REJECTIONS), when)
        done["rejected"] += 1


HS_BANT = ("bant_budget", "bant_authority", "bant_need", "bant_timeline")
HS_WORKING = ("IN_PROGRESS", "CONNECTED")


def _hubspot_rep(
    seeder: Seeder,
    rng: random.Random,
    person: Person,
    *,
    start: float,
    hours: float,
    done: Counter[str],
) -> None:
    """A HubSpot-only MQL: first worked (Lead Status), then, in a later step, BANT recorded."""
    if not person.hs_ids or person.sf_lead_id or person.sf_contact_id:
        return
    contact = seeder.data.hs_contacts[person.hs_ids[0]]
    clock = contact.get("leadsync_mql_at")
    if contact.get("leadsync_stage") != "mql" or not clock:
        return
    when = start + rng.random() * hours * HOUR
    if person.touched_clock != clock:
        if rng.random() < min(1.0, hours / 24 * (0.3 + 0.9 * person.fit)):
            contact["hs_lead_status"] = rng.choice(HS_WORKING)
            contact["lastmodifieddate"] = seeder.hs(when)
            person.touched_clock = clock
            done["hubspot_rep_touches"] += 1
        return
    met = sum(1 for name in HS_BANT if contact.get(name) == "true")
    if met >= 3 or rng.random() >= min(1.0, hours / 24 * QUALIFY_PER_DAY):
        return
    target = rng.choice([3, 3, 4]) if rng.random() < 0.35 + 0.5 * person.fit else 2
    for i, name in enumerate(HS_BANT):
        contact[name] = "true" if i < target or contact.get(name) == "true" else "false"
    contact["lastmodifieddate"] = seeder.hs(when)
    done["hubspot_qualified" if target >= 3 else "hubspot_bant_partial"] += 1


def _bant_count(record: dict[str, Any]) -> int:
    return sum(1 for name in BANT_FIELDS if record.get(name) is True)


def _fill_bant(seeder: Seeder, record: dict[str, Any], met: int, when: float) -> None:
    """The rep records BANT on the record: the first `met` items true (an item already true
    stays true), the rest false."""
    for i, name in enumerate(BANT_FIELDS):
        record[name] = i < met or record.get(name) is True
    record["LastModifiedDate"] = record["SystemModstamp"] = seeder.sf(when)


def _set_status(seeder: Seeder, lead: dict[str, Any], status: str, when: float) -> None:
    add_history(seeder, lead["Id"], when, status, lead.get("Status") or "Open - Not Contacted")
    lead["Status"] = status
    lead["LastModifiedDate"] = lead["SystemModstamp"] = seeder.sf(when)


def _open_opportunity(
    seeder: Seeder, person: Person, obj: str, record: dict[str, Any], when: float
) -> None:
    data = seeder.data
    stamp = seeder.sf(when)
    if obj == "Lead":  # convert: the Contact carries leadsync's fields from now on
        converted = convert_lead(data, record["Id"], parse_time(stamp))
        contact_id = str(converted["contactId"])
        person.sf_contact_id = contact_id
    assert person.sf_contact_id is not None
    oid = data.new_sf_id("006")
    opp = {
        "Id": oid,
        "Name": "New business",
        "StageName": "Qualification",
        "CloseDate": seeder.sf(when + 30 * 24 * HOUR)[:10],
        "Amount": 1_000_000.0,
        "OwnerId": record.get("OwnerId"),
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
    }
    data.sf["Opportunity"][oid] = opp
    opportunity_changed(data, opp, stamp)
    if obj == "Lead":  # the conversion created this opportunity
        record["ConvertedOpportunityId"] = oid
    rid = data.new_sf_id("00K")
    data.sf["OpportunityContactRole"][rid] = {
        "Id": rid,
        "OpportunityId": oid,
        "ContactId": person.sf_contact_id,
        "IsPrimary": True,
        "Role": "Decision Maker",
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
    }


def _close_opportunities(
    seeder: Seeder,
    opportunity_ids: list[str],
    fit: float,
    *,
    start: float,
    hours: float,
    done: Counter[str],
) -> None:
    data, rng = seeder.data, seeder.rng
    if not opportunity_ids or rng.random() >= hours / (24 * 30):
        return
    for oid in opportunity_ids:
        opp = data.sf["Opportunity"].get(oid)
        if opp is None or opp.get("IsClosed"):
            continue
        won = rng.random() < 0.3 + 0.5 * fit
        stamp = seeder.sf(start + rng.random() * hours * HOUR)
        opp.update(
            {
                "StageName": "Closed Won" if won else "Closed Lost",
                "CloseDate": stamp[:10],
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
            }
        )  # the opportunity only: its Contacts and Leads keep their SystemModstamp
        opportunity_changed(data, opp, stamp)
        done["opportunities_won" if won else "opportunities_lost"] += 1


def _merge_events(seeder: Seeder) -> None:
    data = seeder.data
    if not seeder.raw_events:
        return
    seeder.raw_events.sort(key=lambda e: (e[0], e[1]))
    first_seq = data.counters["event"] + 1
    new = [
        (ms, seq, cid, etype, props)
        for seq, (ms, cid, etype, props) in enumerate(seeder.raw_events, first_seq)
    ]
    data.counters["event"] += len(new)
    kept = route_events(data, new)  # email events and form submissions go to their own APIs
    if data.hs_events and kept and kept[0][0] < data.hs_events[-1][0]:
        data.hs_events.extend(kept)
        data.hs_events.sort(key=lambda e: (e[0], e[1]))
    else:
        data.hs_events.extend(kept)
    for ms, _, cid, etype, _ in new:
        if etype == "e_submitted_form" and cid in data.hs_contacts:  # forms update the contact
            data.hs_contacts[cid]["lastmodifieddate"] = seeder.hs(ms / 1000)
