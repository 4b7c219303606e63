"""The account phase of the sync cycle against the sandbox, through the real SDKs
(docs/accounts.md): people at one account engage -> after a sync the account is an MQA in both
CRMs with exactly one task; a second cycle writes and creates nothing; a wiped state store
creates no second task."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.state import InMemoryStateStore

PEOPLE = 150
MQA_PREFIX = "[LeadSync] MQA: "


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=PEOPLE, seed=11) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def runtime_for(sb: Sandbox, state: InMemoryStateStore) -> Runtime:
    settings = load_settings().model_copy(update={"redis_url": None})
    return build_runtime(settings, state=state, clock=sb.now)


def mqa_tasks(sb: Sandbox) -> list[str]:
    """The subjects of every MQA task in both CRMs."""
    data: Any = sb.data
    subjects = [str(t.get("Subject")) for t in data.sf.get("Task", {}).values()]
    subjects += [str(t.get("hs_task_subject")) for t in data.hs_tasks.values()]
    return sorted(s for s in subjects if s.startswith(MQA_PREFIX))


def mqa_accounts(sb: Sandbox) -> tuple[list[str], list[str]]:
    """(Salesforce Account ids, HubSpot company ids) whose MQA-at field is set."""
    data: Any = sb.data
    sf = sorted(i for i, a in data.sf["Account"].items() if a.get("LeadSync_MQA_At__c"))
    hs = sorted(i for i, c in data.hs_companies.items()
                if (c.get("properties", c)).get("leadsync_mqa_at"))
    return sf, hs


def test_an_engaged_account_becomes_one_mqa_with_one_task(sandbox: Sandbox) -> None:
    data: Any = sandbox.data
    n_accounts, n_companies = len(data.sf["Account"]), len(data.hs_companies)
    state = InMemoryStateStore()
    first = run_job(runtime_for(sandbox, state), "full")
    assert first.stopped_reason is None and not first.failed
    # seed 11: one account has four engaged people with a director among them (score 80)
    assert first.accounts_mqa == 1
    assert dict(first.mqa_tasks_created) == {"salesforce": 1}
    assert first.mqa_tasks_existing == 0
    tasks = mqa_tasks(sandbox)
    assert len(tasks) == 1 and "people engaged: " in tasks[0]
    # every Account and company is written once (all were blank), the MQA one in both CRMs
    assert dict(first.account_records_written) == {"salesforce": n_accounts,
                                                   "hubspot": n_companies}
    sf_mqa, hs_mqa = mqa_accounts(sandbox)
    assert len(sf_mqa) == 1 and len(hs_mqa) == 1
    account = data.sf["Account"][sf_mqa[0]]
    assert account["LeadSync_Account_Score__c"] >= 60
    assert account["LeadSync_Engaged_People__c"] >= 3
    assert tasks[0].startswith(MQA_PREFIX + str(account["Name"]) + " — ")

    sandbox.advance(60)
    second = run_job(runtime_for(sandbox, state), "incremental")
    assert dict(second.account_records_written) == {}
    assert dict(second.mqa_tasks_created) == {}
    again = run_job(runtime_for(sandbox, state), "full")  # every account again: nothing changed
    assert again.accounts_evaluated == first.accounts_evaluated
    assert again.accounts_mqa == 1
    assert dict(again.account_records_written) == {}
    assert dict(again.mqa_tasks_created) == {} and again.mqa_tasks_existing == 1
    assert len(mqa_tasks(sandbox)) == 1

    wiped = InMemoryStateStore()  # a wiped Redis: the key is found on the member records
    cold = run_job(runtime_for(sandbox, wiped), "full")
    assert cold.accounts_mqa == 1
    assert dict(cold.mqa_tasks_created) == {} and cold.mqa_tasks_existing == 1
    assert dict(cold.account_records_written) == {}
    assert mqa_tasks(sandbox) == tasks
    assert mqa_accounts(sandbox) == (sf_mqa, hs_mqa)


def test_a_lost_mqa_create_reply_and_a_wiped_ledger_leave_exactly_one_task(
        sandbox: Sandbox) -> None:
    """The CRM saves the MQA task but its reply is lost; then the state store is wiped: the
    task key (account key + the episode start read back from the CRM) is the same, the next
    cycle finds the task on the member records and creates no second one."""
    from leadsync.sandbox.faults import Faults

    data: Any = sandbox.data
    sandbox.set_faults(Faults(reply_drop_rate=1.0, reply_drop_on="creates"))
    first = run_job(runtime_for(sandbox, InMemoryStateStore()), "full")
    dropped = sandbox.stats()["salesforce"]["replies_dropped"]
    assert dropped == {"POST /composite/sobjects": sandbox.stats()["salesforce"]["requests"][
        "POST /composite/sobjects"]}  # every create's reply was lost, the MQA task's too
    assert first.accounts_mqa == 1 and first.task_failures == []
    assert dict(first.mqa_tasks_created) == {"salesforce": 1}  # confirmed by reading back
    [task] = [t for t in data.sf["Task"].values()
              if str(t.get("Subject")).startswith(MQA_PREFIX)]
    key = next(line for line in str(task["Description"]).splitlines()
               if line.startswith("leadsync-key:"))

    sandbox.set_faults(Faults())
    sandbox.advance(60)
    wiped = run_job(runtime_for(sandbox, InMemoryStateStore()), "full")
    assert wiped.accounts_mqa == 1
    assert dict(wiped.mqa_tasks_created) == {} and wiped.mqa_tasks_existing == 1
    tasks = [t for t in data.sf["Task"].values() if str(t.get("Subject")).startswith(MQA_PREFIX)]
    assert len(tasks) == 1 and key in str(tasks[0]["Description"])
    assert len(mqa_tasks(sandbox)) == 1
    assert sandbox.stats()["salesforce"]["duplicate_task_keys"] == 0


def test_members_inherit_points_once_their_account_is_an_mqa(sandbox: Sandbox,
                                                            tmp_path: Any) -> None:
    """`accounts.inherit: {points: 10}`: the cycle that makes the account an MQA puts its
    members on the to-do list; the next cycle re-evaluates exactly them, each 10 points up with
    the reason; the cycle after has nothing to do."""
    import yaml

    from leadsync.accounts.phase import MEMBER_KIND, MEMBERS_KIND, decode_member
    from leadsync.accounts.resolve import domain_key, normalise_domain
    from leadsync.sandbox.store import SandboxData

    bundled = Path(__file__).parents[2] / "leadsync" / "config" / "default_rules.yaml"
    doc = yaml.safe_load(bundled.read_text(encoding="utf-8"))
    doc["accounts"]["inherit"] = {"points": 10, "label": "MQAアカウント所属"}
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    data: SandboxData = sandbox.data
    state = InMemoryStateStore()
    with environ({"LEADSYNC_RULES_FILE": str(rules)}):
        first = run_job(runtime_for(sandbox, state), "full")
        assert first.accounts_mqa == 1
        [sf_id], _ = mqa_accounts(sandbox)
        domain = normalise_domain(data.sf["Account"][sf_id]["Website"])
        assert domain is not None
        members = state.get_fingerprints(MEMBERS_KIND, [domain_key(domain)])[
            domain_key(domain)].split()
        records = {rk for pid, v in state.get_fingerprints(MEMBER_KIND, members).items()
                   for rk in (decode_member(pid, v) or ("", None, ()))[2]}
        pending = state.get_pending("salesforce") | state.get_pending("hubspot")
        assert pending == records and len(members) >= 4

        def score(record: str) -> int:
            system, obj, rid = record.split(":")
            raw = data.sf[obj][rid]["LeadSync_Score__c"] if system == "salesforce" \
                else data.hs_contacts[rid]["leadsync_score"]
            return int(float(raw))

        before = {rk: score(rk) for rk in records}
        sandbox.advance(60)
        second = run_job(runtime_for(sandbox, state), "incremental")
        assert second.people == len(members)
        assert {rk: score(rk) - before[rk] for rk in records} == dict.fromkeys(records, 10)
        assert state.get_pending("salesforce") | state.get_pending("hubspot") == set()
        assert second.accounts_mqa == 1 and dict(second.mqa_tasks_created) == {}
        sandbox.advance(60)
        third = run_job(runtime_for(sandbox, state), "incremental")
        assert third.people == 0


def test_incremental_cycles_read_only_the_changed_accounts(sandbox: Sandbox) -> None:
    """The full run reads every account and stores them; an incremental run reads the
    accounts changed since (HubSpot: a search by hs_lastmodifieddate; Salesforce: the Account
    query by SystemModstamp) and takes the rest from the store: a target flag unset in both
    CRMs reaches the account's score, with no full account read."""
    from leadsync.sandbox.store import hs_time, sf_time

    data: Any = sandbox.data
    state = InMemoryStateStore()
    first = run_job(runtime_for(sandbox, state), "full")
    assert first.accounts_mqa == 1
    [sf_id], [hs_id] = mqa_accounts(sandbox)
    account = data.sf["Account"][sf_id]
    assert account["Target_Account__c"] is True
    score = int(account["LeadSync_Account_Score__c"])
    sandbox.advance(60)
    with data.lock:  # an admin unticks the target flag in both CRMs, a member's title changes
        account["Target_Account__c"] = False
        account["SystemModstamp"] = sf_time(sandbox.now())
        company = data.hs_companies[hs_id]
        company["hs_is_target_account"] = "false"
        company["hs_lastmodifieddate"] = hs_time(sandbox.now())
        member = next(cid for cid, companies in data.hs_contact_companies.items()
                      if hs_id in companies)
        data.hs_contacts[member]["jobtitle"] = "主任"
        data.hs_contacts[member]["lastmodifieddate"] = hs_time(sandbox.now())
    sandbox.advance(60)
    before = sandbox.stats()
    second = run_job(runtime_for(sandbox, state), "incremental")
    after = sandbox.stats()
    requests = {s: {k: after[s]["requests"].get(k, 0) - before[s]["requests"].get(k, 0)
                    for k in after[s]["requests"]} for s in ("hubspot", "salesforce")}
    # no full account read: one page of the archived (deleted) companies, one queryAll
    assert requests["hubspot"]["GET /crm/v3/objects/companies"] == 1
    assert requests["salesforce"]["GET /queryAll"] == 1
    # the contact read by search carries its primary company (`associatedcompanyid`): no v4
    # association read
    assert requests["hubspot"].get(
        "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read", 0) == 0
    # the companies leadsync wrote in the full run changed too: all in one search page
    assert requests["hubspot"]["POST /crm/v3/objects/companies/search"] == 1
    assert second.accounts_evaluated == 1 and second.accounts_mqa == 1
    assert int(account["LeadSync_Account_Score__c"]) == score - 25  # the target rule's points
    assert dict(second.account_records_written) == {"salesforce": 1, "hubspot": 1}


def test_deleted_accounts_are_found_without_a_full_read(sandbox: Sandbox) -> None:
    """The MQA account is deleted in both CRMs through their APIs (Salesforce: DELETE of the
    Account, to the recycle bin; HubSpot: archive of the company). The next full run reads
    accounts by cursor: one companies search, one page of archived companies, one Account
    query and one queryAll; both records leave the store and are written no more."""
    from leadsync.accounts.phase import listed_refs

    data: Any = sandbox.data
    state = InMemoryStateStore()
    runtime = runtime_for(sandbox, state)
    first = run_job(runtime, "full")
    assert first.accounts_mqa == 1
    [sf_id], [hs_id] = mqa_accounts(sandbox)
    n_accounts, n_companies = len(data.sf["Account"]), len(data.hs_companies)
    sandbox.advance(60)
    sf_conn: Any = runtime.connectors["salesforce"]
    hs_conn: Any = runtime.connectors["hubspot"]
    contacts = sorted(i for i, c in data.sf["Contact"].items() if c.get("AccountId") == sf_id)
    sf_conn.client.sf.Account.delete(sf_id)
    hs_conn.client.companies_basic.archive(hs_id)
    assert sf_id not in data.sf["Account"] and hs_id not in data.hs_companies
    assert sorted(data.sf_recycle["Contact"]) == contacts and len(contacts) == 2
    # each CRM lists exactly that one deletion since before the first run
    since = sandbox.now() - timedelta(hours=1)
    assert [r.key for r in sf_conn.deleted_accounts(since)] == [f"salesforce:Account:{sf_id}"]
    assert [r.key for r in hs_conn.deleted_accounts(since)] == [f"hubspot:company:{hs_id}"]
    assert sf_conn.deleted_accounts(sandbox.now() + timedelta(seconds=1)) == []
    sandbox.advance(60)
    before = sandbox.stats()
    second = run_job(runtime_for(sandbox, state), "full")
    after = sandbox.stats()
    requests = {s: {k: after[s]["requests"].get(k, 0) - before[s]["requests"].get(k, 0)
                    for k in after[s]["requests"]} for s in ("hubspot", "salesforce")}
    assert requests["hubspot"]["GET /crm/v3/objects/companies"] == 1  # the archived page
    assert requests["hubspot"]["POST /crm/v3/objects/companies/search"] == 1
    assert requests["salesforce"]["GET /queryAll"] == 1
    refs = {system: listed_refs(state, system) for system in ("salesforce", "hubspot")}
    assert len(refs["salesforce"]) == n_accounts - 1
    assert len(refs["hubspot"]) == n_companies - 1
    assert f"salesforce:Account:{sf_id}" not in refs["salesforce"]
    assert f"hubspot:company:{hs_id}" not in refs["hubspot"]
    assert sum(second.account_records_written.values()) == 0 and not second.failed
    # the Account took its Contacts along; its people still in HubSpot resolve by their email
    # domain to the same key, now an account of no CRM record: evaluated, not an MQA (no CRM
    # holds its episode any more), not deleted; the other accounts as before
    assert second.accounts_deleted == 0
    assert second.accounts_evaluated == first.accounts_evaluated and second.accounts_mqa == 0
    assert len(mqa_tasks(sandbox)) == 1


def test_a_quiet_cycle_that_re_evaluates_a_person_rewrites_no_account() -> None:
    """The e2e demo data (300 people, seed 11) has a person whose owed task has no owner: every
    incremental cycle evaluates them again, and so their account. The account read by cursor
    does not see leadsync's own write of the last cycle when the CRM's stamps lag the cursor
    (here: the sandbox's clock runs behind the worker's), so the stored account must hold
    what was written: a quiet cycle writes 0 account records (it rewrote 1 per CRM each cycle)."""
    with Sandbox(contacts=300, seed=11) as sb:
        state = InMemoryStateStore()
        with environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
            settings = load_settings().model_copy(update={"redis_url": None})
            first = run_job(build_runtime(settings, state=state), "incremental")
            assert first.people == 301 and sum(first.account_records_written.values()) == 99
            for _ in range(3):
                before = {s: sb.stats()[s]["records_written"] for s in ("hubspot", "salesforce")}
                quiet = run_job(build_runtime(settings, state=state), "incremental")
                after = {s: sb.stats()[s]["records_written"] for s in ("hubspot", "salesforce")}
                assert quiet.people == 1
                assert dict(quiet.account_records_written) == {}
                assert after == before
