"""Deterministic seeded data: owners, companies, people in one or both CRMs, engagement drawn
from a hidden per-person propensity, sales activity and every lifecycle stage and SLA state.

Everything derives from `random.Random(seed)` and the clock's start instant, so the same
(`contacts`, `seed`, `now`) gives the same data. People are plain dicts built from precomputed
choices: 100,000 contacts seed in a few seconds.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leadsync.sandbox import pools
from leadsync.sandbox.hs_companies import (
    add_company,
    associate_company,
    define_company_properties,
)
from leadsync.sandbox.hs_marketing import (
    NEWSLETTER_FORM,
    NEWSLETTER_PAGE,
    define_forms,
    route_events,
)
from leadsync.sandbox.hs_schema import default_properties
from leadsync.sandbox.seed_journey import Journey, add_journey
from leadsync.sandbox.sf_records import opportunity_stages
from leadsync.sandbox.store import Person, SandboxData, hs_time, sf_time

MODEL = "default-2026.11"
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    employees: int
    industry: str
    country: str
    revenue: int
    state: str = ""  # prefecture / state (from the domain's hash: the data set's draws stay)


class Seeder:
    """Builds one data set into `data`; see the module docstring."""

    def __init__(
        self, data: SandboxData, contacts: int, seed: int, now: datetime, provision_hubspot: bool
    ) -> None:
        if contacts < 0:
            raise ValueError(f"contacts must be >= 0, got {contacts}")
        self.data, self.n, self.now = data, contacts, now
        self.now_ts = now.timestamp()
        self.rng = random.Random(seed)  # noqa: S311 - reproducible data, not security
        self.provisioned = provision_hubspot
        self.accounts: dict[str, str] = {}
        self.hs_companies: dict[str, str] = {}
        self.raw_events: list[tuple[int, str, str, dict[str, str]]] = []
        self._props: dict[str, dict[str, str]] = {}
        self.owners: list[tuple[str, str]] = data.owners
        self.campaigns: dict[str, str] = data.campaigns

    # -- helpers -------------------------------------------------------------------------------

    def ts(self, days_ago: float) -> float:
        return self.now_ts - days_ago * DAY

    def sf(self, ts: float) -> str:
        return sf_time(datetime.fromtimestamp(ts, UTC))

    def hs(self, ts: float) -> str:
        return hs_time(datetime.fromtimestamp(ts, UTC))

    def event(self, ts: float, contact_id: str, event_type: str, **props: str) -> None:
        key = "|".join(f"{k}={v}" for k, v in props.items())
        shared = self._props.setdefault(key, props)  # identical property dicts are shared
        self.raw_events.append((int(ts * 1000), contact_id, event_type, shared))

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        data = self.data
        data.sf = {
            name: {}
            for name in (
                "User",
                "Lead",
                "Account",
                "Contact",
                "LeadHistory",
                "Task",
                "Event",
                "Campaign",
                "CampaignMember",
                "Opportunity",
                "OpportunityContactRole",
                "OpportunityHistory",
                "OpportunityStage",
                "Group",
                "QueueSobject",
            )
        }
        opportunity_stages(data, sf_time(self.now.replace(year=self.now.year - 2)))
        data.hs_properties = default_properties(self.now, self.provisioned)
        define_company_properties(data, self.now, self.provisioned)
        data.hs_groups = {
            "contactinformation": {
                "name": "contactinformation",
                "label": "Contact information",
                "displayOrder": 0,
                "archived": False,
            }
        }
        if self.provisioned:
            data.hs_groups["leadsync"] = {
                "name": "leadsync",
                "label": "LeadSync",
                "displayOrder": 1,
                "archived": False,
            }
        define_forms(data, self.hs(self.ts(400)))
        self.owners = data.owners = self._owners()
        self.campaigns = data.campaigns = self._campaigns()
        companies = self._companies()
        seniorities = list(pools.SENIORITY_WEIGHTS)
        seniority_draws = self.rng.choices(
            seniorities, weights=list(pools.SENIORITY_WEIGHTS.values()), k=self.n
        )
        company_draws = self.rng.choices(companies, k=self.n)
        for index in range(self.n):
            self._person(index, company_draws[index], seniority_draws[index])
        self._finish_events()

    def _owners(self) -> list[tuple[str, str]]:
        """Reps present in both systems with matching emails; returns (hs owner id, sf user id)."""
        rng, data = self.rng, self.data
        created = sf_time(self.now.replace(year=self.now.year - 2))
        integration = data.new_sf_id("005")
        data.sf_integration_user = integration
        data.sf["User"][integration] = {
            "Id": integration,
            "Email": "integration@leadsync-sandbox.example",
            "Name": "LeadSync Integration",
            "IsActive": True,
            "Username": "integration@leadsync-sandbox.example",
            "CreatedDate": created,
            "SystemModstamp": created,
        }
        reps = max(4, min(60, self.n // 150))
        owners = []
        for i in range(reps + 1):
            last, last_r = (
                rng.choice(pools.JP_LAST) if i % 2 == 0 else (rng.choice(pools.EN_LAST),) * 2
            )
            first, first_r = (
                rng.choice(pools.JP_FIRST) if i % 2 == 0 else (rng.choice(pools.EN_FIRST),) * 2
            )
            role = "manager" if i == reps else "rep"
            local = f"{first_r}.{last_r}".lower().replace("'", "")
            email = f"{local}.{role}{i}@example-sales.com"
            uid = data.new_sf_id("005")
            data.sf["User"][uid] = {
                "Id": uid,
                "Email": email,
                "Name": f"{first} {last}",
                "IsActive": True,
                "Username": email,
                "CreatedDate": created,
                "SystemModstamp": created,
            }
            oid = str(70_000_000 + i)
            data.hs_owners[oid] = {
                "id": oid,
                "type": "PERSON",
                "email": email,
                "firstName": first,
                "lastName": last,
                "userId": 9_000_000 + i,
                "userIdIncludingInactive": 9_000_000 + i,
                "archived": False,
                "teams": [],
                "createdAt": hs_time(self.now.replace(year=self.now.year - 2)),
                "updatedAt": hs_time(self.now.replace(year=self.now.year - 1)),
            }
            if role == "rep":
                owners.append((oid, uid))
        oid = str(70_000_000 + reps + 1)  # marketing: a HubSpot-only owner
        data.hs_owners[oid] = {
            "id": oid,
            "type": "PERSON",
            "email": "marketing.ops@example-sales.com",
            "firstName": "Mika",
            "lastName": "Ops",
            "userId": 9_100_000,
            "userIdIncludingInactive": 9_100_000,
            "archived": False,
            "teams": [],
            "createdAt": hs_time(self.now),
            "updatedAt": hs_time(self.now),
        }
        self._hubspot_extra_owners(reps)
        return owners

    def _hubspot_extra_owners(self, reps: int) -> None:
        """What real portals also list: a queue (no email, no user) among the active owners,
        and a rep who left (archived: only listed with `archived=true`; userId gone)."""
        stamp = hs_time(self.now.replace(year=self.now.year - 1))
        queue, former = str(70_000_000 + reps + 2), str(70_000_000 + reps + 3)
        self.data.hs_owners[queue] = {
            "id": queue, "type": "QUEUE", "firstName": "Inbound leads", "lastName": "",
            "archived": False, "teams": [], "createdAt": stamp, "updatedAt": stamp,
        }  # fmt: skip
        self.data.hs_owners[former] = {
            "id": former, "type": "PERSON", "email": "former.rep@example-sales.com",
            "firstName": "Ken", "lastName": "Former", "userId": None,
            "userIdIncludingInactive": 9_200_000, "archived": True, "teams": [],
            "createdAt": stamp, "updatedAt": stamp, "archivedAt": stamp,
        }  # fmt: skip

    def _campaigns(self) -> dict[str, str]:
        out = {}
        for webinar_id, name in pools.WEBINARS:
            cid = self.data.new_sf_id("701")
            stamp = self.sf(self.ts(200))
            self.data.sf["Campaign"][cid] = {
                "Id": cid,
                "Name": name,
                "Type": "Webinar",
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
            }
            out[webinar_id] = cid
        return out

    def _companies(self) -> list[Company]:
        rng = self.rng
        out = []
        for i in range(max(20, self.n // 5)):
            if rng.random() < 0.6:
                stem = rng.choice(pools.COMPANY_JP)
                suffix = rng.choice(pools.COMPANY_JP_SUFFIX)
                name, country = f"{stem}{suffix}株式会社", "JP"
                domain = f"{pools.COMPANY_JP_ROMAJI[stem]}-{i}.co.jp"
            else:
                stem = rng.choice(pools.COMPANY_EN)
                name, country = f"{stem} {rng.choice(pools.COMPANY_EN_SUFFIX)} Inc.", "US"
                domain = f"{stem.lower()}-{i}.com"
            employees = int(3 * (20_000 / 3) ** rng.random())
            out.append(
                Company(
                    name,
                    domain,
                    employees,
                    rng.choice(pools.INDUSTRIES),
                    country,
                    employees * rng.randint(80, 400) * 1000,
                    pools.region_of(country, domain),
                )
            )
        return out

    def _person(self, index: int, company: Company, seniority: str) -> None:
        rng = self.rng
        jp = company.country == "JP" if rng.random() < 0.9 else company.country != "JP"
        if jp:
            (last, last_r), (first, first_r) = rng.choice(pools.JP_LAST), rng.choice(pools.JP_FIRST)
        else:
            last = last_r = rng.choice(pools.EN_LAST)
            first = first_r = rng.choice(pools.EN_FIRST)
        titles = pools.TITLES[seniority][0 if jp else 1]
        title = rng.choice(titles)
        roll = rng.random()
        free = 0.03 <= roll < 0.18
        local = f"{first_r}.{last_r}".lower().replace("'", "")
        if roll < 0.03:
            email = None
        elif free:
            email = f"{local}{rng.randint(1, 999)}@{rng.choice(pools.FREE_MAIL)}"
        else:
            email = (
                f"{local}{index}@{company.domain}"
                if rng.random() < 0.3
                else f"{local}@{company.domain}"
            )
        fit = (
            pools.SENIORITY_FIT[seniority] * 0.5
            + min(company.employees, 1000) / 1000 * 0.3
            + (0.2 if company.industry in pools.TARGET_INDUSTRIES else 0.0)
            - (0.3 if free else 0.0)
        )
        fit = max(0.0, min(1.0, fit))
        propensity = min(1.0, rng.betavariate(1.1, 3.5) * (0.6 + 0.8 * fit))
        owner = rng.randrange(len(self.owners)) if rng.random() < 0.92 else None
        person = Person(index, fit, propensity, owner, careers=rng.random() < 0.03)
        self.data.people.append(person)
        where = rng.random()
        in_hs, in_sf = where < 0.80, where < 0.55 or where >= 0.80
        journey = Journey.draw(rng, fit, propensity, self.now_ts)
        if journey.needs_salesforce:
            in_sf = True
        created = self.ts(30 + rng.random() * 500)
        base: dict[str, Any] = {
            "first": first,
            "last": last,
            "email": email,
            "title": title,
            "company": company,
            "created": created,
            "source": rng.choice(pools.SOURCES),
        }
        if in_sf:
            self._salesforce_person(person, base, journey)
        if in_hs:
            self._hubspot_person(person, base, journey, linked=in_sf and rng.random() < 0.85)
        if in_hs and rng.random() < 0.02 and email:
            dup = dict(base, email=email.capitalize() if rng.random() < 0.5 else email)
            self._hubspot_contact(person, dup, journey=None, linked=False)
        add_journey(self, person, base, journey)

    # -- records -------------------------------------------------------------------------------

    def _salesforce_person(self, person: Person, base: dict[str, Any], journey: Journey) -> None:
        rng, data = self.rng, self.data
        company: Company = base["company"]
        owner = (
            self.owners[person.owner][1] if person.owner is not None else data.sf_integration_user
        )
        created, touched = self.sf(base["created"]), self.sf(journey.modified(base["created"]))
        common: dict[str, Any] = {
            "FirstName": base["first"],
            "LastName": base["last"],
            "Title": base["title"] or None,
            "LeadSource": pools.SF_SOURCES[base["source"]],
            "OwnerId": owner,
            "CreatedDate": created,
            "LastModifiedDate": touched,
            "SystemModstamp": touched,
        }
        if base["email"]:
            common["Email"] = base["email"]
        for i, name in enumerate(("Budget", "Authority", "Need", "Timeline")):
            if i < journey.bant:
                common[f"BANT_{name}__c"] = True
        common.update(journey.salesforce_fields(self))
        lead = {
            "Company": company.name,
            "NumberOfEmployees": company.employees,
            "Industry": company.industry,
            "Country": company.country,
            "State": company.state or None,
            "AnnualRevenue": company.revenue,
            "Status": journey.lead_status,
            "IsConverted": False,
            **common,
        }
        lead = {k: v for k, v in lead.items() if v is not None}
        if journey.converted or rng.random() < 0.2:
            contact_id = data.new_sf_id("003")
            contact = {k: v for k, v in common.items() if v is not None}
            contact.update({"Id": contact_id, "AccountId": self._account(company, created)})
            data.sf["Contact"][contact_id] = contact
            person.sf_contact_id = contact_id
            if rng.random() < 0.85:  # most contacts came from a converted lead
                lead_id = data.new_sf_id("00Q")
                lead.update(
                    {
                        "Id": lead_id,
                        "IsConverted": True,
                        "ConvertedContactId": contact_id,
                        "ConvertedAccountId": contact["AccountId"],
                        "ConvertedDate": created[:10],
                        "Status": "Qualified",
                    }
                )
                for key in [k for k in lead if k.startswith("LeadSync_")]:
                    del lead[key]
                data.sf["Lead"][lead_id] = lead
            if (
                rng.random() < 0.03
            ):  # the same email again on an open lead: a cross-object duplicate
                dup_id = data.new_sf_id("00Q")
                data.sf["Lead"][dup_id] = {
                    k: v for k, v in lead.items() if not k.startswith(("Converted", "LeadSync_"))
                } | {"Id": dup_id, "IsConverted": False, "Status": "Open - Not Contacted"}
            return
        lead_id = data.new_sf_id("00Q")
        lead["Id"] = lead_id
        data.sf["Lead"][lead_id] = lead
        person.sf_lead_id = lead_id

    def _account(self, company: Company, created: str) -> str:
        found = self.accounts.get(company.domain)
        if found:
            return found
        aid = self.data.new_sf_id("001")
        flag, owner = _account_traits(company.domain, len(self.owners))
        self.data.sf["Account"][aid] = {
            "Id": aid,
            "Name": company.name,
            "Website": f"https://www.{company.domain}/",
            "Target_Account__c": flag,
            **({"OwnerId": self.owners[owner][1]} if self.owners else {}),
            "NumberOfEmployees": company.employees,
            "Industry": company.industry,
            "AnnualRevenue": company.revenue,
            "BillingCountry": company.country,
            "BillingState": company.state,
            "CreatedDate": created,
            "SystemModstamp": created,
        }
        self.accounts[company.domain] = aid
        return aid

    def _hubspot_person(
        self, person: Person, base: dict[str, Any], journey: Journey, linked: bool
    ) -> None:
        self._hubspot_contact(person, base, journey, linked)

    def _hubspot_contact(
        self, person: Person, base: dict[str, Any], journey: Journey | None, linked: bool
    ) -> str:
        company: Company = base["company"]
        cid = self.data.new_hs_id("contact")
        modified = journey.modified(base["created"]) if journey else base["created"]
        props = {
            "hs_object_id": cid,
            "firstname": base["first"],
            "lastname": base["last"],
            "company": company.name,
            "numemployees": _band(company.employees),
            "industry": company.industry,
            "country": company.country,
            "state": company.state,
            "annualrevenue": str(company.revenue),
            "hs_analytics_source": base["source"],
            "createdate": self.hs(base["created"]),
            "lastmodifieddate": self.hs(modified),
            "lifecyclestage": journey.hubspot_stage if journey else "lead",
        }
        if base["email"]:
            props["email"] = base["email"]
        if base["title"]:
            props["jobtitle"] = base["title"]
        if person.owner is not None:
            props["hubspot_owner_id"] = self.owners[person.owner][0]
        if linked and person.sf_lead_id:
            props["salesforceleadid"] = person.sf_lead_id
        if linked and person.sf_contact_id:
            props["salesforcecontactid"] = person.sf_contact_id
        if journey is not None:
            props.update(journey.hubspot_fields(self))
        if props["lifecyclestage"] == "subscriber":  # they signed up for the newsletter
            self.event(base["created"], cid, "e_submitted_form", hs_form_id=NEWSLETTER_FORM,
                       hs_url=NEWSLETTER_PAGE)  # fmt: skip
        self.data.hs_contacts[cid] = props
        person.hs_ids.append(cid)
        if int(cid) % 10:  # one contact in ten has no company associated (none auto-created)
            associate_company(self.data, cid, self._hs_company(company, base["created"]))
        return cid

    def _hs_company(self, company: Company, created: float) -> str:
        """The HubSpot company of `company` (one per domain), created on first use."""
        found = self.hs_companies.get(company.domain)
        if found:
            return found
        flag, owner = _account_traits(company.domain, len(self.owners))
        props = {"industry": company.industry, "numberofemployees": str(company.employees),
                 "hs_is_target_account": "true" if flag else "false"}
        if self.owners:
            props["hubspot_owner_id"] = self.owners[owner][0]
        cid = add_company(self.data, company.name, domain=company.domain,
                          created=datetime.fromtimestamp(created, UTC), **props)
        self.hs_companies[company.domain] = cid
        return cid

    def _finish_events(self) -> None:
        self.raw_events.sort(key=lambda e: (e[0], e[1]))
        self.data.hs_events = route_events(self.data, [
            (ms, seq, cid, etype, props)
            for seq, (ms, cid, etype, props) in enumerate(self.raw_events, start=1)
        ])  # fmt: skip
        self.data.counters["event"] = len(self.raw_events)
        self.raw_events = []


def _account_traits(domain: str, owners: int) -> tuple[bool, int]:
    """(target account?, owner index) of a company, from its domain alone: the same in both
    CRMs and drawing nothing from the seed's random stream (earlier data sets stay as they
    were). About one company in six is a target account."""
    digest = hashlib.sha256(domain.encode()).digest()
    return digest[0] < 43, (digest[1] % owners if owners else 0)


def _band(employees: int) -> str:
    for limit, band in (
        (5, "1-5"),
        (25, "5-25"),
        (50, "25-50"),
        (100, "50-100"),
        (500, "100-500"),
        (1000, "500-1000"),
    ):
        if employees < limit:
            return band
    return "1000+"


def seed(
    data: SandboxData, contacts: int, seed: int, now: datetime, provision_hubspot: bool = True
) -> None:
    """Fill `data` with a deterministic data set of `contacts` people as of `now`."""
    Seeder(data, contacts, seed, now, provision_hubspot).run()
