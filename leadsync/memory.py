"""What a cycle remembers between runs, in the state store (a cache: the CRMs are the record).

- input fingerprints per record: a record whose inputs are unchanged (typically the echo of our
  own write, which bumps the CRM's modification time) costs nothing more (RELIABILITY.md §5);
- identity indexes: the records grouped with a record last time, and records by email hash, so
  a change to one record brings in the person's other records;
- per person (by its durable key, `leadsync.person`): leadsync's last decision (the
  `PersonRecord`: stage and its times, the SLA clock and when it next needs a look, the tasks
  owed and created) and the alias table of every record key the person has had;
- the set of people whose SLA clock is running and the set of people owed a task that is not
  created yet, both by person key, and when each was last evaluated (a newer evaluation is
  never overwritten by an older one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from leadsync import person as persons
from leadsync.connectors.base import CrmPerson
from leadsync.followups import TaskOutcome
from leadsync.identity import Person, email_hash, normalise_email
from leadsync.scoring import Evaluation, SlaPolicy
from leadsync.state import StateStore

OPEN_SLA = "sla"  # pending-set name for people whose SLA clock is running
OWED_TASKS = "owed-tasks"  # pending-set name for people owed a task not created yet
SLA_REVISIT_AFTER_BREACH = timedelta(days=7)


def input_fingerprint(rec: CrmPerson) -> str:
    """What of a record feeds the evaluation, minus the fields leadsync itself writes."""
    p = rec.profile
    parts = (p.email, p.first_name, p.last_name, p.title, p.company, p.employees, p.industry,
             p.country, p.annual_revenue, p.lead_source, sorted(p.attributes.items(), key=str),
             p.bant, p.sales_status, p.sales_status_at, p.owner, rec.owner_id,
             sorted(link.key for link in rec.links))
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def sla_check_at(ev: Evaluation, sla: SlaPolicy) -> datetime | None:
    """When this person's SLA status can next change without any new input."""
    if ev.sla_due is None or ev.sla_status not in ("on_track", "due_soon", "breached"):
        return None
    warn = sla.sql_warn_hours if ev.stage == "sql" else sla.mql_warn_hours
    if ev.sla_status == "on_track":  # the warning: counted in working time on business hours
        clock = None if ev.sla_clock_start is None else sla.clock(ev.stage, ev.sla_clock_start)
        return ev.sla_due - timedelta(hours=warn) if clock is None else clock[0]
    if ev.sla_status == "due_soon":
        return ev.sla_due + timedelta(seconds=1)
    return ev.sla_due + SLA_REVISIT_AFTER_BREACH


def sla_open(ev: Evaluation, now: datetime) -> bool:
    if ev.sla_status in ("on_track", "due_soon"):
        return True
    return bool(ev.sla_status == "breached" and ev.sla_due is not None
                and now - ev.sla_due < SLA_REVISIT_AFTER_BREACH)


def open_sla_records(state: StateStore, now: datetime, *,
                     settled_since: datetime | None = None) -> set[str]:
    """Records of people whose SLA clock reaches its next step (warning, deadline) by now.
    Entries of earlier versions (a record key, not a person key) bring that record. With
    `settled_since` (a resumed run: the killed run's start), people evaluated since are left
    out: the killed run checked them already."""
    person_ids = sorted(state.get_pending(OPEN_SLA))
    remembered = state.get_person_state(person_ids) if person_ids else {}
    now_iso = now.isoformat()
    keys: set[str] = set()
    for pid in person_ids:
        mem = remembered.get(pid, {})
        check_at = mem.get("sla_check_at")
        if isinstance(check_at, str) and check_at > now_iso:
            continue
        if not _settled(mem, settled_since):
            keys.update(_records_of(pid, mem))
    return keys


def owed_task_records(state: StateStore, *, settled_since: datetime | None = None
                      ) -> set[str]:
    """Records of people owed a follow-up task that is not created yet: every cycle retries
    (a resumed run: those evaluated since `settled_since` were tried by the killed run)."""
    person_ids = sorted(state.get_pending(OWED_TASKS))
    remembered = state.get_person_state(person_ids) if person_ids else {}
    keys: set[str] = set()
    for pid in person_ids:
        mem = remembered.get(pid, {})
        if not _settled(mem, settled_since):
            keys.update(_records_of(pid, mem))
    return keys


def _settled(mem: Mapping[str, object], since: datetime | None) -> bool:
    at = mem.get("evaluated_at")
    if since is None or not isinstance(at, str):
        return False
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")) >= since
    except ValueError:
        return False


def _records_of(pid: str, mem: Mapping[str, object]) -> list[str]:
    records = mem.get("records")
    if isinstance(records, list):
        return [str(k) for k in records]
    return [] if persons.is_person_key(pid) else [pid]


def save_indexes(state: StateStore, people: Sequence[Person], failed: set[str]) -> set[str]:
    """Input fingerprints (not for records whose write failed: they must be retried) and the
    identity indexes. Returns the record keys now settled."""
    inputs: dict[str, str] = {}
    groups: dict[str, str] = {}
    emails: dict[str, set[str]] = {}
    for person in people:
        keys = [r.ref.key for r in person.records]
        for rec in person.records:
            if rec.ref.key not in failed:
                inputs[rec.ref.key] = input_fingerprint(rec)
            groups[rec.ref.key] = " ".join(keys)
            email = normalise_email(rec.profile.email)
            if email:
                emails.setdefault(email_hash(email), set()).update(keys)
    for kind, items in (("input", inputs), ("group", groups),
                        ("email", {h: " ".join(sorted(k)) for h, k in emails.items()})):
        if items:
            state.set_fingerprints(kind, items)
    return set(inputs)


def save_people(state: StateStore, people: Sequence[Person], evaluations: Sequence[Evaluation],
                records: Mapping[str, persons.PersonRecord | None], tasks: TaskOutcome, *,
                sla: SlaPolicy, now: datetime) -> None:
    """Each person's record of this cycle's decision (and its aliases), the open-SLA and
    owed-task sets by person key; entries an earlier version left under a record key (or a
    key merged away) are removed."""
    saved: list[persons.PersonRecord] = []
    open_sla: list[str] = []
    closed_sla: list[str] = []
    owed: list[str] = []
    settled: list[str] = []
    for person, ev in zip(people, evaluations, strict=True):
        record = persons.decided(
            records.get(person.id), person.id, person.aliases, ev, now=now,
            check_at=sla_check_at(ev, sla), created=tasks.created.get(person.id, {}),
            pending=tasks.pending.get(person.id))
        saved.append(record)
        (open_sla if sla_open(ev, now) else closed_sla).append(person.id)
        (owed if record.tasks_owed else settled).append(person.id)
        closed_sla.extend(k for k in (*record.records, *record.former_keys)
                          if k != person.id)
        settled.extend(record.former_keys)
    former = {k: None for r in saved for k in r.former_keys}
    if former:  # a key merged away counts against no rep (docs/routing.md, "Capacity")
        state.set_open_owners(former)
    if saved:
        persons.store(state, saved)
        state.set_fingerprints("evaluated_at", {r.key: now.isoformat() for r in saved})
    state.add_pending(OPEN_SLA, open_sla)
    state.remove_pending(OPEN_SLA, closed_sla)
    state.add_pending(OWED_TASKS, owed)
    state.remove_pending(OWED_TASKS, settled)
