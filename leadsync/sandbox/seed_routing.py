"""Routing cases added to a seeded sandbox (docs/routing.md, `leadsync demo --routing`).

What real orgs hold and routing must cope with: Salesforce Leads owned by a queue (a Group,
00G...) or by a deactivated user, by the integration user; HubSpot contacts with no owner or
an archived one; and reps in different territories (Japan, the US) present in both CRMs. Every
case person asked for a demo (a HubSpot form submission shortly before the sandbox's now), so
the next sync makes them an MQL. Two people must keep their owner: one whose Lead Status says
a rep is working it (queue-owned all the same), and one owned by an active rep.

Added on top of `seed` with its own id counters and no draw from the seed's random stream, so
the seeded data set is the same with or without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leadsync.sandbox import pools
from leadsync.sandbox.seed import Seeder
from leadsync.sandbox.simulate import _merge_events
from leadsync.sandbox.store import Person

if TYPE_CHECKING:
    from leadsync.runtime import Runtime
    from leadsync.sandbox.app import Sandbox

#: the territory reps: (email, first, last, territory)
REPS = (
    ("aiko.kanto@example-sales.com", "Aiko", "Sato", "JP"),
    ("ren.kanto@example-sales.com", "Ren", "Ito", "JP"),
    ("sam.west@example-sales.com", "Sam", "West", "US"),
)
FORMER_REP = "former.rep@example-sales.com"  # archived in HubSpot by the seed
#: the rules of the demo and the tests: Japan to a weighted pool, the US to one rep
EXAMPLE_ROUTING: dict[str, Any] = {
    "unassigned_owners": ["integration@leadsync-sandbox.example"],
    "pools": {"japan": {"members": [{"email": REPS[0][0], "weight": 2}, REPS[1][0]],
                        "capacity": 50}},
    "rules": [
        {"id": "us", "label": "US territory", "when": {"field": "country", "eq": "US"},
         "owner": REPS[2][0]},
        {"id": "japan", "label": "Japan territory", "when": {"field": "country", "eq": "JP"},
         "pool": "japan"},
    ],
}
#: (case, how many, country, Salesforce owner kind or None for HubSpot only, HubSpot owner kind)
CASES = (
    ("queue", 4, "JP", "queue", "none"),
    ("inactive", 3, "JP", "inactive", "archived"),
    ("integration", 2, "US", "integration", "none"),
    ("hubspot-unowned", 3, "JP", None, "none"),
    ("hubspot-archived", 1, "US", None, "archived"),
    ("no-territory", 1, "DE", None, "none"),
    ("worked", 1, "JP", "queue", "none"),
    ("owned", 1, "JP", "rep", "rep"),
)


@dataclass
class RoutingCases:
    """Ids of what was added: per case, the person's (Salesforce Lead id or None, HubSpot
    contact id); the reps' Salesforce user and HubSpot owner ids by email; the queue."""

    people: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)
    sf_users: dict[str, str] = field(default_factory=dict)
    hs_owners: dict[str, str] = field(default_factory=dict)
    queue: str = ""
    inactive_user: str = ""


def add_routing_cases(sb: Sandbox, *, hours_ago: float = 1.0) -> RoutingCases:
    """Add the reps, the queue, the inactive user and the case people (see module doc)."""
    with sb.data.lock:
        seeder = Seeder(sb.data, 0, 0, sb.clock.now(), provision_hubspot=True)
        out = RoutingCases()
        _reps(seeder, out)
        index = len(sb.data.people)
        for case, count, country, sf_kind, hs_kind in CASES:
            for n in range(count):
                person = Person(index, 0.5, 0.5, None)
                sb.data.people.append(person)
                out.people.setdefault(case, []).append(
                    _person(seeder, out, person, f"{case}{n}", country=country,
                            sf_kind=sf_kind, hs_kind=hs_kind, worked=case == "worked",
                            hours_ago=hours_ago))
                index += 1
        _merge_events(seeder)
    return out


def with_routing_cases(sb: Sandbox, runtime: Runtime) -> Runtime:
    """`leadsync demo --routing`: the cases added to `sb`; the runtime's model routes with
    `EXAMPLE_ROUTING` unless the rules file has its own `routing:` section."""
    from dataclasses import replace

    from leadsync.config.rules_parts import Where
    from leadsync.config.rules_routing import parse_routing

    add_routing_cases(sb)
    model = runtime.model
    if not model.routing.enabled:
        model = replace(model, routing=parse_routing(EXAMPLE_ROUTING, Where("demo --routing")))
    return replace(runtime, model=model)


def _reps(seeder: Seeder, out: RoutingCases) -> None:
    data = seeder.data
    stamp = seeder.sf(seeder.ts(400))
    hs_stamp = seeder.hs(seeder.ts(400))
    for i, (email, first, last, _territory) in enumerate(REPS):
        uid = data.new_sf_id("005")
        data.sf["User"][uid] = {"Id": uid, "Email": email, "Name": f"{first} {last}",
                                "IsActive": True, "Username": email, "CreatedDate": stamp,
                                "SystemModstamp": stamp}
        oid = str(71_000_000 + i)
        data.hs_owners[oid] = {"id": oid, "type": "PERSON", "email": email, "firstName": first,
                               "lastName": last, "userId": 9_300_000 + i,
                               "userIdIncludingInactive": 9_300_000 + i, "archived": False,
                               "teams": [], "createdAt": hs_stamp, "updatedAt": hs_stamp}
        out.sf_users[email], out.hs_owners[email] = uid, oid
    out.inactive_user = data.new_sf_id("005")
    data.sf["User"][out.inactive_user] = {
        "Id": out.inactive_user, "Email": FORMER_REP, "Name": "Ken Former", "IsActive": False,
        "Username": FORMER_REP, "CreatedDate": stamp, "SystemModstamp": stamp}
    out.queue = data.new_sf_id("00G")
    data.sf["Group"][out.queue] = {"Id": out.queue, "Name": "Inbound Leads",
                                   "DeveloperName": "Inbound_Leads", "Type": "Queue",
                                   "CreatedDate": stamp, "SystemModstamp": stamp}
    support = data.new_sf_id("03g")  # a Lead queue: it may own Leads, not Tasks
    data.sf["QueueSobject"][support] = {"Id": support, "QueueId": out.queue,
                                        "SobjectType": "Lead", "CreatedDate": stamp}


def _sf_owner(seeder: Seeder, out: RoutingCases, kind: str) -> str:
    owners = {"queue": out.queue, "inactive": out.inactive_user,
              "integration": str(seeder.data.sf_integration_user),
              "rep": out.sf_users[REPS[0][0]]}
    return owners[kind]


def _hs_owner(seeder: Seeder, out: RoutingCases, kind: str) -> str | None:
    if kind == "none":
        return None
    if kind == "rep":
        return out.hs_owners[REPS[0][0]]
    return next(str(o["id"]) for o in seeder.data.hs_owners.values()
                if o.get("email") == FORMER_REP)


def _person(seeder: Seeder, out: RoutingCases, person: Person, name: str, *, country: str,
            sf_kind: str | None, hs_kind: str, worked: bool, hours_ago: float
            ) -> tuple[str | None, str]:
    data = seeder.data
    created = seeder.ts(30)
    email = f"routing.{name}@example-buyer.co.jp"
    company = f"Routing {name} KK"
    lead_id: str | None = None
    if sf_kind is not None:
        lead_id = data.new_sf_id("00Q")
        data.sf["Lead"][lead_id] = {
            "Id": lead_id, "FirstName": "Case", "LastName": name.capitalize(), "Email": email,
            "Company": company, "Country": country, "NumberOfEmployees": 120,
            "LeadSource": "Web", "Status": "Working - Contacted" if worked
            else "Open - Not Contacted", "IsConverted": False,
            "OwnerId": _sf_owner(seeder, out, sf_kind), "CreatedDate": seeder.sf(created),
            "LastModifiedDate": seeder.sf(created), "SystemModstamp": seeder.sf(created)}
        person.sf_lead_id = lead_id
    cid = data.new_hs_id("contact")
    props: dict[str, Any] = {
        "hs_object_id": cid, "firstname": "Case", "lastname": name.capitalize(),
        "email": email, "company": company, "country": country,
        "hs_analytics_source": "ORGANIC_SEARCH", "createdate": seeder.hs(created),
        "lastmodifieddate": seeder.hs(created), "lifecyclestage": "lead"}
    owner = _hs_owner(seeder, out, hs_kind)
    if owner is not None:
        props["hubspot_owner_id"] = owner
    if lead_id is not None:
        props["salesforceleadid"] = lead_id
    data.hs_contacts[cid] = props
    person.hs_ids.append(cid)
    when = seeder.now_ts - hours_ago * 3600
    seeder.event(when - 120, cid, "e_visited_page", hs_url=pools.DEMO_PAGE)
    seeder.event(when, cid, "e_submitted_form", hs_form_id="demo_request", hs_url=pools.DEMO_PAGE)
    return lead_id, cid
