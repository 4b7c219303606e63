"""HubSpot engagement streams against the sandbox, through the real SDK and connector: each stream
reads from its own cursor, and events of an email no contact has yet are kept until it does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.identity import email_hash
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox, pools
from leadsync.sandbox.hs_marketing import _merge
from leadsync.sandbox.seed import Seeder
from leadsync.sandbox.simulate import _merge_events
from leadsync.sandbox.store import hs_time
from leadsync.state import InMemoryStateStore


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=30, seed=5) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def runtime_for(sb: Sandbox, state: InMemoryStateStore) -> Runtime:
    settings = load_settings().model_copy(update={"redis_url": None})
    return build_runtime(settings, state=state, clock=sb.now)


def arrive(sb: Sandbox, *rows: tuple[float, str, str, dict[str, str]]) -> None:
    """Events that reach HubSpot's APIs now, dated `ts` (possibly in the past: late arrival),
    filed as the sandbox's own simulation files them (page views in v3 events, forms in
    their submissions)."""
    with sb.data.lock:
        seeder = Seeder(sb.data, 0, 0, sb.clock.now(), provision_hubspot=True)
        for ts, cid, etype, props in rows:
            seeder.event(ts, cid, etype, **props)
        _merge_events(seeder)


def a_contact_with_email(sb: Sandbox) -> tuple[str, str]:
    for cid, props in sorted(sb.data.hs_contacts.items(), key=lambda kv: int(kv[0])):
        if props.get("email"):
            return cid, str(props["email"])
    raise AssertionError("the sandbox seeded no contact with an email")


def events_of(state: InMemoryStateStore, key: str, kind: str, at: datetime) -> list[Any]:
    return [e for e in state.get_events([key])[key] if e.type == kind and e.at == at]


def test_a_late_page_view_dated_before_the_newest_form_submission_is_counted(
        sandbox: Sandbox) -> None:
    state = InMemoryStateStore()
    rt = runtime_for(sandbox, state)
    run_job(rt, "full")
    sandbox.advance(3600)
    now = sandbox.now().timestamp()
    cid, _ = a_contact_with_email(sandbox)
    key = f"hubspot:contact:{cid}"
    form = pools.CASE_STUDY_FORMS[0]
    arrive(sandbox, (now - 300, cid, "e_submitted_form",
                     {"hs_form_id": form, "hs_url": f"{pools.SITE}/resources/{form}"}))
    run_job(rt, "incremental")  # reads the submission: the forms cursor moves to ~now
    forms_cursor = state.get_cursor("hubspot:engagement:form_submissions")
    events_cursor = state.get_cursor("hubspot:engagement:events")
    assert forms_cursor is not None and events_cursor is not None
    late_at = datetime.fromtimestamp(int((now - 1800) * 1000) / 1000, tz=sandbox.now().tzinfo)
    assert events_cursor < late_at < forms_cursor  # one shared cursor would skip it
    arrive(sandbox, (now - 1800, cid, "e_visited_page", {"hs_url": pools.PRICING_PAGE}))
    sandbox.advance(60)
    assert events_of(state, key, "page_view", late_at) == []
    run_job(rt, "incremental")
    assert len(events_of(state, key, "page_view", late_at)) == 1
    sandbox.advance(60)
    run_job(rt, "incremental")  # the overlap re-read does not count it twice
    assert len(events_of(state, key, "page_view", late_at)) == 1


def test_an_email_event_before_its_contact_exists_is_counted_once_the_contact_is_created(
        sandbox: Sandbox) -> None:
    state = InMemoryStateStore()
    rt = runtime_for(sandbox, state)
    run_job(rt, "full")
    sandbox.advance(600)
    email = "late.comer@newcorp.example"
    now = sandbox.now().timestamp()
    opened_ms = int((now - 120) * 1000)
    with sandbox.data.lock:
        seq = sandbox.data.counters["event"] = sandbox.data.counters["event"] + 1
        _merge(sandbox.data.hs_email_events,
               [(opened_ms, seq, email, "OPEN", {"emailCampaignId": 4242})])
    first = run_job(rt, "incremental")
    assert first.stopped_reason is None
    held = state.get_held_events()
    assert len(held) == 1 and email not in next(iter(held.values()))  # kept by hash only
    assert email_hash(email) in next(iter(held.values()))

    sandbox.advance(600)
    run_job(rt, "incremental")  # still no contact: still held, nothing attached
    assert len(state.get_held_events()) == 1

    sandbox.advance(600)
    with sandbox.data.lock:  # the contact is created in HubSpot (a form fill, an import)
        cid = sandbox.data.new_hs_id("contact")
        stamp = hs_time(sandbox.now())
        sandbox.data.hs_contacts[cid] = {
            "hs_object_id": cid, "email": email, "firstname": "Late", "lastname": "Comer",
            "createdate": stamp, "lastmodifieddate": stamp, "lifecyclestage": "lead"}
    sandbox.advance(60)
    run_job(rt, "incremental")
    key = f"hubspot:contact:{cid}"
    opened_at = datetime.fromtimestamp(opened_ms / 1000, tz=sandbox.now().tzinfo)
    assert len(events_of(state, key, "email_open", opened_at)) == 1
    assert state.get_held_events() == {}
    sandbox.advance(60)
    run_job(rt, "incremental")
    assert len(events_of(state, key, "email_open", opened_at)) == 1
