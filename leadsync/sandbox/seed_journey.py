"""Where a seeded person stands in the funnel and what happened on the way there.

`Journey.draw` picks a stage from the hidden fit and propensity (better-fit, more engaged people
get further), with SLA clocks in every state; `add_journey` writes the matching engagement events,
rep activity, Lead Status history, campaign memberships and opportunities.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadsync.sandbox import pools
from leadsync.sandbox.sf_records import opportunity_changed
from leadsync.sandbox.store import Person

if TYPE_CHECKING:
    from leadsync.sandbox.seed import Seeder

HOUR = 3600.0
DAY = 86_400.0
SLA_HOURS = {"mql": (24.0, 4.0), "sql": (48.0, 8.0)}
HS_STAGE = {
    "subscriber": "subscriber",
    "lead": "lead",
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "opportunity": "opportunity",
    "customer": "customer",
    "recycled": "lead",
    "disqualified": "other",
}
HS_STATUS = {
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "IN_PROGRESS",
    "Qualified": "OPEN_DEAL",
    "Unqualified": "UNQUALIFIED",
    "Nurture": "BAD_TIMING",
}
# event kinds: (weight at propensity 0, extra weight per unit of propensity)
KINDS = {
    "blog": (30, -10),
    "product": (10, 10),
    "pricing": (2, 25),
    "open": (25, -5),
    "click": (5, 8),
    "case": (1, 6),
    "webinar": (1, 4),
    "meeting": (0, 1),
}


@dataclass(slots=True)
class Journey:
    stage: str
    lead_status: str
    sla: str = "none"
    mql_at: float | None = None
    sql_at: float | None = None
    touch_at: float | None = None
    opp: str | None = None  # open | won | lost
    bant: int = 0
    prefilled: bool = False
    demo_at: float | None = None
    last: float = 0.0
    now_ts: float = 0.0

    @property
    def converted(self) -> bool:
        return self.opp is not None

    @property
    def needs_salesforce(self) -> bool:
        return self.opp is not None or self.lead_status in ("Unqualified", "Nurture")

    @property
    def hubspot_stage(self) -> str:
        return HS_STAGE[self.stage]

    def modified(self, created: float) -> float:
        return max(created, self.last)

    @classmethod
    def draw(cls, rng: random.Random, fit: float, propensity: float, now_ts: float) -> Journey:
        kind = _pick_kind(rng, fit, propensity)
        conv = 0.5 * fit + 0.5 * propensity
        j = cls("lead", "Open - Not Contacted", now_ts=now_ts)

        def ago(low: float, high: float) -> float:
            return now_ts - rng.uniform(low, high) * HOUR

        if kind == "lead":
            j.stage = "subscriber" if propensity < 0.08 and rng.random() < 0.5 else "lead"
            j.prefilled = rng.random() < 0.5
            if rng.random() < 0.1 * conv:
                j.lead_status, j.touch_at = "Working - Contacted", ago(24 * 20, 24 * 150)
        elif kind == "new_demo":
            j.demo_at = ago(0.2, 6)
        elif kind == "mql":
            j.stage, j.prefilled = "mql", True
            j.sla = rng.choice(["on_track", "due_soon", "breached", "met"])
            windows = {
                "on_track": (0.5, 3),
                "due_soon": (20, 23),
                "breached": (26, 96),
                "met": (5, 240),
            }
            j.mql_at = ago(*windows[j.sla])
            j.demo_at = j.mql_at if rng.random() < 0.6 else None
            if j.sla == "met":
                age_h = (now_ts - j.mql_at) / HOUR
                j.touch_at = j.mql_at + rng.uniform(0.3, min(20.0, age_h - 0.2)) * HOUR
                j.lead_status = "Working - Contacted"
        elif kind == "sql":
            j.stage, j.prefilled, j.bant = "sql", True, rng.choice([3, 3, 4])
            j.sla = rng.choice(["on_track", "due_soon", "breached", "met"])
            windows = {
                "on_track": (1, 4),
                "due_soon": (41, 47),
                "breached": (50, 150),
                "met": (10, 300),
            }
            j.sql_at = ago(*windows[j.sla])
            j.mql_at = j.sql_at - rng.uniform(24, 200) * HOUR
            j.lead_status = "Working - Contacted"
            if j.sla == "met":
                age_h = (now_ts - j.sql_at) / HOUR
                j.touch_at = j.sql_at + rng.uniform(0.5, min(40.0, age_h - 0.2)) * HOUR
                j.lead_status = "Qualified"
        elif kind in ("customer", "opportunity", "lost"):
            j.stage = {"customer": "customer", "opportunity": "opportunity", "lost": "recycled"}[
                kind
            ]
            j.opp = {"customer": "won", "opportunity": "open", "lost": "lost"}[kind]
            j.prefilled, j.bant, j.sla = True, rng.choice([3, 4]), "met"
            j.sql_at = ago(24 * 20, 24 * 150)
            j.mql_at = j.sql_at - rng.uniform(24, 400) * HOUR
            j.touch_at = j.sql_at + rng.uniform(1, 30) * HOUR
            j.lead_status = "Qualified"
        else:  # disqualified / rejected by sales after an MQL
            j.stage = "disqualified" if kind == "disqualified" else "recycled"
            j.lead_status = "Unqualified" if kind == "disqualified" else "Nurture"
            j.prefilled, j.mql_at = True, ago(24 * 10, 24 * 120)
            j.touch_at = j.mql_at + rng.uniform(2, 20) * HOUR
        j.last = max(t for t in (j.mql_at, j.sql_at, j.touch_at, j.demo_at, 0.0) if t is not None)
        return j

    def sla_written(self) -> tuple[str, float | None]:
        """(status, due) as leadsync would have written them on a run 15 minutes ago."""
        clock = self.sql_at if self.sql_at is not None and self.stage == "sql" else self.mql_at
        if clock is None or self.stage not in ("mql", "sql"):
            return ("met" if self.sla == "met" else "none"), None
        hours, warn = SLA_HOURS[self.stage]
        due, then = clock + hours * HOUR, self.now_ts - 900
        if self.touch_at is not None and self.touch_at <= then:
            return "met", due
        if then > due:
            return "breached", due
        return ("due_soon" if then >= due - warn * HOUR else "on_track"), due

    def _written(self, seeder: Seeder) -> dict[str, Any]:
        if not self.prefilled:
            return {}
        rng = seeder.rng
        qualified = self.stage not in ("subscriber", "lead")
        score = rng.randint(80, 140) if qualified else rng.randint(-10, 75)
        fit = rng.randint(-20, 40)
        grade = "A" if fit >= 40 else "B" if fit >= 25 else "C" if fit >= 10 else "D"
        reasons = "+50 デモをリクエスト; +15 役職が部長以上" if qualified else "+3 ブログ記事を閲覧"
        status, due = self.sla_written()
        return {
            "score": score,
            "fit_grade": grade,
            "engagement": score - fit,
            "stage": self.stage,
            "reasons": reasons,
            "mql_at": self.mql_at,
            "sql_at": self.sql_at,
            "sla_due": due,
            "sla_status": status,
            "model": "default-2026.11",
        }

    def salesforce_fields(self, seeder: Seeder) -> dict[str, Any]:
        names = {
            "score": "LeadSync_Score__c",
            "fit_grade": "LeadSync_Fit_Grade__c",
            "engagement": "LeadSync_Engagement__c",
            "stage": "LeadSync_Stage__c",
            "reasons": "LeadSync_Reasons__c",
            "mql_at": "LeadSync_MQL_At__c",
            "sql_at": "LeadSync_SQL_At__c",
            "sla_due": "LeadSync_SLA_Due__c",
            "sla_status": "LeadSync_SLA_Status__c",
            "model": "LeadSync_Model__c",
        }
        out: dict[str, Any] = {}
        for key, value in self._written(seeder).items():
            if value is None:
                continue
            out[names[key]] = seeder.sf(value) if key in ("mql_at", "sql_at", "sla_due") else value
        return out

    def hubspot_fields(self, seeder: Seeder) -> dict[str, str]:
        out = {"hs_lead_status": HS_STATUS[self.lead_status]}
        for i, name in enumerate(("budget", "authority", "need", "timeline")):
            if self.bant or self.stage == "sql":
                out[f"bant_{name}"] = "true" if i < self.bant else "false"
        if seeder.provisioned:
            for key, value in self._written(seeder).items():
                if value is not None:
                    text = (
                        seeder.hs(value) if key in ("mql_at", "sql_at", "sla_due") else str(value)
                    )
                    out[f"leadsync_{key}"] = text
        return out


def _pick_kind(rng: random.Random, fit: float, propensity: float) -> str:
    """Where a person ends up: better fit and more engagement go further down the funnel."""
    conv = 0.5 * fit + 0.5 * propensity
    table = [
        ("customer", 0.01 + 0.12 * conv**2),
        ("opportunity", 0.01 + 0.06 * conv**2),
        ("lost", 0.01 + 0.04 * conv),
        ("sql", 0.015 + 0.05 * conv),
        ("mql", 0.03 + 0.10 * conv),
        ("disqualified", 0.015),
        ("rejected", 0.015),
        ("new_demo", 0.01 + 0.03 * propensity),
    ]
    roll = rng.random()
    for name, share in table:
        if roll < share:
            return name
        roll -= share
    return "lead"


def add_journey(seeder: Seeder, person: Person, base: dict[str, Any], journey: Journey) -> None:
    """Write the person's engagement, rep activity, status history and opportunity."""
    _engagement(seeder, person, journey)
    sf_id = person.sf_contact_id or person.sf_lead_id
    if sf_id is None:
        return
    owner = (
        seeder.owners[person.owner][1]
        if person.owner is not None
        else seeder.data.sf_integration_user
    )
    rng = seeder.rng
    quiet_from = journey.sql_at if journey.sla in ("on_track", "due_soon", "breached") else None
    quiet_from = quiet_from or (
        journey.mql_at if journey.sla in ("on_track", "due_soon", "breached") else None
    )
    horizon = quiet_from or seeder.now_ts
    for _ in range(int(rng.random() * (0.5 * person.fit + 0.5 * person.propensity) * 4)):
        when = horizon - rng.uniform(0.1, 150) * DAY
        if when > base["created"]:
            add_task(seeder, sf_id, owner, when, rng.choice(["Call", "Email"]))
    if journey.touch_at is not None:
        add_task(seeder, sf_id, owner, journey.touch_at, "Call")
        if person.sf_lead_id and journey.lead_status != "Open - Not Contacted":
            add_history(seeder, person.sf_lead_id, journey.touch_at, journey.lead_status)
    if journey.opp is not None and person.sf_contact_id and journey.sql_at is not None:
        _opportunity(seeder, person, base, journey, owner)


def add_task(seeder: Seeder, who: str, owner: str | None, when: float, kind: str) -> str:
    """A completed rep activity (call or email) logged on a Lead or Contact."""
    tid = seeder.data.new_sf_id("00T")
    stamp = seeder.sf(when)
    seeder.data.sf["Task"][tid] = {
        "Id": tid,
        "WhoId": who,
        "OwnerId": owner,
        "Subject": ("Call" if kind == "Call" else "Email: フォローアップ"),
        "Status": "Completed",
        "Priority": "Normal",
        "ActivityDate": stamp[:10],
        "Type": kind,
        "TaskSubtype": "Call" if kind == "Call" else "Email",
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
    }
    return tid


def add_history(
    seeder: Seeder,
    lead_id: str,
    when: float,
    new_status: str,
    old_status: str = "Open - Not Contacted",
) -> None:
    hid = seeder.data.new_sf_id("017")
    seeder.data.sf["LeadHistory"][hid] = {
        "Id": hid,
        "LeadId": lead_id,
        "Field": "Status",
        "OldValue": old_status,
        "NewValue": new_status,
        "CreatedDate": seeder.sf(when),
    }


def _opportunity(
    seeder: Seeder, person: Person, base: dict[str, Any], journey: Journey, owner: str | None
) -> None:
    rng, data = seeder.rng, seeder.data
    assert journey.sql_at is not None and person.sf_contact_id is not None
    opened = journey.sql_at + rng.uniform(2, 10) * DAY
    closed = min(seeder.now_ts - HOUR, opened + rng.uniform(10, 60) * DAY)
    stage = {
        "won": "Closed Won",
        "lost": "Closed Lost",
        "open": rng.choice(["Qualification", "Proposal", "Negotiation"]),
    }[journey.opp or "open"]
    oid = data.new_sf_id("006")
    modified = seeder.sf(closed if journey.opp != "open" else opened)
    opp = {
        "Id": oid,
        "Name": f"{base['company'].name} - 導入",
        "StageName": stage if journey.opp == "open" else "Qualification",
        "CloseDate": seeder.sf(seeder.now_ts + 30 * DAY if journey.opp == "open"
                               else opened + 30 * DAY)[:10],
        "Amount": float(rng.randint(10, 300) * 10_000),
        "OwnerId": owner,
        "CreatedDate": seeder.sf(opened),
        "LastModifiedDate": modified,
        "SystemModstamp": modified,
    }
    data.sf["Opportunity"][oid] = opp
    opportunity_changed(data, opp, seeder.sf(opened))  # opened: the first stage history row
    if journey.opp != "open":  # closed later: a second history row, CloseDate the close day
        opp.update({"StageName": stage, "CloseDate": seeder.sf(closed)[:10]})
        opportunity_changed(data, opp, seeder.sf(closed))
    rid = data.new_sf_id("00K")
    data.sf["OpportunityContactRole"][rid] = {
        "Id": rid,
        "OpportunityId": oid,
        "ContactId": person.sf_contact_id,
        "IsPrimary": True,
        "Role": "Decision Maker",
        "CreatedDate": seeder.sf(opened),
        "LastModifiedDate": seeder.sf(opened),
        "SystemModstamp": seeder.sf(opened),
    }
    journey.last = max(journey.last, opened, closed if journey.opp != "open" else 0.0)


def kind_weights(propensity: float) -> list[float]:
    """Cumulative weights of event kinds for one person's propensity."""
    total, out = 0.0, []
    for base, slope in KINDS.values():
        total += max(0.0, base + slope * propensity)
        out.append(total)
    return out


def _engagement(seeder: Seeder, person: Person, journey: Journey) -> None:
    """Marketing events over the last 180 days for the person's (first) HubSpot contact, and
    webinar attendance as Salesforce campaign members."""
    rng = seeder.rng
    cid = person.hs_ids[0] if person.hs_ids else None
    p = person.propensity
    count = min(80, int(rng.expovariate(1.0) * (1 + p * 20)))
    kinds = rng.choices(list(KINDS), cum_weights=kind_weights(p), k=count)
    unsubscribed = p < 0.15 and rng.random() < 0.3
    for kind in kinds:
        when = seeder.ts(180 * rng.random() ** (1 + 2 * p))
        if kind == "webinar":
            webinar = rng.choice(pools.WEBINARS)[0]
            _webinar(seeder, person, webinar, when)
        if cid is not None:
            emit(seeder, cid, kind, when, webinar if kind == "webinar" else "")
    if cid is None:
        return
    if unsubscribed:
        seeder.event(seeder.ts(rng.uniform(1, 170)), cid, "e_unsubscribed_email")
    if person.careers:
        for _ in range(rng.randint(1, 3)):
            seeder.event(
                seeder.ts(rng.uniform(0.5, 90)), cid, "e_visited_page", hs_url=pools.CAREERS_PAGE
            )
    if journey.demo_at is not None:
        seeder.event(journey.demo_at - 120, cid, "e_visited_page", hs_url=pools.DEMO_PAGE)
        seeder.event(
            journey.demo_at,
            cid,
            "e_submitted_form",
            hs_form_id="demo_request",
            hs_url=pools.DEMO_PAGE,
        )


def emit(seeder: Seeder, cid: str, kind: str, when: float, detail: str = "") -> None:
    """One marketing event of a kind from KINDS (also used by `simulate`)."""
    rng = seeder.rng
    if kind == "blog":
        seeder.event(when, cid, "e_visited_page", hs_url=rng.choice(pools.BLOG_PAGES))
    elif kind == "product":
        seeder.event(when, cid, "e_visited_page", hs_url=rng.choice(pools.PRODUCT_PAGES))
    elif kind == "pricing":
        seeder.event(when, cid, "e_visited_page", hs_url=pools.PRICING_PAGE)
    elif kind == "open":
        seeder.event(
            when, cid, "e_opened_email", hs_email_campaign_id=rng.choice(pools.EMAIL_CAMPAIGNS)
        )
    elif kind == "click":
        seeder.event(
            when, cid, "e_clicked_email", hs_url=rng.choice([*pools.BLOG_PAGES, pools.PRICING_PAGE])
        )
    elif kind == "case":
        form = rng.choice(pools.CASE_STUDY_FORMS)
        seeder.event(
            when, cid, "e_submitted_form", hs_form_id=form, hs_url=f"{pools.SITE}/resources/{form}"
        )
    elif kind == "webinar":
        seeder.event(when, cid, "e_attended_webinar", hs_webinar_id=detail or pools.WEBINARS[0][0])
    elif kind == "meeting":
        seeder.event(when, cid, "e_booked_meeting")


def _webinar(seeder: Seeder, person: Person, webinar: str, when: float) -> None:
    who = (
        {"ContactId": person.sf_contact_id}
        if person.sf_contact_id
        else {"LeadId": person.sf_lead_id}
    )
    if not next(iter(who.values())):
        return
    mid = seeder.data.new_sf_id("00v")
    stamp = seeder.sf(when)
    seeder.data.sf["CampaignMember"][mid] = {
        "Id": mid,
        "CampaignId": seeder.campaigns[webinar],
        **who,
        "Status": "Attended",
        "HasResponded": True,
        "CreatedDate": stamp,
        "SystemModstamp": stamp,
    }
