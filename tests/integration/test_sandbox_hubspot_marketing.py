"""Contract tests: the sandbox's email events, forms and form-submission endpoints and contact
batch read by email, driven through hubspot-api-client's `api_request` (what the connector's
request builder is) over a real socket."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hubspot import Client

from leadsync.sandbox import Faults, Sandbox
from leadsync.sandbox.hs_marketing import form_guid

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(contacts=600, seed=11, hubspot_rate_limit=1000) as box:
        yield box


def _client(sb: Sandbox, token: str | None = None) -> Client:
    return Client.create(access_token=token or sb.hubspot_token, base_url=sb.hubspot_url)


def _get(sb: Sandbox, path: str, **qs: Any) -> Any:
    resp = _client(sb).api_request({"method": "GET", "path": path, "qs": qs})
    assert resp.status_code == 200, resp.text
    return resp


def _email_events(sb: Sandbox, **qs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    offset = None
    while True:
        page = _get(sb, "/email/public/v1/events", **qs, **({"offset": offset} if offset else {}))
        body = page.json()
        assert set(body) == {"events", "hasMore", "offset"}
        events.extend(body["events"])
        if not body["hasMore"]:
            return events
        offset = body["offset"]


def test_email_events_filter_by_type_and_time_and_page_by_offset(sb: Sandbox) -> None:
    start = int((sb.now() - timedelta(days=60)).timestamp() * 1000)
    opens = _email_events(sb, startTimestamp=start, eventType="OPEN", limit=100)
    expected = [e for e in sb.data.hs_email_events if e[3] == "OPEN" and e[0] >= start]
    assert len(opens) == len(expected) > 100
    assert len({e["id"] for e in opens}) == len(opens)
    assert all(e["type"] == "OPEN" and e["created"] >= start for e in opens)
    first = opens[0]
    assert {"id", "created", "recipient", "emailCampaignId", "portalId", "sentBy"} <= set(first)
    assert isinstance(first["created"], int) and isinstance(first["emailCampaignId"], int)
    assert first["recipient"].lower() in {
        p.get("email", "").lower() for p in sb.data.hs_contacts.values()
    }
    clicks = _email_events(sb, startTimestamp=start, eventType="CLICK", limit=1000)
    assert clicks and all(c["url"].startswith("https://") for c in clicks)
    changes = _email_events(sb, eventType="STATUSCHANGE", limit=1000)
    assert changes and all(c["portalSubscriptionStatus"] == "UNSUBSCRIBED" for c in changes)
    assert all(s["status"] == "UNSUBSCRIBED" for c in changes for s in c["subscriptions"])
    end = start + 86_400_000
    window = _email_events(sb, startTimestamp=start, endTimestamp=end, limit=1000)
    assert all(start <= e["created"] <= end for e in window)


def test_email_events_refuse_bad_arguments_and_tokens(sb: Sandbox) -> None:
    client = _client(sb)
    bad = client.api_request({"path": "/email/public/v1/events", "qs": {"limit": 1001}})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    bad = client.api_request({"path": "/email/public/v1/events", "qs": {"eventType": "NOPE"}})
    assert bad.status_code == 400 and "NOPE" in bad.json()["message"]
    denied = _client(sb, "wrong").api_request({"path": "/email/public/v1/events"})
    assert denied.status_code == 401 and denied.json()["category"] == "INVALID_AUTHENTICATION"
    ok = _get(sb, "/email/public/v1/events", limit=1)
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "1000"


def test_forms_list_pages_and_names(sb: Sandbox) -> None:
    forms: list[dict[str, Any]] = []
    after = None
    while True:
        body = _get(sb, "/marketing/v3/forms/", limit=2, **({"after": after} if after else {}))
        forms.extend(body.json()["results"])
        nxt = body.json().get("paging", {}).get("next")
        if not nxt:
            break
        after = nxt["after"]
    names = {f["name"] for f in forms}
    assert {"demo_request", "newsletter", "case-study-acme"} <= names
    assert all(GUID.match(f["id"]) and f["archived"] is False for f in forms)
    assert form_guid("demo_request") in {f["id"] for f in forms}


def _submissions(sb: Sandbox, guid: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    path = f"/form-integrations/v1/submissions/forms/{guid}"
    while True:
        body = _get(sb, path, limit=limit, **({"after": after} if after else {})).json()
        out.extend(body["results"])
        nxt = body.get("paging", {}).get("next")
        if not nxt:
            return out
        after = nxt["after"]


def test_form_submissions_newest_first_with_paging(sb: Sandbox) -> None:
    guid = form_guid("case-study-acme")
    subs = _submissions(sb, guid, 7)
    assert len(subs) == len(sb.data.hs_form_submissions[guid]) > 14
    times = [s["submittedAt"] for s in subs]
    assert times == sorted(times, reverse=True)
    assert len({s["conversionId"] for s in subs}) == len(subs)
    first = subs[0]
    values = {v["name"]: v["value"] for v in first["values"]}
    assert "@" in values["email"] and first["pageUrl"].endswith("/resources/case-study-acme")
    client = _client(sb)
    path = f"/form-integrations/v1/submissions/forms/{guid}"
    too_many = client.api_request({"path": path, "qs": {"limit": 51}})
    assert too_many.status_code == 400
    missing = client.api_request(
        {"path": f"/form-integrations/v1/submissions/forms/{uuid.uuid4()}"}
    )
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"


def test_contacts_batch_read_by_email(sb: Sandbox) -> None:
    contacts = sorted(sb.data.hs_contacts.items(), key=lambda kv: int(kv[0]))
    with_email = [(rid, p["email"]) for rid, p in contacts if p.get("email")][:3]
    body = {"idProperty": "email", "properties": ["email", "firstname"],
            "inputs": [{"id": with_email[0][1].upper()}, {"id": with_email[1][1]},
                       {"id": with_email[2][1]}, {"id": "nobody@nowhere.example"}]}  # fmt: skip
    resp = _client(sb).api_request(
        {"method": "POST", "path": "/crm/v3/objects/contacts/batch/read", "body": body}
    )
    assert resp.status_code == 207
    payload = resp.json()
    assert {r["id"] for r in payload["results"]} == {rid for rid, _ in with_email}
    assert payload["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert payload["errors"][0]["context"]["ids"] == ["nobody@nowhere.example"]
    bad = _client(sb).api_request({"method": "POST", "path": "/crm/v3/objects/contacts/batch/read",
                                   "body": {"idProperty": "firstname", "inputs": []}})  # fmt: skip
    assert bad.status_code == 400 and "firstname" in bad.json()["message"]


def test_duplicate_email_resolves_to_the_oldest_contact(sb: Sandbox) -> None:
    seen: dict[str, str] = {}
    dup = None
    for rid in sorted(sb.data.hs_contacts, key=int):
        email = sb.data.hs_contacts[rid].get("email", "").lower()
        if email and email in seen:
            dup = (email, seen[email])
            break
        seen.setdefault(email, rid)
    assert dup is not None, "the seed has in-HubSpot duplicates"
    body = {"idProperty": "email", "properties": ["email"], "inputs": [{"id": dup[0]}]}
    resp = _client(sb).api_request(
        {"method": "POST", "path": "/crm/v3/objects/contacts/batch/read", "body": body}
    )
    assert [r["id"] for r in resp.json()["results"]] == [dup[1]]


def test_v3_events_keep_only_page_webinar_and_meeting_types(sb: Sandbox) -> None:
    assert {e[3] for e in sb.data.hs_events} == {
        "e_visited_page",
        "e_attended_webinar",
        "e_booked_meeting",
    }


def test_simulated_demo_requests_and_email_events_arrive_and_faults_apply() -> None:
    with Sandbox(contacts=1000, seed=3, hubspot_rate_limit=1000) as box:
        guid = form_guid("demo_request")
        before_subs = len(box.data.hs_form_submissions[guid])
        before_mail = len(box.data.hs_email_events)
        start = int(box.now().timestamp() * 1000)
        done = box.simulate(hours=168)
        assert done.get("demo_requests", 0) >= 1
        newest = _get(box, f"/form-integrations/v1/submissions/forms/{guid}", limit=5).json()
        assert len(box.data.hs_form_submissions[guid]) > before_subs
        assert newest["results"][0]["submittedAt"] >= start
        fresh = _email_events(box, startTimestamp=start, limit=1000)
        assert len(fresh) == len(box.data.hs_email_events) - before_mail > 0
        box.set_faults(Faults(burst_429=1))
        limited = _client(box).api_request({"path": "/marketing/v3/forms"})
        assert limited.status_code == 429 and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        stats = box.stats()["hubspot"]
        assert stats["requests"]["GET /marketing/v3/forms"] == 1
        assert stats["records_returned"]["GET /email/public/v1/events"] == len(fresh)
