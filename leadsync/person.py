"""The person: its durable key, its aliases and leadsync's own stored record of it (docs/person.md).

- **Key.** `"p-"` + 24 hex chars of SHA-256 over the normalised email (`identity.normalise_email`:
  trimmed, lower-cased, must contain "@", at most 320 characters). A person with no usable email
  gets `"p-r-"` + 24 hex chars of SHA-256 over its first record's key (Salesforce Contact, then
  Lead, then HubSpot; lowest id first). Both are derivable from CRM data alone, so a cold start
  (empty state store) finds the same key for the same person.
- **Aliases.** Every CRM record key the person has ever had (Lead, the Contact it was converted
  to, HubSpot contacts, duplicates, merged-away records) maps to the person key in the state
  store's alias table, and the person record lists them all: a conversion, a new duplicate or a
  deleted record does not move the person, and the CRM check for existing tasks searches every
  one of them (a converted Lead's id too).
- **Re-keying.** The key always follows the CRM data, so a cold start finds the same one. When
  it changes (a person without an email gets one, the email changes, a no-email person's first
  record changes, or two stored people turn out to be one), the stored keys the group's aliases
  point to become former keys of the new one: their records are merged into it (aliases, the
  newer decision, owed and created tasks, their own former keys) and the aliases repointed; the
  CRM check recognises a task keyed under a former key (`equivalent_keys`).
- **Record.** leadsync's last decision about the person (`PersonRecord`): stage and when it was
  entered, mql_at / sql_at / score at MQL, the SLA clock (start, due, status, next look), the
  follow-up tasks owed and created on the current clock, when it was evaluated and by which
  model. Stored as JSON under the person key (`StateStore.set_person_state`); without one (a
  cold start, or state written by a version before person keys) the previous decision comes
  from the LeadSync fields written to the CRMs (`previous_decision`).
- **Disagreement.** When the CRMs' written stages differ (one write was rejected), the previous
  stage is leadsync's own last decision; a CRM's stage that differs wins only when its dated
  fact (mql_at/sql_at) is newer than that decision (a run that wrote and stopped before it
  committed). On a cold start, the record with the newest dated fact wins; undated, the fixed
  stage rank decides (`identity._stage_rank`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from leadsync.connectors.base import CrmPerson
from leadsync.identity import normalise_email
from leadsync.scoring import Evaluation, FollowUp
from leadsync.scoring.profile import STAGE_ORDER, Profile
from leadsync.scoring.sla import legacy_task_key, task_key
from leadsync.state import StateStore

PREFIX = "p-"
NO_EMAIL_PREFIX = "p-r-"
_OFF_PATH = ("recycled", "disqualified")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def person_key(email: str | None, first_record_key: str) -> str:
    """The durable key of a person: from the normalised email, else from its first record."""
    normal = normalise_email(email)
    if normal is not None:
        return PREFIX + _digest(normal)
    if not first_record_key:
        raise ValueError("person_key: a person with no email needs its first record's key")
    return NO_EMAIL_PREFIX + _digest(first_record_key)


def is_person_key(value: str) -> bool:
    return value.startswith(PREFIX)


def derived_key(group: Sequence[CrmPerson]) -> str:
    """The key CRM data alone gives a group (records ranked, primary first): the first
    record's email in rank order, else the primary record's key."""
    for rec in group:
        if normalise_email(rec.profile.email) is not None:
            return person_key(rec.profile.email, group[0].ref.key)
    return person_key(None, group[0].ref.key)


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key chosen for one group and the stored keys merged into it (re-keyed away)."""

    key: str
    merged: tuple[str, ...] = ()


def choose_key(group: Sequence[CrmPerson], aliases: Mapping[str, str]) -> KeyChoice:
    """The person key of a group of records (derived from its CRM data) and the other stored
    keys its records' aliases point to (re-keyed into it)."""
    derived = derived_key(group)
    known = {aliases[r.ref.key] for r in group if r.ref.key in aliases}
    return KeyChoice(derived, tuple(sorted(known - {derived})))


# -- the stored record -------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    """ISO time in UTC to the millisecond, the CRMs' precision: a record rebuilt from the CRMs'
    fields on a cold start equals the one kept warm."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000).isoformat()


def _dt(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True, slots=True)
class PendingTask:
    """A follow-up task the person is owed and that was not seen created yet."""

    kind: str
    stage: str
    clock_start: datetime
    due: datetime

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "stage": self.stage, "clock_start": _iso(self.clock_start),
                "due": _iso(self.due)}

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> PendingTask | None:
        start, due = _dt(doc.get("clock_start")), _dt(doc.get("due"))
        if start is None or due is None:
            return None
        return cls(str(doc.get("kind")), str(doc.get("stage")), start, due)


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """leadsync's last decision about one person (JSON in the state store)."""

    key: str
    records: tuple[str, ...] = ()  # every record key the person has had (its aliases)
    former_keys: tuple[str, ...] = ()  # person keys merged into this one
    stage: str | None = None
    stage_entered_at: datetime | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    score_at_mql: int | None = None
    sla_status: str | None = None
    sla_clock_start: datetime | None = None
    sla_due: datetime | None = None
    sla_check_at: datetime | None = None
    tasks_owed: Mapping[str, PendingTask] = field(default_factory=dict)
    tasks_created: Mapping[str, str] = field(default_factory=dict)  # key -> CRM task id
    evaluated_at: datetime | None = None
    model: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "v": 2, "records": list(self.records), "former_keys": list(self.former_keys),
            "stage": self.stage, "stage_entered_at": _iso(self.stage_entered_at),
            "mql_at": _iso(self.mql_at), "sql_at": _iso(self.sql_at),
            "score_at_mql": self.score_at_mql, "sla_status": self.sla_status,
            "sla_clock_start": _iso(self.sla_clock_start), "sla_due": _iso(self.sla_due),
            "sla_check_at": _iso(self.sla_check_at),
            "tasks_owed": {k: t.to_json() for k, t in sorted(self.tasks_owed.items())},
            "tasks_created": dict(sorted(self.tasks_created.items())),
            "evaluated_at": _iso(self.evaluated_at), "model": self.model,
        }

    @classmethod
    def from_json(cls, key: str, doc: Mapping[str, object]) -> PersonRecord:
        """Read a stored record; a record of an earlier version (no "v") keeps what it has."""
        owed_raw = doc.get("tasks_owed")
        owed: dict[str, PendingTask] = {}
        if isinstance(owed_raw, Mapping):
            for k, v in owed_raw.items():
                task = PendingTask.from_json(v) if isinstance(v, Mapping) else None
                if task is not None:
                    owed[str(k)] = task
        created = doc.get("tasks_created")
        score = doc.get("score_at_mql")
        return cls(
            key=key,
            records=tuple(str(r) for r in _list(doc.get("records"))),
            former_keys=tuple(str(r) for r in _list(doc.get("former_keys"))),
            stage=_str(doc.get("stage")),
            stage_entered_at=_dt(doc.get("stage_entered_at")),
            mql_at=_dt(doc.get("mql_at")), sql_at=_dt(doc.get("sql_at")),
            score_at_mql=score if isinstance(score, int) else None,
            sla_status=_str(doc.get("sla_status")),
            sla_clock_start=_dt(doc.get("sla_clock_start")), sla_due=_dt(doc.get("sla_due")),
            sla_check_at=_dt(doc.get("sla_check_at")),
            tasks_owed=owed,
            tasks_created={str(k): str(v) for k, v in created.items()}
            if isinstance(created, Mapping) else {},
            evaluated_at=_dt(doc.get("evaluated_at")), model=_str(doc.get("model")),
        )

    def merged_with(self, other: PersonRecord) -> PersonRecord:
        """This record with another person's (re-keyed into this one): aliases, former keys and
        tasks joined; the newer decision's lifecycle kept."""
        newer = self
        if other.evaluated_at and (self.evaluated_at is None
                                   or other.evaluated_at > self.evaluated_at):
            newer = replace(other, key=self.key)
        return replace(
            newer,
            records=tuple(sorted({*self.records, *other.records})),
            former_keys=tuple(sorted({*self.former_keys, *other.former_keys, other.key}
                                     - {self.key})),
            tasks_owed={**other.tasks_owed, **self.tasks_owed},
            tasks_created={**other.tasks_created, **self.tasks_created},
        )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def decode_records(items: Mapping[str, Mapping[str, object]]) -> dict[str, PersonRecord]:
    """Stored person state by key -> records; entries under other keys (state written before
    person keys, keyed by a record key) are left out."""
    return {k: PersonRecord.from_json(k, v) for k, v in items.items() if is_person_key(k)}


# -- the previous decision: leadsync's own record, else the CRMs' written fields ---------------
@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The previous lifecycle state the core starts from."""

    stage: str | None
    stage_entered_at: datetime | None
    mql_at: datetime | None
    sql_at: datetime | None
    score_at_mql: int | None
    source: str  # "record" | "crm" | "crm-newer" (a CRM's dated stage newer than the record)


def _rank(stage: str | None) -> int:
    if stage in STAGE_ORDER:
        return STAGE_ORDER.index(stage)
    return -1 if stage is None else 99


def stage_dated_at(rec: CrmPerson) -> datetime | None:
    """When a record's written stage was decided, from its own dated facts: mql_at for mql,
    the newer of mql_at/sql_at past it, the sales decision for recycled/disqualified."""
    p = rec.profile
    if p.stage in _OFF_PATH:
        return p.sales_status_at
    if p.stage == "mql":
        return p.mql_at
    if p.stage in STAGE_ORDER[3:]:
        dates = [d for d in (p.sql_at, p.mql_at) if d is not None]
        return max(dates) if dates else None
    return None


def _from_crm(records: Sequence[CrmPerson]) -> CrmPerson | None:
    """The record whose written stage is the newest decision: the newest dated fact, the fixed
    rank among undated ones (a cold start, or no record of ours)."""
    staged = [r for r in records if r.profile.stage]
    if not staged:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(staged, key=lambda r: (stage_dated_at(r) or epoch, _rank(r.profile.stage)))


def previous_decision(record: PersonRecord | None, records: Sequence[CrmPerson]) -> Lifecycle:
    """The lifecycle state to evaluate from (see the module docstring, "Disagreement")."""
    crm = _from_crm(records)
    if record is None or record.stage is None:
        if crm is None:
            return Lifecycle(None, None, None, None, None, "crm")
        p = crm.profile
        return Lifecycle(p.stage, p.stage_entered_at, p.mql_at, p.sql_at, p.score_at_mql, "crm")
    if crm is not None and crm.profile.stage != record.stage:
        dated = stage_dated_at(crm)
        if dated is not None and record.evaluated_at is not None and dated > record.evaluated_at:
            p = crm.profile
            return Lifecycle(p.stage, p.stage_entered_at or dated, p.mql_at, p.sql_at,
                             p.score_at_mql, "crm-newer")
    mql_at = record.mql_at or _first(r.profile.mql_at for r in records)
    sql_at = record.sql_at or _first(r.profile.sql_at for r in records)
    return Lifecycle(record.stage, record.stage_entered_at, mql_at, sql_at, record.score_at_mql,
                     "record")


def _first(values: Iterable[datetime | None]) -> datetime | None:
    return next((v for v in values if v is not None), None)


# -- task keys ---------------------------------------------------------------------------------
def equivalent_keys(follow_up: FollowUp, person: str, record: PersonRecord | None,
                    aliases: Iterable[str]) -> set[str]:
    """Keys under which this follow-up may already exist: the key itself, the same clock step
    under the person's former keys (re-keyed), and the "ls1" keys earlier versions built from
    any record key the person has had (the person id was its first record's key)."""
    keys = {follow_up.key}
    for former in record.former_keys if record is not None else ():
        keys.add(task_key(former, follow_up.stage, follow_up.clock_start, follow_up.kind))
    for alias in {*aliases, person}:
        keys.add(legacy_task_key(alias, follow_up.stage, follow_up.clock_start, follow_up.kind))
    return keys


def decided(record: PersonRecord | None, key: str, records: Iterable[str], ev: Evaluation,
            *, now: datetime, check_at: datetime | None, created: Mapping[str, str],
            pending: FollowUp | None) -> PersonRecord:
    """The record after this cycle: lifecycle, SLA clock, evaluation time and tasks. `created`
    are the task keys seen created this cycle (in the ledger, the CRMs, or created now);
    `pending` is the follow-up still owed (not created: it stays owed and every cycle retries
    it). An owed step that is no longer current (superseded by the escalation, a new clock or a
    met SLA) is dropped; created keys are kept for the current clock only."""
    base = record if record is not None else PersonRecord(key=key)
    clock = ev.sla_clock_start
    owed = {pending.key: PendingTask(pending.kind, pending.stage, pending.clock_start,
                                     pending.due)} if pending is not None else {}
    kept = {k: v for k, v in base.tasks_created.items()
            if clock is not None and base.sla_clock_start == clock}
    return replace(
        base, key=key, records=tuple(sorted({*base.records, *records})),
        stage=ev.stage, stage_entered_at=ev.stage_entered_at, mql_at=ev.mql_at, sql_at=ev.sql_at,
        score_at_mql=ev.score_at_mql, sla_status=ev.sla_status, sla_clock_start=clock,
        sla_due=ev.sla_due, sla_check_at=check_at, tasks_owed=owed,
        tasks_created={**kept, **created}, evaluated_at=now, model=ev.model,
    )


# -- the state store: keys, records and aliases --------------------------------------------------
@dataclass(frozen=True, slots=True)
class Resolved:
    """One group of records with its person key, stored record (None: cold), aliases and, when
    there is no record yet, what a version before person keys remembered under its first
    record's key (stage_entered_at, score_at_mql)."""

    key: str
    record: PersonRecord | None
    aliases: tuple[str, ...]
    merged: tuple[str, ...] = ()
    legacy: Mapping[str, object] = field(default_factory=dict)


def resolve(state: StateStore, groups: Sequence[Sequence[CrmPerson]]) -> list[Resolved]:
    """Person keys and stored records of these groups (three reads of the state store)."""
    keys = [r.ref.key for g in groups for r in g]
    aliases = state.get_person_keys(keys) if keys else {}
    choices = [choose_key(g, aliases) for g in groups]
    wanted = sorted({k for c in choices for k in (c.key, *c.merged)}
                    | {g[0].ref.key for g in groups})
    stored = state.get_person_state(wanted) if wanted else {}
    records = decode_records(stored)
    out: list[Resolved] = []
    for group, choice in zip(groups, choices, strict=True):
        record = records.get(choice.key)
        for other in choice.merged:
            if other in records:
                base = record if record is not None else PersonRecord(key=choice.key)
                record = base.merged_with(records[other])
        if choice.merged:
            base = record if record is not None else PersonRecord(key=choice.key)
            record = replace(base, former_keys=tuple(sorted({*base.former_keys,
                                                             *choice.merged})))
        known = record.records if record is not None else ()
        legacy = stored.get(group[0].ref.key, {}) if record is None else {}
        out.append(Resolved(choice.key, record,
                            tuple(sorted({*known, *(r.ref.key for r in group)})),
                            choice.merged, legacy))
    return out


def with_previous(profile: Profile, life: Lifecycle, legacy: Mapping[str, object]) -> Profile:
    """The merged profile starting from the previous decision `life`; with no record of ours,
    what an earlier version remembered about the same stage fills stage_entered_at and the
    score at MQL."""
    entered, score = life.stage_entered_at, life.score_at_mql
    if life.source == "crm" and legacy.get("stage") == life.stage and life.stage is not None:
        entered = entered or _dt(legacy.get("stage_entered_at"))
        raw = legacy.get("score_at_mql")
        score = score if score is not None else raw if isinstance(raw, int) else None
    return replace(profile, stage=life.stage, stage_entered_at=entered, mql_at=life.mql_at,
                   sql_at=life.sql_at, score_at_mql=score)


def store(state: StateStore, records: Sequence[PersonRecord]) -> None:
    """Save records and point every alias (and nothing else) at its person."""
    if not records:
        return
    state.set_person_state({r.key: r.to_json() for r in records})
    state.set_person_keys({alias: r.key for r in records for alias in r.records})
