"""Contract tests: the Salesforce side of the sandbox, driven only through simple-salesforce
(and requests for OAuth), over TLS with certificate verification on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from simple_salesforce import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceLogin,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from leadsync.sandbox import Faults, Sandbox
from tests.sandbox_support import salesforce, sf_session


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(contacts=3000, seed=5) as box:
        yield box


def test_tls_verification_is_on(sb: Sandbox) -> None:
    plain = requests.Session()
    plain.trust_env = False  # system CAs only: the sandbox certificate must be refused
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(sb.salesforce_url + "/services/data/v59.0/limits", timeout=5)
    response = sf_session(sb).get(sb.salesforce_url + "/services/data/v59.0/limits", timeout=5)
    assert response.status_code == 401  # trusted via the CA bundle; no session yet


def test_login_soap_and_oauth(sb: Sandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed):
        SalesforceLogin(
            username=sb.credentials.username,
            password="wrong",
            security_token="x",
            scratch_url=sb.salesforce_url,
            session=sf_session(sb),
        )
    c = sb.credentials
    token = (
        sf_session(sb)
        .post(
            sb.salesforce_url + "/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": "x",
                "client_secret": "y",
                "username": c.username,
                "password": c.password + c.security_token,
            },
            timeout=5,
        )
        .json()
    )
    assert token["instance_url"] == sb.salesforce_url
    limits = sf_session(sb).get(
        sb.salesforce_url + "/services/data/v59.0/limits",
        timeout=5,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert limits.status_code == 200 and "DailyApiRequests" in limits.json()


def test_query_all_pages_with_next_records_url(sb: Sandbox) -> None:
    sf = salesforce(sb)
    first = sf.query("SELECT Id FROM Lead")
    assert first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    ids = [r["Id"] for r in sf.query_all_iter("SELECT Id, Email FROM Lead ORDER BY Id")]
    assert len(ids) == len(set(ids)) == len(sb.data.sf["Lead"]) > 2000
    assert ids == sorted(ids)


def test_soql_subset_matches_the_data(sb: Sandbox) -> None:
    sf = salesforce(sb)
    leads = sb.data.sf["Lead"].values()
    got = sf.query_all(
        "SELECT Id, Status, NumberOfEmployees FROM Lead WHERE (Status IN ('Working - Contacted', "
        "'Qualified') OR NumberOfEmployees >= 5000) AND IsConverted = false AND Status != 'Nurture'"
    )["records"]
    expected = {
        lead["Id"]
        for lead in leads
        if (
            lead["Status"] in ("Working - Contacted", "Qualified")
            or lead.get("NumberOfEmployees", 0) >= 5000
        )
        and not lead["IsConverted"]
        and lead["Status"] != "Nurture"
    }
    assert {r["Id"] for r in got} == expected and expected
    like = sf.query_all("SELECT Email FROM Lead WHERE Email LIKE '%@gmail.com' AND Email != null")
    assert like["totalSize"] == sum(
        1 for lead in leads if str(lead.get("Email", "")).endswith("@gmail.com")
    )
    recent = sf.query_all(
        "SELECT Id, CreatedDate FROM Task WHERE CreatedDate = LAST_N_DAYS:7 "
        "ORDER BY CreatedDate DESC LIMIT 5"
    )["records"]
    week_ago = (sb.now() - timedelta(days=7)).date().isoformat()
    assert recent and all(r["CreatedDate"][:10] >= week_ago for r in recent)
    assert [r["CreatedDate"] for r in recent] == sorted(
        (r["CreatedDate"] for r in recent), reverse=True
    )
    contact = sf.query("SELECT Id, Account.Name, Account.Industry FROM Contact LIMIT 1")["records"][
        0
    ]
    account = sb.data.sf["Account"][sb.data.sf["Contact"][contact["Id"]]["AccountId"]]
    assert contact["Account"]["Name"] == account["Name"]
    count = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")
    assert count["totalSize"] == sum(1 for o in sb.data.sf["Opportunity"].values() if o["IsWon"])
    roles = sf.query(
        "SELECT ContactId, Opportunity.IsWon FROM OpportunityContactRole "
        "WHERE Opportunity.IsClosed = true LIMIT 3"
    )["records"]
    assert roles and all(isinstance(r["Opportunity"]["IsWon"], bool) for r in roles)
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Nope__c FROM Lead")


def test_opportunities_keep_stage_history_and_leave_their_people_alone() -> None:
    """As in Salesforce: IsClosed/IsWon follow StageName (OpportunityStage) and are read-only;
    inserting an opportunity and changing its stage, amount or close date add an
    OpportunityHistory row, other edits do not; none of it touches the Contact."""
    with Sandbox(contacts=40, seed=5) as box:
        sf = salesforce(box)
        contact = next(iter(box.data.sf["Contact"]))
        stamp = f"SELECT SystemModstamp, LastModifiedDate FROM Contact WHERE Id = '{contact}'"
        before = sf.query(stamp)["records"]
        opp = sf.Opportunity.create({"Name": "x", "StageName": "Prospecting",
                                     "CloseDate": "2026-12-01"})["id"]  # fmt: skip
        role = sf.OpportunityContactRole.create({"OpportunityId": opp, "ContactId": contact,
                                                 "Role": "Decision Maker"})["id"]  # fmt: skip
        history = ("SELECT StageName, CloseDate FROM OpportunityHistory "
                   f"WHERE OpportunityId = '{opp}'")  # fmt: skip
        assert [r["StageName"] for r in sf.query(history)["records"]] == ["Prospecting"]
        box.advance(60)
        closing = f"{box.now():%Y-%m-%dT%H:%M:%SZ}"
        sf.Opportunity.update(opp, {"StageName": "Closed Won", "CloseDate": "2026-11-20"})
        sf.Opportunity.update(opp, {"Description": "signed"})
        rows = sf.query(history + " ORDER BY CreatedDate")["records"]
        assert [(r["StageName"], r["CloseDate"]) for r in rows] == [
            ("Prospecting", "2026-12-01"), ("Closed Won", "2026-11-20")]
        won = sf.query(f"SELECT IsClosed, IsWon FROM Opportunity WHERE Id = '{opp}'")["records"][0]
        assert (won["IsClosed"], won["IsWon"]) == (True, True)
        with pytest.raises(SalesforceMalformedRequest):
            sf.Opportunity.update(opp, {"IsWon": False})
        assert sf.query(stamp)["records"] == before
        changed = ("SELECT Id, ContactId FROM OpportunityContactRole WHERE SystemModstamp >= {0} "
                   "OR Opportunity.SystemModstamp >= {0}")  # the sales read, by parent stamp
        rows = sf.query(changed.format(closing))["records"]
        assert [(r["Id"], r["ContactId"]) for r in rows] == [(role, contact)]
        box.advance(60)
        assert sf.query(changed.format(f"{box.now():%Y-%m-%dT%H:%M:%SZ}"))["records"] == []
        stages = sf.query("SELECT ApiName FROM OpportunityStage WHERE IsClosed = true")
        assert sorted(r["ApiName"] for r in stages["records"]) == ["Closed Lost", "Closed Won"]


def test_collections_patch_per_record_and_all_or_none(sb: Sandbox) -> None:
    sf = salesforce(sb)
    lead_ids = [lead["Id"] for lead in sb.data.sf["Lead"].values() if not lead["IsConverted"]][:3]
    before = sb.data.sf["Lead"][lead_ids[0]]["SystemModstamp"]
    sb.advance(2)

    def rec(rid: str, **values: object) -> dict[str, object]:
        return {"attributes": {"type": "Lead"}, "id": rid, **values}

    result = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                rec(lead_ids[0], LeadSync_Score__c=55, LeadSync_Stage__c="mql"),
                rec(lead_ids[1], LeadSync_Stage__c="not-a-stage"),
                rec(lead_ids[2], LeadSync_Reasons__c="x" * 256),
            ],
        },
    )
    assert [r["success"] for r in result] == [True, False, False]
    assert result[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert result[2]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    stored = sb.data.sf["Lead"][lead_ids[0]]
    assert stored["LeadSync_Score__c"] == 55 and stored["SystemModstamp"] > before
    rolled = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [rec(lead_ids[0], LeadSync_Score__c=60), rec(lead_ids[1], Bogus__c=1)],
        },
    )
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rolled[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert sb.data.sf["Lead"][lead_ids[0]]["LeadSync_Score__c"] == 55
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            json={"allOrNone": False, "records": [rec(lead_ids[0])] * 201},
        )


def test_task_create_counts_keys_and_describe_limits(sb: Sandbox) -> None:
    sf = salesforce(sb)
    sb.reset_stats()
    who = next(iter(sb.data.sf["Lead"]))
    task = {
        "attributes": {"type": "Task"},
        "WhoId": who,
        "Subject": "[LeadSync] MQL follow-up",
        "ActivityDate": "2026-11-21",
        "Priority": "High",
        "Description": "leadsync-key: sf-1",
    }
    result = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [task, task, {**task, "WhoId": "00Q5g0000999999AAA"}]},
    )
    assert [r["success"] for r in result] == [True, True, False]
    assert result[2]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    stats = sb.stats()["salesforce"]
    assert stats["tasks_created"] == 2 and stats["duplicate_task_keys"] == 1
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert (
        fields["LeadSync_Reasons__c"]["length"] == 255 and fields["LeadSync_Score__c"]["updateable"]
    )
    assert sf.api_usage["api-usage"].total == 100_000 and sf.api_usage["api-usage"].used > 0


def test_daily_limit_is_403_and_rolls_over() -> None:
    with Sandbox(contacts=5, seed=1, sf_daily_limit=3) as box:
        sf = salesforce(box)
        for _ in range(3):
            sf.query("SELECT Id FROM User")
        with pytest.raises(SalesforceRefusedRequest) as exc:
            sf.query("SELECT Id FROM User")
        assert exc.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert box.stats()["salesforce"]["rate_limited"] == 1
        box.advance(24 * 3600 + 1)
        salesforce(box).query("SELECT Id FROM User")


def test_session_expiry_and_expire_fault() -> None:
    with Sandbox(contacts=5, seed=1) as box:
        sf = salesforce(box)
        sf.query("SELECT Id FROM User")
        box.advance(7201)
        with pytest.raises(SalesforceExpiredSession) as exc:
            sf.query("SELECT Id FROM User")
        assert exc.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
        sf = salesforce(box)
        sf.query("SELECT Id FROM User")
        box.set_faults(Faults(expire_sessions=True))
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM User")
        salesforce(box).query("SELECT Id FROM User")  # a fresh login works right away
