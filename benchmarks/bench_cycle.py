"""Benchmark: one full re-evaluation cycle over N people (default 10,000) against the sandbox.

Three runs, each on a freshly seeded sandbox (same seed) and a cold state:
1. `in_process`: `run_job(runtime, "full")` in this process with the in-memory store;
2. `celery_1_worker`: `leadsync.full_reevaluation` fanned out in chunks to one real Celery
   worker process (Redis broker and state, db 15 by default);
3. `celery_2_workers`: the same with two worker processes; `speedup_2_vs_1` is the ratio of
   wall times (1 worker / 2 workers).
Wall time runs from dispatch to the last chunk's end. API calls are the sandbox's own request
counters by system. Prints one JSON object.

    python benchmarks/bench_cycle.py [--people 10000] [--seed 1] [--skip-celery]
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

from leadsync.config.settings import Settings, load_settings
from leadsync.sandbox import Sandbox
from leadsync.tasks.celery_app import TASK_FULL, create_app

SYSTEMS = ("hubspot", "salesforce")


def calls_by_system(stats: dict[str, Any]) -> dict[str, int]:
    return {s: sum(stats[s]["requests"].values()) for s in SYSTEMS}


def point_env_at(env: dict[str, str], redis_url: str | None) -> None:
    """Make this process's LEADSYNC_* environment exactly the sandbox's (plus Redis)."""
    for key in [k for k in os.environ if k.startswith("LEADSYNC_")]:
        del os.environ[key]
    os.environ.update(env)
    if redis_url:
        os.environ["LEADSYNC_REDIS_URL"] = redis_url


def run_in_process(people: int, seed: int, hs_limit: int) -> dict[str, Any]:
    from leadsync.pipeline import run_job
    from leadsync.runtime import build_runtime

    with Sandbox(contacts=people, seed=seed, hubspot_rate_limit=hs_limit) as sb:
        point_env_at(sb.env, None)
        runtime = build_runtime(load_settings())
        started = time.perf_counter()
        report = run_job(runtime, "full")
        wall = time.perf_counter() - started
        stats = sb.stats()
    out = report.to_dict()
    return {
        "wall_s": round(wall, 2),
        "people": out["people"],
        "people_per_s": round(out["people"] / wall, 1),
        "api_calls": calls_by_system(stats),
        "records_written": {s: stats[s]["records_written"] for s in SYSTEMS},
        "tasks_created": {s: stats[s]["tasks_created"] for s in SYSTEMS},
        "stopped_reason": out.get("stopped_reason"),
    }


def spawn_worker(name: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "leadsync.tasks", "worker", "-n", f"{name}@%h",
         "--concurrency=1", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir,
    )  # fmt: skip


def wait_for_fanout(client: redis.Redis, timeout: float) -> tuple[dict[str, Any], list[dict]]:
    """The full job's summary and its chunk summaries, once every chunk reported."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = [json.loads(r) for r in client.lrange("leadsync:reports", 0, -1)]  # type: ignore[union-attr]
        full = [r for r in reports if r.get("job") == "full" and not r.get("skipped")]
        chunks = [r for r in reports if r.get("job") == "chunk" and not r.get("skipped")]
        if full and len(chunks) >= full[0].get("chunks", 0):
            return full[0], chunks
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
            app = create_app(Settings(redis_url=redis_url))
            started = time.time()
            app.send_task(TASK_FULL)
            full, chunks = wait_for_fanout(client, timeout=1800)
            ends = [datetime.fromisoformat(c["finished_at"].replace("Z", "+00:00")).timestamp()
                    for c in chunks]  # fmt: skip
            wall = max(ends, default=time.time()) - started
            stats = sb.stats()
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
            client.flushdb()
    evaluated = sum(int(c.get("people") or 0) for c in chunks)
    return {
        "workers": workers,
        "wall_s": round(wall, 2),
        "chunks": full.get("chunks"),
        "people": evaluated,
        "people_per_s": round(evaluated / wall, 1),
        "api_calls": calls_by_system(stats),
        "records_written": {s: stats[s]["records_written"] for s in SYSTEMS},
        "duplicate_task_keys": sum(stats[s]["duplicate_task_keys"] for s in SYSTEMS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--hubspot-rate-limit", type=int, default=100, help="per 10 s")
    parser.add_argument("--skip-celery", action="store_true")
    args = parser.parse_args()
    hs_limit = args.hubspot_rate_limit
    result: dict[str, Any] = {"people": args.people, "seed": args.seed, "cpus": os.cpu_count(),
                              "hubspot_rate_limit_per_10s": hs_limit}  # fmt: skip
    result["in_process"] = run_in_process(args.people, args.seed, hs_limit)
    if not args.skip_celery:
        one = run_celery(args.people, args.seed, 1, args.redis_url, hs_limit)
        two = run_celery(args.people, args.seed, 2, args.redis_url, hs_limit)
        result["celery_1_worker"], result["celery_2_workers"] = one, two
        result["speedup_2_vs_1"] = round(one["wall_s"] / two["wall_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
