"""API efficiency of the connectors against the sandbox (prints one JSON object).

1. Full read + write-back of every person: calls used vs. the minimum the vendors' page and
   batch sizes imply (HubSpot: list pages of 100 + batch updates of 100; Salesforce: SOQL pages
   of 2,000 per object + Collections of 200). Target: ratio <= 1.2.
2. Incremental runs where 1 % and 5 % of people changed: calls must scale with the changes,
   not with the total.
3. HubSpot engagement (v3 events, email events, form submissions, contacts read by email):
   a full 180-day read vs. the minimum the page sizes imply (events 100, email events 1,000 per
   type, forms 100, submissions 50 per form, batch read 100 distinct emails), and incremental
   reads after simulated hours: a constant floor (one request per stream and form) plus pages
   in proportion to the new activity.
4. Salesforce sales read (`iter_sales_changes`): a quiet read (2 calls: contact roles and
   conversions changed since the cursor) and one after 1 % of the open opportunities closed,
   with the affected Contacts read back (their roles, converted Leads and stage history).

Usage: python benchmarks/bench_connectors.py [--contacts 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from leadsync.config.settings import load_settings
from leadsync.connectors.base import Connector, CrmPerson, FieldUpdate
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.connectors.salesforce.adapter import SalesforceConnector
from leadsync.sandbox import Sandbox
from leadsync.scoring.evaluation import Reason

REASONS = (Reason("pricing", "料金ページを閲覧", 15.0), Reason("blog", "ブログ記事を閲覧", 3.0))


def target(i: int, salt: int) -> dict[str, object]:
    return {"score": (i * 7 + salt) % 150, "engagement": (i + salt) % 90,
            "fit_grade": "ABCD"[i % 4], "reasons": REASONS, "model": f"bench-{salt}",
            "sla_status": "none"}  # fmt: skip


def write_all(conn: Connector, people: list[CrmPerson], salt: int) -> int:
    updates = [FieldUpdate(p.ref, target(i, salt), p.current) for i, p in enumerate(people)]
    result = conn.write_updates(updates)
    if result.failed:
        raise SystemExit(f"{len(result.failed)} writes failed: {result.failed[0].reason}")
    return len(result.written)


def minimum(system: str, people: list[CrmPerson]) -> int:
    n = len(people)
    if system == "hubspot":
        return math.ceil(n / 100) * 2
    leads = sum(1 for p in people if p.ref.object_type == "Lead")
    return math.ceil(leads / 2000) + math.ceil((n - leads) / 2000) + math.ceil(n / 200)


def engagement_minimum(sb: Any, since: datetime) -> int:
    """Fewest HubSpot requests that can return all engagement since `since` (from the store)."""
    data, ms = sb.data, since.timestamp() * 1000
    v3 = sum(1 for e in data.hs_events if e[0] >= ms)
    email = Counter(e[3] for e in data.hs_email_events if e[0] >= ms)
    emails = {e[2].lower() for e in data.hs_email_events if e[0] >= ms}
    pages = max(1, math.ceil(v3 / 100)) + math.ceil(len(data.hs_forms) / 100)
    pages += sum(max(1, math.ceil(email[t] / 1000)) for t in ("OPEN", "CLICK", "STATUSCHANGE"))
    for rows in data.hs_form_submissions.values():
        recent = [r for r in rows if r[0] >= ms]
        emails.update(r[2].lower() for r in recent)
        pages += max(1, math.ceil(len(recent) / 50))
    return pages + math.ceil(len(emails) / 100)


def bench_engagement(sb: Any, conn: HubSpotConnector) -> dict[str, Any]:
    since = sb.now() - timedelta(days=180)
    calls, seconds, events = measure(conn, lambda: list(conn.iter_engagement(since)))
    floor = engagement_minimum(sb, since)
    full = {"events": len(events), "calls": calls, "minimum_calls": floor,
            "ratio": round(calls / floor, 3), "seconds": seconds}  # fmt: skip
    out: dict[str, Any] = {"full": full}
    for hours in (1, 24):
        cursor = sb.now()
        sb.simulate(hours=hours)
        calls, seconds, events = measure(conn, lambda c=cursor: list(conn.iter_engagement(c)))
        out[f"incremental_{hours}h"] = {"events": len(events), "calls": calls,
                                        "minimum_calls": engagement_minimum(sb, cursor),
                                        "seconds": seconds}  # fmt: skip
    return out


def measure(conn: Connector, fn: Callable[[], Any]) -> tuple[int, float, Any]:
    before, start = conn.api_calls(), time.perf_counter()
    out = fn()
    return conn.api_calls() - before, round(time.perf_counter() - start, 2), out


def incremental(sb: Any, conn: Connector, people: list[CrmPerson], share: float) -> dict[str, Any]:
    """Change `share` of the people (through the CRM), then read changes and write them back."""
    sb.advance(60)
    cursor = sb.now()
    sb.advance(1)
    step = max(1, round(1 / share))
    changed = people[::step]
    write_all(conn, changed, salt=int(share * 1000) + 1)  # "someone else" edits them
    sb.advance(60)

    def run() -> int:
        found = list(conn.iter_changed_people(cursor))
        write_all(conn, found, salt=int(share * 1000) + 2)
        return len(found)

    calls, seconds, found = measure(conn, run)
    return {"changed": len(changed), "read_back": found, "calls": calls, "seconds": seconds}


def bench_sales(sb: Any, conn: SalesforceConnector) -> dict[str, Any]:
    """Calls of the sales read when nothing changed, and after 1 % of open opportunities closed
    (through REST, as a rep would), including reading the affected Contacts back."""
    sb.advance(60)
    cursor = sb.now()
    sb.advance(1)
    quiet_calls, quiet_s, quiet = measure(conn, lambda: list(conn.iter_sales_changes(cursor)))
    opened = [oid for oid, opp in sb.data.sf["Opportunity"].items() if not opp.get("IsClosed")]
    closing = opened[: max(1, len(opened) // 100)]
    for oid in closing:
        conn.client.sf.Opportunity.update(oid, {"StageName": "Closed Won"})
    sb.advance(60)

    def run() -> tuple[int, int]:
        changes = list(conn.iter_sales_changes(cursor))
        return len(changes), len(conn.read_people(sorted({c.person for c in changes})))

    calls, seconds, (changes, people) = measure(conn, run)
    return {"quiet": {"changes": len(quiet), "calls": quiet_calls, "seconds": quiet_s},
            "closed_1pct": {"opportunities_closed": len(closing), "changes": changes,
                            "people_read": people, "calls": calls, "seconds": seconds}}  # fmt: skip


def bench_system(sb: Any, conn: Connector) -> dict[str, Any]:
    read_calls, read_s, people = measure(conn, lambda: list(conn.iter_changed_people(None)))
    write_calls, write_s, written = measure(conn, lambda: write_all(conn, people, salt=0))
    full = read_calls + write_calls
    floor = minimum(conn.system, people)
    return {
        "people": len(people), "written": written,
        "full": {"read_calls": read_calls, "write_calls": write_calls, "calls": full,
                 "minimum_calls": floor, "ratio": round(full / floor, 3),
                 "seconds": round(read_s + write_s, 2)},
        "incremental_1pct": incremental(sb, conn, people, 0.01),
        "incremental_5pct": incremental(sb, conn, people, 0.05),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    with Sandbox(contacts=args.contacts, seed=args.seed, hubspot_rate_limit=190) as sb:
        os.environ.update(sb.env)
        os.environ["LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S"] = "190"
        settings = load_settings()
        report: dict[str, Any] = {"benchmark": "connectors", "contacts": args.contacts,
                                  "seed": args.seed}  # fmt: skip
        for conn in (HubSpotConnector(settings.hubspot),
                     SalesforceConnector(settings.salesforce)):  # fmt: skip
            report[conn.system] = bench_system(sb, conn)
            if isinstance(conn, HubSpotConnector):
                report["hubspot_engagement"] = bench_engagement(sb, conn)
            else:
                report["salesforce_sales"] = bench_sales(sb, conn)
        stats = sb.stats()
        report["hubspot"]["rate_limited_429"] = stats["hubspot"]["rate_limited"]
        report["seconds_total"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
