"""The one Protocol both CRM connectors implement, the records it speaks in, and the error kinds.

Written-field values travel under *logical* names (DESIGN.md §6 without prefix):
`score, fit_grade, engagement, stage, reasons, mql_at, sql_at, sla_due, sla_status, model`.
Each connector maps them to its own field names, formats and truncates them, and compares them
with what it read so that only real changes are sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable

from leadsync.scoring.profile import Event, Profile

System = Literal["hubspot", "salesforce"]
WRITTEN_FIELDS: tuple[str, ...] = (
    "score", "fit_grade", "engagement", "stage", "reasons",
    "mql_at", "sql_at", "sla_due", "sla_status", "model",
)  # fmt: skip


@dataclass(frozen=True, slots=True, order=True)
class RecordRef:
    """One CRM record: ("hubspot", "contact", "123") or ("salesforce", "Lead", "00Q...")."""

    system: System
    object_type: str
    id: str

    @property
    def key(self) -> str:
        return f"{self.system}:{self.object_type}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> RecordRef:
        system, object_type, rid = key.split(":", 2)
        if system not in ("hubspot", "salesforce"):
            raise ValueError(f"unknown system in record key {key!r}")
        return cls(system, object_type, rid)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class CrmPerson:
    """A person record as one CRM holds it.

    `profile.id` is `ref.key`; `profile.events` is empty (engagement arrives separately);
    the profile's lifecycle fields (stage, mql_at, sql_at, ...) come from leadsync's own written
    fields, falling back to the CRM's native stage. `current` holds the written fields as read
    (logical names, CRM representation; HubSpot also has "lifecyclestage") for no-op detection.
    `links` are the other-system records this CRM knows to be the same person.
    `account_links` are the CRM's own account links when the read carried them (a Salesforce
    Contact's AccountId, a Lead's ConvertedAccountId, a HubSpot list read's inline
    `associations=companies`; docs/accounts.md); None when it did not (the account phase then
    asks `read_account_links`).
    """

    ref: RecordRef
    profile: Profile
    modified_at: datetime
    current: Mapping[str, object] = field(default_factory=dict)
    links: tuple[RecordRef, ...] = ()
    owner_id: str | None = None
    #: when the CRM created the record (Salesforce CreatedDate, HubSpot createdate); the
    #: review's cohort and funnel start there. None when the CRM did not say.
    created_at: datetime | None = None
    account_links: AccountLinks | None = None


@dataclass(frozen=True, slots=True)
class CrmAccount:
    """A company as one CRM holds it: a Salesforce Account or a HubSpot company
    (docs/accounts.md). `website` is the Account's Website / the company's domain;
    `attributes` account fields rules may name (`target_account`: the target-account flag);
    `current` leadsync's written account fields as read, for no-op detection."""

    ref: RecordRef
    name: str | None = None
    website: str | None = None
    industry: str | None = None
    employees: int | None = None
    owner_id: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)
    current: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountLinks:
    """The accounts a CRM itself links one person record to: a Salesforce Contact's AccountId,
    a converted Lead's ConvertedAccountId, a HubSpot contact's associated companies (`primary`:
    the one HubSpot marks primary, when it does). Ids are the CRM's account ids."""

    record: RecordRef
    account_ids: tuple[str, ...] = ()
    primary: str | None = None


@dataclass(frozen=True, slots=True)
class EngagementEvent:
    """An engagement or sales event of one record. `seen_at` is the stream's cursor value
    (HubSpot occurredAt; Salesforce SystemModstamp), `id` the CRM's id for dedupe."""

    person: RecordRef
    event: Event
    id: str
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class SalesChange:
    """A person record whose sales outcome may have changed without the record itself changing
    (an opportunity closed, a contact role added, a converted Lead's opportunity edited).
    `person` is the record to re-read (Salesforce: the Contact), `id` the CRM record that
    changed, `seen_at` the stream's cursor value (Salesforce: that record's SystemModstamp)."""

    person: RecordRef
    id: str
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class Deal:
    """An opportunity (Salesforce) or deal (HubSpot) linked to a person record, for the review
    (`leadsync review`). `created_at` is when it was opened; `closed_at` when it was closed
    (won or lost; None while open), dated as the sync dates a sales decision. One `Deal` per
    (person, opportunity): an opportunity with two contacts yields two."""

    person: RecordRef
    id: str
    created_at: datetime
    closed_at: datetime | None
    won: bool
    amount: float | None = None


@dataclass(frozen=True, slots=True)
class UnresolvedEvent:
    """An engagement event the CRM names by email only, when no record has that email yet
    (HubSpot email events and form submissions). The pipeline keeps it and attaches it once a
    record with that email appears. `email_hash` is `identity.email_hash` of the normalised
    email: the state store never holds the address in clear."""

    email_hash: str
    event: Event
    id: str
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    ref: RecordRef
    values: Mapping[str, object]  # logical name -> int | str | datetime | None | tuple[Reason,...]
    previous: Mapping[str, object] = field(default_factory=dict)  # CrmPerson.current


@dataclass(frozen=True, slots=True)
class FollowUpTask:
    """A follow-up task to create. `body` contains the line `leadsync-key: <key>`.
    `due_date` is the due day where the rep works (LEADSYNC_TIMEZONE), for CRMs whose task due
    is a date (Salesforce ActivityDate); None means `due`'s UTC date."""

    key: str
    person: RecordRef
    owner_id: str | None
    subject: str
    body: str
    due: datetime
    priority: Literal["normal", "high"]
    due_date: date | None = None


@dataclass(frozen=True, slots=True)
class RecordError:
    ref: RecordRef
    reason: str  # the CRM's code and message, redacted of record data
    retryable: bool


@dataclass(slots=True)
class WriteResult:
    written: list[RecordRef] = field(default_factory=list)
    unchanged: list[RecordRef] = field(default_factory=list)
    failed: list[RecordError] = field(default_factory=list)


@dataclass(slots=True)
class TaskResult:
    created: dict[str, str] = field(default_factory=dict)  # key -> CRM task id
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason


class ConnectorError(Exception):
    """Base of the error kinds. Messages never carry tokens, emails, names or record bodies."""


class TransientError(ConnectorError):
    """Retries at the HTTP boundary were exhausted (429, 5xx, timeouts): try the run again later."""


class AuthError(ConnectorError):
    """Authentication or configuration is wrong (401 after re-login, 403 scopes, missing field):
    stop and tell the admin."""


class BudgetExhausted(ConnectorError):
    """The API budget for this run/day is spent (Salesforce REQUEST_LIMIT_EXCEEDED or our share,
    HubSpot DAILY 429): stop cleanly, keep cursors, resume after the reset.

    Raised before the refused request is sent. A write or task call stopped midway sets `done`
    to what its earlier batches got the CRM to take, so reports and ledgers stay truthful."""

    done: WriteResult | TaskResult | None = None


def writes_done(exc: BudgetExhausted) -> WriteResult:
    """The field writes a budget-stopped `write_updates` had completed (empty if none)."""
    return exc.done if isinstance(exc.done, WriteResult) else WriteResult()


def tasks_done(exc: BudgetExhausted) -> TaskResult:
    """The tasks a budget-stopped `create_tasks` had created (empty if none)."""
    return exc.done if isinstance(exc.done, TaskResult) else TaskResult()


class RecordRejected(ConnectorError):
    """One record was refused; carries the ref and reason. Skip it, report it, retry next cycle."""

    def __init__(self, ref: RecordRef, reason: str) -> None:
        super().__init__(f"{ref.key}: {reason}")
        self.ref = ref
        self.reason = reason


@runtime_checkable
class Connector(Protocol):
    system: System

    def iter_changed_people(self, since: datetime | None) -> Iterator[CrmPerson]:
        """People modified at or after `since` (None: everyone), deduped by id."""
        ...

    def read_people(self, refs: Sequence[RecordRef]) -> list[CrmPerson]:
        """Read these records (batched); missing ones are left out."""
        ...

    def iter_engagement(self, since: datetime) -> Iterator[EngagementEvent]:
        """Engagement and sales events seen at or after `since`."""
        ...

    def iter_engagement_for(self, people: Sequence[CrmPerson], since: datetime
                            ) -> Iterator[EngagementEvent]:
        """The same, of these records only (for one person's explanation: a few calls, not
        the whole window)."""
        ...

    def iter_sales_changes(self, since: datetime) -> Iterator[SalesChange]:
        """Records whose sales outcome may have changed at or after `since` although the
        person record itself did not (the records' own modification time does not move when
        an opportunity closes). Duplicates are allowed; the caller dedupes by `person`."""
        ...

    def find_people_by_email(self, email: str) -> list[CrmPerson]:
        """The person records with this (normalised) email."""
        ...

    def iter_deals(self) -> Iterator[Deal]:
        """Every opportunity or deal linked to a person record, open or closed (for
        `leadsync review`; the sync does not call it)."""
        ...

    def write_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                      ) -> WriteResult:
        """Write changed values in batches; per-record failures are returned, not raised.
        With `dry_run`, validate and compare only: `written` lists what would be written."""
        ...

    def find_task_keys(self, refs: Sequence[RecordRef]) -> set[str]:
        """Keys of leadsync follow-up tasks that already exist on these records."""
        ...

    def create_tasks(self, tasks: Sequence[FollowUpTask]) -> TaskResult:
        ...

    def list_owners(self) -> dict[str, str]:
        """Owner id -> owner email (lowercased)."""
        ...

    def api_calls(self) -> int:
        """HTTP requests this connector has sent so far (for reports and budgets)."""
        ...

    def iter_accounts(self, since: datetime | None = None) -> Iterator[CrmAccount]:
        """Every account (Salesforce Account, HubSpot company) with leadsync's account fields;
        with `since`, those modified at or after it (the account phase's cursor read)."""
        ...

    def deleted_accounts(self, since: datetime) -> list[RecordRef]:
        """The accounts deleted at or after `since` that the CRM still lists (HubSpot's
        archived companies, 90 days; Salesforce's recycle bin, 15 days)."""
        ...

    def read_account_links(self, refs: Sequence[RecordRef]) -> list[AccountLinks]:
        """The CRM's account links of these person records (this system's refs only; records
        without a link are left out)."""
        ...

    def write_account_updates(self, updates: Sequence[FieldUpdate], *, dry_run: bool = False
                              ) -> WriteResult:
        """Write changed account fields (logical names of `account_values.ACCOUNT_FIELDS`,
        `previous` = `CrmAccount.current`) in batches; per-record failures are returned."""
        ...
