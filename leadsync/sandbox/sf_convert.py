"""Lead conversion as Salesforce does it (`Database.convertLead`, SOAP `convertLead`, the UI).

- An Account is created from the Lead's company (or an existing one is used) and a Contact from
  the Lead's person fields (or an existing Contact is merged into: only its empty fields are
  filled). Custom Lead fields reach the Contact through the org's Lead field mapping; the
  sandbox's org maps every `LeadSync_*__c` and BANT field to the Contact field of the same name
  (docs/sandbox.md), as an admin installing leadsync is told to.
- The Lead stays, read-only: `IsConverted` true, `ConvertedContactId`, `ConvertedAccountId`,
  `ConvertedDate` (a date), `ConvertedOpportunityId` when an opportunity was created, `Status` a
  converted status. Any later API update of it is refused with `CANNOT_UPDATE_CONVERTED_LEAD`
  (`sf_writes`), and queries filtering `IsConverted = false` no longer return it.
- The Lead's open and closed activities move to the Contact: Tasks and Events with
  `WhoId` = the Lead get `WhoId` = the Contact (and the Account as `WhatId` when they had
  none); its CampaignMembers get the `ContactId`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadsync.sandbox.sf_records import insert, sf_error, stamp
from leadsync.sandbox.sf_schema import FIELDS
from leadsync.sandbox.store import SandboxData

CONVERTED_STATUS = "Qualified"
_PERSON_FIELDS = ("FirstName", "LastName", "Email", "Title", "LeadSource", "OwnerId")


def _mapped(name: str) -> bool:
    """Lead fields the org's conversion mapping copies to the Contact."""
    return name.startswith(("LeadSync_", "BANT_")) and name in FIELDS["Contact"]


def convert_lead(data: SandboxData, lead_id: str, now: datetime, *,
                 account_id: str | None = None, contact_id: str | None = None
                 ) -> dict[str, Any]:
    """Convert one Lead; returns the convertLead result (`leadId`, `accountId`, `contactId`,
    `success`). Errors are Salesforce's: an unknown or already converted Lead, an unknown
    Account or Contact to merge into."""
    with data.lock:
        lead = data.sf.get("Lead", {}).get(lead_id)
        if lead is None:
            raise sf_error(400, "INVALID_ID_FIELD", f"invalid lead id: {lead_id[:18]}")
        if lead.get("IsConverted"):
            raise sf_error(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        account = _account(data, lead, account_id, now)
        contact = _contact(data, lead, account["Id"], contact_id, now)
        moved = _move_activities(data, lead_id, contact["Id"], account["Id"], now)
        lead.update({"IsConverted": True, "ConvertedContactId": contact["Id"],
                     "ConvertedAccountId": account["Id"], "ConvertedDate": now.date().isoformat(),
                     "Status": CONVERTED_STATUS})
        stamp(lead, "Lead", now)
        return {"leadId": lead_id, "accountId": account["Id"], "contactId": contact["Id"],
                "opportunityId": None, "activitiesMoved": moved, "success": True}


def _account(data: SandboxData, lead: dict[str, Any], account_id: str | None,
             now: datetime) -> dict[str, Any]:
    if account_id is not None:
        found = data.sf.get("Account", {}).get(account_id)
        if found is None:
            raise sf_error(400, "INVALID_ID_FIELD", f"invalid account id: {account_id[:18]}")
        return found
    values = {"Name": lead.get("Company") or "Unknown",
              "NumberOfEmployees": lead.get("NumberOfEmployees"),
              "Industry": lead.get("Industry"), "AnnualRevenue": lead.get("AnnualRevenue"),
              "BillingCountry": lead.get("Country"), "BillingState": lead.get("State")}
    return insert(data, "Account", values, now)


def _contact(data: SandboxData, lead: dict[str, Any], account_id: str,
             contact_id: str | None, now: datetime) -> dict[str, Any]:
    copied = {f: lead[f] for f in _PERSON_FIELDS if lead.get(f) is not None}
    copied.update({f: v for f, v in lead.items() if _mapped(f) and v is not None})
    if contact_id is None:
        return insert(data, "Contact", {**copied, "AccountId": account_id}, now)
    contact = data.sf.get("Contact", {}).get(contact_id)
    if contact is None:
        raise sf_error(400, "INVALID_ID_FIELD", f"invalid contact id: {contact_id[:18]}")
    for name, value in copied.items():  # merging keeps the Contact's own values
        contact.setdefault(name, value)
    stamp(contact, "Contact", now)
    return contact


def _move_activities(data: SandboxData, lead_id: str, contact_id: str, account_id: str,
                     now: datetime) -> int:
    moved = 0
    for obj in ("Task", "Event"):
        for record in data.sf.get(obj, {}).values():
            if record.get("WhoId") == lead_id:
                record["WhoId"] = contact_id
                if "WhatId" in FIELDS[obj]:
                    record.setdefault("WhatId", account_id)
                stamp(record, obj, now)
                moved += 1
    for member in data.sf.get("CampaignMember", {}).values():
        if member.get("LeadId") == lead_id and not member.get("ContactId"):
            member["ContactId"] = contact_id
            stamp(member, "CampaignMember", now)
    return moved
