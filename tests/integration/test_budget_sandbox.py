"""A spent Salesforce budget against the sandbox, through the real SDKs and connectors: Salesforce
work stops, HubSpot's goes on in full, no Salesforce call is sent while the budget is spent, and
Salesforce resumes from its cursors once the rolling 24-hour window has moved on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.pipeline import run_job
from leadsync.report import CycleReport
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Sandbox
from leadsync.state import InMemoryStateStore

PEOPLE = 80
SEED = 11
SF_LIMIT = 10_000  # the org's allocation the sandbox reports in Sforce-Limit-Info
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def runtime_for(sb: Sandbox, state: InMemoryStateStore, share: float = 1.0) -> Runtime:
    """The connectors on the sandbox's clock, so the budget's rolling window moves with it."""
    settings = load_settings().model_copy(update={"redis_url": None})
    sf = settings.salesforce.model_copy(update={"daily_budget_share": share})
    connectors = {"hubspot": HubSpotConnector(settings.hubspot),
                  "salesforce": SalesforceConnector(sf, clock=sb.now)}
    rt = build_runtime(settings, state=state, clock=sb.now, connectors=connectors)
    # people's budget stops, call by call: the account phase (docs/accounts.md) left out
    return replace(rt, model=replace(rt.model, accounts=None))


def first_cycle_unlimited() -> tuple[CycleReport, int]:
    """The same first cycle with no budget in the way, and the Salesforce calls it made before
    its first Salesforce write (its reads)."""
    with Sandbox(contacts=PEOPLE, seed=SEED, sf_daily_limit=SF_LIMIT, now=START) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        rt = runtime_for(sb, InMemoryStateStore())
        sf = rt.connectors["salesforce"]
        reads: list[int] = []
        original = sf.write_updates

        def counted(*args: Any, **kw: Any) -> Any:
            reads.append(sf.api_calls())
            return original(*args, **kw)

        sf.write_updates = counted  # type: ignore[method-assign]
        report = run_job(rt, "full")
        return report, reads[0]


def test_a_spent_salesforce_budget_stops_salesforce_only() -> None:
    control, sf_reads = first_cycle_unlimited()
    assert control.records_written["hubspot"] > 0 and control.records_written["salesforce"] > 0
    assert control.tasks_created["hubspot"] > 0 and control.tasks_created["salesforce"] > 0
    share = (sf_reads + 0.5) / SF_LIMIT  # exactly the reads: the first Salesforce write is refused
    with Sandbox(contacts=PEOPLE, seed=SEED, sf_daily_limit=SF_LIMIT, now=START) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        state = InMemoryStateStore()
        rt = runtime_for(sb, state, share)
        first = run_job(rt, "full")
        assert first.budget_stopped == ["salesforce"] and first.stopped_reason == "budget"
        assert first.records_written["hubspot"] == control.records_written["hubspot"]
        assert first.tasks_created["hubspot"] == control.tasks_created["hubspot"]
        assert first.records_written.get("salesforce", 0) == 0
        assert first.tasks_created.get("salesforce", 0) == 0
        assert first.api_calls["salesforce"] == sf_reads  # the reads; the write was not sent
        used = sb.stats()["salesforce"]["api_usage"]  # as the org counts (logins are free)
        assert state.get_cursor("hubspot:people") is not None
        assert state.get_cursor("salesforce:people") is None
        # its engagement was read before the stop: saved, its cursor moved, its records on
        # the to-do list with the records whose write was not sent
        assert state.get_cursor("salesforce:engagement") is not None
        waiting = state.get_pending("salesforce")
        assert len(waiting) == control.records_written["salesforce"]

        for _ in range(2):  # later cycles send no Salesforce request at all while it is spent
            sb.advance(300)
            again = run_job(rt, "incremental")
            assert again.budget_stopped == ["salesforce"]
            assert again.api_calls["salesforce"] == 0
            assert sb.stats()["salesforce"]["api_usage"] == used
            assert state.get_pending("salesforce") == waiting

        sb.advance(25 * 3600)  # the rolling window has moved past the first cycle's calls
        budget = rt.connectors["salesforce"].budget  # type: ignore[attr-defined]
        assert budget.spent_today() == 0
        budget.share = 0.5  # the operator's usual share again: room for the whole cycle
        resumed = run_job(rt, "incremental")
        assert resumed.budget_stopped == [] and resumed.stopped_reason is None
        assert not resumed.failed
        assert state.get_pending("salesforce") == set()
        sb.advance(60)
        settled = run_job(rt, "incremental")  # what the budget held back was all written
        assert settled.records_written.get("salesforce", 0) == 0 and not settled.failed
        assert state.get_cursor("salesforce:people") is not None
        assert state.get_cursor("salesforce:engagement") is not None
