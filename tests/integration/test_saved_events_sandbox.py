"""Engagement saved before a kill is not lost (issue 9, docs/resume.md), against the sandbox
through the real SDKs and the Redis state store: the engagement read saves its events in
batches (`EVENTS_FLUSH`) and puts their records on HubSpot's durable to-do list with them. A
run that dies after that read, before its cursors move, leaves exactly those records there;
the next run re-reads the overlap, finds their events known (no news), and still evaluates
exactly those people, once each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadsync import pipeline
from leadsync.pipeline import _Cycle
from leadsync.sandbox import Sandbox
from leadsync.sandbox.pools import PRICING_PAGE
from tests.integration.test_resume_sandbox import RATE, _in_process
from tests.redis_support import redis_store

pytestmark = pytest.mark.redis
PEOPLE = 300


class _Killed(BaseException):
    """The process dies here: nothing after this point runs (an in-process SIGKILL)."""


@pytest.fixture
def store() -> Iterator[Any]:
    with redis_store("leadsync-saved-events-test") as state:
        yield state


def test_people_whose_events_were_saved_before_a_kill_are_evaluated_by_the_next_run(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "EVENTS_FLUSH", 1)  # each event is a saved batch
    with Sandbox(contacts=PEOPLE, seed=11, hubspot_rate_limit=RATE) as sb:
        first = _in_process(sb, store)
        assert first.stopped_reason is None and not first.failed
        assert store.get_pending("hubspot") == set()
        sb.advance(3600)
        at = int(sb.now().timestamp() * 1000) - 60_000
        chosen = sorted(sb.data.hs_contacts, key=int)[:2]
        for n, cid in enumerate(chosen):  # two pricing-page views, a minute ago
            sb.data.hs_events.append((at, 10**9 + n, cid, "e_visited_page",
                                      {"hs_url": PRICING_PAGE}))
        sb.data.hs_events.sort(key=lambda e: (e[0], e[1]))
        keys = {f"hubspot:contact:{cid}" for cid in chosen}

        def killed(self: _Cycle, sales_keys: set[str]) -> set[str]:
            raise _Killed

        with monkeypatch.context() as patch:
            patch.setattr(_Cycle, "settle_activity", killed)
            with pytest.raises(_Killed):
                _in_process(sb, store)
        # the events are stored and their records wait on the durable to-do list
        assert store.get_pending("hubspot") == keys
        stored = store.get_events(sorted(keys))
        assert {k: sum(e.type == "page_view" and e.at.timestamp() * 1000 == at for e in v)
                for k, v in stored.items()} == dict.fromkeys(keys, 1)

        sb.advance(60)
        after = _in_process(sb, store)  # the restart
        emails = sorted(_email(sb, key) for key in after.primary.values())
        wanted = sorted(sb.data.hs_contacts[cid]["email"].lower() for cid in chosen)
    assert after.stopped_reason is None and not after.failed
    assert after.people == 2 and emails == wanted  # exactly the two people with a new view
    assert store.get_pending("hubspot") == set()
    again = store.get_events(sorted(keys))
    assert {k: len(v) for k, v in again.items()} == {k: len(v) for k, v in stored.items()}


def _email(sb: Sandbox, record_key: str) -> str:
    """The email of a person record (the person's primary record may be a Salesforce one)."""
    system, kind, rid = record_key.split(":", 2)
    if system == "hubspot":
        return str(sb.data.hs_contacts[rid]["email"]).lower()
    return str(sb.data.sf[kind][rid]["Email"]).lower()
