"""Fault injection and the /__sandbox__ control API, over real sockets."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest
import requests
import urllib3
from click.testing import CliRunner
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from simple_salesforce import SalesforceGeneralError

from leadsync.cli import cli
from leadsync.sandbox import Faults, Sandbox
from tests.sandbox_support import hubspot_client, salesforce


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(contacts=60, seed=3) as box:
        yield box


def _control(sb: Sandbox, name: str, body: dict[str, object] | None = None) -> dict[str, object]:
    url = f"{sb.hubspot_url}/__sandbox__/{name}"
    response = (
        requests.post(url, json=body, timeout=5)
        if body is not None
        else requests.get(url, timeout=5)
    )
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def test_error_rate_serves_5xx_but_never_on_control_endpoints(sb: Sandbox) -> None:
    sb.set_faults(Faults(error_rate=1.0))
    with pytest.raises(ApiException) as exc:
        hubspot_client(sb).crm.contacts.basic_api.get_page(limit=1)
    assert exc.value.status == 503
    sb.set_faults(Faults())
    sf = salesforce(sb)
    sb.set_faults(Faults(error_rate=1.0))
    with pytest.raises(SalesforceGeneralError) as sf_exc:
        sf.query("SELECT Id FROM Lead")
    assert sf_exc.value.status == 500
    stats = _control(sb, "stats")  # control endpoints are never faulted
    assert stats["hubspot"]["errors_injected"] == 1  # type: ignore[index]
    assert stats["salesforce"]["errors_injected"] == 1  # type: ignore[index]


def test_drop_and_latency(sb: Sandbox) -> None:
    url = f"{sb.hubspot_url}/crm/v3/objects/contacts"
    headers = {"Authorization": f"Bearer {sb.hubspot_token}"}
    sb.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=headers, timeout=5)
    sb.set_faults(Faults(latency_ms=150))
    started = time.perf_counter()
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    assert time.perf_counter() - started >= 0.15


def test_record_failures_in_batches(sb: Sandbox) -> None:
    sb.set_faults(Faults(record_failure_rate=1.0))
    cid = next(iter(sb.data.hs_contacts))
    body = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id=cid, properties={"leadsync_score": "3"})]
    )
    result = hubspot_client(sb).crm.contacts.batch_api.update(body)
    assert result.num_errors == 1 and not result.results
    lead = next(iter(sb.data.sf["Lead"]))
    before = dict(sb.data.sf["Lead"][lead])
    records = [{"attributes": {"type": "Lead"}, "id": lead, "LeadSync_Score__c": 3}]
    out = salesforce(sb).restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert out[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert sb.data.sf["Lead"][lead] == before


def test_fault_seed_makes_a_faulty_run_reproducible(sb: Sandbox) -> None:
    def run() -> list[int]:
        sb.set_faults(Faults(error_rate=0.5, seed=42))
        statuses = []
        for _ in range(20):
            try:
                hubspot_client(sb).crm.contacts.basic_api.get_page(limit=1)
                statuses.append(200)
            except ApiException as exc:
                statuses.append(exc.status)
        return statuses

    first = run()
    assert first == run() and 200 in first and 503 in first


def _activity(sb: Sandbox) -> int:
    """Events in the v3 events, email events and form submission stores together."""
    data = sb.data
    forms = sum(len(rows) for rows in data.hs_form_submissions.values())
    return len(data.hs_events) + len(data.hs_email_events) + forms


def test_control_faults_clock_and_simulate(sb: Sandbox) -> None:
    assert _control(sb, "faults", {"latency_ms": 1, "error_rate": 0.25})["error_rate"] == 0.25
    assert sb.faults.faults == Faults(latency_ms=1, error_rate=0.25)
    bad = requests.post(f"{sb.hubspot_url}/__sandbox__/faults", json={"nope": 1}, timeout=5)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    before = sb.now()
    moved = _control(sb, "clock", {"advance_seconds": 3600})
    assert str(moved["now"]) >= (before.replace(microsecond=0)).isoformat()
    assert (sb.now() - before).total_seconds() >= 3600
    events_before = _activity(sb)
    summary = _control(sb, "simulate", {"hours": 48})
    assert (sb.now() - before).total_seconds() >= 3600 + 48 * 3600
    # every generated event lands in one API's store, except email/form activity of
    # contacts without an email (HubSpot records neither without an address)
    added = _activity(sb) - events_before
    generated = summary.get("events", 0) + summary.get("demo_requests", 0)
    assert 0 < added <= generated and added >= generated * 0.8
    reset = requests.delete(f"{sb.hubspot_url}/__sandbox__/stats", timeout=5).json()
    assert reset["hubspot"]["requests"] == {}


# ---- lost replies: the write is committed, the answer never arrives -------------------------

_TASK = {"properties": {"hs_task_subject": "[LeadSync] x", "hs_task_body": "leadsync-key: rd1",
                        "hs_timestamp": "2026-11-21T09:00:00.000Z"}, "associations": []}


def _hs_post(sb: Sandbox, path: str, body: object) -> requests.Response:
    return requests.post(f"{sb.hubspot_url}{path}", json=body, timeout=5,
                         headers={"Authorization": f"Bearer {sb.hubspot_token}"})  # fmt: skip


@pytest.mark.parametrize(("style", "cause"),
                         [("close", http.client.RemoteDisconnected),
                          ("reset", ConnectionResetError)])  # fmt: skip
def test_reply_drop_commits_the_create_then_closes_without_an_answer(
    sb: Sandbox, style: str, cause: type[Exception]
) -> None:
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates", reply_drop_max=1,
                         reply_drop_style=style))  # fmt: skip
    tasks = hubspot_client(sb).crm.objects.tasks.batch_api
    with pytest.raises(urllib3.exceptions.ProtocolError) as info:
        tasks.create({"inputs": [_TASK]})
    assert isinstance(info.value.args[1], cause)
    assert [p["hs_task_body"] for p in sb.data.hs_tasks.values()] == ["leadsync-key: rd1"]
    tasks.create({"inputs": [_TASK]})  # the cap of one is spent: answered
    stats = sb.stats()["hubspot"]
    assert stats["tasks_created"] == 2 and stats["duplicate_task_keys"] == 1
    assert stats["replies_dropped"] == {"POST /crm/v3/objects/tasks/batch/create": 1}
    assert stats["errors_injected"] == 1


def test_reply_drop_on_salesforce_collections_commits_then_drops(sb: Sandbox) -> None:
    sf = salesforce(sb)
    lead = next(iter(sb.data.sf["Lead"]))
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="writes", reply_drop_max=2))
    task = {"attributes": {"type": "Task"}, "Subject": "[LeadSync] y", "WhoId": lead,
            "Description": "leadsync-key: rd2"}  # fmt: skip
    before = len(sb.data.sf["Task"])
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.restful("composite/sobjects", method="POST",
                   json={"allOrNone": False, "records": [task]})  # fmt: skip
    assert len(sb.data.sf["Task"]) == before + 1
    patch = {"allOrNone": False,
             "records": [{"attributes": {"type": "Lead"}, "id": lead, "LeadSync_Score__c": 12}]}
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.restful("composite/sobjects", method="PATCH", json=patch)
    assert sb.data.sf["Lead"][lead]["LeadSync_Score__c"] == 12
    assert sb.stats()["salesforce"]["replies_dropped"] == {"POST /composite/sobjects": 1,
                                                           "PATCH /composite/sobjects": 1}


def test_reply_drop_targets_only_the_chosen_writes(sb: Sandbox) -> None:
    cid = next(iter(sb.data.hs_contacts))
    update = {"inputs": [{"id": cid, "properties": {"leadsync_score": "5"}}]}
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="updates"))
    created = _hs_post(sb, "/crm/v3/objects/tasks/batch/create", {"inputs": [_TASK]})
    assert created.status_code == 201
    assert _hs_post(sb, "/crm/v3/objects/contacts/search", {"limit": 1}).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        _hs_post(sb, "/crm/v3/objects/contacts/batch/update", update)
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates"))
    assert _hs_post(sb, "/crm/v3/objects/contacts/batch/update", update).status_code == 200
    # a write that fails (400) committed nothing: its answer is not lost
    bad = _hs_post(sb, "/crm/v3/objects/tasks/batch/create", {"nope": 1})
    assert bad.status_code == 400
    assert sb.stats()["hubspot"]["replies_dropped"] == {
        "POST /crm/v3/objects/contacts/batch/update": 1}  # fmt: skip


def test_reply_drop_is_selectable_from_the_cli_form_and_the_control_endpoint(sb: Sandbox) -> None:
    spec = "reply_drop_rate=0.5,reply_drop_on=creates,reply_drop_max=3,reply_drop_style=reset"
    assert Faults.parse(spec) == Faults(reply_drop_rate=0.5, reply_drop_on="creates",
                                        reply_drop_max=3, reply_drop_style="reset")  # fmt: skip
    for bad, named in (("reply_drop_on=deletes", "reply_drop_on"),
                       ("reply_drop_style=hang", "reply_drop_style"),
                       ("reply_drop_rate=2", "reply_drop_rate"),
                       ("reply_drop_max=-1", "reply_drop_max")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            Faults.parse(bad)
    body = {"reply_drop_rate": 1, "reply_drop_on": "updates", "reply_drop_max": 1}
    assert _control(sb, "faults", body)["reply_drop_on"] == "updates"
    assert sb.faults.faults == Faults(reply_drop_rate=1.0, reply_drop_on="updates",
                                      reply_drop_max=1)  # fmt: skip
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--faults", "reply_drop_on=deletes"])
    assert result.exit_code == 2 and "reply_drop_on" in result.output
