"""Simulated reps qualify MQLs they have contacted: deterministic by seed, a decision only after a
logged sales touch (Salesforce) or a worked Lead Status (HubSpot-only people), and each decision
visible in the fields leadsync reads (BANT, Lead Status, LeadHistory) with a newer modification
stamp so incremental reads see it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from leadsync.sandbox import Sandbox
from leadsync.sandbox.simulate import BANT_FIELDS, HS_BANT, HS_WORKING

STEPS, HOURS = 6, 12.0


def _mql_records(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {rid: dict(rec) for obj in ("Lead", "Contact") for rid, rec in sb.data.sf[obj].items()
            if rec.get("LeadSync_Stage__c") == "mql"}  # fmt: skip


def _hubspot_only_mqls(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {p.hs_ids[0]: dict(sb.data.hs_contacts[p.hs_ids[0]]) for p in sb.data.people
            if p.hs_ids and not (p.sf_lead_id or p.sf_contact_id)
            and sb.data.hs_contacts[p.hs_ids[0]].get("leadsync_stage") == "mql"}  # fmt: skip


def _run(seed: int) -> tuple[Counter[str], dict[str, dict[str, Any]], Sandbox]:
    with Sandbox(contacts=600, seed=seed) as sb:
        before = _mql_records(sb) | _hubspot_only_mqls(sb)
        done: Counter[str] = Counter()
        for _ in range(STEPS):
            done.update(sb.simulate(hours=HOURS))
        return done, before, sb


def test_qualification_is_deterministic_by_seed_and_follows_a_touch() -> None:
    done, before, sb = _run(7)
    again, _, _ = _run(7)
    assert done == again
    assert (done["qualified"], done["bant_partial"], done["rejected"]) == (15, 6, 3)
    assert (done["hubspot_rep_touches"], done["hubspot_qualified"],
            done["hubspot_bant_partial"]) == (8, 5, 5)
    qualified = hubspot_qualified = 0
    for rid, old in before.items():
        if rid.isdigit():  # a HubSpot-only contact
            new = sb.data.hs_contacts[rid]
            if sum(1 for f in HS_BANT if new.get(f) == "true") >= 3:
                hubspot_qualified += 1
                assert new["hs_lead_status"] in HS_WORKING  # worked before qualified
                assert new["lastmodifieddate"] > old["lastmodifieddate"]
            continue
        new = sb.data.sf["Lead" if rid.startswith("00Q") else "Contact"][rid]
        bant = sum(1 for f in BANT_FIELDS if new.get(f) is True)
        if not ((bant >= 3 and sum(1 for f in BANT_FIELDS if old.get(f) is True) < 3)
                or new.get("Status") == "Qualified" != old.get("Status")):
            continue
        qualified += 1
        touches = [t["CreatedDate"] for t in sb.data.sf["Task"].values() if t["WhoId"] == rid]
        assert touches and min(touches) < new["SystemModstamp"]  # a rep called first
        assert new["SystemModstamp"] > old["SystemModstamp"]
        if new.get("Status") == "Qualified":
            history = [h for h in sb.data.sf["LeadHistory"].values()
                       if h["LeadId"] == rid and h["NewValue"] == "Qualified"]  # fmt: skip
            assert len(history) == 1
    assert qualified == done["qualified"]
    assert hubspot_qualified == done["hubspot_qualified"]


def test_another_seed_decides_differently() -> None:
    one, _, _ = _run(7)
    other, _, _ = _run(8)
    assert one != other
