"""HubSpotConnector through the real SDK (urllib3) against a scripted server on a socket."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from leadsync.config.settings import HubSpotSettings
from leadsync.connectors.base import (
    AuthError,
    BudgetExhausted,
    FieldUpdate,
    FollowUpTask,
    RecordRef,
)
from leadsync.connectors.http import RetryPolicy
from leadsync.connectors.hubspot import adapter as hs_adapter
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from tests.connectors_http_fake import base_url, scripted_server

TOKEN = "pat-na1-secret-token"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
OWNERS = {"results": [{"id": "7", "email": "Rep@Example.com"}]}
RATE = {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "99",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}  # fmt: skip


def make(server: Any, **kw: Any) -> HubSpotConnector:
    settings = HubSpotSettings(access_token=SecretStr(TOKEN), base_url=base_url(server),
                               timeout_seconds=5, search_per_second=50, **kw)  # fmt: skip
    policy = RetryPolicy(max_attempts=4, base_delay=0.001, sleep=lambda _s: None,
                         rng=random.Random(3))  # fmt: skip
    return HubSpotConnector(settings, clock=lambda: T0, policy=policy)


def contact(i: int) -> dict[str, Any]:
    modified = (T0 + timedelta(seconds=i // 3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"id": str(i), "properties": {"lastmodifieddate": modified, "hubspot_owner_id": "7",
                                         "numemployees": "25-50"}}  # fmt: skip


def test_incremental_search_restarts_before_the_cap_and_dedupes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(hs_adapter, "SEARCH_CAP", 600)
    everyone = [contact(i) for i in range(1000)]

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        if path.startswith("/crm/v3/owners"):
            return 200, RATE, OWNERS
        assert path == "/crm/v3/objects/contacts/search", path
        flt = body["filterGroups"][0]["filters"][0]
        assert flt["propertyName"] == "lastmodifieddate" and flt["operator"] == "GTE"
        since = datetime.fromtimestamp(int(flt["value"]) / 1000, tz=UTC)
        rows = [
            c
            for c in everyone
            if hs_adapter.parse_datetime(c["properties"]["lastmodifieddate"]) >= since
        ]  # type: ignore[operator]
        after, limit = int(body.get("after") or 0), body["limit"]
        if after + limit > 600:
            return 400, {}, {"status": "error", "category": "VALIDATION_ERROR"}
        page: dict[str, Any] = {"total": len(rows), "results": rows[after : after + limit]}
        if after + limit < len(rows):
            page["paging"] = {"next": {"after": str(after + limit)}}
        return 200, {}, page

    with scripted_server(app) as server:
        conn = make(server)
        people = list(conn.iter_changed_people(T0))
        searches = [r for r in server.requests if r.path.endswith("/search")]
    assert sorted(int(p.ref.id) for p in people) == list(range(1000))
    assert people[0].profile.owner == "rep@example.com" and people[0].profile.employees == 25
    assert len(searches) < 10  # 1000 rows at 200 per page, plus the overlap of one restart
    assert any(int(r.body["filterGroups"][0]["filters"][0]["value"]) > int(T0.timestamp() * 1000)
               for r in searches)  # fmt: skip
    assert conn.api_calls() == len(searches) + 1


def test_429_rolling_is_retried_and_daily_stops() -> None:
    state = {"n": 0}

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        state["n"] += 1
        if state["n"] <= 2:
            return 429, {"Retry-After": "0"}, {"status": "error", "errorType": "RATE_LIMIT",
                                               "policyName": "TEN_SECONDLY_ROLLING"}  # fmt: skip
        if state["n"] == 3:
            return 200, RATE, OWNERS
        return 429, {}, {"status": "error", "errorType": "RATE_LIMIT", "policyName": "DAILY"}

    with scripted_server(app) as server:
        conn = make(server)
        assert conn.list_owners() == {"7": "rep@example.com"}
        assert conn.api_calls() == 3
        with pytest.raises(BudgetExhausted, match="daily"):
            list(conn.iter_changed_people(None))
        assert conn.api_calls() == 4  # DAILY is not retried


def test_401_is_auth_error_without_the_token() -> None:
    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        return 401, {}, {"status": "error", "category": "INVALID_AUTHENTICATION",
                         "message": f"token {TOKEN} invalid"}  # fmt: skip

    with scripted_server(app) as server, pytest.raises(AuthError) as info:
        make(server).list_owners()
    assert TOKEN not in str(info.value)


def test_batch_update_207_and_backward_lifecycle_clear_then_set() -> None:
    refs = [RecordRef("hubspot", "contact", str(i)) for i in range(3)]
    updates = [
        FieldUpdate(refs[0], {"stage": "recycled", "score": 10},
                    previous={"stage": "sql", "lifecyclestage": "salesqualifiedlead"}),
        FieldUpdate(refs[1], {"score": 90}, previous={"score": "10"}),
        FieldUpdate(refs[2], {"score": 20}, previous={"score": "20"}),
    ]  # fmt: skip

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        assert path == "/crm/v3/objects/contacts/batch/update"
        ids = [i["id"] for i in body["inputs"]]
        if "1" in ids:
            return 207, {}, {"status": "COMPLETE", "numErrors": 1,
                             "results": [{"id": i} for i in ids if i != "1"],
                             "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                                         "message": "Property values were not valid",
                                         "context": {"ids": ["1"]}}]}  # fmt: skip
        return 200, {}, {"status": "COMPLETE", "results": [{"id": i} for i in ids]}

    with scripted_server(app) as server:
        result = make(server).write_updates(updates)
        bodies = [r.body for r in server.requests]
    assert len(bodies) == 2
    first = {i["id"]: i["properties"] for i in bodies[0]["inputs"]}
    assert first["0"] == {"leadsync_stage": "recycled", "lifecyclestage": "",
                          "leadsync_score": "10"}  # fmt: skip
    assert first["1"] == {"leadsync_score": "90"} and "2" not in first
    assert bodies[1] == {"inputs": [{"id": "0", "properties": {"lifecyclestage": "lead"}}]}
    assert result.written == [refs[0]] and result.unchanged == [refs[2]]
    assert [(f.ref, f.retryable) for f in result.failed] == [(refs[1], False)]
    assert "VALIDATION_ERROR" in result.failed[0].reason


def test_tasks_batch_create_with_association_and_key_search() -> None:
    who = RecordRef("hubspot", "contact", "55")
    tasks = [FollowUpTask(key="p1:mql:2026-11-01:due_soon", person=who, owner_id="7",
                          subject="[LeadSync] MQL follow-up", body="Please call",
                          due=T0, priority="high")]  # fmt: skip

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        if path.endswith("/batch/create"):
            return (
                201,
                {},
                {
                    "status": "COMPLETE",
                    "results": [
                        {"id": "900", "properties": i["properties"]} for i in body["inputs"]
                    ],
                },
            )
        return (
            200,
            {},
            {
                "results": [
                    {
                        "id": "900",
                        "properties": {
                            "hs_task_body": "Please call\nleadsync-key: p1:mql:2026-11-01:due_soon"
                        },
                    }
                ]
            },
        )

    with scripted_server(app) as server:
        conn = make(server)
        result = conn.create_tasks(tasks)
        keys = conn.find_task_keys([who])
        create, search = server.requests[0].body, server.requests[1].body
    assert result.created == {"p1:mql:2026-11-01:due_soon": "900"}
    assert keys == {"p1:mql:2026-11-01:due_soon"}
    sent = create["inputs"][0]
    assert sent["properties"]["hs_task_priority"] == "HIGH"
    assert sent["properties"]["hubspot_owner_id"] == "7"
    assert sent["properties"]["hs_task_type"] == "TODO"
    assert sent["properties"]["hs_timestamp"] == "2026-11-01T00:00:00.000Z"
    assert sent["associations"] == [
        {
            "to": {"id": "55"},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
        }
    ]
    filters = search["filterGroups"][0]["filters"]
    assert {"propertyName": "associations.contact", "operator": "IN", "values": ["55"]} in filters


def test_provision_creates_group_and_missing_properties_idempotently() -> None:
    created: list[str] = []

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        if path == "/crm/v3/properties/contacts/groups" and method == "GET":
            return 200, {}, {"results": [{"name": g} for g in created if g == "leadsync"]}
        if path == "/crm/v3/properties/contacts/groups":
            created.append(body["name"])
            return 201, {}, body
        if method == "GET":
            names = ["lifecyclestage", "leadsync_score", *created]
            return 200, {}, {"results": [{"name": n, "type": "number"} for n in names]}
        created.append(body["name"])
        return 201, {}, body

    with scripted_server(app) as server:
        conn = make(server)
        done = conn.provision()
        again = conn.provision()
    assert "group leadsync: created" in done and "property leadsync_score: exists" in done
    assert "property leadsync_stage: created" in done
    assert all(line.endswith("exists") for line in again)
    assert created.count("leadsync_stage") == 1


def test_rate_headers_pace_requests_and_hint_429_waits() -> None:
    spent = {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0",
             "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}  # fmt: skip
    state = {"n": 0}

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        state["n"] += 1
        if state["n"] == 1:  # a 429 without Retry-After but with the rate headers
            return 429, spent, {"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}
        return 200, spent, OWNERS  # success, but the window is now spent

    sleeps: list[float] = []
    with scripted_server(app) as server:
        conn = make(server)
        conn.client.policy = RetryPolicy(max_attempts=3, base_delay=0.001, sleep=sleeps.append,
                                         rng=random.Random(1))  # fmt: skip
        conn.list_owners()
    # the 429's wait is at least one slot (10 s / 100), then the spent window pauses once more
    assert sleeps == [pytest.approx(0.1), pytest.approx(0.1)]


def test_provision_takes_a_409_on_the_group_create_as_exists() -> None:
    """The group list said 'absent' but the create answers 409: another provision got there
    first, or our own create committed and its lost reply was replayed. Provisioning goes on."""
    posts: list[str] = []

    def app(method: str, path: str, query: dict, body: Any) -> tuple:  # type: ignore[type-arg]
        if path == "/crm/v3/properties/contacts/groups" and method == "GET":
            return 200, {}, {"results": []}
        if path == "/crm/v3/properties/contacts/groups":
            posts.append(body["name"])
            return 409, {}, {"status": "error", "category": "OBJECT_ALREADY_EXISTS",
                             "message": "A property group named 'leadsync' already exists."}
        if method == "GET":
            return 200, {}, {"results": [{"name": "lifecyclestage", "type": "enumeration"}]}
        posts.append(body["name"])
        return 201, {}, body

    with scripted_server(app) as server:
        done = make(server).provision()
    assert done[0] == "group leadsync: exists"
    assert posts.count("leadsync") == 2  # the contact group (answered 409), the company group
    # 11 contact properties, then the company group and its 5 properties (docs/accounts.md)
    assert sum(line.endswith(": created") for line in done) == len(posts) - 1 == 17
