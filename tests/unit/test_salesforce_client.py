"""SalesforceConnector at the requests level with `responses`: auth modes, paging, partial
failure, session expiry, limits, retries, and no secrets in errors."""

from __future__ import annotations

import http.client
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
import responses
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from leadsync.config.settings import SalesforceSettings
from leadsync.connectors.base import (
    AuthError,
    BudgetExhausted,
    FieldUpdate,
    RecordRef,
    TransientError,
)
from leadsync.connectors.http import RetryPolicy
from leadsync.connectors.salesforce.adapter import SalesforceConnector

LOGIN = "https://login.example"
INSTANCE = "https://inst.example"
DATA = f"{INSTANCE}/services/data/v59.0"
USERNAME = "integration.user@example.com"
PASSWORD = "s3cr3t-Pa55"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def soap_ok(session: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            f"<loginResponse><result><serverUrl>{INSTANCE}/services/Soap/u/59.0/00D</serverUrl>"
            f"<sessionId>{session}</sessionId></result></loginResponse></soapenv:Body>"
            "</soapenv:Envelope>")  # fmt: skip


def settings(**kw: Any) -> SalesforceSettings:
    base: dict[str, Any] = {"username": USERNAME, "password": SecretStr(PASSWORD),
                            "security_token": SecretStr("tok"), "login_url": LOGIN}  # fmt: skip
    base.update(kw)
    return SalesforceSettings(**base)


def connector(s: SalesforceSettings | None = None) -> SalesforceConnector:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, sleep=lambda _s: None,
                         rng=random.Random(1))  # fmt: skip
    return SalesforceConnector(s or settings(), clock=lambda: NOW, policy=policy)


Router = Callable[[str], tuple[int, Any]]


def org(routes: dict[str, list[dict[str, Any]]], page: int = 2) -> Router:
    """A tiny fake org: answers SOQL by object name with `page`-sized pages."""
    pages: dict[str, list[list[dict[str, Any]]]] = {}

    def route(q: str) -> tuple[int, Any]:
        obj = re.search(r"FROM (\w+)", q).group(1)  # type: ignore[union-attr]
        rows = routes.get(obj, [])
        chunks = [rows[i : i + page] for i in range(0, len(rows), page)] or [[]]
        pages[obj] = chunks
        return 200, _page(obj, chunks, 0)

    route.pages = pages  # type: ignore[attr-defined]
    return route


def _page(obj: str, chunks: list[list[dict[str, Any]]], i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"totalSize": sum(map(len, chunks)), "done": i == len(chunks) - 1,
                            "records": chunks[i]}  # fmt: skip
    if i < len(chunks) - 1:
        body["nextRecordsUrl"] = f"/services/data/v59.0/query/01g{obj}-{i + 1}"
    return body


def install(rsps: responses.RequestsMock, router: Router, limit: str = "api-usage=10/15000"
            ) -> None:  # fmt: skip
    headers = {"Sforce-Limit-Info": limit}
    rsps.add(responses.POST, f"{LOGIN}/services/Soap/u/59.0", body=soap_ok("00Dxx!SESSION1"))

    def query(request: Any) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlparse(request.url).query)["q"][0]
        status, body = router(q)
        return status, headers, json.dumps(body)

    def more(request: Any) -> tuple[int, dict[str, str], str]:
        obj, i = re.search(r"01g(\w+)-(\d+)", request.url).groups()  # type: ignore[union-attr]
        chunks = router.pages[obj]  # type: ignore[attr-defined]
        return 200, headers, json.dumps(_page(obj, chunks, int(i)))

    rsps.add_callback(responses.GET, re.compile(rf"{DATA}/query/?\?q="), callback=query)
    rsps.add_callback(responses.GET, re.compile(rf"{DATA}/query/01g"), callback=more)


def lead(i: int, status: str = "Open - Not Contacted", **kw: Any) -> dict[str, Any]:
    return {"Id": f"00Q{i:015d}", "LastName": f"L{i}", "Email": f"p{i}@example.com",
            "Status": status, "OwnerId": "005A", "IsConverted": False,
            "CreatedDate": "2026-10-01T00:00:00.000+0000",
            "SystemModstamp": f"2026-11-01T00:00:{i:02d}.000+0000", **kw}  # fmt: skip


def test_password_login_paging_and_lead_status_dates() -> None:
    leads = [lead(i) for i in range(5)] + [lead(5, "Working - Contacted")]
    history = [
        {"LeadId": leads[5]["Id"], "CreatedDate": "2026-10-20T00:00:00.000+0000"},
        {"LeadId": leads[5]["Id"], "CreatedDate": "2026-10-25T00:00:00.000+0000"},
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(
            rsps,
            org(
                {
                    "Lead": leads,
                    "LeadHistory": history,
                    "User": [{"Id": "005A", "Email": "Rep@Example.com"}],
                }
            ),
        )
        conn = connector()
        people = list(conn.iter_changed_people(datetime(2026, 11, 1, tzinfo=UTC)))
        soqls = [parse_qs(urlparse(c.request.url).query).get("q", [""])[0] for c in rsps.calls]
        sent = len(rsps.calls)
    assert [p.ref.id for p in people] == [r["Id"] for r in leads]
    assert people[0].profile.owner == "rep@example.com"
    assert people[5].profile.sales_status == "working"
    assert people[5].profile.sales_status_at == datetime(2026, 10, 25, tzinfo=UTC)
    assert people[0].profile.sales_status is None
    lead_q = next(q for q in soqls if "FROM Lead " in q)
    assert "SystemModstamp >= 2026-11-01T00:00:00Z" in lead_q
    assert "ORDER BY SystemModstamp, Id" in lead_q
    # 1 login + User + Lead (3 pages of 2) + LeadHistory + Contact; all counted
    assert conn.api_calls() == sent == 7


def test_converted_lead_yields_its_contact_once() -> None:
    contact = {"Id": "003000000000000001", "LastName": "C", "Email": "c@example.com",
               "SystemModstamp": "2026-10-01T00:00:00.000+0000",
               "Account": {"Name": "Acme", "NumberOfEmployees": 300}}  # fmt: skip
    converted = lead(1, IsConverted=True, ConvertedContactId=contact["Id"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"Lead": [converted], "Contact": [contact], "User": []}))
        people = list(connector().iter_changed_people(None))
    assert [p.ref for p in people] == [RecordRef("salesforce", "Contact", contact["Id"])]
    assert people[0].profile.employees == 300


def test_partial_failure_is_per_record() -> None:
    refs = [RecordRef("salesforce", "Lead", f"00Q{i:015d}") for i in range(3)]
    updates = [FieldUpdate(r, {"score": 50}, previous={"score": 10.0}) for r in refs]
    updates.append(FieldUpdate(RecordRef("salesforce", "Lead", "00Q9"), {"score": 50},
                               previous={"score": 50.0}))  # fmt: skip
    answer = [{"id": refs[0].id, "success": True, "errors": []},
              {"id": refs[1].id, "success": False, "errors": [
                  {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]},
              {"id": refs[2].id, "success": False, "errors": [
                  {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                   "message": "bad value for taro@example.com", "fields": []}]}]  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({}))
        rsps.add(responses.PATCH, f"{DATA}/composite/sobjects", json=answer)
        result = connector().write_updates(updates)
        sent = json.loads(rsps.calls[-1].request.body)
    assert sent["allOrNone"] is False and len(sent["records"]) == 3
    assert sent["records"][0] == {"attributes": {"type": "Lead"}, "id": refs[0].id,
                                  "LeadSync_Score__c": 50}  # fmt: skip
    assert result.written == [refs[0]] and result.unchanged == [updates[3].ref]
    failed = {f.ref: f for f in result.failed}
    assert failed[refs[1]].retryable and failed[refs[1]].reason.startswith("UNABLE_TO_LOCK_ROW")
    assert not failed[refs[2]].retryable and "taro@" not in failed[refs[2]].reason


def test_expired_session_relogs_in_once_and_replays() -> None:
    state = {"n": 0}

    def router(q: str) -> tuple[int, Any]:
        state["n"] += 1
        if state["n"] == 1:
            return 401, [
                {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            ]
        return 200, {"done": True, "totalSize": 0, "records": []}

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, router)
        rsps.replace(responses.POST, f"{LOGIN}/services/Soap/u/59.0", body=soap_ok("00Dxx!S1"))
        conn = connector()
        assert conn.list_owners() == {}
        logins = [c for c in rsps.calls if "/Soap/" in c.request.url]
        replay = rsps.calls[-1].request
    assert len(logins) == 2 and state["n"] == 2
    assert replay.headers["Authorization"] == "Bearer 00Dxx!S1"


def test_session_auth_cannot_relogin_and_says_so() -> None:
    s = SalesforceSettings(instance_url=INSTANCE, session_id=SecretStr("00Dxx!OLD"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.GET,
            re.compile(rf"{DATA}/query"),
            status=401,
            json=[{"message": "Session expired", "errorCode": "INVALID_SESSION_ID"}],
        )
        with pytest.raises(AuthError, match="cannot re-login") as info:
            connector(s).list_owners()
    assert "00Dxx" not in str(info.value)


def test_request_limit_exceeded_stops_without_retry() -> None:
    def router(q: str) -> tuple[int, Any]:
        return 403, [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, router)
        conn = connector()
        with pytest.raises(BudgetExhausted, match="REQUEST_LIMIT_EXCEEDED"):
            list(conn.iter_changed_people(None))
        assert len(rsps.calls) == 2  # login + one query, no retries


def test_own_daily_share_stops_before_sending() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"User": []}), limit="api-usage=5/100")
        conn = connector(settings(daily_budget_share=0.02))  # 2 calls of 100
        conn.list_owners()  # login + query = 2 calls
        conn._owners = None
        with pytest.raises(BudgetExhausted, match="budget for today is spent"):
            conn.list_owners()
        assert len(rsps.calls) == 2


def test_5xx_and_connection_errors_are_retried_then_transient() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"User": []}))
        rsps.replace(responses.GET, re.compile(rf"{DATA}/query/?\?q="), status=503, body="busy")
        conn = connector()
        with pytest.raises(TransientError, match="HTTP 503"):
            conn.list_owners()
        assert conn.api_calls() == 1 + 3  # login + max_attempts


def test_login_failure_names_no_secret() -> None:
    fault = ('<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/'
             'soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body>'
             "<soapenv:Fault><faultcode>INVALID_LOGIN</faultcode><detail><sf:LoginFault>"
             "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid "
             f"username {USERNAME}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
             "</soapenv:Body></soapenv:Envelope>")  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, f"{LOGIN}/services/Soap/u/59.0", status=500, body=fault)
        with pytest.raises(AuthError, match="INVALID_LOGIN") as info:
            connector().list_owners()
        assert len(rsps.calls) == 1  # a SOAP fault is not retried
    assert USERNAME not in str(info.value) and PASSWORD not in str(info.value)


@pytest.fixture()
def key_pair(tmp_path: Path) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    return path, key.public_key()


def test_jwt_bearer_login_against_login_url(key_pair: tuple[Path, Any]) -> None:
    path, public = key_pair
    s = SalesforceSettings(username=USERNAME, consumer_key="3MVG9", private_key_file=path,
                           login_url=LOGIN)  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(
            responses.POST,
            f"{LOGIN}/services/oauth2/token",
            json={"access_token": "00Dxx!JWT", "instance_url": INSTANCE},
        )
        install(rsps, org({"User": [{"Id": "005B", "Email": "b@example.com"}]}))
        assert connector(s).list_owners() == {"005B": "b@example.com"}
        form = parse_qs(rsps.calls[0].request.body)
        query = next(c.request for c in rsps.calls if "/query" in c.request.url)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(form["assertion"][0], public, algorithms=["RS256"], audience=LOGIN)
    assert claims["sub"] == USERNAME and claims["iss"] == "3MVG9"
    assert query.headers["Authorization"] == "Bearer 00Dxx!JWT"


def test_tasks_created_and_keys_found() -> None:
    from leadsync.connectors.base import FollowUpTask

    who = RecordRef("salesforce", "Lead", "00Q000000000000001")
    tasks = [FollowUpTask(key=f"k{i}", person=who, owner_id="005A", subject="[LeadSync] x",
                          body="b", due=NOW, priority="normal") for i in range(2)]  # fmt: skip
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"Task": [{"Id": "00T1", "Description": "b\nleadsync-key: k0"}]}))
        rsps.add(responses.POST, f"{DATA}/composite/sobjects",
                 json=[{"id": "00T1", "success": True, "errors": []},
                       {"success": False, "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY",
                                                      "message": "owner"}]}])  # fmt: skip
        conn = connector()
        result = conn.create_tasks(tasks)
        keys = conn.find_task_keys([who])
        soql = parse_qs(urlparse(rsps.calls[-1].request.url).query)["q"][0]
    assert result.created == {"k0": "00T1"} and "INVALID_CROSS_REFERENCE_KEY" in result.failed["k1"]
    assert keys == {"k0"}
    assert f"WhoId IN ('{who.id}')" in soql and "Subject LIKE '[LeadSync]%'" in soql


def _follow_ups(n: int) -> tuple[RecordRef, list[Any]]:
    from leadsync.connectors.base import FollowUpTask

    who = RecordRef("salesforce", "Lead", "00Q000000000000001")
    return who, [FollowUpTask(key=f"k{i}", person=who, owner_id=None, subject="[LeadSync] x",
                              body="b", due=NOW, priority="normal") for i in range(n)]  # fmt: skip


@pytest.mark.parametrize(
    "lost",
    [requests.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("closed"))),
     requests.ReadTimeout("read timed out"),
     503],
    ids=["disconnect-after-send", "read-timeout", "5xx"],
)  # fmt: skip
def test_a_create_with_an_unknown_outcome_is_read_back_not_replayed(lost: object) -> None:
    """k0 was committed before the reply was lost: only k1 is sent again."""
    who, tasks = _follow_ups(2)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"Task": [{"Id": "00T0", "Description": "b\nleadsync-key: k0"}]}))
        url = f"{DATA}/composite/sobjects"
        if isinstance(lost, int):
            rsps.add(responses.POST, url, status=lost, json=[{"errorCode": "SERVER_UNAVAILABLE"}])
        else:
            rsps.add(responses.POST, url, body=lost)  # type: ignore[arg-type]
        rsps.add(responses.POST, url, json=[{"id": "00T1", "success": True, "errors": []}])
        conn = connector()
        result = conn.create_tasks(tasks)
        posts = [json.loads(c.request.body) for c in rsps.calls if c.request.method == "POST"
                 and c.request.url.endswith("/composite/sobjects")]  # fmt: skip
        queries = [c for c in rsps.calls if "/query" in c.request.url]
    assert [[r["Description"].split(": ")[-1] for r in p["records"]] for p in posts] == [
        ["k0", "k1"], ["k1"]]  # fmt: skip
    assert len(queries) == 1
    assert result.created == {"k0": "00T0", "k1": "00T1"} and result.failed == {}


def test_a_failing_read_back_reports_the_collection_failed_without_resending() -> None:
    _, tasks = _follow_ups(3)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({}))
        rsps.replace(responses.GET, re.compile(rf"{DATA}/query/?\?q="), status=503, body="busy")
        rsps.add(responses.POST, f"{DATA}/composite/sobjects", status=502, body="bad gateway")
        conn = connector()
        result = conn.create_tasks(tasks)
        posts = [c for c in rsps.calls if c.request.url.endswith("/composite/sobjects")]
        queries = [c for c in rsps.calls if "/query" in c.request.url]
    assert len(posts) == 1 and len(queries) == 3  # the read-back is a read: retried 3 times
    assert result.created == {} and sorted(result.failed) == ["k0", "k1", "k2"]
    assert "read-back failed" in result.failed["k0"] and "HTTP 502" in result.failed["k0"]


def test_query_pages_holds_one_page_at_a_time() -> None:
    """Issue 9: a page is emptied when the next is asked for, before it is read (the caller's
    loop variable held the previous page of up to 2,000 records while the next was decoded);
    the records themselves stay the caller's, and the last page is kept."""
    leads = [lead(i) for i in range(5)]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(rsps, org({"Lead": leads}))
        client = connector().client
        pages: list[list[dict[str, Any]]] = []
        kept: list[dict[str, Any]] = []
        sizes_when_next_read: list[list[int]] = []
        for page in client.query_pages("leads", "SELECT Id FROM Lead"):
            sizes_when_next_read.append([len(p) for p in pages])
            pages.append(page)
            kept.extend(page)
        calls = len(rsps.calls)
    assert [r["Id"] for r in kept] == [r["Id"] for r in leads]
    assert sizes_when_next_read == [[], [0], [0, 0]]  # each earlier page emptied
    assert [len(p) for p in pages] == [0, 0, 1]  # the last page stays the caller's
    assert calls == 1 + 3  # the login and three pages
