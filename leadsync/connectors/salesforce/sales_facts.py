"""The sales facts a Salesforce people read dates its people by, kept in a scratch store.

Two facts: a Lead's newest LeadHistory Status change (`status_dates`), and a Contact's sales
status from its opportunities (`sales`): contact roles and Leads converted with an
opportunity link Contacts to opportunities; each opportunity's outcome comes from its
OpportunityHistory rows (`opportunity_outcome`, through the connector's `outcome`).

A full read loads them for the whole org with one paged query per object before its pages are
mapped, and holds them until the last page. Held in the process, they grew with the org
(about 6 MB per 100,000 people at the sandbox's mix: issue 9's last memory remainder), so they
are written, a query page at a time, to a scratch `StateStore` (Redis in production: the
state store's kinds `sf_read_*`, dropped when the read is done) and looked up a people page
at a time. Given an `InMemoryStateStore`, the same code keeps them in the process: the
incremental read does, for a page's worth of ids, and so does a read with no store.

OpportunityHistory is read ordered by OpportunityId so one opportunity's rows are held at a
time. A whole-org read relies on that order; an opportunity whose rows come again after its
group was closed (an order the org did not keep) is noticed, logged, and re-read by id.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from simple_salesforce.format import format_soql

from leadsync.connectors.salesforce.client import soql
from leadsync.connectors.salesforce.mapping import (
    OPPORTUNITY_FIELDS,
    opportunity_status,
    parse_datetime,
)
from leadsync.state import StateStore, walk_fingerprints

log = logging.getLogger(__name__)

ID_CHUNK = 400  # ids per IN (...): keeps the GET URL under Salesforce's 16 KB
GROUPS = 500  # opportunities dated per scratch round trip
CONVERTED_WITH_OPPORTUNITY = "IsConverted = true AND ConvertedOpportunityId != null"
HISTORY_FIELDS = ("StageName", "CreatedDate")  # what dating an opportunity reads of a row

OPPORTUNITIES = "sf_read_opportunity"  # opportunity id -> its OPPORTUNITY_FIELDS (JSON list)
LINKS = "sf_read_links"  # contact id -> its opportunity ids, space-separated
OUTCOMES = "sf_read_outcome"  # opportunity id -> "<kind> <decided_at ISO>"
STATUS_AT = "sf_read_status_at"  # lead id -> newest Status change (ISO)
KINDS = (OPPORTUNITIES, LINKS, OUTCOMES, STATUS_AT)

QueryPages = Callable[[str, str], Iterable[list[dict[str, Any]]]]
Outcome = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], tuple[str, datetime]]
Sales = tuple[str | None, datetime | None]


class SalesFacts:
    """Status dates and sales statuses of one people read, in `scratch` until `clear`."""

    def __init__(self, query_pages: QueryPages, scratch: StateStore, outcome: Outcome, *,
                 fields: tuple[str, ...] = OPPORTUNITY_FIELDS,
                 ops: tuple[str, str] = ("contact roles", "converted leads")) -> None:
        self.query_pages, self.scratch, self.outcome = query_pages, scratch, outcome
        self.fields, self.ops = fields, ops  # the review's deals read Amount too

    def clear(self) -> None:
        for kind in KINDS:
            self.scratch.drop_fingerprints(kind)

    # ---- Lead Status dates -------------------------------------------------------------------
    def read_status_dates(self, wheres: Iterable[str]) -> None:
        """The newest LeadHistory row per Lead among the rows each `where` selects."""
        for where in wheres:
            query = soql("LeadId, CreatedDate", "LeadHistory", where)
            for page in self.query_pages("lead history", query):
                newest: dict[str, datetime] = {}
                for row in page:
                    at, lid = parse_datetime(row.get("CreatedDate")), str(row.get("LeadId"))
                    if at is not None and (lid not in newest or at > newest[lid]):
                        newest[lid] = at
                for lid, text in self.scratch.get_fingerprints(STATUS_AT, list(newest)).items():
                    stored = datetime.fromisoformat(text)
                    if stored >= newest[lid]:
                        del newest[lid]  # an earlier page had a newer row
                if newest:
                    self.scratch.set_fingerprints(
                        STATUS_AT, {lid: at.isoformat() for lid, at in newest.items()})

    def status_dates(self, lead_ids: Sequence[str]) -> dict[str, datetime]:
        return {lid: datetime.fromisoformat(text) for lid, text
                in self.scratch.get_fingerprints(STATUS_AT, list(lead_ids)).items()}  # fmt: skip

    # ---- Contacts' opportunities -------------------------------------------------------------
    def read_sales(self, contact_ids: Sequence[str] | None) -> None:
        """Every Contact's opportunities and their outcomes (`None`: one paged query per
        object), or these Contacts' (`IN` chunks)."""
        if contact_ids is None:
            role_where, lead_where = [""], [CONVERTED_WITH_OPPORTUNITY]
        else:
            chunks = id_chunks(contact_ids)
            role_where = [format_soql("ContactId IN {}", c) for c in chunks]
            lead_where = [format_soql(CONVERTED_WITH_OPPORTUNITY + " AND ConvertedContactId IN {}",
                                      c) for c in chunks]  # fmt: skip
        sources = [(self.ops[0], "OpportunityContactRole", role_where, "ContactId",
                    "OpportunityId", "Opportunity"),
                   (self.ops[1], "Lead", lead_where, "ConvertedContactId",
                    "ConvertedOpportunityId", "ConvertedOpportunity")]
        linked = False
        for op, obj, wheres, contact_f, opp_f, rel in sources:  # fmt: skip
            fields = f"{contact_f}, {opp_f}, " + ", ".join(f"{rel}.{f}" for f in self.fields)
            for where in wheres:
                for page in self.query_pages(op, soql(fields, obj, where)):
                    linked = self._save_links(page, contact_f, opp_f, rel) or linked
        if not linked:
            return  # no Contact has an opportunity: no history to read
        if contact_ids is None:
            self._date_whole()
            self._date_the_rest()
        else:  # every opportunity read by id is dated, rows or not
            for chunk in id_chunks(sorted(set(self._opportunity_ids()))):
                self._date_by_id(chunk)

    def sales(self, contact_ids: Sequence[str]) -> dict[str, Sales]:
        """The sales status of each of these Contacts that has an opportunity."""
        links = self.scratch.get_fingerprints(LINKS, list(contact_ids))
        wanted = sorted({oid for oids in links.values() for oid in oids.split()})
        outcomes = {oid: _decode_outcome(text) for oid, text
                    in self.scratch.get_fingerprints(OUTCOMES, wanted).items()}  # fmt: skip
        return {contact: opportunity_status(outcomes[o] for o in oids.split() if o in outcomes)
                for contact, oids in links.items()}

    def _save_links(self, page: list[dict[str, Any]], contact_f: str, opp_f: str,
                    rel: str) -> bool:
        """Store a page's opportunities and Contact links; whether it had any."""
        opportunities: dict[str, str] = {}
        links: dict[str, list[str]] = {}
        for row in page:
            contact, oid, opp = row.get(contact_f), row.get(opp_f), row.get(rel)
            if contact and oid and isinstance(opp, dict):
                opportunities[str(oid)] = json.dumps([opp.get(f) for f in self.fields],
                                                     separators=(",", ":"))
                linked = links.setdefault(str(contact), [])
                if str(oid) not in linked:
                    linked.append(str(oid))
        if not links:
            return False
        for contact, text in self.scratch.get_fingerprints(LINKS, list(links)).items():
            before = text.split()  # an earlier page linked this Contact too
            links[contact] = before + [o for o in links[contact] if o not in before]
        self.scratch.set_fingerprints(OPPORTUNITIES, opportunities)
        self.scratch.set_fingerprints(LINKS, {c: " ".join(o) for c, o in links.items()})
        return True

    def _history(self, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        query = soql("OpportunityId, StageName, CreatedDate", "OpportunityHistory", where,
                     "OpportunityId, CreatedDate")
        for page in self.query_pages("opportunity history", query):
            for row in page:
                yield str(row.get("OpportunityId")), {f: row.get(f) for f in HISTORY_FIELDS}

    def _date_whole(self) -> None:
        """Every OpportunityHistory row of the org, one opportunity's rows at a time."""
        groups: list[tuple[str, list[dict[str, Any]]]] = []
        disordered: set[str] = set()
        current: str | None = None
        for oid, row in self._history(""):
            if oid != current:
                if len(groups) >= GROUPS:
                    disordered |= self._date_groups(groups, check=True)
                    groups = []
                groups.append((oid, []))
                current = oid
            groups[-1][1].append(row)
        disordered |= self._date_groups(groups, check=True)
        if disordered:
            log.warning("OpportunityHistory rows came out of OpportunityId order; "
                        "re-reading those opportunities by id",
                        extra={"opportunities": len(disordered)})  # fmt: skip
            for chunk in id_chunks(sorted(disordered)):
                self._date_by_id(chunk)

    def _date_by_id(self, ids: Sequence[str]) -> None:
        """These opportunities' history rows (one `IN` query, every row held: ≤ ID_CHUNK)."""
        rows: dict[str, list[dict[str, Any]]] = {oid: [] for oid in ids}
        for oid, row in self._history(format_soql("OpportunityId IN {}", list(ids))):
            rows.setdefault(oid, []).append(row)
        self._date_groups(list(rows.items()), check=False)

    def _date_groups(self, groups: list[tuple[str, list[dict[str, Any]]]], *, check: bool
                     ) -> set[str]:
        """Date these opportunities (those linked to a Contact) from their rows. With
        `check`, an opportunity met twice (in these groups, or dated before) is returned
        instead of dated: its rows were split."""
        if not groups:
            return set()
        ids = [oid for oid, _ in groups]
        opportunities = self.scratch.get_fingerprints(OPPORTUNITIES, ids)
        split: set[str] = set()
        if check:
            split = {oid for oid, n in Counter(ids).items() if n > 1}
            split |= set(self.scratch.get_fingerprints(OUTCOMES, ids))
        dated = {oid: _encode_outcome(self.outcome(self._opportunity(opportunities[oid]), rows))
                 for oid, rows in groups if oid in opportunities and oid not in split}
        if dated:
            self.scratch.set_fingerprints(OUTCOMES, dated)
        return split & set(opportunities)

    def _date_the_rest(self) -> None:
        """Opportunities with no history row (none recorded, or not visible to the user)."""
        for found in walk_fingerprints(self.scratch, OPPORTUNITIES, GROUPS):
            known = self.scratch.get_fingerprints(OUTCOMES, list(found))
            missing = {oid: _encode_outcome(self.outcome(self._opportunity(text), []))
                       for oid, text in found.items() if oid not in known}
            if missing:
                self.scratch.set_fingerprints(OUTCOMES, missing)

    def deals(self) -> list[tuple[str, str, dict[str, Any], tuple[str, datetime]]]:
        """(contact, opportunity id, its fields, its outcome) of every link read, in order
        (the review's deals: held whole, as the review holds every deal)."""
        links = {(contact, oid) for found in walk_fingerprints(self.scratch, LINKS, GROUPS)
                 for contact, oids in found.items() for oid in oids.split()}  # fmt: skip
        ids = sorted({oid for _, oid in links})
        opportunities = self.scratch.get_fingerprints(OPPORTUNITIES, ids)
        outcomes = self.scratch.get_fingerprints(OUTCOMES, ids)
        return [(contact, oid, self._opportunity(opportunities[oid]),
                 _decode_outcome(outcomes[oid])) for contact, oid in sorted(links)]

    def _opportunity(self, text: str) -> dict[str, Any]:
        return dict(zip(self.fields, json.loads(text), strict=True))

    def _opportunity_ids(self) -> Iterator[str]:
        for found in walk_fingerprints(self.scratch, OPPORTUNITIES, GROUPS):
            yield from found


def id_chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + ID_CHUNK]) for i in range(0, len(ids), ID_CHUNK)]


def _encode_outcome(outcome: tuple[str, datetime]) -> str:
    return f"{outcome[0]} {outcome[1].isoformat()}"


def _decode_outcome(text: str) -> tuple[str, datetime]:
    kind, _, at = text.partition(" ")
    return kind, datetime.fromisoformat(at)
