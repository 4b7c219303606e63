"""An outcome history in HubSpot deals, for `leadsync review` (Sandbox(deals=True)).

Off by default, so every other data set stays exactly as it was. When on, after the seed, every
person with a HubSpot contact and no Salesforce opportunity may get a deal, opened at some time
in the last 150 days. Whether they do follows the hidden truth: their propensity (the same
number that drew how much, and what, they engaged with), their company's size (in this market
companies of 100 people or more buy three times as often) and the hidden quality of their lead
source; not their seniority or mail domain. A deal closes 10 to 60 days after it opened (if that
has come), won more often the better their fit (which seniority is part of). So the behaviour
the rules score precedes some outcomes and not others: the default rules that track this truth
(pricing, case studies, company size) predict opportunities; those that do not (seniority and
free mail for opportunities, blog reading) do not, and a model fitted on the history can see
it. Its own random stream (from the seed): the main seed's draws are untouched. The truth stays
in the sandbox.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from leadsync.sandbox.hs_deals import add_deal
from leadsync.sandbox.store import SandboxData, parse_time

DAY = timedelta(days=1)
#: how the hidden truth makes a deal: chance = (BASE + SCALE * conv**POWER) x source quality,
#: conv = FIT_WEIGHT x fit + (1 - FIT_WEIGHT) x propensity
FIT_WEIGHT, BASE, SCALE, POWER = 0.0, 0.004, 0.5, 1.5
#: the chance's multiplier for a company of 100 people or more (bigger companies buy)
LARGE_COMPANY = 3.0
LARGE_BANDS = frozenset({"100-500", "500-1000", "1000+"})
#: hidden lead-source quality (a multiplier on the chance of a deal), by HubSpot source
SOURCE_QUALITY = {
    "ORGANIC_SEARCH": 1.0, "PAID_SEARCH": 0.6, "EMAIL_MARKETING": 0.8, "SOCIAL_MEDIA": 0.5,
    "REFERRALS": 1.8, "OTHER_CAMPAIGNS": 1.3, "DIRECT_TRAFFIC": 1.1, "OFFLINE": 1.4,
}


def add_deal_history(data: SandboxData, seed: int, now: datetime) -> int:
    """Deals for the seeded people as described above; returns how many were added."""
    rng = random.Random(f"leadsync-deals-{seed}")  # noqa: S311 - reproducible data
    with_opportunity = {str(r.get("ContactId")) for r in data.sf.get(
        "OpportunityContactRole", {}).values()}
    added = 0
    for person in data.people:
        if not person.hs_ids or (person.sf_contact_id or "") in with_opportunity:
            continue
        contact = person.hs_ids[0]
        props = data.hs_contacts[contact]
        conv = FIT_WEIGHT * person.fit + (1 - FIT_WEIGHT) * person.propensity
        quality = SOURCE_QUALITY.get(props.get("hs_analytics_source", ""), 1.0)
        size = LARGE_COMPANY if props.get("numemployees") in LARGE_BANDS else 1.0
        chance = min(0.9, (BASE + SCALE * conv**POWER) * quality * size)
        draws = (rng.random(), rng.uniform(1, 150), rng.random(), rng.uniform(10, 60),
                 rng.random(), rng.randint(10, 300))
        if draws[0] >= chance:
            continue
        opened = now - draws[1] * DAY
        created = parse_time(props["createdate"])
        if opened <= created + DAY:
            continue
        closes = opened + draws[3] * DAY
        closed = closes if draws[2] < 0.7 and closes < now else None
        won = closed is not None and draws[4] < 0.25 + 0.6 * person.fit
        add_deal(data, [contact], created=opened, closed=closed, won=won,
                 amount=float(draws[5] * 10_000), name=f"{props.get('company') or 'Deal'}")
        added += 1
    return added
