"""`SalesforceConnector`: the Connector Protocol over Salesforce REST (simple-salesforce).

People: Leads and Contacts with `SystemModstamp >=` the cursor, deduped by Id; a converted
Lead is replaced by its Contact. Lead sales status comes from Lead Status (configured table)
dated by the newest LeadHistory row; Contact status from its opportunities (contact roles and
converted Leads' `ConvertedOpportunityId`), dated by CloseDate or OpportunityHistory, never by
LastModifiedDate. Sales changes: contact roles, opportunities and conversions changed since a
cursor (`iter_sales_changes`), because closing an opportunity leaves the Contact untouched.
Engagement: rep Tasks/Events (sales touches) and webinar CampaignMembers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simple_salesforce.format import format_soql

from leadsync.config.settings import SalesforceSettings
from leadsync.connectors.base import (
    AccountLinks,
    ConnectorError,
    CrmAccount,
    CrmPerson,
    Deal,
    EngagementEvent,
    FieldUpdate,
    FollowUpTask,
    RecordRef,
    SalesChange,
    System,
    TaskResult,
    WriteResult,
)
from leadsync.connectors.http import RetryPolicy, utc_now
from leadsync.connectors.ratelimit import DailyBudget
from leadsync.connectors.salesforce import accounts, metadata, writes
from leadsync.connectors.salesforce.client import SalesforceClient, soql
from leadsync.connectors.salesforce.mapping import (
    CLOSED_STAGES,
    CONTACT_FIELDS,
    LEAD_FIELDS,
    OPPORTUNITY_FIELDS,
    activity_to_event,
    map_lead_status,
    member_to_event,
    opportunity_outcome,
    parse_datetime,
    record_to_person,
)
from leadsync.connectors.salesforce.sales_facts import ID_CHUNK, SalesFacts, id_chunks
from leadsync.state import InMemoryStateStore, StateStore

log = logging.getLogger(__name__)
OWNER_CACHE = timedelta(minutes=15)
DEAL_FIELDS = (*OPPORTUNITY_FIELDS, "Amount")
CHANGED_PAGE = 2_000  # an incremental read's records per staged page (a SOQL page's size)
TAIL_IDS = 1_000  # at most this many ids of the resume point's second are kept


def _soql_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SalesforceConnector:
    """Salesforce Leads/Contacts, activity, field writes and Tasks (DESIGN §2, §4-§6)."""

    system: System = "salesforce"

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        redis: Any | None = None,
        clock: Callable[[], datetime] = utc_now,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.fields = settings.fields
        self.clock = clock
        org = settings.username or settings.instance_url or "default"
        prefix = f"leadsync:sf:{hashlib.sha256(org.encode()).hexdigest()[:12]}:budget"
        self.budget = DailyBudget(
            settings.daily_budget_share, redis=redis, key_prefix=prefix, clock=clock
        )
        self.client = SalesforceClient(settings, budget=self.budget, policy=policy, sleep=sleep)
        self._owners: dict[str, str] | None = None
        self._owners_at: datetime | None = None
        self._unknown_statuses: set[str] = set()
        self._closed_stages: frozenset[str] | None = None
        self._account_fields: tuple[str, ...] | None = None
        # (since, Accounts deleted since) as the last finished cursor read of Accounts saw
        self._deleted_seen: tuple[datetime, list[RecordRef]] | None = None
        written = tuple(self.fields.model_dump().values())
        self._lead_fields = ", ".join(LEAD_FIELDS + written)
        self._contact_fields = ", ".join(CONTACT_FIELDS + written)

    def api_calls(self) -> int:
        return self.client.api_calls()

    # ---- accounts (docs/accounts.md) ----------------------------------------------------------
    def iter_accounts(self, since: datetime | None = None) -> Iterator[CrmAccount]:
        """Every Account (or those modified at or after `since`); the target-account checkbox
        when the org has one. A read with `since` goes through queryAll and also notes the
        Accounts deleted since, which `deleted_accounts(since)` then returns without a query."""
        if self._account_fields is None:
            self._account_fields = accounts.account_fields(self.client)
        if since is None:
            return accounts.iter_accounts(self.client, self._account_fields)
        return self._changed_accounts(since, self._account_fields)

    def _changed_accounts(self, since: datetime, fields: Sequence[str]
                          ) -> Iterator[CrmAccount]:
        self._deleted_seen = None
        deleted: list[RecordRef] = []
        yield from accounts.iter_accounts(self.client, fields, since, deleted)
        self._deleted_seen = (since, deleted)  # the read finished: its deletions are whole

    def deleted_accounts(self, since: datetime) -> list[RecordRef]:
        """Accounts deleted at or after `since` (the recycle bin, through queryAll): what the
        last finished `iter_accounts(since)` found, else one query."""
        seen = self._deleted_seen
        if seen is not None and seen[0] == since:
            self._deleted_seen = None
            return list(seen[1])
        return accounts.deleted_accounts(self.client, since)

    def read_account_links(self, refs: Sequence[RecordRef]) -> list[AccountLinks]:
        """Contacts' AccountId and Leads' ConvertedAccountId."""
        return accounts.read_account_links(self.client, refs)

    def write_account_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                              ) -> WriteResult:
        """The LeadSync account fields of Accounts (only changed values are sent)."""
        return accounts.write_account_updates(self.client, updates, dry_run=dry_run)

    def list_owners(self) -> dict[str, str]:
        """Active User Id -> lowercased email, cached for 15 minutes (one sync run)."""
        now = self.clock()
        if self._owners is not None and self._owners_at and now - self._owners_at < OWNER_CACHE:
            return self._owners
        owners: dict[str, str] = {}
        # active users only: a deactivated owner is routed past (docs/routing.md) and cannot
        # own a task (INACTIVE_OWNER_OR_USER)
        for page in self.client.query_pages("owners", soql("Id, Email", "User",
                                                           "IsActive = true")):
            owners.update({str(u["Id"]): str(u["Email"]).lower() for u in page if u.get("Email")})
        self._owners, self._owners_at = owners, now
        return owners

    def is_queue_owner(self, owner_id: str) -> bool:
        """A queue owns the record (a Group: ids start with 00G), not a rep."""
        return owner_id.startswith("00G")

    # ---- people -----------------------------------------------------------------------------
    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        """Leads then Contacts modified at or after `since`; converted Leads yield their Contact.

        A full read (since=None) loads Lead Status history and the Contacts' opportunities
        (contact roles, converted Leads, stage history) with one paged query each instead of
        one query per chunk of ids: that keeps a full sync within a few calls of the minimum
        the page sizes imply. Here they are held in the process (`iter_people_resumable`
        keeps them in a store)."""
        where = f"SystemModstamp >= {_soql_time(since)}" if since else ""
        order = "SystemModstamp, Id"
        facts = self._whole_facts(InMemoryStateStore()) if since is None else None
        seen: set[str] = set()
        converted: list[str] = []
        for page in self.client.query_pages("leads", soql(self._lead_fields, "Lead", where, order)):
            live = []
            for raw in page:
                if raw.get("IsConverted") and raw.get("ConvertedContactId"):
                    converted.append(str(raw["ConvertedContactId"]))
                elif str(raw["Id"]) not in seen:
                    seen.add(str(raw["Id"]))
                    live.append(raw)
            yield from self._leads_to_people(live, facts)
        query = soql(self._contact_fields, "Contact", where, order)
        for page in self.client.query_pages("contacts", query):
            fresh = [r for r in page if str(r["Id"]) not in seen]
            seen.update(str(r["Id"]) for r in fresh)
            yield from self._contacts_to_people(fresh, facts)
        missing = sorted(set(converted) - seen)
        yield from self._read_contacts(missing, facts)

    def iter_people_resumable(self, since: datetime | None, after: str | None = None,
                              scratch: StateStore | None = None
                              ) -> Iterator[tuple[list[CrmPerson], str | None]]:
        """`iter_changed_people` a query page at a time, each with where a read resumes.

        A full read (since=None): Leads, then Contacts, each ascending by SystemModstamp, Id;
        after each page a resume point (compact JSON: the query, the page's newest
        SystemModstamp, the ids read at that second) and, given one as `after`, the read
        continues there: `SystemModstamp >=` that second, those ids skipped, the next query
        after it. Converted Leads are skipped: every Contact, theirs too, comes with the
        Contacts query. The Lead Status dates and the Contacts' sales facts are read whole
        first and kept in `scratch` (the state store: `sales_facts`; by default in the
        process), dropped when the read is done. With `since` (an incremental read), pages of
        the changed people and no resume point (the caller's cursor is one)."""
        if since is not None:
            batch: list[CrmPerson] = []
            for rec in self.iter_changed_people(since):
                batch.append(rec)
                if len(batch) == CHANGED_PAGE:
                    yield batch, None
                    batch = []
            if batch:
                yield batch, None
            return
        point = json.loads(after) if after else {"q": "leads"}
        facts = SalesFacts(self.client.query_pages,
                           InMemoryStateStore() if scratch is None else scratch, self._outcome)
        facts.clear()  # a killed read's facts are read again: they may have changed
        if point.get("q") == "leads":
            facts.read_status_dates(["Field = 'Status'"])
            for raws, token in self._resumable_pages("leads", "Lead", self._lead_fields, point):
                yield list(self._leads_to_people(
                    [r for r in raws if not (r.get("IsConverted") and r.get("ConvertedContactId"))],
                    facts)), token  # no name holds the page's records past the yield
            point = {"q": "contacts"}
        facts.read_sales(None)
        for raws, token in self._resumable_pages("contacts", "Contact", self._contact_fields,
                                                 point):
            yield list(self._contacts_to_people(raws, facts)), token
        facts.clear()

    def _whole_facts(self, scratch: StateStore) -> SalesFacts:
        """Every Lead's Status date and every Contact's sales status, read into `scratch`."""
        facts = SalesFacts(self.client.query_pages, scratch, self._outcome)
        facts.read_status_dates(["Field = 'Status'"])
        facts.read_sales(None)
        return facts

    def _facts_of(self, lead_ids: Sequence[str] = (), contact_ids: Sequence[str] = ()
                  ) -> SalesFacts:
        """The Status dates of these Leads and the sales facts of these Contacts (`IN`
        chunks), held in the process: a page's worth."""
        facts = SalesFacts(self.client.query_pages, InMemoryStateStore(), self._outcome)
        if lead_ids:
            facts.read_status_dates(format_soql("Field = 'Status' AND LeadId IN {}", chunk)
                                    for chunk in id_chunks(lead_ids))  # fmt: skip
        if contact_ids:
            facts.read_sales(contact_ids)
        return facts

    def _resumable_pages(self, op: str, obj: str, fields: str, point: dict[str, Any]
                         ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Pages of one object's full read ascending by (SystemModstamp, Id) from `point`,
        each with the resume point after it. A page's list is emptied when the next is asked
        for, before it is read: one page of decoded records in memory, not two."""
        second = str(point.get("at") or "")
        tail = {str(i) for i in point.get("ids", ())}
        where = f"SystemModstamp >= {second}" if second else ""
        for page in self.client.query_pages(op, soql(fields, obj, where, "SystemModstamp, Id")):
            fresh = [r for r in page if not (str(r["Id"]) in tail and self._second(r) == second)]
            if not page:
                continue
            last = self._second(page[-1])
            if last != second:
                second, tail = last, set()
            tail.update(str(r["Id"]) for r in page if self._second(r) == second)
            ids = sorted(tail) if len(tail) <= TAIL_IDS else []  # too many: re-read
            yield fresh, json.dumps({"q": op, "at": second, "ids": ids}, separators=(",", ":"))
            fresh.clear()

    @staticmethod
    def _second(raw: dict[str, Any]) -> str:
        """A record's SystemModstamp as a SOQL literal (whole seconds, UTC)."""
        stamp = parse_datetime(raw.get("SystemModstamp"))
        return _soql_time(stamp) if stamp is not None else ""

    def _leads_to_people(
        self, raws: list[dict[str, Any]], facts: SalesFacts | None = None
    ) -> Iterator[CrmPerson]:
        owners = self.list_owners()
        statuses = {str(r["Id"]): self._lead_status(r.get("Status")) for r in raws}
        wanted = [i for i, s in statuses.items() if s is not None]
        if facts is None:
            facts = self._facts_of(lead_ids=wanted)
        dates = facts.status_dates(wanted) if wanted else {}
        for raw in raws:
            rid = str(raw["Id"])
            status = statuses[rid]
            at = dates.get(rid) or parse_datetime(raw.get("CreatedDate"))
            yield record_to_person(raw, "Lead", owners=owners, fields=self.fields,
                                   sales=(status, at))  # fmt: skip

    def _lead_status(self, status: object) -> str | None:
        mapped, known = map_lead_status(str(status) if status else None, self.settings.status_map)
        if not known and str(status) not in self._unknown_statuses:
            self._unknown_statuses.add(str(status))
            log.warning("unknown Lead Status; add it to LEADSYNC_SALESFORCE__STATUS_MAP",
                        extra={"lead_status": str(status)[:40]})  # fmt: skip
        return mapped

    def _outcome(self, opp: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
                 ) -> tuple[str, datetime]:
        """`opportunity_outcome` with the org's closed stages when they matter: an open
        opportunity whose history shows another stage (it may have been reopened); otherwise
        the standard names do."""
        needed = not opp.get("IsClosed") and any(
            r.get("StageName") != opp.get("StageName") for r in rows)
        return opportunity_outcome(opp, rows, self._closed_stage_names() if needed
                                   else CLOSED_STAGES)

    def _closed_stage_names(self) -> frozenset[str]:
        """The org's closed stages (OpportunityStage, read once per connector)."""
        if self._closed_stages is not None:
            return self._closed_stages
        names: set[str] = set()
        query = soql("ApiName", "OpportunityStage", "IsClosed = true")
        for page in self.client.query_pages("opportunity stages", query):
            names.update(str(r["ApiName"]) for r in page if r.get("ApiName"))
        self._closed_stages = frozenset(names)
        return self._closed_stages

    def _contacts_to_people(
        self, raws: list[dict[str, Any]], facts: SalesFacts | None = None
    ) -> Iterator[CrmPerson]:
        owners = self.list_owners()
        ids = [str(r["Id"]) for r in raws]
        if facts is None:
            facts = self._facts_of(contact_ids=ids)
        sales = facts.sales(ids) if ids else {}
        for raw in raws:
            yield record_to_person(raw, "Contact", owners=owners, fields=self.fields,
                                   sales=sales.get(str(raw["Id"]), (None, None)))  # fmt: skip

    def _read_contacts(self, ids: Sequence[str], facts: SalesFacts | None = None
                       ) -> Iterator[CrmPerson]:
        for chunk in id_chunks(ids):
            query = soql(self._contact_fields, "Contact", format_soql("Id IN {}", chunk))
            for page in self.client.query_pages("contacts by id", query):
                yield from self._contacts_to_people(page, facts)

    def _read_leads(self, ids: Sequence[str]) -> Iterator[CrmPerson]:
        for start in range(0, len(ids), ID_CHUNK):
            where = format_soql("Id IN {}", list(ids[start : start + ID_CHUNK]))
            query = soql(self._lead_fields, "Lead", where)
            for page in self.client.query_pages("leads by id", query):
                live = [r for r in page if not r.get("IsConverted")]
                converted = [str(r["ConvertedContactId"]) for r in page
                             if r.get("IsConverted") and r.get("ConvertedContactId")]  # fmt: skip
                yield from self._leads_to_people(live)
                yield from self._read_contacts(converted)

    def read_people(self, refs: Sequence[RecordRef]) -> list[CrmPerson]:
        """Read these Leads/Contacts (a converted Lead comes back as its Contact)."""
        sf = [r for r in refs if r.system == "salesforce"]
        people = list(self._read_leads([r.id for r in sf if r.object_type == "Lead"]))
        people += self._read_contacts([r.id for r in sf if r.object_type == "Contact"])
        unique = {p.ref: p for p in people}
        return list(unique.values())

    def find_people_by_email(self, email: str) -> list[CrmPerson]:
        """Leads and Contacts with this email (for `leadsync explain`)."""
        value = email.strip().lower()
        ids: list[str] = []
        for obj in ("Lead", "Contact"):
            query = soql("Id", obj, format_soql("Email = {}", value))
            for page in self.client.query_pages("people by email", query):
                ids.extend(str(r["Id"]) for r in page)
        refs = [RecordRef("salesforce", "Lead" if i.startswith("00Q") else "Contact", i)
                for i in ids]  # fmt: skip
        return self.read_people(refs)

    # ---- deals (the review) -------------------------------------------------------------------
    def iter_deals(self) -> Iterator[Deal]:
        """Every Opportunity linked to a Contact through an OpportunityContactRole or a Lead
        converted into it (`ConvertedOpportunityId`): one paged query each, plus the stage
        history that dates closes (`opportunity_outcome`, as the sync dates them). The person
        is the Contact; an opportunity reached both ways is yielded once per Contact."""
        facts = SalesFacts(self.client.query_pages, InMemoryStateStore(), self._outcome,
                           fields=DEAL_FIELDS, ops=("deal contact roles", "deal conversions"))
        facts.read_sales(None)
        for contact, oid, opp, (kind, decided) in facts.deals():
            opened = parse_datetime(opp.get("CreatedDate"))
            if opened is None:
                continue  # Salesforce always sets CreatedDate; a row without it is not usable
            amount = opp.get("Amount")
            yield Deal(
                person=RecordRef("salesforce", "Contact", contact), id=oid, created_at=opened,
                closed_at=decided if kind != "opportunity_open" else None, won=kind == "won",
                amount=float(amount) if isinstance(amount, int | float) else None)

    # ---- engagement ---------------------------------------------------------------------------
    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        """Rep Tasks and Events (sales touches) and webinar attendance seen at or after `since`."""
        return self._activity(since, "WhoId != null", None)

    def iter_engagement_for(self, people: Sequence[CrmPerson], since: datetime
                            ) -> Iterator[EngagementEvent]:
        """The same, of these Leads/Contacts only (`WhoId IN`, chunks of ID_CHUNK ids)."""
        ids = sorted({p.ref.id for p in people if p.ref.system == "salesforce"})
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            yield from self._activity(
                since, format_soql("WhoId IN {}", chunk),
                format_soql("(LeadId IN {ids} OR ContactId IN {ids})", ids=chunk),
            )  # fmt: skip

    def _activity(self, since: datetime, who: str, member: str | None
                  ) -> Iterator[EngagementEvent]:
        when = f"SystemModstamp >= {_soql_time(since)}"
        order = "SystemModstamp, Id"
        queries = [
            ("Task", soql("Id, WhoId, Subject, Type, CreatedDate, SystemModstamp", "Task",
                          f"{when} AND {who}", order)),
            ("Event", soql("Id, WhoId, Subject, Type, StartDateTime, CreatedDate, SystemModstamp",
                           "Event", f"{when} AND {who}", order)),
        ]  # fmt: skip
        for kind, query in queries:
            for page in self.client.query_pages(f"{kind.lower()}s", query):
                for raw in page:
                    event = activity_to_event(raw, kind)
                    if event is not None:
                        yield event
        attended = f"{when} AND Status = 'Attended'" + (f" AND {member}" if member else "")
        query = soql("Id, CampaignId, LeadId, ContactId, Status, Campaign.Type, CreatedDate, "
                     "SystemModstamp", "CampaignMember", attended, order)  # fmt: skip
        for page in self.client.query_pages("campaign members", query):
            for raw in page:
                member_event = member_to_event(raw)
                if member_event is not None:
                    yield member_event

    # ---- sales outcomes ----------------------------------------------------------------------
    def iter_sales_changes(self, since: datetime) -> Iterator[SalesChange]:
        """Contacts whose opportunities changed at or after `since` (two queries, paged).

        Closing or editing an Opportunity does not touch its Contacts' SystemModstamp, so
        `iter_changed_people` cannot see it. Read instead, by their own SystemModstamp:
        OpportunityContactRoles changed or whose Opportunity changed, and converted Leads
        changed or whose ConvertedOpportunity changed. Each yields the Contact; `seen_at` is
        the newest of the matched stamps. A converted Lead with no Contact yields nothing.
        """
        when = _soql_time(since)
        order = "SystemModstamp, Id"
        streams = [
            ("changed contact roles", "OpportunityContactRole", "ContactId", "Opportunity",
             f"SystemModstamp >= {when} OR Opportunity.SystemModstamp >= {when}"),
            ("changed conversions", "Lead", "ConvertedContactId", "ConvertedOpportunity",
             f"IsConverted = true AND (SystemModstamp >= {when} OR "
             f"ConvertedOpportunity.SystemModstamp >= {when})"),
        ]  # fmt: skip
        for op, obj, contact_f, rel, where in streams:
            fields = f"Id, {contact_f}, SystemModstamp, {rel}.SystemModstamp"
            for page in self.client.query_pages(op, soql(fields, obj, where, order)):
                for row in page:
                    contact = row.get(contact_f)
                    parent = row.get(rel)
                    stamps = [parse_datetime(row.get("SystemModstamp"))]
                    if isinstance(parent, dict):
                        stamps.append(parse_datetime(parent.get("SystemModstamp")))
                    seen = max((t for t in stamps if t is not None), default=None)
                    if contact and seen is not None:
                        ref = RecordRef("salesforce", "Contact", str(contact))
                        yield SalesChange(ref, str(row.get("Id")), seen)

    # ---- writes, tasks, provisioning -----------------------------------------------------------
    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        return writes.write_updates(self.client, self.fields, updates, dry_run=dry_run)

    def find_task_keys(self, refs: Sequence[RecordRef]) -> set[str]:
        return writes.find_task_keys(self.client, refs)

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        return writes.create_tasks(self.client, tasks)

    def provision(self, out_dir: Path | None = None) -> list[str]:
        """Write the source-format metadata package (default: ./leadsync-salesforce)."""
        target = out_dir or Path("leadsync-salesforce")
        return metadata.write_package(target, self.fields, self.settings.api_version)

    def check(self) -> list[str]:
        """Login, API access and the written fields on Lead, Contact and Account ([] when
        fine)."""
        problems: list[str] = []
        for obj in (*metadata.OBJECTS, "Account"):
            try:
                describe = self.client.rest(f"describe {obj}", f"sobjects/{obj}/describe")
            except ConnectorError as exc:
                return [*problems, f"Salesforce: cannot describe {obj}: {exc}"]
            if obj == "Account":
                problems.extend(metadata.account_problems(describe or {}))
            else:
                problems.extend(metadata.describe_problems(obj, describe or {}, self.fields))
        return problems
