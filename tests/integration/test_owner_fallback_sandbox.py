"""Owner faults: the sandbox refuses follow-up tasks for a deactivated owner as the CRMs do
(Salesforce INACTIVE_OWNER_OR_USER / INVALID_CROSS_REFERENCE_KEY, HubSpot INVALID_OWNER_ID);
leadsync gives them to LEADSYNC_SLA__FALLBACK_OWNER, or reports them and, once a fallback owner
is configured, the next run creates exactly those."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import SlaSettings, load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.state import InMemoryStateStore

PEOPLE = 400
SEED = 11


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=PEOPLE, seed=SEED) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def runtime_for(sb: Sandbox, state: InMemoryStateStore, fallback: str | None = None) -> Runtime:
    settings = load_settings().model_copy(update={"redis_url": None,
                                                  "sla": SlaSettings(fallback_owner=fallback)})
    rt = build_runtime(settings, state=state, clock=sb.now)
    # the people's calls, counted exactly: the account phase (docs/accounts.md) left out
    return replace(rt, model=replace(rt.model, accounts=None))


def leadsync_tasks_by_owner(sb: Sandbox) -> Counter[tuple[str, str]]:
    with sb.data.lock:
        sf = [t.get("OwnerId") for t in sb.data.sf["Task"].values()
              if str(t.get("Subject", "")).startswith("[LeadSync]")]
        hs = [t.get("hubspot_owner_id") for t in sb.data.hs_tasks.values()
              if str(t.get("hs_task_subject", "")).startswith("[LeadSync]")]
    return Counter([("salesforce", str(o)) for o in sf] + [("hubspot", str(o)) for o in hs])


@pytest.fixture(scope="module")
def busiest_owners() -> tuple[str, str, str]:
    """From a twin sandbox (same seed): the Salesforce user and the HubSpot owner who get the
    most follow-up tasks, and the manager's email (an owner in both CRMs)."""
    with Sandbox(contacts=PEOPLE, seed=SEED) as twin, environ({**twin.env,
                                                              "LEADSYNC_REDIS_URL": ""}):
        run_job(runtime_for(twin, InMemoryStateStore()), "full")
        tasks = leadsync_tasks_by_owner(twin)
        with twin.data.lock:
            manager = next(u["Email"] for u in twin.data.sf["User"].values()
                           if ".manager" in u["Email"])
    sf = next(o for (system, o), _ in tasks.most_common() if system == "salesforce")
    hs = next(o for (system, o), _ in tasks.most_common() if system == "hubspot")
    return sf, hs, manager


def deactivate(sb: Sandbox, sf_user: str, hs_owner: str) -> None:
    """What an admin does when a rep leaves: deactivate the user, archive the owner."""
    with sb.data.lock:
        sb.data.sf["User"][sf_user]["IsActive"] = False
        sb.data.hs_owners[hs_owner]["archived"] = True


def refused_for(failures: list[dict[str, Any]], owner: str) -> int:
    return sum(1 for f in failures if owner in f["reason"])


def test_refused_owner_without_fallback_is_reported_then_reassigned_once_configured(
    sandbox: Sandbox, busiest_owners: tuple[str, str, str]
) -> None:
    sf_user, hs_owner, manager = busiest_owners
    deactivate(sandbox, sf_user, hs_owner)
    state = InMemoryStateStore()
    first = run_job(runtime_for(sandbox, state), "full")
    failures = first.task_failures
    on_sf, on_hs = refused_for(failures, f"[{sf_user}]"), refused_for(failures, hs_owner)
    assert on_sf > 0 and on_hs > 0  # both CRMs refused tasks for the departed rep
    assert on_sf + on_hs == len(failures)  # nothing else failed
    assert all("no fallback owner is configured" in f["reason"] for f in failures)
    assert sum("INACTIVE_OWNER_OR_USER" in f["reason"] for f in failures) == on_sf
    assert sum("INVALID_OWNER_ID" in f["reason"] for f in failures) == on_hs
    before = leadsync_tasks_by_owner(sandbox)
    assert before[("salesforce", sf_user)] == before[("hubspot", hs_owner)] == 0
    assert sum(before.values()) == sum(first.tasks_created.values())

    sandbox.advance(60)
    second = run_job(runtime_for(sandbox, state, fallback=manager), "full")
    assert second.task_failures == []
    assert second.tasks_created == {"salesforce": on_sf, "hubspot": on_hs}
    after = leadsync_tasks_by_owner(sandbox)
    new = after - before
    with sandbox.data.lock:
        manager_ids = {("salesforce", u["Id"]) for u in sandbox.data.sf["User"].values()
                       if u["Email"] == manager} | {
            ("hubspot", o["id"]) for o in sandbox.data.hs_owners.values()
            if o.get("email") == manager}  # fmt: skip
    assert set(new) <= manager_ids and sum(new.values()) == on_sf + on_hs
    stats = sandbox.stats()
    assert [stats[s]["duplicate_task_keys"] for s in ("salesforce", "hubspot")] == [0, 0]


def test_refused_owner_goes_to_the_fallback_owner_in_the_same_run(
    sandbox: Sandbox, busiest_owners: tuple[str, str, str]
) -> None:
    sf_user, hs_owner, manager = busiest_owners
    deactivate(sandbox, sf_user, hs_owner)
    report = run_job(runtime_for(sandbox, InMemoryStateStore(), fallback=manager), "full")
    assert report.task_failures == []
    tasks = leadsync_tasks_by_owner(sandbox)
    assert tasks[("salesforce", sf_user)] == tasks[("hubspot", hs_owner)] == 0
    assert sum(tasks.values()) == sum(report.tasks_created.values())
    stats = sandbox.stats()
    # the refused tasks are resent together: exactly one more create call per CRM
    assert stats["salesforce"]["requests"]["POST /composite/sobjects"] == 2
    assert stats["hubspot"]["requests"]["POST /crm/v3/objects/tasks/batch/create"] == 2
    assert [stats[s]["duplicate_task_keys"] for s in ("salesforce", "hubspot")] == [0, 0]
