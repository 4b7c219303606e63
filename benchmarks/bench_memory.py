"""Benchmark: peak memory (RSS) of one full cycle, by the number of people (issue 9's target).

For each size, a sandbox is served in its own process (`leadsync sandbox serve`, its rate limit
raised so the run is not paced), and `leadsync sync --once --full --json` runs in another
process, so what is measured is leadsync's own process: its peak resident set size
(`ru_maxrss` from `wait4`), wall time and the cycle's own summary. The state store is Redis at
`--redis-url` (its `leadsync` namespace is cleared before and after each run: use a db of
your own), as in production; without it, the in-memory store, which holds every person's
state in the process by definition (so it cannot be flat). Prints one JSON object:

    {"store": "redis" | "memory",
     "runs": [{"people": ..., "peak_rss_mb": ..., "kb_per_person": ..., "wall_s": ...,
               "exit_code": ..., "records_written": {...}}, ...],
     "target": "peak RSS < 400 MB at 100k people and no higher at 200k"}

    python benchmarks/bench_memory.py [--people 10000,50000,100000] [--seed 7]
        [--redis-url redis://127.0.0.1:6379/N]  (default: $LEADSYNC_BENCH_REDIS_URL)

The figure includes the interpreter and imported libraries (about 90 MB before any person is
read); `kb_per_person` is the slope between the smallest and each larger size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RATE = 1_000  # leadsync's highest HubSpot rate setting (per 10 s): the run is barely paced


def _env_from(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip("'\"")
    return env


def _clear(redis_url: str) -> None:
    from leadsync.state_redis import connect

    connect(redis_url).clear()


def measure(people: int, seed: int, redis_url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "sandbox.env"
        base = {k: v for k, v in os.environ.items() if not k.startswith("LEADSYNC_")}
        serve = subprocess.Popen(
            [sys.executable, "-m", "leadsync", "sandbox", "serve", "--contacts", str(people),
             "--seed", str(seed), "--rate-limit", str(RATE), "--env-file", str(env_file)],
            env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 1800
            while not (env_file.exists() and env_file.stat().st_size):
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sandbox with {people} contacts did not start")
                time.sleep(0.2)
            if redis_url:
                _clear(redis_url)
                base = {**base, "LEADSYNC_REDIS_URL": redis_url}
            env = {**base, **_env_from(env_file),
                   "LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S": str(RATE),
                   "LEADSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
            started = time.monotonic()
            out_path, err_path = Path(tmp) / "out.json", Path(tmp) / "err.txt"
            with out_path.open("w") as out_f, err_path.open("w") as err_f:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "leadsync", "sync", "--once", "--full", "--json"],
                    env=env, stdout=out_f, stderr=err_f,
                )  # fmt: skip
                _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - started
            out, err = out_path.read_text(), err_path.read_text()
        finally:
            serve.terminate()
            serve.wait(timeout=60)
            if redis_url:  # a 200k run leaves ~1 GB in Redis otherwise
                _clear(redis_url)
    summary: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        summary = json.loads(out)
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    return {
        "people": people,
        "peak_rss_mb": round(peak_mb, 1),
        "wall_s": round(wall, 1),
        "exit_code": os.waitstatus_to_exitcode(status),
        "records_written": summary.get("records_written"),
        **({"error": err.strip()[-500:]} if os.waitstatus_to_exitcode(status) else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="10000,50000,100000",
                        help="comma-separated sizes")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default=os.environ.get("LEADSYNC_BENCH_REDIS_URL"),
                        help="state store of the measured runs (its leadsync namespace is "
                             "cleared); default: the in-memory store")  # fmt: skip
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.people.split(",") if s.strip())
    runs = [measure(n, args.seed, args.redis_url) for n in sizes]
    for run in runs[1:]:
        grew = run["peak_rss_mb"] - runs[0]["peak_rss_mb"]
        run["kb_per_person"] = round(grew * 1024 / (run["people"] - runs[0]["people"]), 2)
    target = "peak RSS < 400 MB at 100k people and no higher at 200k"
    print(json.dumps({"store": "redis" if args.redis_url else "memory", "runs": runs,
                      "target": target}))


if __name__ == "__main__":
    main()
