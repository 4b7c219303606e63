"""The run's staging area (docs/resume.md): people records of a CRM read whole in the pull
(Salesforce) kept in the state store instead of the process, so a run's memory does not grow
with them and a killed run's restart does not read them again.

A record is staged as compact JSON (`encode_person`, `decode_person`: a lossless round trip of
`CrmPerson`, so its input fingerprint is the same) under its record key, with index tokens
(`index_tokens`): its email's hash and the key of each record it links to. A page of people
looks its other records up by the same tokens (`lookup_tokens`). The staged records carry
names and emails: the area lives only while the run does (cleared at its end, a TTL as a
backstop), see docs/resume.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from leadsync.connectors.base import CrmPerson, RecordRef
from leadsync.identity import email_hash, normalise_email
from leadsync.scoring.profile import Bant, Profile
from leadsync.state import StateError, StateStore, decode_event, encode_event

_PROFILE_FIELDS = tuple(f for f in dataclasses.fields(Profile) if f.name != "id")
_BANT_FIELDS = tuple(f.name for f in dataclasses.fields(Bant))


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_PROFILE_DEFAULTS = {f.name: _default(f) for f in _PROFILE_FIELDS}


def _pack(value: object, where: str) -> Any:
    """A JSON value that `_unpack` turns back into `value` (datetimes, dates, tuples and
    mappings are tagged); anything else is an error naming the field."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"$d": value.isoformat()}
    if isinstance(value, date):
        return {"$D": value.isoformat()}
    if isinstance(value, tuple):
        return {"$t": [_pack(v, where) for v in value]}
    if isinstance(value, list):
        return [_pack(v, where) for v in value]
    if isinstance(value, Mapping):
        return {"$m": {str(k): _pack(v, where) for k, v in value.items()}}
    raise TypeError(f"staged record: {where} holds a {type(value).__name__}, not stageable")


def _unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$d" in value:
        return datetime.fromisoformat(value["$d"])
    if "$D" in value:
        return date.fromisoformat(value["$D"])
    if "$t" in value:
        return tuple(_unpack(v) for v in value["$t"])
    return {k: _unpack(v) for k, v in value["$m"].items()}


def encode_person(rec: CrmPerson) -> str:
    """Compact JSON of one record; the profile's fields at their defaults are left out."""
    profile: dict[str, Any] = {}
    for f in _PROFILE_FIELDS:
        value = getattr(rec.profile, f.name)
        if f.name == "events":
            if value:
                profile["events"] = [encode_event(ev) for ev in value]
            continue
        if value == _PROFILE_DEFAULTS[f.name]:
            continue
        if f.name == "bant":
            profile["bant"] = [getattr(value, n) for n in _BANT_FIELDS]
            continue
        profile[f.name] = _pack(value, f"profile.{f.name}")
    doc = {"r": rec.ref.key, "m": rec.modified_at.isoformat(), "p": profile,
           "c": _pack(dict(rec.current), "current"), "l": [link.key for link in rec.links],
           "o": rec.owner_id, "k": rec.created_at.isoformat() if rec.created_at else None}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def decode_person(text: str) -> CrmPerson:
    """Inverse of `encode_person`; a payload it cannot read is a StateError naming why."""
    try:
        doc = json.loads(text)
        ref = RecordRef.parse(str(doc["r"]))
        raw = dict(doc["p"])
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "events":
                values[name] = tuple(decode_event(ev) for ev in value)
            elif name == "bant":
                values[name] = Bant(*value)
            elif name == "attributes":
                values[name] = MappingProxyType(_unpack(value))
            else:
                values[name] = _unpack(value)
        profile = Profile(id=ref.key, **values)
        return CrmPerson(
            ref=ref, profile=profile, modified_at=datetime.fromisoformat(doc["m"]),
            current=_unpack(doc["c"]), links=tuple(RecordRef.parse(k) for k in doc["l"]),
            owner_id=doc["o"], created_at=datetime.fromisoformat(doc["k"]) if doc["k"] else None)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"unreadable staged record ({type(exc).__name__}: {exc})") from None


def _email_token(rec: CrmPerson) -> str | None:
    email = normalise_email(rec.profile.email)
    return f"email:{email_hash(email)}" if email else None


def index_tokens(rec: CrmPerson) -> list[str]:
    """Where a page finds this staged record: by its email's hash and by each linked key."""
    email = _email_token(rec)
    return ([email] if email else []) + [f"link:{link.key}" for link in rec.links]


def lookup_tokens(records: Iterable[CrmPerson]) -> list[str]:
    """The tokens under which other records of these people are staged."""
    tokens: set[str] = set()
    for rec in records:
        email = _email_token(rec)
        if email:
            tokens.add(email)
        tokens.add(f"link:{rec.ref.key}")
    return sorted(tokens)


def stage_page(store: StateStore, records: Iterable[CrmPerson]) -> int:
    """Stage these records (one write); returns how many."""
    items: dict[str, str] = {}
    index: dict[str, list[str]] = {}
    for rec in records:
        items[rec.ref.key] = encode_person(rec)
        for token in index_tokens(rec):
            index.setdefault(token, []).append(rec.ref.key)
    if items:
        store.stage(items, index)
    return len(items)
