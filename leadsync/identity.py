"""Identity resolution and profile merging (pure).

The same person may be a HubSpot contact, a Salesforce Lead and a Salesforce Contact, and may be
duplicated inside one CRM. Records are grouped by cross-system ids first (a CRM's own link, such
as HubSpot's `salesforcecontactid`), then by normalised email; records without email stay alone
unless linked. Each group becomes one `Person`, its records ranked primary first (Salesforce
Contact, then Salesforce Lead, then HubSpot; lowest id first). The person's durable key, its
aliases and its stored record are `leadsync.person`'s job; merging here takes the CRMs' written
lifecycle
fields by the fixed stage rank only when there is nothing better (`person.previous_decision`
decides from leadsync's own last decision and dated facts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.scoring.profile import STAGE_ORDER, Bant, Event, Profile

# lower rank = more authoritative; sales works in Salesforce, so its records lead
_RANK = {("salesforce", "Contact"): 0, ("salesforce", "Lead"): 1, ("hubspot", "contact"): 2}


def normalise_email(email: str | None) -> str | None:
    if not email:
        return None
    e = email.strip().lower()
    return e if "@" in e and len(e) <= 320 else None


def email_hash(email: str) -> str:
    """Identity-index key: emails never reach the state store in clear."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def event_signature(ev: Event) -> tuple[str, datetime, tuple[tuple[str, str], ...]]:
    """Two events with the same type, time and properties are one (seen twice, or in both CRMs)."""
    return ev.type, ev.at, tuple(sorted(ev.props.items()))


def record_rank(ref: RecordRef) -> tuple[int, str, str]:
    return (_RANK.get((ref.system, ref.object_type), 9), ref.object_type, ref.id)


@dataclass(frozen=True, slots=True)
class Person:
    """One resolved person: its durable key (`leadsync.person`), its records read now
    (primary first), the merged profile, and every record key it has had (its aliases: the
    CRM check for existing tasks searches all of them)."""

    id: str
    records: tuple[CrmPerson, ...]
    profile: Profile
    aliases: tuple[str, ...] = ()

    @property
    def refs(self) -> tuple[RecordRef, ...]:
        return tuple(r.ref for r in self.records)

    def alias_refs(self) -> list[RecordRef]:
        """Every record the person has had, current ones first (unparseable keys left out)."""
        refs = {r.ref.key: r.ref for r in self.records}
        for key in self.aliases:
            if key not in refs:
                try:
                    refs[key] = RecordRef.parse(key)
                except ValueError:
                    continue
        return list(refs.values())

    def task_target(self) -> CrmPerson:
        """Where follow-up tasks go: the Salesforce record if any (sales works there)."""
        return self.records[0]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_records(records: Iterable[CrmPerson]) -> list[list[CrmPerson]]:
    """Group records of the same person: links first, then normalised email."""
    by_key: dict[str, CrmPerson] = {}
    for rec in records:
        by_key[rec.ref.key] = rec  # a record read twice in one cycle: keep the last read
    uf = _UnionFind()
    first_by_email: dict[str, str] = {}
    for key, rec in by_key.items():
        uf.find(key)
        for link in rec.links:
            if link.key in by_key:
                uf.union(key, link.key)
        email = normalise_email(rec.profile.email)
        if email is not None:
            other = first_by_email.setdefault(email, key)
            if other != key:
                uf.union(key, other)
    groups: dict[str, list[CrmPerson]] = {}
    for key, rec in by_key.items():
        groups.setdefault(uf.find(key), []).append(rec)
    return [sorted(g, key=lambda r: record_rank(r.ref)) for g in groups.values()]


def _first(values: Iterable[object]) -> object:
    for v in values:
        if v is not None and v != "":
            return v
    return None


def _merge_bant(bants: Sequence[Bant]) -> Bant:
    def pick(name: str) -> bool | None:
        vals = [getattr(b, name) for b in bants if getattr(b, name) is not None]
        return True if any(vals) else (False if vals else None)

    return Bant(pick("budget"), pick("authority"), pick("need"), pick("timeline"))


def _stage_rank(stage: str | None) -> int:
    if stage in STAGE_ORDER:
        return STAGE_ORDER.index(stage)
    return -1 if stage is None else 99  # recycled/disqualified are sales decisions: they win


def _lifecycle_source(records: Sequence[CrmPerson]) -> Profile:
    """The record whose leadsync lifecycle fields to trust: the most authoritative record that
    has a stage; among disagreeing records, the furthest stage (a failed write elsewhere lags)."""
    with_stage = [r.profile for r in records if r.profile.stage]
    if not with_stage:
        return records[0].profile
    return max(with_stage, key=lambda p: _stage_rank(p.stage))


def _merge_sales_status(records: Sequence[CrmPerson]) -> tuple[str | None, datetime | None]:
    """The newest known sales decision; a dated one beats an undated one."""
    facts = [(r.profile.sales_status_at, i, r.profile.sales_status)
             for i, r in enumerate(records) if r.profile.sales_status]
    if not facts:
        return None, None
    dated = [f for f in facts if f[0] is not None]
    if dated:
        at, _, status = max(dated, key=lambda f: (f[0], -f[1]))
        return status, at
    return facts[0][2], None


def merge_profile(person_id: str, records: Sequence[CrmPerson],
                  events: Iterable[Event], memory: Mapping[str, object]) -> Profile:
    """Merge one person's records (primary first) with its engagement and remembered state."""
    profiles = [r.profile for r in records]
    life = _lifecycle_source(records)
    status, status_at = _merge_sales_status(records)
    attributes: dict[str, object] = {}
    for p in reversed(profiles):  # more authoritative records overwrite
        attributes.update(p.attributes)
    seen: set[tuple[str, datetime, tuple[tuple[str, str], ...]]] = set()
    merged_events: list[Event] = []
    for ev in events:
        sig = event_signature(ev)
        if sig not in seen:
            seen.add(sig)
            merged_events.append(ev)
    merged_events.sort(key=lambda e: e.at)
    stage_entered_at = life.stage_entered_at or _parse_dt(memory.get("stage_entered_at"))
    if memory.get("stage") not in (None, life.stage):
        stage_entered_at = life.stage_entered_at  # memory is about another stage: ignore it
    score_at_mql = life.score_at_mql
    if score_at_mql is None and isinstance(memory.get("score_at_mql"), int):
        score_at_mql = memory["score_at_mql"]  # type: ignore[assignment]

    def f(name: str) -> object:
        return _first(getattr(p, name) for p in profiles)

    return replace(
        profiles[0],
        id=person_id,
        email=f("email"), first_name=f("first_name"), last_name=f("last_name"),  # type: ignore[arg-type]
        title=f("title"), company=f("company"), employees=f("employees"),  # type: ignore[arg-type]
        industry=f("industry"), country=f("country"),  # type: ignore[arg-type]
        annual_revenue=f("annual_revenue"), lead_source=f("lead_source"),  # type: ignore[arg-type]
        owner=f("owner"),  # type: ignore[arg-type]
        attributes=attributes,
        bant=_merge_bant([p.bant for p in profiles]),
        events=tuple(merged_events),
        stage=life.stage, stage_entered_at=stage_entered_at,
        mql_at=life.mql_at, sql_at=life.sql_at, score_at_mql=score_at_mql,
        sales_status=status, sales_status_at=status_at,
    )


def _parse_dt(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
