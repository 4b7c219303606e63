"""Salesforce value mapping, write planning and the metadata package (pure; table-driven)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadsync.config.settings import SalesforceFieldNames, SalesforceSettings
from leadsync.connectors.base import FieldUpdate, FollowUpTask, RecordRef
from leadsync.connectors.salesforce.mapping import (
    activity_to_event,
    format_datetime,
    map_lead_status,
    member_to_event,
    opportunity_outcome,
    opportunity_status,
    parse_datetime,
    record_to_person,
)
from leadsync.connectors.salesforce.metadata import describe_problems, write_package
from leadsync.connectors.salesforce.writes import plan_update, task_record
from leadsync.connectors.values import InvalidValue
from leadsync.scoring.evaluation import Reason

FIELDS = SalesforceFieldNames()
STATUS_MAP = SalesforceSettings().status_map
LEAD = RecordRef("salesforce", "Lead", "00Q000000000001AAA")


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Open - Not Contacted", (None, True)), ("Working - Contacted", ("working", True)),
     ("working - CONTACTED", ("working", True)), ("Qualified", ("accepted", True)),
     ("Unqualified", ("disqualified", True)), ("Nurture", ("rejected", True)),
     ("Rejected", ("rejected", True)), ("Something New", (None, False)), (None, (None, True))],
)  # fmt: skip
def test_lead_status_table_case_insensitive(status: str | None, expected: tuple) -> None:  # type: ignore[type-arg]
    assert map_lead_status(status, STATUS_MAP) == expected


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [([], (None, None)),
     ([("opportunity_open", _at("2026-11-01T00:00"))],
      ("opportunity_open", _at("2026-11-01T00:00"))),
     ([("lost", _at("2026-10-01T00:00")), ("opportunity_open", _at("2026-11-02T00:00"))],
      ("opportunity_open", _at("2026-11-02T00:00"))),
     ([("won", _at("2026-09-01T00:00")), ("opportunity_open", _at("2026-11-02T00:00"))],
      ("won", _at("2026-09-01T00:00"))),
     ([("lost", _at("2026-10-01T00:00")), ("lost", _at("2026-10-05T00:00"))],
      ("lost", _at("2026-10-05T00:00")))],
)  # fmt: skip
def test_contact_sales_status_from_opportunities(outcomes: list, expected: tuple) -> None:  # type: ignore[type-arg]
    assert opportunity_status(outcomes) == expected


def _history(*rows: tuple[str, str]) -> list[dict[str, str]]:
    return [{"StageName": stage, "CreatedDate": at + ":00.000+0000"} for stage, at in rows]


def _closed(won: bool, close_date: str, modified: str) -> dict[str, object]:
    return {"StageName": "Closed Won" if won else "Closed Lost", "IsClosed": True, "IsWon": won,
            "CloseDate": close_date, "CreatedDate": "2026-09-01T09:00:00.000+0000",
            "LastModifiedDate": modified + ":00.000+0000"}  # fmt: skip


LOST_AT = _history(("Qualification", "2026-09-01T09:00"), ("Closed Lost", "2026-10-10T15:30"))


@pytest.mark.parametrize(
    ("opp", "history", "expected"),
    [  # lost the same day it was recorded: the recorded time, not midnight nor the day's end
     (_closed(False, "2026-10-10", "2026-10-10T15:30"), LOST_AT, ("lost", _at("2026-10-10T15:30"))),
     # an edit of another field a month later (description) does not re-date the loss
     (_closed(False, "2026-10-10", "2026-11-20T08:00"), LOST_AT, ("lost", _at("2026-10-10T15:30"))),
     # a later Amount change adds a history row in the same stage: still dated by the close
     (_closed(False, "2026-10-10", "2026-11-20T08:00"),
      [*LOST_AT, *_history(("Closed Lost", "2026-11-20T08:00"))],
      ("lost", _at("2026-10-10T15:30"))),
     # a back-dated CloseDate (recorded on Monday for last Friday): the end of that Friday
     (_closed(True, "2026-10-09", "2026-10-12T10:00"),
      _history(("Proposal", "2026-09-01T09:00"), ("Closed Won", "2026-10-12T10:00")),
      ("won", datetime(2026, 10, 9, 23, 59, 59, 999000, tzinfo=UTC))),
     # won after having been lost: dated by the win, not by the earlier loss
     (_closed(True, "2026-10-20", "2026-10-20T11:00"),
      [*LOST_AT, *_history(("Closed Won", "2026-10-20T11:00"))], ("won", _at("2026-10-20T11:00"))),
     # no stage history (imported data): CloseDate's end, never after LastModifiedDate
     (_closed(False, "2026-10-10", "2026-11-20T08:00"), [],
      ("lost", datetime(2026, 10, 10, 23, 59, 59, 999000, tzinfo=UTC))),
     (_closed(False, "2026-10-10", "2026-10-10T12:00"), [], ("lost", _at("2026-10-10T12:00"))),
     # open: when it entered the pipeline (stage moves inside the pipeline do not re-date it)
     ({"StageName": "Proposal", "IsClosed": False, "IsWon": False,
       "CreatedDate": "2026-09-01T09:00:00.000+0000",
       "LastModifiedDate": "2026-11-20T08:00:00.000+0000"},
      _history(("Qualification", "2026-09-01T09:00"), ("Proposal", "2026-10-01T09:00")),
      ("opportunity_open", _at("2026-09-01T09:00"))),
     # reopened after a loss: dated by the reopening
     ({"StageName": "Negotiation", "IsClosed": False, "IsWon": False,
       "CreatedDate": "2026-09-01T09:00:00.000+0000"},
      [*LOST_AT, *_history(("Negotiation", "2026-11-02T10:00"))],
      ("opportunity_open", _at("2026-11-02T10:00"))),
     # open with no history rows: CreatedDate
     ({"StageName": "Qualification", "IsClosed": False, "CreatedDate":
       "2026-09-03T09:00:00.000+0000", "LastModifiedDate": "2026-11-20T08:00:00.000+0000"}, [],
      ("opportunity_open", _at("2026-09-03T09:00")))],
)  # fmt: skip
def test_opportunity_dated_by_close_date_and_stage_history(
    opp: dict, history: list, expected: tuple  # type: ignore[type-arg]
) -> None:
    assert opportunity_outcome(opp, history) == expected


def test_reopened_opportunity_uses_the_orgs_closed_stages() -> None:
    opp = {"StageName": "Negotiation", "IsClosed": False, "CreatedDate": "2026-09-01T09:00:00Z"}
    rows = _history(("Qualification", "2026-09-01T09:00"), ("Dead", "2026-10-01T09:00"),
                    ("Negotiation", "2026-11-02T10:00"))  # fmt: skip
    assert opportunity_outcome(opp, rows, {"Dead"}) == ("opportunity_open", _at("2026-11-02T10:00"))
    # unaware of the custom closed stage "Dead", it would count from the opening
    assert opportunity_outcome(opp, rows) == ("opportunity_open", _at("2026-09-01T09:00"))


def test_lead_record_to_person() -> None:
    raw = {"Id": LEAD.id, "FirstName": "Hanako", "LastName": "Suzuki", "Email": "H@Example.com",
           "Title": "Director", "Company": "ACME", "NumberOfEmployees": 250, "Industry": "saas",
           "Country": "JP", "AnnualRevenue": 1000000.0, "LeadSource": "Web", "OwnerId": "005A",
           "SystemModstamp": "2026-11-01T10:00:00.000+0000", "BANT_Budget__c": True,
           "BANT_Need__c": False, "LeadSync_Stage__c": "mql", "LeadSync_Score__c": 85.0,
           "LeadSync_MQL_At__c": "2026-10-30T09:00:00.000+0000"}  # fmt: skip
    at = datetime(2026, 10, 31, tzinfo=UTC)
    person = record_to_person(raw, "Lead", owners={"005A": "rep@example.com"}, fields=FIELDS,
                              sales=("working", at))  # fmt: skip
    p = person.profile
    assert person.ref == LEAD and p.id == LEAD.key and p.email == "h@example.com"
    assert p.employees == 250 and p.company == "ACME" and p.owner == "rep@example.com"
    assert (p.bant.budget, p.bant.need, p.bant.timeline) == (True, False, None)
    assert p.stage == "mql" and p.sales_status == "working" and p.sales_status_at == at
    assert p.mql_at == datetime(2026, 10, 30, 9, tzinfo=UTC)
    assert person.modified_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert person.current == {"stage": "mql", "score": 85.0,
                              "mql_at": "2026-10-30T09:00:00.000+0000"}  # fmt: skip


def test_contact_falls_back_to_account() -> None:
    raw = {"Id": "003000000000001AAA", "Account": {"Name": "Example KK", "NumberOfEmployees": 1200,
           "Industry": "manufacturing", "BillingCountry": "JP", "AnnualRevenue": 5.0}}  # fmt: skip
    p = record_to_person(raw, "Contact", owners={}, fields=FIELDS).profile
    assert (p.company, p.employees, p.industry, p.country) == (
        "Example KK",
        1200,
        "manufacturing",
        "JP",
    )


@pytest.mark.parametrize(
    ("raw", "kind", "channel"),
    [({"Type": "Call"}, "Task", "call"), ({"Type": "Email"}, "Task", "email"),
     ({"Type": "Meeting"}, "Task", "meeting"), ({"Type": None}, "Task", "other"),
     ({"Type": "Other"}, "Event", "other"), ({}, "Event", "meeting")],
)  # fmt: skip
def test_activity_channel_from_type(raw: dict, kind: str, channel: str) -> None:  # type: ignore[type-arg]
    base = {"Id": "00T1", "WhoId": LEAD.id, "Subject": "Call", "CreatedDate":
            "2026-11-01T10:00:00.000+0000", "StartDateTime": "2026-11-01T11:00:00.000+0000",
            "SystemModstamp": "2026-11-01T12:00:00.000+0000"}  # fmt: skip
    item = activity_to_event({**base, **raw}, kind)
    assert item is not None and item.event.type == "sales_touch"
    assert item.event.props["channel"] == channel and item.person == LEAD
    assert item.seen_at == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert item.event.at.hour == (11 if kind == "Event" else 10)


def test_own_tasks_and_unknown_whos_are_not_sales_touches() -> None:
    base = {"Id": "00T1", "WhoId": LEAD.id, "CreatedDate": "2026-11-01T10:00:00.000+0000"}
    assert activity_to_event({**base, "Subject": "[LeadSync] Follow up"}, "Task") is None
    assert activity_to_event({**base, "WhoId": "001xx"}, "Task") is None


@pytest.mark.parametrize(
    ("status", "ctype", "webinar"),
    [("Attended", "Webinar", True), ("attended", "webinar", True), ("Registered", "Webinar", False),
     ("Attended", "Email", False)],
)  # fmt: skip
def test_campaign_members(status: str, ctype: str, webinar: bool) -> None:
    raw = {"Id": "00v1", "ContactId": "003000000000001AAA", "LeadId": LEAD.id, "Status": status,
           "CampaignId": "701x", "Campaign": {"Type": ctype},
           "SystemModstamp": "2026-11-01T10:00:00.000+0000"}  # fmt: skip
    item = member_to_event(raw)
    assert (item is not None) is webinar
    if item:
        assert item.event.type == "webinar_attended" and item.person.object_type == "Contact"


def test_dates() -> None:
    when = datetime(2026, 11, 1, 10, 0, 0, 5000, tzinfo=UTC)
    assert format_datetime(when) == "2026-11-01T10:00:00.005+0000"
    assert parse_datetime("2026-11-01T10:00:00.005+0000") == when
    assert parse_datetime("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_datetime("31/12/2026") is None


def test_plan_update_diffs_in_salesforce_form_and_cuts_reasons() -> None:
    reasons = tuple(Reason(f"r{i}", "とても長い理由のラベル" * 3, 10.0) for i in range(20))
    update = FieldUpdate(LEAD, {"score": 85, "stage": "mql", "reasons": reasons,
                                "sla_due": None, "mql_at": datetime(2026, 11, 1, tzinfo=UTC)},
                         previous={"score": 85.0, "stage": "lead",
                                   "sla_due": "2026-11-02T00:00:00.000+0000",
                                   "mql_at": "2026-11-01T00:00:00.000+0000"})  # fmt: skip
    out = plan_update(update, FIELDS)
    assert set(out) == {"LeadSync_Stage__c", "LeadSync_Reasons__c", "LeadSync_SLA_Due__c"}
    assert out["LeadSync_SLA_Due__c"] is None
    # whole entries only (DESIGN.md §3a): 6 of 20 fit in Text(255), then "; …"
    entry = "+10 " + "とても長い理由のラベル" * 3
    assert out["LeadSync_Reasons__c"] == "; ".join([entry] * 6) + "; …"
    assert len(str(out["LeadSync_Reasons__c"])) == 235


def test_no_reasons_is_a_cleared_field_not_a_change() -> None:
    """Salesforce stores "" as null: an empty reasons tuple must compare equal to it."""
    assert plan_update(FieldUpdate(LEAD, {"reasons": (), "model": ""}), FIELDS) == {}
    update = FieldUpdate(LEAD, {"reasons": ()}, previous={"reasons": "+5 x"})
    assert plan_update(update, FIELDS) == {"LeadSync_Reasons__c": None}


def test_plan_update_rejects_bad_values() -> None:
    with pytest.raises(InvalidValue, match="sla_status"):
        plan_update(FieldUpdate(LEAD, {"sla_status": "late"}), FIELDS)


def test_task_record_shape() -> None:
    task = FollowUpTask(key="k-1", person=LEAD, owner_id="005A", subject="[LeadSync] MQL SLA",
                        body="Call them", due=datetime(2026, 11, 2, 9, tzinfo=UTC),
                        priority="high")  # fmt: skip
    rec = task_record(task)
    assert rec["Subject"] == "[LeadSync] MQL SLA" and rec["ActivityDate"] == "2026-11-02"
    assert rec["Priority"] == "High" and rec["Status"] == "Not Started"
    assert rec["OwnerId"] == "005A" and rec["WhoId"] == LEAD.id
    assert rec["Description"].endswith("leadsync-key: k-1")


def test_metadata_package_is_source_format(tmp_path: Path) -> None:
    paths = write_package(tmp_path, FIELDS, "59.0")
    # the project, 11 fields on Lead and on Contact, 5 on Account (docs/accounts.md)
    assert (tmp_path / "sfdx-project.json").exists() and len(paths) == 28
    stage = tmp_path / "force-app/main/default/objects/Lead/fields/LeadSync_Stage__c.field-meta.xml"
    root = ET.parse(stage).getroot()
    ns = {"m": "http://soap.sforce.com/2006/04/metadata"}
    values = [v.text for v in root.findall(".//m:value/m:fullName", ns)]
    assert values[:6] == ["subscriber", "lead", "mql", "sql", "opportunity", "customer"]
    assert {"recycled", "disqualified"} <= set(values)
    reasons = (
        tmp_path
        / "force-app/main/default/objects/Contact/fields/LeadSync_Reasons__c.field-meta.xml"
    )
    assert ET.parse(reasons).getroot().find("m:length", ns).text == "255"  # type: ignore[union-attr]


def test_describe_problems() -> None:
    describe = {"fields": [{"name": "LeadSync_Score__c", "type": "double", "updateable": True},
                           {"name": "LeadSync_Reasons__c", "type": "string", "length": 100,
                            "updateable": True},
                           {"name": "LeadSync_Stage__c", "type": "string",
                            "updateable": False}]}  # fmt: skip
    problems = describe_problems("Lead", describe, FIELDS)
    text = "\n".join(problems)
    assert "Lead.LeadSync_Fit_Grade__c is missing" in text
    assert "LeadSync_Reasons__c holds 100" in text
    assert "LeadSync_Stage__c is not writable" in text and "expected picklist" in text
    assert "LeadSync_Score__c" not in text


@pytest.mark.parametrize(
    ("kind", "raw", "state"),
    [("Lead", {"State": "東京都"}, "東京都"),
     ("Lead", {"State": "ＣＡ"}, "CA"),  # full-width, NFKC-normalised
     ("Lead", {"State": "  "}, None),
     ("Contact", {"MailingState": "大阪府", "Account": {"BillingState": "東京都"}}, "大阪府"),
     ("Contact", {"Account": {"BillingState": "愛知県"}}, "愛知県"),
     ("Contact", {}, None)],
)  # fmt: skip
def test_state_or_prefecture_is_the_state_attribute(kind: str, raw: dict, state: str | None  # type: ignore[type-arg]
                                                    ) -> None:
    p = record_to_person({"Id": "00Q000000000009AAA", **raw}, kind, owners={},
                         fields=FIELDS).profile
    assert dict(p.attributes) == ({"state": state} if state else {})
