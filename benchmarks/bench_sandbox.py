"""Sandbox benchmark: seeding time for N contacts and server latency for 100-record batches.

Prints one JSON object: seed_seconds, batch_read_ms / batch_update_ms (p50, p95) measured over a
keep-alive connection (what the SDKs' pools do), the same through hubspot-api-client, search_ms
p50 (lastmodifieddate GTE over all contacts) and sf_collection_ms p50 (200-record PATCH).

    python benchmarks/bench_sandbox.py [--contacts 100000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import time
from collections.abc import Callable
from typing import Any

from hubspot import Client
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

from leadsync.sandbox import Sandbox


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(len(ordered) * 0.95) - 1], 2),
    }


def _timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _post(
    conn: http.client.HTTPConnection, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    conn.request("POST", path, json.dumps(body), {**headers, "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status not in (200, 207):
        raise RuntimeError(f"{path}: HTTP {response.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    box = Sandbox(contacts=args.contacts, seed=7, hubspot_rate_limit=1_000_000)
    started = time.perf_counter()
    box.seed_data()
    seed_seconds = time.perf_counter() - started
    with box:
        ids = sorted(box.data.hs_contacts, key=int)
        batches = [ids[i : i + 100] for i in range(0, min(len(ids), 100 * args.rounds), 100)]
        auth = {"Authorization": f"Bearer {box.hubspot_token}"}
        conn = http.client.HTTPConnection("127.0.0.1", int(box.hubspot_url.rsplit(":", 1)[1]))
        props = ["email", "firstname", "lastname", "jobtitle", "lifecyclestage", "leadsync_score"]
        turn = iter(range(10**9))

        def read() -> None:
            batch = batches[next(turn) % len(batches)]
            body = {"properties": props, "inputs": [{"id": i} for i in batch]}
            _post(conn, "/crm/v3/objects/contacts/batch/read", body, auth)

        def update() -> None:
            batch = batches[next(turn) % len(batches)]
            inputs = [
                {"id": i, "properties": {"leadsync_score": str(n % 150)}}
                for n, i in enumerate(batch)
            ]
            _post(conn, "/crm/v3/objects/contacts/batch/update", {"inputs": inputs}, auth)

        since = str(int((box.now().timestamp() - 7 * 86400) * 1000))
        search_body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "limit": 200,
        }

        def search() -> None:
            _post(conn, "/crm/v3/objects/contacts/search", search_body, auth)
            time.sleep(0.21)  # stay under the 5/second search limit

        sdk = Client.create(
            access_token=box.hubspot_token, host=box.hubspot_url
        ).crm.contacts.batch_api

        def sdk_read() -> None:
            batch = batches[next(turn) % len(batches)]
            sdk.read(
                BatchReadInputSimplePublicObjectId(
                    properties=props,
                    properties_with_history=[],
                    inputs=[SimplePublicObjectId(id=i) for i in batch],
                )
            )

        sf_ids = [lead["Id"] for lead in box.data.sf["Lead"].values()][:200]
        box.salesforce.instance = box.salesforce_url.removeprefix("https://")
        context = ssl.create_default_context(cafile=box.ca_bundle)
        sf_conn = http.client.HTTPSConnection(
            "127.0.0.1", int(box.salesforce_url.rsplit(":", 1)[1]), context=context
        )
        sid = box.salesforce._new_session()

        def sf_patch() -> None:
            records = [
                {"attributes": {"type": "Lead"}, "id": i, "LeadSync_Score__c": 10} for i in sf_ids
            ]
            sf_conn.request(
                "PATCH",
                "/services/data/v59.0/composite/sobjects",
                json.dumps({"allOrNone": False, "records": records}),
                {"Authorization": f"Bearer {sid}", "Content-Type": "application/json"},
            )
            sf_conn.getresponse().read()

        read(), update(), sdk_read(), sf_patch()  # warm up connections
        result = {
            "contacts": args.contacts,
            "seed_seconds": round(seed_seconds, 2),
            "hubspot_events": len(box.data.hs_events),
            "hubspot_email_events": len(box.data.hs_email_events),
            "hubspot_form_submissions": sum(len(v) for v in box.data.hs_form_submissions.values()),
            "salesforce_records": sum(len(v) for v in box.data.sf.values()),
            "batch_read_ms": _percentiles(_timed(read, args.rounds)),
            "batch_update_ms": _percentiles(_timed(update, args.rounds)),
            "sdk_batch_read_ms": _percentiles(_timed(sdk_read, args.rounds)),
            "search_ms": {
                "p50": round(statistics.median([t - 210 for t in _timed(search, 15)]), 2)
            },
            "sf_collection_200_ms": _percentiles(_timed(sf_patch, max(10, args.rounds // 4))),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
