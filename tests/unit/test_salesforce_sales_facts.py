"""`SalesFacts`: the Salesforce people read's sales facts, kept in a scratch store.

A fake `query_pages` serves the rows in a given order, in pages of a given size, and records
each query, so the tests see exactly which queries the facts cost and what they conclude when
the org's rows come split across pages, sources and (against the ORDER BY) out of order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from leadsync.connectors.salesforce import sales_facts
from leadsync.connectors.salesforce.mapping import (
    OPPORTUNITY_FIELDS,
    opportunity_outcome,
    opportunity_status,
)
from leadsync.connectors.salesforce.sales_facts import KINDS, SalesFacts
from leadsync.state import InMemoryStateStore, walk_fingerprints


def stamp(day: int, hour: int = 12) -> str:
    return datetime(2026, 11, day, hour, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def opp(stage: str, *, closed: bool = False, won: bool = False, close: str = "2026-11-30",
        modified: str = stamp(29)) -> dict[str, Any]:
    return {"StageName": stage, "IsClosed": closed, "IsWon": won, "CloseDate": close,
            "CreatedDate": stamp(1), "LastModifiedDate": modified}  # fmt: skip


class FakeOrg:
    """Rows per object, served in list order (`page` rows a page) for any query on it; an
    `IN (...)` on OpportunityId / LeadId keeps the rows it names."""

    def __init__(self, page: int = 2) -> None:
        self.page = page
        self.rows: dict[str, list[dict[str, Any]]] = {
            "OpportunityContactRole": [], "Lead": [], "OpportunityHistory": [], "LeadHistory": []}
        self.queries: list[tuple[str, str]] = []

    def query_pages(self, op: str, query: str) -> Iterator[list[dict[str, Any]]]:
        self.queries.append((op, query))
        obj = re.search(r" FROM (\w+)", query)
        assert obj is not None
        rows = self.rows[obj.group(1)]
        inside = re.search(r"(\w+) IN \(([^)]*)\)", query)
        if inside:
            wanted = set(re.findall(r"'([^']*)'", inside.group(2)))
            rows = [r for r in rows if str(r.get(inside.group(1))) in wanted]
        for start in range(0, max(len(rows), 1), self.page):
            yield rows[start:start + self.page]


def role(contact: str, oid: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"ContactId": contact, "OpportunityId": oid, "Opportunity": fields}


def history(oid: str, stage: str, at: str) -> dict[str, Any]:
    return {"OpportunityId": oid, "StageName": stage, "CreatedDate": at}


def outcome(fields: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
            ) -> tuple[str, datetime]:
    return opportunity_outcome(fields, rows)


WON = opp("Closed Won", closed=True, won=True, modified=stamp(29))


def split_history_org(groups: int, monkeypatch: pytest.MonkeyPatch) -> FakeOrg:
    """Opportunity A, won on the 10th (its closing row), its amount edited on the 12th (a
    row in the same stage), has rows before and after B's: dated from its last row alone it
    would be won on the 12th."""
    monkeypatch.setattr(sales_facts, "GROUPS", groups)
    org = FakeOrg(page=2)
    org.rows["OpportunityContactRole"] = [role("C1", "A", WON), role("C2", "B", WON)]
    org.rows["OpportunityHistory"] = [
        history("A", "Closed Won", stamp(10)), history("B", "Closed Won", stamp(5)),
        history("A", "Closed Won", stamp(12))]  # A's rows split: the ORDER BY not kept
    return org


@pytest.mark.parametrize("groups", [1, 500])  # A dated in an earlier batch, or in the same
def test_history_out_of_opportunity_order_is_re_read_by_id(
        groups: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    org = split_history_org(groups, monkeypatch)
    facts = SalesFacts(org.query_pages, InMemoryStateStore(), outcome)
    with caplog.at_level(logging.WARNING, logger=sales_facts.__name__):
        facts.read_sales(None)

    history_queries = [q for op, q in org.queries if op == "opportunity history"]
    assert len(history_queries) == 2  # the whole read, then A by id
    assert "IN ('A')" in history_queries[1]
    assert [(r.name, r.__dict__.get("opportunities")) for r in caplog.records] == [
        (sales_facts.__name__, 1)]
    a_rows = [r for r in org.rows["OpportunityHistory"] if r["OpportunityId"] == "A"]
    assert facts.sales(["C1", "C2"]) == {
        "C1": opportunity_status([opportunity_outcome(WON, a_rows)]),
        "C2": ("won", datetime(2026, 11, 5, 12, tzinfo=UTC))}
    # dated from both of A's rows: its closing row (the 10th), not the edit (the 12th)
    assert facts.sales(["C1"])["C1"] == ("won", datetime(2026, 11, 10, 12, tzinfo=UTC))


def test_ordered_history_costs_one_query_and_dates_every_opportunity(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sales_facts, "GROUPS", 1)
    org = FakeOrg(page=2)
    lost = opp("Closed Lost", closed=True, close="2026-11-20", modified=stamp(28))
    org.rows["OpportunityContactRole"] = [
        role("C1", "A", WON), role("C2", "B", lost), role("C1", "B", lost),
        role("C3", "N", opp("Prospecting"))]  # N: no history row at all
    org.rows["Lead"] = [{"ConvertedContactId": "C3", "ConvertedOpportunityId": "B",
                         "ConvertedOpportunity": lost}]  # fmt: skip
    org.rows["OpportunityHistory"] = [
        history("A", "Prospecting", stamp(2)), history("A", "Closed Won", stamp(10)),
        history("B", "Closed Lost", stamp(15)),
        history("Z", "Closed Won", stamp(3))]  # Z: no Contact's
    facts = SalesFacts(org.query_pages, InMemoryStateStore(), outcome)
    with caplog.at_level(logging.WARNING):
        facts.read_sales(None)

    assert [op for op, _ in org.queries] == [
        "contact roles", "converted leads", "opportunity history"]
    assert caplog.records == []
    won, lost_at = datetime(2026, 11, 10, 12, tzinfo=UTC), datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert facts.sales(["C1", "C2", "C3", "C4"]) == {
        "C1": ("won", won),  # two opportunities, on two pages: any won wins
        "C2": ("lost", lost_at),
        "C3": ("opportunity_open", datetime(2026, 11, 1, 12, tzinfo=UTC)),  # N, and B converted
    }
    assert facts.deals() == [
        ("C1", "A", WON, ("won", won)), ("C1", "B", lost, ("lost", lost_at)),
        ("C2", "B", lost, ("lost", lost_at)),
        ("C3", "B", lost, ("lost", lost_at)),
        ("C3", "N", opp("Prospecting"),
         ("opportunity_open", datetime(2026, 11, 1, 12, tzinfo=UTC)))]


def test_contacts_read_by_id_date_their_opportunities_by_id() -> None:
    org = FakeOrg(page=2)
    org.rows["OpportunityContactRole"] = [role("C1", "A", WON), role("C2", "B", WON)]
    org.rows["OpportunityHistory"] = [history("A", "Closed Won", stamp(10)),
                                      history("B", "Closed Won", stamp(5))]  # fmt: skip
    facts = SalesFacts(org.query_pages, InMemoryStateStore(), outcome)
    facts.read_sales(["C1"])

    assert [(op, "IN" in q) for op, q in org.queries] == [
        ("contact roles", True), ("converted leads", True), ("opportunity history", True)]
    assert "IN ('A')" in org.queries[-1][1]
    assert facts.sales(["C1", "C2"]) == {"C1": ("won", datetime(2026, 11, 10, 12, tzinfo=UTC))}


def test_status_dates_keep_each_leads_newest_row_across_pages() -> None:
    org = FakeOrg(page=2)
    org.rows["LeadHistory"] = [
        {"LeadId": "L1", "CreatedDate": stamp(20)}, {"LeadId": "L1", "CreatedDate": stamp(3)},
        {"LeadId": "L2", "CreatedDate": stamp(4)}, {"LeadId": "L1", "CreatedDate": stamp(9)},
        {"LeadId": "L2", "CreatedDate": stamp(6)}]
    facts = SalesFacts(org.query_pages, InMemoryStateStore(), outcome)
    facts.read_status_dates(["Field = 'Status'"])

    assert len(org.queries) == 1
    assert facts.status_dates(["L1", "L2", "L3"]) == {
        "L1": datetime(2026, 11, 20, 12, tzinfo=UTC), "L2": datetime(2026, 11, 6, 12, tzinfo=UTC)}


def test_the_facts_live_in_the_scratch_store_until_cleared() -> None:
    org = split_history_org(500, pytest.MonkeyPatch())
    org.rows["LeadHistory"] = [{"LeadId": "L1", "CreatedDate": stamp(20)}]
    store = InMemoryStateStore()
    facts = SalesFacts(org.query_pages, store, outcome)
    facts.read_status_dates(["Field = 'Status'"])
    facts.read_sales(None)

    def count(kind: str) -> int:
        return len({k for found in walk_fingerprints(store, kind, 10) for k in found})

    assert {kind: count(kind) for kind in KINDS} == {
        "sf_read_opportunity": 2, "sf_read_links": 2, "sf_read_outcome": 2,
        "sf_read_status_at": 1}
    facts.clear()
    assert {kind: count(kind) for kind in KINDS} == dict.fromkeys(KINDS, 0)
    assert len(OPPORTUNITY_FIELDS) == 6  # what `opp` above gives each opportunity


def test_no_contact_with_an_opportunity_reads_no_history() -> None:
    """As before the facts moved to the store: history rows of opportunities no Contact is
    linked to cost no OpportunityHistory read."""
    org = FakeOrg(page=2)
    org.rows["OpportunityHistory"] = [history("Z", "Closed Won", stamp(3))]
    facts = SalesFacts(org.query_pages, InMemoryStateStore(), outcome)
    facts.read_sales(None)
    facts.read_sales(["C1"])
    assert [op for op, _ in org.queries] == ["contact roles", "converted leads"] * 2
    assert facts.sales(["C1"]) == {}
