"""Benchmark the routing open counts on a real Redis (docs/routing.md, "Capacity").

What a full run of N people costs the state store: `set_open_owners` for everyone in pages
of 1,000 (a share `--open` of them open, owned by one of `--reps` reps, the rest None), the
same again (a second full run: nothing moves), 1,000 `take_turn`s through a 3-rep pool, and
the end-of-run sweep (`sweep_open_owners`) after 1% of the people vanished. Reports seconds
per step, how many counts moved, and the Redis memory of the two count hashes.
Prints one JSON object. Usage:
python benchmarks/bench_routing_counts.py [--people N] [--open F] [--reps R] [--redis URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

import redis

from leadsync.owner_routing import sweep_open_owners
from leadsync.state import RedisStateStore

NAMESPACE = "leadsync-bench-routing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--open", type=float, default=0.2)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis", default=os.environ.get("LEADSYNC_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/13"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    client = redis.Redis.from_url(args.redis, decode_responses=True)
    store = RedisStateStore(client, namespace=NAMESPACE)
    store.clear()
    people = {f"p-{i:024x}": (f"rep{rng.randrange(args.reps)}@example.com"
                              if rng.random() < args.open else None)
              for i in range(args.people)}
    out: dict[str, Any] = {"people": args.people, "open": sum(v is not None
                                                              for v in people.values()),
                           "reps": args.reps}
    try:
        items = list(people.items())
        for label in ("first_full_run", "second_full_run"):
            started, moved = time.perf_counter(), 0
            for start in range(0, len(items), 1000):
                moved += store.set_open_owners(dict(items[start:start + 1000]))
            out[f"{label}_s"] = round(time.perf_counter() - started, 3)
            out[f"{label}_moved"] = moved
        pool = (("rep0@example.com", 2), ("rep1@example.com", 1), ("rep2@example.com", 1))
        started = time.perf_counter()
        for i in range(1000):
            store.take_turn("bench", f"new-{i}", pool, None)
        out["take_turn_per_s"] = round(1000 / (time.perf_counter() - started))
        seen = {p for p in people if rng.random() >= 0.01} | {f"new-{i}" for i in range(1000)}
        started = time.perf_counter()
        out["sweep_dropped"] = sweep_open_owners(store, seen)
        out["sweep_s"] = round(time.perf_counter() - started, 3)
        mem = {k: client.memory_usage(store._k("routing", k)) or 0 for k in ("owner", "load")}
        out["redis_bytes"] = mem
        out["loads_sum_equals_owner_entries"] = (
            sum(store.owner_loads([f"rep{r}@example.com" for r in range(args.reps)]).values())
            == len(store.open_owners()))
    finally:
        store.clear()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
