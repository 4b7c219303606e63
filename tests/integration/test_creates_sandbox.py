"""Creates whose reply is lost after the CRM committed them (issue 9, item 2), against the
sandbox over real sockets with the real SDKs (urllib3 under hubspot-api-client, requests under
simple-salesforce): every owed task exists exactly once, the result says exactly what the CRM
holds, and updates (idempotent) are simply retried."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.connectors.base import FieldUpdate, FollowUpTask, RecordRef, TaskResult
from leadsync.connectors.http import RetryPolicy
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.pipeline import run_job
from leadsync.report import CycleReport
from leadsync.runtime import build_runtime
from leadsync.sandbox import Faults, Sandbox
from leadsync.sandbox.store import task_key
from leadsync.state import InMemoryStateStore

HS_CREATE = "POST /crm/v3/objects/tasks/batch/create"
HS_ASSOC = "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"
HS_TASK_READ = "POST /crm/v3/objects/tasks/batch/read"
HS_SEARCH = "POST /crm/v3/objects/tasks/search"
HS_UPDATE = "POST /crm/v3/objects/contacts/batch/update"
SF_CREATE = "POST /composite/sobjects"
SF_UPDATE = "PATCH /composite/sobjects"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(contacts=40, seed=5) as box:
        for key, value in box.env.items():
            monkeypatch.setenv(key, value)
        yield box


def _hubspot() -> HubSpotConnector:
    return HubSpotConnector(load_settings().hubspot, policy=FAST)


def _salesforce() -> SalesforceConnector:
    conn = SalesforceConnector(load_settings().salesforce, policy=FAST)
    conn.list_owners()  # log in before any fault is set
    return conn


def _tasks(sb: Sandbox, system: str, n: int) -> list[FollowUpTask]:
    """`n` follow-ups spread over the system's people (several per person when n is larger)."""
    if system == "hubspot":
        refs = [RecordRef("hubspot", "contact", c) for c in sorted(sb.data.hs_contacts)]
    else:
        refs = [RecordRef("salesforce", "Lead", i) for i in sorted(sb.data.sf["Lead"])]
    return [FollowUpTask(key=f"lost-reply:{system}:{i}", person=refs[i % len(refs)],
                         owner_id=None, subject="[LeadSync] MQL follow-up",
                         body="Call within the SLA", due=sb.now() + timedelta(hours=4),
                         priority="normal") for i in range(n)]  # fmt: skip


def _held(sb: Sandbox, system: str) -> Counter[str]:
    """How many tasks the sandbox holds per leadsync key."""
    if system == "hubspot":
        bodies = [p.get("hs_task_body") for p in sb.data.hs_tasks.values()]
    else:
        bodies = [r.get("Description") for r in sb.data.sf["Task"].values()]
    return Counter(k for k in map(task_key, bodies) if k)


def _held_ids(sb: Sandbox, system: str) -> dict[str, str]:
    if system == "hubspot":
        items = [(t, p.get("hs_task_body")) for t, p in sb.data.hs_tasks.items()]
    else:
        items = [(t, r.get("Description")) for t, r in sb.data.sf["Task"].items()]
    return {k: t for t, body in items if (k := task_key(body))}


def _requests(sb: Sandbox, system: str) -> dict[str, int]:
    return dict(sb.stats()[system]["requests"])


def _assert_truthful(sb: Sandbox, system: str, tasks: list[FollowUpTask],
                     result: TaskResult) -> None:  # fmt: skip
    """Every key exactly once in the CRM, and the result says exactly that, with the ids."""
    keys = {t.key for t in tasks}
    held = _held(sb, system)
    assert {k: held[k] for k in keys} == dict.fromkeys(keys, 1)
    assert result.failed == {}
    assert result.created == {k: _held_ids(sb, system)[k] for k in keys}


@pytest.mark.parametrize("style", ["close", "reset"])
def test_hubspot_reply_lost_after_every_create_creates_each_task_once(
    sb: Sandbox, style: str
) -> None:
    conn = _hubspot()
    tasks = _tasks(sb, "hubspot", 6)
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates", reply_drop_style=style))
    sb.reset_stats()
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "hubspot", tasks, result)
    # one create (never replayed), one association read, one task batch read; no search
    assert _requests(sb, "hubspot") == {HS_CREATE: 1, HS_ASSOC: 1, HS_TASK_READ: 1}
    assert sb.stats()["hubspot"]["replies_dropped"] == {HS_CREATE: 1}
    assert conn.api_calls() == 3


@pytest.mark.parametrize("style", ["close", "reset"])
def test_salesforce_reply_lost_after_every_create_creates_each_task_once(
    sb: Sandbox, style: str
) -> None:
    conn = _salesforce()
    tasks = _tasks(sb, "salesforce", 17)
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates", reply_drop_style=style))
    sb.reset_stats()
    before = conn.api_calls()
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "salesforce", tasks, result)
    assert _requests(sb, "salesforce") == {SF_CREATE: 1, "GET /query": 1}
    assert sb.stats()["salesforce"]["replies_dropped"] == {SF_CREATE: 1}
    assert conn.api_calls() - before == 2


def test_hubspot_reply_lost_on_one_of_two_batches(sb: Sandbox) -> None:
    conn = _hubspot()
    tasks = _tasks(sb, "hubspot", 150)  # batches of 100 and 50
    assert not sb.data.hs_tasks  # the seed has no HubSpot tasks: read-back sizes are exact
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates", reply_drop_max=1))
    sb.reset_stats()
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "hubspot", tasks, result)
    # the first batch's reply is lost: its 33 contacts' associations in one call, their 100
    # tasks in one batch read; the second batch is answered
    assert _requests(sb, "hubspot") == {HS_CREATE: 2, HS_ASSOC: 1, HS_TASK_READ: 1}


def test_salesforce_reply_lost_on_some_collections(sb: Sandbox) -> None:
    conn = _salesforce()
    tasks = _tasks(sb, "salesforce", 1000)  # five collections of 200
    sb.set_faults(Faults(reply_drop_rate=0.5, reply_drop_on="creates", seed=3))
    sb.reset_stats()
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "salesforce", tasks, result)
    dropped = sb.stats()["salesforce"]["replies_dropped"][SF_CREATE]
    rng = random.Random(3)  # the sandbox's fault RNG draws once per committed create
    assert dropped == sum(rng.random() < 0.5 for _ in range(5)) == 2
    # each lost reply costs one read-back query; nothing is sent twice
    assert _requests(sb, "salesforce") == {SF_CREATE: 5, "GET /query": dropped}


def test_hubspot_read_back_does_not_trust_the_lagging_search_index(sb: Sandbox) -> None:
    """Search shows a new task only after a lag; settling a lost reply by search would send
    the batch again. The read-back uses associations and reads by id, which do not lag."""
    conn = _hubspot()
    tasks = _tasks(sb, "hubspot", 6)
    sb.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates", search_lag_ms=60_000))
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "hubspot", tasks, result)
    refs = [t.person for t in tasks]
    assert conn.find_task_keys(refs) == set()  # the index has not caught up yet
    sb.advance(61)
    assert conn.find_task_keys(refs) == {t.key for t in tasks}


def test_rate_limited_create_is_retried_without_a_read_back(sb: Sandbox) -> None:
    """A 429 that says "rate limited" provably did nothing: retried as before."""
    conn = _hubspot()
    tasks = _tasks(sb, "hubspot", 6)
    sb.set_faults(Faults(burst_429=2))
    sb.reset_stats()
    result = conn.create_tasks(tasks)
    _assert_truthful(sb, "hubspot", tasks, result)
    assert _requests(sb, "hubspot") == {HS_CREATE: 3}
    assert sb.stats()["hubspot"]["rate_limited"] == 2


def test_lost_update_replies_are_retried_and_the_values_land(sb: Sandbox) -> None:
    hs, sf = _hubspot(), _salesforce()
    hs_people = hs.read_people([RecordRef("hubspot", "contact", c)
                                for c in sorted(sb.data.hs_contacts)])  # fmt: skip
    sf_people = sf.read_people([RecordRef("salesforce", "Lead", i)
                                for i in sorted(sb.data.sf["Lead"])])  # fmt: skip
    lost_one = Faults(reply_drop_rate=1.0, reply_drop_on="updates", reply_drop_max=1)
    sb.set_faults(lost_one)
    sb.reset_stats()
    hs_result = hs.write_updates([FieldUpdate(p.ref, {"score": 40 + i}, p.current)
                                  for i, p in enumerate(hs_people)])  # fmt: skip
    sb.set_faults(lost_one)
    sf_result = sf.write_updates([FieldUpdate(p.ref, {"score": 40 + i}, p.current)
                                  for i, p in enumerate(sf_people)])  # fmt: skip
    assert sorted(hs_result.written) == sorted(p.ref for p in hs_people)
    assert sorted(sf_result.written) == sorted(p.ref for p in sf_people)
    assert not hs_result.failed and not sf_result.failed
    # one lost reply each, one replay each (an update is idempotent)
    assert _requests(sb, "hubspot") == {HS_UPDATE: 2}
    assert _requests(sb, "salesforce") == {SF_UPDATE: 2}
    assert sb.stats()["hubspot"]["replies_dropped"] == {HS_UPDATE: 1}
    assert sb.stats()["salesforce"]["replies_dropped"] == {SF_UPDATE: 1}
    assert [sb.data.hs_contacts[p.ref.id]["leadsync_score"] for p in hs_people] == [
        str(40 + i) for i in range(len(hs_people))]  # fmt: skip
    assert [sb.data.sf[p.ref.object_type][p.ref.id]["LeadSync_Score__c"] for p in sf_people] == [
        40 + i for i in range(len(sf_people))]  # fmt: skip


def _leading_hits(seed: int, rate: float) -> int:
    """How many requests in a row the seeded fault RNG fails at `rate` (as the sandbox does)."""
    rng = random.Random(seed)
    hits = 0
    while rng.random() < rate:
        hits += 1
    return hits


def test_pre_send_faults_still_retry_reads_and_updates(sb: Sandbox) -> None:
    """429 bursts, 5xx and dropped connections BEFORE processing: reads and updates are
    retried exactly as many times as the faults fire."""
    hs, sf = _hubspot(), _salesforce()
    refs = [RecordRef("hubspot", "contact", c) for c in sorted(sb.data.hs_contacts)]
    hs.list_owners()
    sb.set_faults(Faults(burst_429=3))
    sb.reset_stats()
    assert len(hs.read_people(refs)) == len(refs)
    assert _requests(sb, "hubspot") == {"POST /crm/v3/objects/contacts/batch/read": 4}
    leads = [RecordRef("salesforce", "Lead", i) for i in sorted(sb.data.sf["Lead"])]
    people = sf.read_people(leads)
    seed = 7
    fails = _leading_hits(seed, 0.5)
    assert fails == 2  # the seeded RNG fails the first two requests, then lets one through
    sb.set_faults(Faults(error_rate=0.5, seed=seed))  # 500 before processing
    sb.reset_stats()
    assert sf.find_task_keys(leads) == set()  # one query (a read)
    assert _requests(sb, "salesforce") == {"GET /query": fails + 1}
    sb.set_faults(Faults(error_rate=0.5, seed=seed))
    sb.reset_stats()
    result = sf.write_updates([FieldUpdate(p.ref, {"score": 7}, p.current) for p in people])
    assert len(result.written) == len(people) and not result.failed
    assert _requests(sb, "salesforce") == {SF_UPDATE: fails + 1}
    sb.set_faults(Faults(drop_rate=0.5, seed=seed))  # connection closed before processing
    sb.reset_stats()
    result = sf.write_updates([FieldUpdate(p.ref, {"score": 8}, {**p.current, "score": 7})
                               for p in people])  # fmt: skip
    assert len(result.written) == len(people) and not result.failed
    assert _requests(sb, "salesforce") == {SF_UPDATE: fails + 1}
    assert {sb.data.sf[p.ref.object_type][p.ref.id]["LeadSync_Score__c"] for p in people} == {8}
    assert sb.stats()["salesforce"]["errors_injected"] == fails


# ---- whole cycles ------------------------------------------------------------------------------


def _cycles(faults: Faults) -> tuple[list[CycleReport], dict[str, Counter[str]], dict[str, Any]]:
    """A full cycle, 30 simulated hours, an incremental cycle (both under `faults`), then a
    clean incremental; the reports, the keys each CRM holds, and the sandbox stats."""
    with Sandbox(contacts=400, seed=11, faults=faults) as box, \
            environ({**box.env, "LEADSYNC_REDIS_URL": ""}):  # fmt: skip
        settings = load_settings().model_copy(update={"redis_url": None})
        runtime = build_runtime(settings, state=InMemoryStateStore(), clock=box.now)
        # the people's tasks, call by call: the account phase's MQA tasks (keyed by the
        # episode's start, a different one in each run) are left out (docs/accounts.md)
        runtime = replace(runtime, model=replace(runtime.model, accounts=None))
        reports = [run_job(runtime, "full")]
        box.simulate(hours=30)
        reports.append(run_job(runtime, "incremental"))
        box.set_faults(Faults())
        box.advance(60)
        reports.append(run_job(runtime, "incremental"))
        held = {s: _held(box, s) for s in ("hubspot", "salesforce")}
        return reports, held, box.stats()


@pytest.mark.parametrize(
    "faults",
    [Faults(reply_drop_rate=1.0, reply_drop_on="creates"),
     Faults(reply_drop_rate=0.5, reply_drop_on="writes", seed=3)],
    ids=["every-create", "some-writes"],
)  # fmt: skip
def test_cycles_with_lost_replies_create_every_owed_task_exactly_once(faults: Faults) -> None:
    baseline, owed, _ = _cycles(Faults())
    reports, held, stats = _cycles(faults)
    assert sum(owed["hubspot"].values()) > 0 and sum(owed["salesforce"].values()) > 0
    for system in ("hubspot", "salesforce"):
        # the same tasks as a run without faults, each exactly once
        assert held[system] == owed[system]
        assert set(held[system].values()) == {1}
        assert stats[system]["duplicate_task_keys"] == 0
        # the reports say exactly what the CRMs hold; nothing failed, nothing left over
        assert sum(r.tasks_created[system] for r in reports) == sum(held[system].values())
        assert [r.tasks_created[system] for r in reports] == [
            r.tasks_created[system] for r in baseline]  # fmt: skip
        assert reports[2].tasks_created[system] == 0
    assert all(r.task_failures == [] for r in reports)
    for system, create in (("hubspot", HS_CREATE), ("salesforce", SF_CREATE)):
        sends = stats[system]["requests"][create]
        # one send per cycle that owed tasks (each under 100): no create was sent twice
        assert sends == sum(1 for r in reports if r.tasks_created[system])
        lost = stats[system]["replies_dropped"]
        if faults.reply_drop_on == "creates":
            assert lost == {create: sends}
        else:  # seeded: some creates and some updates of both CRMs lost their reply
            assert lost.get(create, 0) <= sends and sum(lost.values()) >= 2
