"""Contract tests: the HubSpot side of the sandbox, driven only through hubspot-api-client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.objects.tasks import ApiException as TaskApiException
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks import PublicObjectSearchRequest as TaskSearchRequest
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from leadsync.sandbox import Faults, Sandbox
from tests.sandbox_support import hubspot_client


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(contacts=400, seed=11, hubspot_rate_limit=1000) as box:
        yield box


def _first_ids(sb: Sandbox, n: int) -> list[str]:
    return sorted(sb.data.hs_contacts, key=int)[:n]


def test_list_pages_to_the_end(sb: Sandbox) -> None:
    api = hubspot_client(sb).crm.contacts.basic_api
    seen: list[str] = []
    after = None
    while True:
        page = api.get_page(limit=100, after=after, properties=["email", "lifecyclestage"])
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == len(set(seen)) == len(sb.data.hs_contacts)
    assert set(page.results[0].properties) == {"email", "lifecyclestage"}


def test_batch_read_returns_requested_properties_and_207_for_missing(sb: Sandbox) -> None:
    ids = _first_ids(sb, 3)
    body = BatchReadInputSimplePublicObjectId(
        properties=["email", "jobtitle"],
        properties_with_history=[],
        inputs=[SimplePublicObjectId(id=i) for i in [*ids, "999999999"]],
    )
    result = hubspot_client(sb).crm.contacts.batch_api.read(body)
    assert sorted(r.id for r in result.results) == sorted(ids)
    assert result.num_errors == 1
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context["ids"] == ["999999999"]


def test_batch_update_207_applies_good_records_and_reports_bad(sb: Sandbox) -> None:
    good, bad = _first_ids(sb, 2)
    before = sb.data.hs_contacts[good]["lastmodifieddate"]
    sb.advance(5)
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id=good, properties={"leadsync_score": "42"}),
            SimplePublicObjectBatchInput(id=bad, properties={"no_such_property": "x"}),
        ]
    )
    result = hubspot_client(sb).crm.contacts.batch_api.update(body)
    assert [r.id for r in result.results] == [good]
    assert result.results[0].properties["leadsync_score"] == "42"
    assert result.num_errors == 1 and result.errors[0].context["ids"] == [bad]
    assert "PROPERTY_DOESNT_EXIST" in result.errors[0].message
    assert sb.data.hs_contacts[good]["lastmodifieddate"] > before
    assert "no_such_property" not in sb.data.hs_contacts[bad]


def test_lifecycle_stage_moves_forward_only_unless_cleared(sb: Sandbox) -> None:
    api = hubspot_client(sb).crm.contacts.basic_api
    cid = _first_ids(sb, 3)[2]
    api.update(cid, SimplePublicObjectInput(properties={"lifecyclestage": "salesqualifiedlead"}))
    with pytest.raises(ApiException) as refused:
        api.update(cid, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["category"] == "VALIDATION_ERROR"
    api.update(cid, SimplePublicObjectInput(properties={"lifecyclestage": ""}))
    api.update(cid, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert sb.data.hs_contacts[cid]["lifecyclestage"] == "lead"


def test_search_gte_lastmodifieddate_sorted_and_capped(sb: Sandbox) -> None:
    search = hubspot_client(sb).crm.contacts.search_api
    since = sb.now() - timedelta(days=20)
    since_ms = str(int(since.timestamp() * 1000))
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": since_ms}
                ]
            }
        ],
        sorts=[json.dumps({"propertyName": "lastmodifieddate", "direction": "ASCENDING"})],
        properties=["lastmodifieddate"],
        limit=200,
    )
    result = search.do_search(request)
    stamps = [r.properties["lastmodifieddate"] for r in result.results]
    expected = [
        p for p in sb.data.hs_contacts.values() if p["lastmodifieddate"] >= since.isoformat()[:19]
    ]
    assert result.total == len(expected) > 0
    assert stamps == sorted(stamps)
    for bad in (
        PublicObjectSearchRequest(limit=201),
        PublicObjectSearchRequest(limit=200, after="9900"),
    ):
        with pytest.raises(ApiException) as exc:
            search.do_search(bad)
        assert exc.value.status == 400
        assert json.loads(exc.value.body)["category"] == "VALIDATION_ERROR"


def test_tasks_with_contact_association_search_and_duplicate_keys(sb: Sandbox) -> None:
    client = hubspot_client(sb)
    cid = _first_ids(sb, 4)[3]
    sb.reset_stats()

    def task(key: str, cls: type = SimplePublicObjectInputForCreate) -> Any:
        return cls(
            properties={
                "hs_timestamp": "2026-11-21T09:00:00Z",
                "hs_task_subject": "[LeadSync] follow up",
                "hs_task_body": f"call them\nleadsync-key: {key}",
                "hs_task_priority": "HIGH",
            },
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=cid), types=[AssociationSpec("HUBSPOT_DEFINED", 204)]
                )
            ],
        )

    created = client.crm.objects.tasks.basic_api.create(task("k-1"))
    batch = client.crm.objects.tasks.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[task(k, SimplePublicObjectBatchInputForCreate) for k in ("k-2", "k-1")]
        )
    )
    assert len(batch.results) == 2 and created.id
    assert sb.data.hs_task_contacts[created.id] == [cid]
    found = client.crm.objects.tasks.search_api.do_search(
        TaskSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "associations.contact", "operator": "EQ", "value": cid},
                        {
                            "propertyName": "hs_task_body",
                            "operator": "CONTAINS_TOKEN",
                            "value": "k-1",
                        },
                    ]
                }
            ],
            properties=["hs_task_body"],
            limit=10,
        )
    )
    assert found.total == 2
    stats = sb.stats()["hubspot"]
    assert stats["tasks_created"] == 3 and stats["duplicate_task_keys"] == 1
    bad = task("k-3")
    bad.associations[0].types = [AssociationSpec("HUBSPOT_DEFINED", 1)]
    with pytest.raises(TaskApiException) as exc:
        client.crm.objects.tasks.basic_api.create(bad)
    assert exc.value.status == 400


def test_events_page_ascending_after_occurred_after(sb: Sandbox) -> None:
    api = hubspot_client(sb).events.events_api
    since = sb.now() - timedelta(days=30)
    got, after = [], None
    while True:
        page = api.get_page(
            object_type="contact",
            event_type="e_visited_page",
            occurred_after=since,
            after=after,
            limit=100,
        )
        got.extend(page.results)
        if not page.paging or not page.paging.next:
            break
        after = page.paging.next.after
    since_ms = since.timestamp() * 1000
    expected = [e for e in sb.data.hs_events if e[3] == "e_visited_page" and e[0] > since_ms]
    assert len(got) == len(expected) > 100
    times = [e.occurred_at for e in got]
    assert times == sorted(times) and times[0] > since
    assert all("hs_url" in e.properties for e in got)


def test_owners_by_email_and_auth_failure(sb: Sandbox) -> None:
    owner = next(iter(sb.data.hs_owners.values()))
    page = hubspot_client(sb).crm.owners.owners_api.get_page(email=owner["email"])
    assert [o.id for o in page.results] == [owner["id"]]
    with pytest.raises(ApiException) as exc:
        hubspot_client(sb, token="wrong").crm.contacts.basic_api.get_page(limit=1)
    assert exc.value.status == 401
    assert json.loads(exc.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_provisioning_properties_when_not_provisioned() -> None:
    with Sandbox(contacts=5, seed=1, provision_hubspot=False) as box:
        client = hubspot_client(box)
        cid = next(iter(box.data.hs_contacts))
        with pytest.raises(ApiException):
            client.crm.contacts.basic_api.update(
                cid, SimplePublicObjectInput(properties={"leadsync_score": "1"})
            )
        props = client.crm.properties
        props.groups_api.create("contacts", PropertyGroupCreate(name="leadsync", label="LeadSync"))
        created = props.core_api.create(
            "contacts",
            PropertyCreate(
                name="leadsync_score",
                label="Score",
                type="number",
                field_type="number",
                group_name="leadsync",
            ),
        )
        assert created.name == "leadsync_score"
        with pytest.raises(PropertiesApiException) as exc:
            props.core_api.create(
                "contacts",
                PropertyCreate(
                    name="leadsync_score",
                    label="Score",
                    type="number",
                    field_type="number",
                    group_name="leadsync",
                ),
            )
        assert exc.value.status == 409
        client.crm.contacts.basic_api.update(
            cid, SimplePublicObjectInput(properties={"leadsync_score": "7"})
        )
        assert box.data.hs_contacts[cid]["leadsync_score"] == "7"


def test_rate_limit_headers_429_body_and_bursts() -> None:
    with Sandbox(contacts=5, seed=1, hubspot_rate_limit=3) as box:
        api = hubspot_client(box).crm.contacts.basic_api
        remaining = []
        for _ in range(3):
            _, status, headers = api.get_page_with_http_info(limit=1)
            assert status == 200 and headers["X-HubSpot-RateLimit-Max"] == "3"
            assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        with pytest.raises(ApiException) as exc:
            api.get_page(limit=1)
        body = json.loads(exc.value.body)
        assert exc.value.status == 429
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert box.stats()["hubspot"]["rate_limited"] == 1
    with Sandbox(contacts=5, seed=1, faults=Faults(burst_429=2)) as box:
        api = hubspot_client(box).crm.contacts.basic_api
        statuses = []
        for _ in range(3):
            try:
                api.get_page(limit=1)
                statuses.append(200)
            except ApiException as err:
                statuses.append(err.status)
        assert statuses == [429, 429, 200]
        box.set_faults(Faults(daily_429=True))
        with pytest.raises(ApiException) as exc:
            api.get_page(limit=1)
        assert json.loads(exc.value.body)["policyName"] == "DAILY"
