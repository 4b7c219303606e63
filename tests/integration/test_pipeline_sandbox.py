"""Whole cycles against the sandbox over real sockets with the real SDKs and connectors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from leadsync.cli import cli
from leadsync.commands.common import environ
from leadsync.config.settings import load_settings
from leadsync.pipeline import run_job
from leadsync.runtime import Runtime, build_runtime
from leadsync.sandbox import Faults, Sandbox
from leadsync.state import InMemoryStateStore

PEOPLE = 150


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(contacts=PEOPLE, seed=11) as sb, environ({**sb.env, "LEADSYNC_REDIS_URL": ""}):
        yield sb


def runtime_for(sb: Sandbox, state: InMemoryStateStore | None = None) -> Runtime:
    settings = load_settings().model_copy(update={"redis_url": None})
    return build_runtime(settings, state=state or InMemoryStateStore(), clock=sb.now)


def task_totals(sb: Sandbox) -> tuple[int, int]:
    stats = sb.stats()
    created = sum(stats[s]["tasks_created"] for s in ("hubspot", "salesforce"))
    dups = sum(stats[s]["duplicate_task_keys"] for s in ("hubspot", "salesforce"))
    return created, dups


def test_first_cycle_writes_both_crms_and_the_second_writes_nothing(sandbox: Sandbox) -> None:
    runtime = runtime_for(sandbox)
    first = run_job(runtime, "full")
    assert first.stopped_reason is None and not first.failed
    assert first.records_written["hubspot"] > 0 and first.records_written["salesforce"] > 0
    assert sum(first.tasks_created.values()) > 0
    assert {"mql", "lead"} <= set(first.stages)
    sandbox.advance(60)
    second = run_job(runtime, "incremental")
    assert sum(second.records_written.values()) == 0
    assert sum(second.tasks_created.values()) == 0
    created, dups = task_totals(sandbox)
    # tasks_created counts the MQA tasks of the account phase too (docs/accounts.md)
    assert created == sum(first.tasks_created.values()) and dups == 0
    assert sum(second.mqa_tasks_created.values()) == 0


def test_sync_once_twice_with_cold_state_is_idempotent(sandbox: Sandbox) -> None:
    """`leadsync sync --once` twice with no Redis: the second run writes and creates nothing."""
    runner = CliRunner()
    first = runner.invoke(cli, ["sync", "--once", "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    one = json.loads(first.output.strip().splitlines()[-1])
    assert sum(one["records_written"].values()) > 0 and sum(one["tasks_created"].values()) > 0
    second = runner.invoke(cli, ["sync", "--once", "--json"], catch_exceptions=False)
    two = json.loads(second.output.strip().splitlines()[-1])
    assert sum(two["records_written"].values()) == 0
    assert sum(two["tasks_created"].values()) == 0
    assert task_totals(sandbox)[1] == 0


def test_faults_do_not_lose_writes_or_duplicate_tasks(sandbox: Sandbox) -> None:
    sandbox.set_faults(Faults(burst_429=5, error_rate=0.05, record_failure_rate=0.05,
                              latency_ms=2, seed=3))
    state = InMemoryStateStore()
    runtime = runtime_for(sandbox, state)
    first = run_job(runtime, "full")
    assert first.stopped_reason is None
    sandbox.set_faults(Faults())
    sandbox.advance(60)
    run_job(runtime, "incremental")  # retries the records that failed
    sandbox.advance(60)
    settled = run_job(runtime_for(sandbox), "full")  # cold state: compare with the CRMs only
    assert sum(settled.records_written.values()) == 0
    assert sum(settled.tasks_created.values()) == 0
    assert task_totals(sandbox)[1] == 0


def test_wiped_state_converges_without_duplicate_tasks(sandbox: Sandbox) -> None:
    state = InMemoryStateStore()
    runtime = runtime_for(sandbox, state)
    run_job(runtime, "full")
    sandbox.simulate(hours=6)
    run_job(runtime, "incremental")
    state.clear()
    sandbox.advance(60)
    run_job(runtime, "incremental")  # cold: reads everyone again and converges
    assert task_totals(sandbox)[1] == 0
    sandbox.advance(60)
    again = run_job(runtime, "incremental")
    assert sum(again.records_written.values()) == 0
    assert sum(again.tasks_created.values()) == 0
