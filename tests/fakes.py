"""An in-memory CRM that satisfies the connector Protocol, for pipeline tests (fakes over mocks).

It keeps records with a modification clock, bumps it on every write (so our own writes come back
as "changed", like the real CRMs), compares written values the way a connector must (only
changed fields are sent; a HubSpot stage sets `lifecyclestage` too), and can refuse chosen
records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from leadsync.connectors.base import (
    AccountLinks,
    CrmAccount,
    CrmPerson,
    Deal,
    EngagementEvent,
    FieldUpdate,
    FollowUpTask,
    RecordError,
    RecordRef,
    SalesChange,
    System,
    TaskResult,
    WriteResult,
)
from leadsync.connectors.hubspot.mapping import lifecycle_target
from leadsync.scoring import Event, Profile, render_reasons


def crm_repr(value: object) -> object:
    if isinstance(value, tuple):
        return render_reasons(value, 255)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass
class FakeRecord:
    ref: RecordRef
    profile: Profile
    modified_at: datetime
    written: dict[str, object] = field(default_factory=dict)
    links: tuple[RecordRef, ...] = ()
    owner_id: str | None = "owner-1"


class FakeConnector:
    def __init__(self, system: System, clock: Callable[[], datetime]) -> None:
        self.system = system
        self.clock = clock
        self.records: dict[str, FakeRecord] = {}
        self.events: list[EngagementEvent] = []
        self.sales: list[SalesChange] = []
        self.deals: list[Deal] = []  # what `iter_deals` yields (the review's read)
        self.tasks: list[FollowUpTask] = []
        self.calls = 0
        self.writes = 0  # records actually written
        self.reject: set[str] = set()  # record keys whose writes are refused
        self.owners = {"owner-1": "rep@example.com", "owner-2": "boss@example.com"}
        self.accounts: dict[str, CrmAccount] = {}  # account id -> account
        self.account_links: dict[str, AccountLinks] = {}  # person record key -> its links
        self.account_writes = 0
        self.accounts_changed: set[str] = set()  # account ids a cursor read returns
        self.accounts_deleted: dict[str, RecordRef] = {}  # what `deleted_accounts` returns

    # -- seeding ------------------------------------------------------------------------
    def add(self, object_type: str, rid: str, links: tuple[RecordRef, ...] = (),
            owner_id: str | None = "owner-1", **profile: object) -> RecordRef:
        ref = RecordRef(self.system, object_type, rid)
        self.records[ref.key] = FakeRecord(ref, Profile(id=ref.key, **profile),  # type: ignore[arg-type]
                                           self.clock(), links=links, owner_id=owner_id)
        return ref

    def touch(self, ref: RecordRef, **profile: object) -> None:
        rec = self.records[ref.key]
        rec.profile = replace(rec.profile, **profile)  # type: ignore[arg-type]
        rec.modified_at = self.clock()

    def sell(self, ref: RecordRef, status: str, at: datetime, change_id: str = "opp-1") -> None:
        """A sales outcome that does not touch the record (an opportunity closed in Salesforce)."""
        rec = self.records[ref.key]
        rec.profile = replace(rec.profile, sales_status=status, sales_status_at=at)
        self.sales.append(SalesChange(ref, change_id, self.clock()))

    def add_account(self, rid: str, name: str | None, website: str | None = None, *,
                    owner_id: str | None = "owner-1", **fields: object) -> RecordRef:
        """An account (Salesforce Account / HubSpot company); `fields`: industry, employees,
        attributes."""
        ref = RecordRef(self.system, "Account" if self.system == "salesforce" else "company", rid)
        self.accounts[rid] = CrmAccount(ref, name, website, owner_id=owner_id,
                                        **fields)  # type: ignore[arg-type]
        return ref

    def delete_account(self, rid: str) -> None:
        """Delete an account: gone from reads, listed by `deleted_accounts` (the fakes keep no
        times: every deleted account is returned, whatever `since`), its links dropped."""
        acc = self.accounts.pop(rid)
        self.accounts_deleted[rid] = acc.ref
        self.accounts_changed.discard(rid)
        for key, links in list(self.account_links.items()):
            if rid in links.account_ids:
                ids = tuple(i for i in links.account_ids if i != rid)
                self.account_links[key] = AccountLinks(
                    links.record, ids, None if links.primary == rid else links.primary)

    def link(self, person: RecordRef, *account_ids: str, primary: str | None = None) -> None:
        """The CRM's account links of a person record (AccountId, associations)."""
        self.account_links[person.key] = AccountLinks(person, tuple(account_ids), primary)

    def add_event(self, ref: RecordRef, event: Event) -> None:
        self.events.append(EngagementEvent(ref, event, f"e{len(self.events)}", self.clock()))

    # -- Protocol -------------------------------------------------------------------------
    def _person(self, rec: FakeRecord) -> CrmPerson:
        w = rec.written
        profile = replace(rec.profile, stage=w.get("stage") or rec.profile.stage,  # type: ignore[arg-type]
                          mql_at=_dt(w.get("mql_at")) or rec.profile.mql_at,
                          sql_at=_dt(w.get("sql_at")) or rec.profile.sql_at)
        return CrmPerson(ref=rec.ref, profile=profile, modified_at=rec.modified_at,
                         current=dict(w), links=rec.links, owner_id=rec.owner_id)

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        self.calls += 1
        for rec in list(self.records.values()):
            if since is None or rec.modified_at >= since:
                yield self._person(rec)

    def iter_deals(self) -> Iterator[Deal]:
        self.calls += 1
        yield from self.deals

    def read_people(self, refs: Sequence[RecordRef]) -> list[CrmPerson]:
        self.calls += 1
        return [self._person(self.records[r.key]) for r in refs if r.key in self.records]

    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        self.calls += 1
        yield from (e for e in self.events if e.seen_at >= since)

    def iter_engagement_for(self, people: Sequence[CrmPerson], since: datetime
                            ) -> Iterator[EngagementEvent]:
        self.calls += 1
        wanted = {p.ref for p in people}
        yield from (e for e in self.events if e.seen_at >= since and e.person in wanted)

    def iter_sales_changes(self, since: datetime) -> Iterator[SalesChange]:
        self.calls += 1
        yield from (c for c in self.sales if c.seen_at >= since)

    def find_people_by_email(self, email: str) -> list[CrmPerson]:
        self.calls += 1
        return [self._person(rec) for rec in self.records.values()
                if (rec.profile.email or "").lower() == email]

    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        self.calls += 0 if dry_run else 1
        result = WriteResult()
        for upd in updates:
            rec = self.records[upd.ref.key]
            changed = {k: crm_repr(v) for k, v in upd.values.items()
                       if crm_repr(v) != upd.previous.get(k)}
            stage = upd.values.get("stage")
            if self.system == "hubspot" and isinstance(stage, str):  # set with the stage
                held = upd.previous.get("lifecyclestage")
                life = lifecycle_target(stage, str(held) if held else None)
                if life != held:
                    changed["lifecyclestage"] = life
            if not changed:
                result.unchanged.append(upd.ref)
            elif dry_run:
                result.written.append(upd.ref)
            elif upd.ref.key in self.reject:
                result.failed.append(RecordError(upd.ref, "UNABLE_TO_LOCK_ROW", True))
            else:
                rec.written.update(changed)
                rec.modified_at = self.clock()
                self.writes += 1
                result.written.append(upd.ref)
        return result

    def find_task_keys(self, refs: Sequence[RecordRef]) -> set[str]:
        self.calls += 1
        wanted = set(refs)
        return {t.key for t in self.tasks if t.person in wanted}

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        self.calls += 1
        self.tasks.extend(tasks)
        return TaskResult(created={t.key: f"task-{len(self.tasks)}" for t in tasks})

    def list_owners(self) -> dict[str, str]:
        self.calls += 1
        return dict(self.owners)

    def api_calls(self) -> int:
        return self.calls

    def iter_accounts(self, since: datetime | None = None) -> Iterator[CrmAccount]:
        """Every account; with `since` the fakes' accounts carry no modification time, so
        those in `accounts_changed` (ids), which a test fills."""
        self.calls += 1
        if since is None:
            yield from list(self.accounts.values())
        else:
            yield from [a for rid, a in self.accounts.items() if rid in self.accounts_changed]

    def deleted_accounts(self, since: datetime) -> list[RecordRef]:
        self.calls += 1
        return [self.accounts_deleted[rid] for rid in sorted(self.accounts_deleted)]

    def read_account_links(self, refs: Sequence[RecordRef]) -> list[AccountLinks]:
        self.calls += 1
        return [self.account_links[r.key] for r in refs if r.key in self.account_links]

    def write_account_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                              ) -> WriteResult:
        """Diffs like a connector; `account_writes` counts accounts actually written."""
        result = WriteResult()
        changed = []
        for u in updates:
            acc = self.accounts.get(u.ref.id)
            if acc is None or u.ref.key in self.reject:
                result.failed.append(RecordError(u.ref, "refused", False))
                continue
            values = {k: crm_repr(v) for k, v in u.values.items()}
            diff = {k: v for k, v in values.items() if acc.current.get(k) != v}
            if diff:
                changed.append((u.ref, acc, diff))
            else:
                result.unchanged.append(u.ref)
        if dry_run:
            result.written.extend(ref for ref, _, _ in changed)
            return result
        if changed:
            self.calls += 1
        for ref, acc, diff in changed:
            self.accounts[ref.id] = replace(acc, current={**acc.current, **diff})
            self.accounts_changed.add(ref.id)  # as a CRM's modification time moves
            self.account_writes += 1
            result.written.append(ref)
        return result


def _dt(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
