"""Benchmark: one full re-evaluation cycle over N people (default 10,000) against the sandbox.

Three runs, each on a freshly seeded sandbox (same seed) and a cold state:
1. `in_process`: `run_job(runtime, "full")` in this process with the in-memory store
   (`leadsync sync --once --full`);
2. `celery_1_worker`: the nightly `leadsync.full_reevaluation` task on one real Celery worker
   process (Redis broker and state, db 15 by default);
3. `celery_2_workers`: the same with two worker processes (the full run is one job, so the
   second worker only stands by; `speedup_2_vs_1` is the ratio of wall times).
Wall time runs from dispatch to the job's end. API calls are the sandbox's own request counters
by system.

`accounts_cost` (docs/accounts.md): the extra API calls the account phase costs. Two more
in-process full cycles on fresh sandboxes (same seed; 10,000 people are 2,000 companies), one
with the bundled rules and one with the same rules less their `accounts:` section, and their
calls per CRM, the extra calls and the ratio (`with / without`, per CRM and in all). Calls do
not depend on the rate limit, so these two runs use `--accounts-rate-limit` (default 1,000 per
10 s: no 429 retries in the count). `second_full`: each run's next full cycle (same sandbox
and state, nothing changed in between); `third_full`: the one after (the nightly run in its
steady state: the second still reads back, by the account cursor, the accounts the first
wrote); `incremental`: then one simulated hour of activity and an incremental cycle.
`*_requests`: those cycles' requests per operation. The sandbox clock moves 10 minutes before
each of these cycles (past the cursors' 5-minute overlap, which would otherwise take in the
cycle before: the runs are seconds apart in real time). These runs use the sandbox's
clock (leadsync's account cursor is its own time less 5 minutes: with the wall clock it would
lie weeks after the sandbox's seeded time and find no change).
`--accounts-only` runs just these two.

The work is bound by the CRMs' rate limits, not CPU. `bound_s` is that bound: per CRM, the
in-process cycle's calls divided by the rate leadsync allows itself (HubSpot:
`RATE_LIMIT_PER_10S x RATE_LIMIT_SHARE / 10 s`; Salesforce has no request-rate limit, only a
daily allocation, so it has no such bound: null), and the slower CRM's figure for the run,
since both CRMs are read at once. Each run prints `wall_over_bound` (wall / bound) and
`calls_over_in_process` (its calls / the in-process cycle's, per CRM). Prints one JSON object.

    python benchmarks/bench_cycle.py [--people 10000] [--seed 1] [--skip-celery]
        [--accounts-only] [--accounts-rate-limit 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from leadsync.config.settings import HubSpotSettings, Settings, load_settings
from leadsync.sandbox import Sandbox
from leadsync.tasks.celery_app import TASK_FULL, create_app

SYSTEMS = ("hubspot", "salesforce")
# the sandbox time between the accounts runs' cycles: past the cursors' 5-minute overlap (the
# cycles of one run are seconds apart in real time; a nightly run's, a day)
GAP_S = 600


def calls_by_system(stats: dict[str, Any]) -> dict[str, int]:
    return {s: sum(stats[s]["requests"].values()) for s in SYSTEMS}


def requests_between(before: dict[str, Any], after: dict[str, Any]
                     ) -> dict[str, dict[str, int]]:
    """The requests per CRM and operation made between two snapshots of the sandbox stats."""
    return {s: {k: v - before[s]["requests"].get(k, 0)
                for k, v in sorted(after[s]["requests"].items())
                if v - before[s]["requests"].get(k, 0)} for s in SYSTEMS}


def allowed_rate_per_s(hs_limit: int) -> dict[str, float | None]:
    """Requests per second leadsync allows itself per CRM (its client-side limiters)."""
    share = HubSpotSettings.model_fields["rate_limit_share"].default
    return {"hubspot": max(1, int(hs_limit * share)) / 10.0, "salesforce": None}


def rate_bound(calls: dict[str, int], rates: dict[str, float | None]) -> dict[str, Any]:
    """Seconds the calls need at the allowed rates, per CRM, and the slower CRM's (the run's).
    `burst_floor_s`: the same less the first 10-second window, which a cold rolling window
    admits at once (a run can beat `bound_s` by up to one window; at 10,000 people ~15 %)."""
    per_crm = {s: (round(calls[s] / r, 2) if r else None) for s, r in rates.items()}
    floors = {s: (round(max(0.0, calls[s] - r * 10) / r, 2) if r else None)
              for s, r in rates.items()}  # fmt: skip
    known = [v for v in per_crm.values() if v is not None]
    known_floors = [v for v in floors.values() if v is not None]
    return {"by_crm": per_crm, "bound_s": max(known) if known else None,
            "burst_floor_s": max(known_floors) if known_floors else None}


def against(run: dict[str, Any], bound: dict[str, Any], base_calls: dict[str, int]) -> None:
    """Add wall / bound and calls / in-process calls to one run's figures."""
    run["bound_s"] = bound["bound_s"]
    run["wall_over_bound"] = (round(run["wall_s"] / bound["bound_s"], 3)
                              if bound["bound_s"] else None)
    run["calls_over_in_process"] = {
        s: round(run["api_calls"][s] / base_calls[s], 4) if base_calls[s] else None
        for s in SYSTEMS
    }


def point_env_at(env: dict[str, str], redis_url: str | None) -> None:
    """Make this process's LEADSYNC_* environment exactly the sandbox's (plus Redis)."""
    for key in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        del os.environ[key]
    os.environ.update(env)
    if redis_url:
        os.environ["LEADSYNC_REDIS_URL"] = redis_url


def rules_without_accounts(path: Path) -> Path:
    """The bundled rules file less its `accounts:` section, written to `path`."""
    from importlib import resources

    import yaml

    text = resources.files("leadsync.config").joinpath("default_rules.yaml").read_text("utf-8")
    doc = yaml.safe_load(text)
    doc.pop("accounts", None)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _compare(calls_with: dict[str, int], calls_without: dict[str, int]) -> dict[str, Any]:
    total_with, total_without = sum(calls_with.values()), sum(calls_without.values())
    return {"calls_with_accounts": calls_with, "calls_without_accounts": calls_without,
            "ratio_total": round(total_with / total_without, 4) if total_without else None}


def accounts_cost(people: int, seed: int, hs_limit: int) -> dict[str, Any]:
    """Full-cycle calls with and without the `accounts:` section (module doc)."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = rules_without_accounts(Path(tmp) / "rules.yaml")
        without = run_in_process(people, seed, hs_limit, rules_file=plain, second=True)
    with_accounts = run_in_process(people, seed, hs_limit, second=True)
    calls_with, calls_without = with_accounts["api_calls"], without["api_calls"]
    total_with, total_without = sum(calls_with.values()), sum(calls_without.values())
    return {
        "people": people,
        "accounts_evaluated": with_accounts["accounts_evaluated"],
        "accounts_mqa": with_accounts["accounts_mqa"],
        "calls_with_accounts": calls_with,
        "calls_without_accounts": calls_without,
        "extra_calls": {s: calls_with[s] - calls_without[s] for s in SYSTEMS},
        "ratio": {s: round(calls_with[s] / calls_without[s], 4) if calls_without[s] else None
                  for s in SYSTEMS},
        "ratio_total": round(total_with / total_without, 4) if total_without else None,
        "second_full": _compare(with_accounts["second_full_api_calls"] or {},
                                without["second_full_api_calls"] or {}),
        "incremental": _compare(with_accounts["incremental_api_calls"] or {},
                                without["incremental_api_calls"] or {}),
        "second_full_requests": {"with": with_accounts["second_full_requests"],
                                 "without": without["second_full_requests"]},
        "third_full": _compare(with_accounts["third_full_api_calls"] or {},
                               without["third_full_api_calls"] or {}),
        "third_full_requests": {"with": with_accounts["third_full_requests"],
                                "without": without["third_full_requests"]},
        "incremental_requests": {"with": with_accounts["incremental_requests"],
                                 "without": without["incremental_requests"]},
        "requests_with_accounts": with_accounts["requests"],
        "requests_without_accounts": without["requests"],
    }


def run_in_process(people: int, seed: int, hs_limit: int,
                   rules_file: Path | None = None, second: bool = False) -> dict[str, Any]:
    from leadsync.pipeline import run_job
    from leadsync.runtime import build_runtime

    with Sandbox(contacts=people, seed=seed, hubspot_rate_limit=hs_limit) as sb:
        point_env_at(sb.env, None)
        if rules_file is not None:
            os.environ["LEADSYNC_RULES_FILE"] = str(rules_file)
        # the accounts runs take the sandbox's clock, as a deployment's clock agrees with its
        # CRMs': cursors leadsync sets from its own time (the account cursor) must fall in the
        # sandbox's time, which starts at its seed date
        runtime = build_runtime(load_settings(), clock=sb.now if second else None)
        started = time.perf_counter()
        report = run_job(runtime, "full")
        wall = time.perf_counter() - started
        stats = sb.stats()
        again: dict[str, int] | None = None
        step: dict[str, int] | None = None
        again_ops: dict[str, dict[str, int]] | None = None
        third: dict[str, int] | None = None
        third_ops: dict[str, dict[str, int]] | None = None
        step_ops: dict[str, dict[str, int]] | None = None
        if second:  # the next night's full cycle: the same sandbox and state, nothing changed
            sb.advance(GAP_S)
            run_job(runtime, "full")
            after_stats = sb.stats()
            after = calls_by_system(after_stats)
            again = {s: after[s] - calls_by_system(stats)[s] for s in SYSTEMS}
            again_ops = requests_between(stats, after_stats)
            # and the night after (nothing changed either): the steady state, since the second
            # cycle still reads back the accounts the first one wrote (the account cursor)
            sb.advance(GAP_S)
            run_job(runtime, "full")
            third_stats = sb.stats()
            third = {s: calls_by_system(third_stats)[s] - after[s] for s in SYSTEMS}
            third_ops = requests_between(after_stats, third_stats)
            after_stats, after = third_stats, calls_by_system(third_stats)
            sb.simulate(hours=1)  # an hour of activity, then one incremental cycle
            run_job(runtime, "incremental")
            later_stats = sb.stats()
            later = calls_by_system(later_stats)
            step = {s: later[s] - after[s] for s in SYSTEMS}
            step_ops = requests_between(after_stats, later_stats)
    out = report.to_dict()
    return {
        "second_full_api_calls": again,
        "incremental_api_calls": step,
        "second_full_requests": again_ops,
        "third_full_api_calls": third,
        "third_full_requests": third_ops,
        "incremental_requests": step_ops,
        "wall_s": round(wall, 2),
        "people": out["people"],
        "people_per_s": round(out["people"] / wall, 1),
        "api_calls": calls_by_system(stats),
        "records_written": {s: stats[s]["records_written"] for s in SYSTEMS},
        "tasks_created": {s: stats[s]["tasks_created"] for s in SYSTEMS},
        "duplicate_task_keys": sum(stats[s]["duplicate_task_keys"] for s in SYSTEMS),
        "stopped_reason": out.get("stopped_reason"),
        "accounts_evaluated": out.get("accounts_evaluated", 0),
        "accounts_mqa": out.get("accounts_mqa", 0),
        "requests": {s: {k: v for k, v in sorted(stats[s]["requests"].items()) if v}
                     for s in SYSTEMS},
    }


def spawn_worker(name: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "leadsync.tasks", "worker", "-n", f"{name}@%h",
         "--concurrency=1", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir,
    )  # fmt: skip


def wait_for_full(client: redis.Redis, timeout: float) -> dict[str, Any]:
    """The full job's summary once a worker recorded it (a run refused the lock is retried)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = [json.loads(r) for r in client.lrange("leadsync:reports", 0, -1)]  # type: ignore[union-attr]
        full = [r for r in reports if r.get("job") == "full" and not r.get("skipped")]
        if full:
            return full[0]
        time.sleep(0.2)
    raise TimeoutError(f"the full re-evaluation did not finish within {timeout:.0f}s")


def run_celery(
    people: int, seed: int, workers: int, redis_url: str, hs_limit: int
) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    procs: list[subprocess.Popen[bytes]] = []
    with (
        Sandbox(contacts=people, seed=seed, hubspot_rate_limit=hs_limit) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
        env.update(sb.env, LEADSYNC_REDIS_URL=redis_url, LEADSYNC_LOG_LEVEL="WARNING",
                   LEADSYNC_TASK_TIME_LIMIT_SECONDS="1500",
                   LEADSYNC_BROKER_VISIBILITY_TIMEOUT_SECONDS="1800")  # fmt: skip
        try:
            procs = [spawn_worker(f"bench{i}", env, Path(tmp)) for i in range(workers)]
            time.sleep(4)  # workers connected and idle before the clock starts
            point_env_at(sb.env, redis_url)  # not the previous run's (gone) sandbox
            app = create_app(Settings(redis_url=redis_url))
            started = time.time()
            app.send_task(TASK_FULL)
            full = wait_for_full(client, timeout=1800)
            ended = datetime.fromisoformat(full["finished_at"].replace("Z", "+00:00"))
            wall = ended.timestamp() - started
            stats = sb.stats()
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            client.flushdb()
    evaluated = int(full.get("people") or 0)
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "job_duration_s": round(float(full.get("duration_s") or 0.0), 2),
        "people": evaluated,
        "people_per_s": round(evaluated / wall, 1),
        "api_calls": calls_by_system(stats),
        "records_written": {s: stats[s]["records_written"] for s in SYSTEMS},
        "tasks_created": {s: stats[s]["tasks_created"] for s in SYSTEMS},
        "duplicate_task_keys": sum(stats[s]["duplicate_task_keys"] for s in SYSTEMS),
        "stopped_reason": full.get("stopped_reason"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--hubspot-rate-limit", type=int, default=100, help="per 10 s")
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--accounts-only", action="store_true",
                        help="only the with/without accounts comparison")
    parser.add_argument("--accounts-rate-limit", type=int, default=1000, help="per 10 s")
    args = parser.parse_args()
    hs_limit = args.hubspot_rate_limit
    result: dict[str, Any] = {"people": args.people, "seed": args.seed, "cpus": os.cpu_count(),
                              "hubspot_rate_limit_per_10s": hs_limit}  # fmt: skip
    result["accounts_cost"] = accounts_cost(args.people, args.seed, args.accounts_rate_limit)
    if args.accounts_only:
        print(json.dumps(result))
        return
    rates = allowed_rate_per_s(hs_limit)
    base = run_in_process(args.people, args.seed, hs_limit)
    bound = rate_bound(base["api_calls"], rates)
    result["allowed_rate_per_s"] = rates
    result["bound_s_by_crm"] = bound["by_crm"]
    result["bound_s"] = bound["bound_s"]
    result["burst_floor_s"] = bound["burst_floor_s"]
    against(base, bound, base["api_calls"])
    result["in_process"] = base
    if not args.skip_celery:
        one = run_celery(args.people, args.seed, 1, args.redis_url, hs_limit)
        two = run_celery(args.people, args.seed, 2, args.redis_url, hs_limit)
        against(one, bound, base["api_calls"])
        against(two, bound, base["api_calls"])
        result["celery_1_worker"], result["celery_2_workers"] = one, two
        result["speedup_2_vs_1"] = round(one["wall_s"] / two["wall_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
