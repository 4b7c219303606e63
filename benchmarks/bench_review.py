"""Benchmark: `leadsync review` over N people (default 10,000) and 6 months of history.

One sandbox (seed 1, with the HubSpot deal history, HubSpot's 100-per-10-s rate limit), one
review in this process as `leadsync review --lookback-days 180` runs it (snapshot 180 days
ago, outcomes up to now). Prints one JSON object: wall time by phase (read, score + figures),
API calls by system against the page minimum (the fewest requests the vendors' page sizes
allow for the same reads: HubSpot contacts and deals 100 a page plus the engagement floor of
bench_connectors; Salesforce 2,000 rows a query page for every object read, plus the login),
records, events and deals read, and the headline figures.

    python benchmarks/bench_review.py [--people 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import timedelta
from typing import Any

from bench_connectors import engagement_minimum

from leadsync.commands.common import environ
from leadsync.commands.review import run_review
from leadsync.config.settings import load_settings
from leadsync.runtime import build_runtime
from leadsync.sandbox import Sandbox
from leadsync.state import InMemoryStateStore

LOOKBACK_DAYS = 180


def salesforce_minimum(sb: Any, since_ms: float) -> int:
    """Query pages of 2,000 rows for every object the review reads (each query at least one
    page), plus the login."""
    sf = sb.data.sf
    leads = len(sf["Lead"])
    converted_opps = sum(1 for r in sf["Lead"].values() if r.get("ConvertedOpportunityId"))
    status_rows = sum(1 for r in sf["LeadHistory"].values() if r.get("Field") == "Status")
    pages = [leads, len(sf["Contact"]), len(sf["User"]), status_rows,
             len(sf["OpportunityContactRole"]), converted_opps, len(sf["OpportunityHistory"]),
             len(sf["Task"]), len(sf["Event"]), len(sf["CampaignMember"]),
             len(sf["OpportunityContactRole"]), converted_opps, len(sf["OpportunityHistory"])]
    del since_ms  # activity is read whole at this window: every row is younger than it
    return 1 + sum(max(1, math.ceil(n / 2000)) for n in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    with Sandbox(contacts=args.people, seed=args.seed, deals=True) as sb, \
            environ({**sb.env, "LEADSYNC_REDIS_URL": "", "LEADSYNC_RULES_FILE": ""}):
        seeded = time.perf_counter() - started
        settings = load_settings().model_copy(update={"redis_url": None})
        runtime = build_runtime(settings, state=InMemoryStateStore(), clock=sb.now)
        phases: dict[str, float] = {}
        mark = time.perf_counter()

        def say(line: str) -> None:
            if line.startswith("read hubspot deals") or line.startswith("read salesforce deals"):
                phases["read_s"] = round(time.perf_counter() - mark, 2)

        report = run_review(runtime, lookback_days=LOOKBACK_DAYS, quiet=True, say=say)
        total = time.perf_counter() - mark
        as_of = sb.now() - timedelta(days=LOOKBACK_DAYS)
        since = as_of - timedelta(days=runtime.model.lookback_days)
        data = sb.data
        hs_minimum = (math.ceil(len(data.hs_contacts) / 100) + max(1, math.ceil(
            len(data.hs_deals) / 100)) + engagement_minimum(sb, since) + 1)  # + owners
        calls = report["read"]["calls"]
        out = {
            "people_seeded": args.people, "seed": args.seed, "lookback_days": LOOKBACK_DAYS,
            "seed_s": round(seeded, 2), "read_s": phases.get("read_s"),
            "score_and_figures_s": round(total - phases.get("read_s", 0.0), 2),
            "wall_s": round(total, 2),
            "calls": calls,
            "page_minimum": {"hubspot": hs_minimum,
                             "salesforce": salesforce_minimum(sb, since.timestamp() * 1000)},
            "records": report["read"]["records"], "events": report["read"]["events"],
            "deal_links": report["read"]["deals"], "cohort": report["people"],
            "outcomes": report["outcomes"], "auc": report["auc"]["current"],
        }
        out["calls_over_minimum"] = {s: round(calls[s] / out["page_minimum"][s], 3)
                                     for s in calls}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
