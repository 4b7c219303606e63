"""`leadsync explain --account DOMAIN|ID` through the CLI against the sandbox (docs/accounts.md):
after a full sync (Redis state on LEADSYNC_TEST_REDIS_URL, so the members the sync stored are
there for the next command) the MQA account is explained by its domain, its Salesforce Account
Id and its HubSpot company id, with the score and engaged people the sync wrote; an unknown
account and a bad argument exit 2."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from leadsync import exitcodes
from leadsync.accounts.resolve import normalise_domain
from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.sandbox import Sandbox

redis = pytest.importorskip("redis")
REDIS_URL = os.environ.get("LEADSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def synced() -> Iterator[Sandbox]:
    from leadsync.state_redis import RedisStateStore

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    store = RedisStateStore(client)  # the namespace the CLI uses, on the tests' own database
    store.clear()
    try:
        # the CLI runs on the wall clock: the sandbox's data is dated from now, too
        with Sandbox(contacts=150, seed=11, now=datetime.now(UTC)) as sb, \
                environ({**sb.env, "LEADSYNC_REDIS_URL": REDIS_URL}):
            code, out = invoke("sync", "--once", "--full", "--json")
            assert code == 0, out
            report = json.loads(out.strip().splitlines()[-1])
            assert report["accounts"]["mqa"] == 1
            yield sb
    finally:
        store.clear()


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_explain_account_by_domain_and_ids(synced: Sandbox) -> None:
    data: Any = synced.data
    [aid] = [i for i, a in data.sf["Account"].items() if a.get("LeadSync_MQA_At__c")]
    account = data.sf["Account"][aid]
    domain = normalise_domain(account["Website"])
    assert domain is not None
    [cid] = [i for i, c in data.hs_companies.items() if c.get("domain") == domain]
    outputs = []
    for target in (domain, account["Website"], aid, aid[:15], cid):  # 15: the classic UI's
        code, out = invoke("explain", "--account", target)
        assert code == 0, out
        outputs.append(_flat(out))
    first = outputs[0]
    assert all(o.splitlines()[0] == first.splitlines()[0] for o in outputs)
    score = int(account["LeadSync_Account_Score__c"])
    engaged = int(account["LeadSync_Engaged_People__c"])
    assert f"Account score {score} (MQA at 60," in first
    assert "MQA: yes, since " in first
    assert f"salesforce:Account:{aid}" in first and f"hubspot:company:{cid}" in first
    members = re.search(r"Members: (\d+) \((\d+) engaged", first)
    assert members is not None and int(members.group(2)) == engaged
    # one row per member: its person key
    assert len(re.findall(r"│ p-[0-9a-f]{24} ", first)) == int(members.group(1))
    for rule in ("acct-engaged-3", "acct-buying-group"):
        assert rule in first
    assert "@" not in first  # no emails


def test_unknown_account_and_bad_arguments_exit_2(synced: Sandbox) -> None:
    code, out = invoke("explain", "--account", "nowhere-at-all.example")
    assert code == exitcodes.CONFIG
    assert "'nowhere-at-all.example' names no account" in _flat(out)
    code, out = invoke("explain", "--account", "0019999999999999AAA")
    assert code == exitcodes.CONFIG and "names no account" in out
    contact = next(iter(synced.data.sf["Contact"]))  # a person's id instead of an account's
    code, out = invoke("explain", "--account", contact)
    assert code == exitcodes.CONFIG
    assert f"'{contact}' is a Salesforce Contact id, not an account" in _flat(out)
    hs_contact = next(iter(synced.data.hs_contacts))
    code, out = invoke("explain", "--account", f"hubspot:contact:{hs_contact}")
    assert code == exitcodes.CONFIG and "is a HubSpot contact, not an account" in _flat(out)
    code, out = invoke("explain")
    assert code == exitcodes.CONFIG and "either EMAIL or --account" in out
    code, out = invoke("explain", "someone@example.com", "--account", "example.com")
    assert code == exitcodes.CONFIG and "either EMAIL or --account" in out


def test_without_redis_the_missing_members_are_explained(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without LEADSYNC_REDIS_URL the state store is in memory: no member a sync stored can be
    there, and the page says why (rather than that no sync stored any)."""
    monkeypatch.delenv("LEADSYNC_REDIS_URL", raising=False)
    with Sandbox(contacts=20, seed=11, now=datetime.now(UTC)) as sb, environ(sb.env):
        data: Any = sb.data
        website = next(iter(data.sf["Account"].values()))["Website"]
        code, out = invoke("explain", "--account", website)
    assert code == exitcodes.OK, out
    assert "Members: 0 (0 engaged" in _flat(out)
    assert ("No member stored here: LEADSYNC_REDIS_URL is not set, and the members a sync "
            "stored are in Redis") in _flat(out)
