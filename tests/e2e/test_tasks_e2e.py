"""End to end: a real Celery worker and beat (subprocesses) on Redis db 14 against the sandbox.

Scenarios of the issue / RELIABILITY.md: stages and fields appear in both CRMs and owed tasks
are created once; a worker SIGKILLed mid-cycle; two beat processes; a wiped Redis between
cycles; two cycles in a row. Each ends with no duplicate task keys, no lost writes and a
second cycle that writes nothing.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    Cluster,
    cluster,
    completed,
    crm_snapshot,
    quiet_after_work,
    sandbox_totals,
    settings_for,
    total,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(240)]

PEOPLE = 300
CONVERGE_S = 150.0
STABLE_FIELDS = ("stage", "fit_grade", "mql_at", "sql_at", "model")


@pytest.fixture
def sandbox() -> Iterator[Any]:
    module = pytest.importorskip("leadsync.sandbox")
    if not hasattr(module, "Sandbox"):
        pytest.skip("leadsync.sandbox.Sandbox is not built yet")
    with module.Sandbox(contacts=PEOPLE, seed=11) as sb:
        yield sb


def set_faults(sb: Any, **faults: Any) -> None:
    """Switch the sandbox's fault injection over its control endpoint (wire contract)."""
    base = sb.env["LEADSYNC_SANDBOX_STATS_URL"].rsplit("/__sandbox__/", 1)[0]
    req = urllib.request.Request(
        f"{base}/__sandbox__/faults",
        data=json.dumps(faults).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 204)


def converge(run: Cluster, what: str = "a second cycle that writes nothing") -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        run.check_alive()
        return quiet_after_work(run.reports())

    return wait_for(what, probe, timeout=CONVERGE_S)


def assert_next_cycle_writes_nothing(run: Cluster, sb: Any) -> None:
    before = sandbox_totals(sb.stats())
    seen = len(completed(run.reports()))
    wait_for("one more completed cycle", lambda: len(completed(run.reports())) > seen, 60)
    after = sandbox_totals(sb.stats())
    assert after["records_written"] == before["records_written"]
    assert after["tasks_created"] == before["tasks_created"]
    assert after["duplicate_task_keys"] == 0


def assert_fields_in_both_crms(snapshot: dict[str, dict[str, Any]]) -> None:
    """Every record of both CRMs carries leadsync's stage and score (no lost writes), and records
    the CRMs link as one person show one stage."""
    systems = {key.split(":", 1)[0] for key in snapshot}
    assert systems == {"hubspot", "salesforce"}
    missing = sorted(k for k, v in snapshot.items() if not v["current"].get("stage"))
    assert not missing, f"{len(missing)} records without a stage, e.g. {missing[:5]}"
    unscored = sorted(k for k, v in snapshot.items() if v["current"].get("score") in (None, ""))
    assert not unscored, f"{len(unscored)} records without a score, e.g. {unscored[:5]}"
    for key, rec in snapshot.items():
        for other in rec["links"]:
            if other in snapshot:
                pair = (rec["current"]["stage"], snapshot[other]["current"]["stage"])
                assert pair[0] == pair[1], f"{key} and {other} disagree on the stage: {pair}"


def test_cycles_write_fields_to_both_crms_and_create_tasks_once(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cluster(sandbox.env, tmp_path) as run:
        run.worker("w1")
        run.beat("beat1")
        converge(run)
        first = completed(run.reports())[0]
        assert first["people"] > 0 and total(first["records_written"]) > 0
        assert_next_cycle_writes_nothing(run, sandbox)
        totals = sandbox_totals(sandbox.stats())
        assert totals["duplicate_task_keys"] == 0
        created = sum(total(r.get("tasks_created")) for r in run.reports())
        assert created == totals["tasks_created"]  # every task the CRMs got, a job reported
    assert_fields_in_both_crms(crm_snapshot(settings_for(sandbox.env, monkeypatch)))


def test_sigkill_of_the_worker_mid_cycle_loses_nothing(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_faults(sandbox, latency_ms=25)  # a cycle long enough to be caught in the middle
    with cluster(sandbox.env, tmp_path) as run:
        victim = run.worker("w1")
        run.beat("beat1")
        wait_for(
            "the first cycle to start writing",
            lambda: sandbox_totals(sandbox.stats())["records_written"] > 0,
            timeout=90,
            every=0.05,
        )
        run.kill(victim)  # SIGKILL to the worker's whole process group
        assert not completed(run.reports()), "the cycle finished before it could be killed"
        set_faults(sandbox)
        run.worker("w2")
        converge(run)
        assert_next_cycle_writes_nothing(run, sandbox)
        assert sandbox_totals(sandbox.stats())["duplicate_task_keys"] == 0
    assert_fields_in_both_crms(crm_snapshot(settings_for(sandbox.env, monkeypatch)))


def _intervals(reports: list[dict[str, Any]]) -> list[tuple[float, float]]:
    spans = []
    for r in completed(reports):
        end = datetime.fromisoformat(r["finished_at"].replace("Z", "+00:00")).timestamp()
        spans.append((end - float(r.get("duration_s") or 0.0), end))
    return sorted(spans)


def test_two_beat_processes_never_run_a_job_twice_at_once(sandbox: Any, tmp_path: Path) -> None:
    set_faults(sandbox, latency_ms=10)  # cycles long enough for the two beats' ticks to meet
    with cluster(sandbox.env, tmp_path) as run:
        run.worker("w1", concurrency=2)
        run.beat("beat1")
        run.beat("beat2")
        converge(run)
        set_faults(sandbox)
        assert_next_cycle_writes_nothing(run, sandbox)
        reports = run.reports()
        skipped = [r for r in reports if r.get("job") == "incremental" and r.get("skipped")]
        assert skipped, "two beats never sent overlapping ticks: the lock was not exercised"
        assert {r["skipped"] for r in skipped} == {"locked"}
        spans = _intervals(reports)
        overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1] - 0.05]
        assert not overlaps, f"incremental runs overlapped in time: {overlaps}"
        assert sandbox_totals(sandbox.stats())["duplicate_task_keys"] == 0


def test_wiped_redis_between_cycles_converges_to_the_same_crm_state(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox.env, monkeypatch)
    with cluster(sandbox.env, tmp_path) as run:
        run.worker("w1")
        run.beat("beat1")
        converge(run)
        before = crm_snapshot(settings)
        totals_before = sandbox_totals(sandbox.stats())
        run.redis.flushdb()  # cursors, fingerprints, ledger, locks, queue: all gone
        converge(run, "a cycle after the wipe, then one that writes nothing")
        totals_after = sandbox_totals(sandbox.stats())
        assert totals_after["duplicate_task_keys"] == 0
        assert totals_after["tasks_created"] == totals_before["tasks_created"]
    after = crm_snapshot(settings)
    assert set(after) == set(before)
    changed = {
        key: {f: (before[key]["current"].get(f), after[key]["current"].get(f))}
        for key in before
        for f in STABLE_FIELDS
        if before[key]["current"].get(f) != after[key]["current"].get(f)
    }
    assert not changed, (
        f"{len(changed)} records changed after the wipe: {list(changed.items())[:5]}"
    )
    assert_fields_in_both_crms(after)


def test_nightly_full_run_is_one_job_with_exactly_the_in_process_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leadsync.full_reevaluation` on real workers (two of them: it is one job, nothing to
    share) sends exactly the requests of `leadsync sync --once --full` on the same data."""
    module = pytest.importorskip("leadsync.sandbox")
    from leadsync.config.settings import Settings
    from leadsync.pipeline import run_job
    from leadsync.runtime import build_runtime
    from leadsync.tasks.celery_app import TASK_FULL, create_app
    from tests.e2e.harness import E2E_REDIS_URL

    with module.Sandbox(contacts=PEOPLE, seed=11) as first:
        in_process = run_job(build_runtime(settings_for(first.env, monkeypatch)), "full")
        expected = first.stats()
    assert in_process.stopped_reason is None and in_process.people > 0
    with module.Sandbox(contacts=PEOPLE, seed=11) as sb, cluster(sb.env, tmp_path) as run:
        settings_for(sb.env, monkeypatch)  # this process's LEADSYNC_* point at this sandbox
        run.worker("w1")
        run.worker("w2")
        wait_for("both workers ready", lambda: all(
            "ready" in p.log.read_text(errors="replace") for p in run.procs), timeout=60)
        create_app(Settings(redis_url=E2E_REDIS_URL)).send_task(TASK_FULL)

        def finished() -> list[dict[str, Any]]:
            run.check_alive()
            return [r for r in run.reports() if r.get("job") == "full" and not r.get("skipped")]

        full = wait_for("the full run's report", finished, timeout=120)
        stats = sb.stats()
        jobs = [r.get("job") for r in run.reports()]
    assert len(full) == 1 and jobs == ["full"]  # one job, no chunks
    assert full[0]["stopped_reason"] is None and full[0]["people"] == in_process.people
    for system in ("hubspot", "salesforce"):
        assert stats[system]["requests"] == expected[system]["requests"]  # 0 % more calls
        assert stats[system]["records_written"] == expected[system]["records_written"]
        assert stats[system]["tasks_created"] == expected[system]["tasks_created"]
        assert stats[system]["duplicate_task_keys"] == 0
    assert full[0]["api_calls"] == in_process.api_calls
