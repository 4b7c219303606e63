"""leadsync's own fields are leadsync's: hand edits are drift, restored and counted, never facts.

The own fields are DESIGN.md §6's written fields (`LeadSync_*__c`, `leadsync_*`) and, on HubSpot,
the `lifecyclestage` leadsync sets with them. What leadsync last wrote to each record's own
fields is remembered per record (state store kind "own", normalised values; the reasons as a
hash). Against that memory:
- `unsettled`: a record whose own fields differ from it is looked at by an incremental run
  although its inputs did not change (the input fingerprint leaves our fields out); a record
  whose own fields equal it is the echo of our write and costs nothing (RELIABILITY.md §5);
- `trusted`: a record's stage, MQL and SQL times that differ from it are hand edits: the merge
  sees what leadsync last wrote, so a hand-set stage never becomes the person's stage;
- `adopt_lifecycle`: HubSpot `lifecyclestage` is shared with people: a move forward of what
  leadsync's stage maps to is a human's fact and becomes the stage (`lifecycle_adopted`); any
  other hand value is restored by the write (backwards: clear, then set). Full and incremental
  runs apply it alike;
- `note` / `count_written`: a field that differs both from what was last written and from what
  is written now is drift, counted per CRM and field for the records the CRM took, logged with
  record ids only. An empty `lifecyclestage` is restored but not counted: it is also what our
  own backward move leaves when its second request (the set after the clear) failed.
With no memory of a record (its first cycle, a wiped Redis) its fields are compared with what
leadsync would write now and rewritten when they differ, without being counted as drift.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from leadsync.connectors.base import WRITTEN_FIELDS, CrmPerson, RecordRef
from leadsync.connectors.hubspot import writes as hubspot_writes
from leadsync.connectors.hubspot.mapping import (
    LIFECYCLE_TO_STAGE,
    STAGE_TO_LIFECYCLE,
    is_backward,
    lifecycle_target,
)
from leadsync.connectors.salesforce import writes as salesforce_writes
from leadsync.connectors.values import (
    DATETIME_FIELDS,
    INT_FIELDS,
    InvalidValue,
    canonical,
    read_float,
    read_text,
)
from leadsync.report import CycleReport
from leadsync.scoring.profile import STAGE_ORDER, Profile
from leadsync.state import StateStore

log = logging.getLogger("leadsync.drift")

KIND = "own"  # state store fingerprint kind: record key -> JSON list in OWN_FIELDS order
OWN_FIELDS: tuple[str, ...] = (*WRITTEN_FIELDS, "lifecyclestage")
REASONS_LEN = {"hubspot": hubspot_writes.REASONS_LEN, "salesforce": salesforce_writes.REASONS_LEN}
MAX_LOGGED = 50  # drift lines per cycle; the counts are always complete
_EPOCH_MS = re.compile(r"-?\d{10,14}")

Own = dict[str, str]  # own field -> normalised value ("" = empty)


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        if _EPOCH_MS.fullmatch(text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalise(name: str, value: object) -> str:
    """One own field's value in a form both CRMs' representations and leadsync's canonical
    values agree on: whole numbers, UTC datetimes to the millisecond, the reasons hashed."""
    if value is None or value == "":
        return ""
    if name in INT_FIELDS:
        number = read_float(value)
        return str(int(number)) if number is not None and number.is_integer() else str(value)
    if name in DATETIME_FIELDS:
        at = _as_datetime(value)
        if at is None:
            return str(value)
        utc = at.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if name == "reasons":
        return hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).hexdigest()
    return str(value)


def held(rec: CrmPerson) -> Own:
    """A record's own fields as read."""
    own = {name: normalise(name, rec.current.get(name)) for name in WRITTEN_FIELDS}
    own["lifecyclestage"] = normalise("lifecyclestage", rec.current.get("lifecyclestage"))
    return own


def target(rec: CrmPerson, values: Mapping[str, object]) -> Own | None:
    """A record's own fields once `values` (logical written values) are written; None when a
    value cannot be written (the record is rejected, nothing is remembered)."""
    system = rec.ref.system
    try:
        own = {name: normalise(name, canonical(name, values.get(name),
                                               reasons_len=REASONS_LEN[system]))
               for name in WRITTEN_FIELDS}
    except InvalidValue:
        return None
    stage = values.get("stage")
    own["lifecyclestage"] = ""
    if system == "hubspot" and isinstance(stage, str) and stage in STAGE_TO_LIFECYCLE:
        current = read_text(rec.current.get("lifecyclestage"))
        own["lifecyclestage"] = lifecycle_target(stage, current)
    return own


def encode(own: Own) -> str:
    return json.dumps([own.get(name, "") for name in OWN_FIELDS], separators=(",", ":"),
                      ensure_ascii=False)


def decode(payload: str) -> Own | None:
    try:
        items = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(items, list) or len(items) != len(OWN_FIELDS):
        return None  # another layout (an older or newer version): no memory
    return {name: str(v) for name, v in zip(OWN_FIELDS, items, strict=True)}


def adopt_lifecycle(profile: Profile, records: Sequence[CrmPerson], now: datetime
                    ) -> tuple[Profile, bool]:
    """The person with a human's forward `lifecyclestage` move adopted as its stage (entered
    now; a first MQL or SQL entry records `mql_at` / `sql_at`), and whether one was adopted.
    Forward means later in HubSpot's order than what leadsync's stage maps to, on the path
    (`other` and values of no leadsync stage are not facts: they are restored)."""
    ours = profile.stage
    if ours is None or ours not in STAGE_TO_LIFECYCLE:
        return profile, False
    mine = STAGE_TO_LIFECYCLE[ours]
    best: str | None = None
    for rec in records:
        if rec.ref.system != "hubspot":
            continue
        theirs = read_text(rec.current.get("lifecyclestage"))
        stage = LIFECYCLE_TO_STAGE.get(theirs) if theirs else None
        if stage is None or stage == ours or not is_backward(theirs, mine):
            continue
        if best is None or STAGE_ORDER.index(stage) > STAGE_ORDER.index(best):
            best = stage
    if best is None:
        return profile, False
    return replace(
        profile, stage=best, stage_entered_at=now,
        mql_at=profile.mql_at or (now if best == "mql" else None),
        sql_at=profile.sql_at or (now if best == "sql" else None),
    ), True


class OwnFields:
    """One cycle's view of what leadsync last wrote to its own fields (see the module)."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.last: dict[str, Own] = {}
        self.targets: dict[str, Own] = {}  # record key -> own fields once this cycle's write lands
        self.drifted: dict[str, list[str]] = {}  # record key -> drifted fields
        self.logged = 0
        self._held: dict[str, tuple[CrmPerson, Own]] = {}  # record key -> (record, its fields)

    def held(self, rec: CrmPerson) -> Own:
        """`held(rec)`, worked out once per record read (the phases share the records)."""
        cached = self._held.get(rec.ref.key)
        if cached is not None and cached[0] is rec:
            return cached[1]
        own = held(rec)
        self._held[rec.ref.key] = (rec, own)
        return own

    def load(self, keys: Iterable[str]) -> None:
        wanted = sorted(set(keys) - set(self.last))
        for key, payload in self.state.get_fingerprints(KIND, wanted).items() if wanted else ():
            own = decode(payload)
            if own is not None:
                self.last[key] = own

    def unsettled(self, records: Mapping[str, CrmPerson]) -> set[str]:
        """Records whose own fields are not what leadsync last wrote (or of which it has no
        memory): they need a look even when their inputs did not change."""
        self.load(records)
        return {key for key, rec in records.items() if self.last.get(key) != self.held(rec)}

    def trusted(self, records: Sequence[CrmPerson]) -> list[CrmPerson]:
        """The records with hand-edited lifecycle fields (stage, MQL and SQL times) read as
        what leadsync last wrote there: hand edits of our fields are never facts."""
        out: list[CrmPerson] = []
        for rec in records:
            last = self.last.get(rec.ref.key)
            fix: dict[str, object] = {}
            if last is not None:
                now = self.held(rec)
                if now["stage"] != last["stage"]:
                    fix["stage"] = last["stage"] or None
                for name in ("mql_at", "sql_at"):
                    if now[name] != last[name]:
                        fix[name] = _as_datetime(last[name]) if last[name] else None
            out.append(replace(rec, profile=replace(rec.profile, **fix)) if fix else rec)  # type: ignore[arg-type]
        return out

    def adopt(self, profile: Profile, records: Sequence[CrmPerson], now: datetime,
              report: CycleReport) -> Profile:
        """`adopt_lifecycle`, counted and logged (ids only)."""
        adopted, moved = adopt_lifecycle(profile, records, now)
        if moved:
            report.lifecycle_adopted["hubspot"] += 1
            log.info("hand-moved lifecyclestage adopted as the stage",
                     extra={"person": profile.id, "stage": adopted.stage})
        return adopted

    def note(self, rec: CrmPerson, values: Mapping[str, object]) -> None:
        """Before the write: what the record's own fields will be, and which of them drifted
        (differ from what was last written and from what is written now)."""
        goal = target(rec, values)
        if goal is None:
            return
        self.targets[rec.ref.key] = goal
        last = self.last.get(rec.ref.key)
        if last is None:
            return
        now = self.held(rec)
        fields = [n for n in OWN_FIELDS if now[n] != last[n] and now[n] != goal[n]
                  and not (n == "lifecyclestage" and now[n] == "")]  # our half-done move
        if fields:
            self.drifted[rec.ref.key] = fields

    def count_written(self, system: str, written: Iterable[RecordRef],
                      report: CycleReport) -> None:
        """Drift of the records the CRM took (a failed write is retried, counted then)."""
        for ref in written:
            fields = self.drifted.pop(ref.key, None)
            if not fields:
                continue
            report.drift.setdefault(system, Counter()).update(fields)
            if self.logged < MAX_LOGGED:
                self.logged += 1
                log.info("hand edit of leadsync's fields restored",
                         extra={"record": ref.key, "fields": ",".join(fields)})

    def save(self, failed: set[str]) -> None:
        """After the writes: remember what the records that took them now hold."""
        settled = {key: encode(own) for key, own in self.targets.items() if key not in failed}
        if settled:
            self.state.set_fingerprints(KIND, settled)
