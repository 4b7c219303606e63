"""The run's account index, kept in the state store (issue 9: memory flat in the accounts).

`resolve.AccountIndex` keys every account record in the process: its size grows with the
accounts. The sync's account phase builds the same index in the state store instead, a batch
of records at a time, and reads back only the part a page of people resolves against (`view`)
or a chunk of accounts scores (`members_of`); the full run walks the accounts (`walk`). The
keys are the in-process index's: `resolve.account_key` keys one record from its own values
and the records that share them.

Kinds (fingerprints; a working area, dropped when a build starts and when the run ends):

| kind | entry |
|---|---|
| `account_ix_values` | record key -> `"<domain> <name>"` (normalised; either may be empty) |
| `account_ix_domain` / `account_ix_name` | normalised domain / name -> record keys |
| `account_ix_key` | record key -> account key |
| `account_ix_members` | account key -> record keys |
| `account_ix_dkeys` / `account_ix_nkeys` | normalised domain / name -> account keys |

Lists are space-separated (record keys, account keys, normalised domains and names hold no
space), and bounded: a value many accounts share ("self-employed", a hosting domain) would
otherwise make an entry, and every page that reads it, grow with the accounts. Keying reads of a
record group only whether it holds one record of a CRM or more, and which one when it holds
one: a group keeps the first `GROUP_KEPT` record keys (sorted) of each CRM. Resolving reads of a
value's account keys only whether there is one or more, and lists an ambiguity's candidates:
the first `AMBIGUOUS_LISTED` (sorted), as the in-process index lists them. Both are the same
whatever order the records are added in.

Building is `add` for each batch of records the account read yields (a record key once a
build), then `key`, which walks the values a batch at a time. Both are read-modify-writes of
shared entries: one writer at a time (the run's lease).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from leadsync.accounts.resolve import (
    AMBIGUOUS_LISTED,
    AccountIndex,
    AccountRecord,
    Keys,
    PersonAccountFacts,
    Refs,
    account_key,
    normalise_company,
    normalise_domain,
    record_key,
)
from leadsync.state import StateStore, walk_fingerprints

VALUES = "account_ix_values"
BY_DOMAIN = "account_ix_domain"
BY_NAME = "account_ix_name"
KEY = "account_ix_key"
MEMBERS = "account_ix_members"
DOMAIN_KEYS = "account_ix_dkeys"
NAME_KEYS = "account_ix_nkeys"
KINDS = (VALUES, BY_DOMAIN, BY_NAME, KEY, MEMBERS, DOMAIN_KEYS, NAME_KEYS)
BATCH = 2_000  # records keyed (and entries walked) per step
GROUP_KEPT = 2  # record keys of each CRM a domain's or name's record group keeps

Values = tuple[str | None, str | None]  # normalised (domain, name) of a record


def _system(ref: str) -> str:
    return ref.split(":", 1)[0]


def _as_refs(text: str) -> Refs:
    parts = text.split()
    return parts[0] if len(parts) == 1 else parts


def _as_keys(text: str) -> Keys:
    parts = sorted(text.split())
    return parts[0] if len(parts) == 1 else tuple(parts)


def _kept_records(refs: Iterable[str]) -> list[str]:
    """A record group as stored: the first `GROUP_KEPT` record keys of each CRM, sorted."""
    by_system: dict[str, list[str]] = {}
    for ref in sorted(set(refs)):
        kept = by_system.setdefault(_system(ref), [])
        if len(kept) < GROUP_KEPT:
            kept.append(ref)
    return sorted(r for kept in by_system.values() for r in kept)


def _all(items: Iterable[str]) -> list[str]:
    return sorted(set(items))


def _kept_keys(keys: Iterable[str]) -> list[str]:
    """A value's account keys as stored: the first `AMBIGUOUS_LISTED`, sorted."""
    return sorted(set(keys))[:AMBIGUOUS_LISTED]


class StoredAccountIndex:
    """The account index of one run in `state` (module doc)."""

    def __init__(self, state: StateStore, free_domains: frozenset[str]) -> None:
        self.state = state
        self.free_domains = free_domains

    def clear(self) -> None:
        for kind in KINDS:
            self.state.drop_fingerprints(kind)

    def values_of(self, acc: AccountRecord) -> Values:
        domain = normalise_domain(acc.website)
        if domain is not None and domain in self.free_domains:
            domain = None
        return domain, normalise_company(acc.name)

    # -- build ------------------------------------------------------------------------------
    def add(self, records: Iterable[AccountRecord]) -> None:
        """The first step of a build: a batch of account records' values, each record key
        appended to its domain's and name's lists."""
        values = {acc.ref: self.values_of(acc) for acc in records}
        if not values:
            return
        self.state.set_fingerprints(VALUES, {ref: f"{d or ''} {n or ''}"
                                             for ref, (d, n) in values.items()})
        self._append(BY_DOMAIN, [(ref, d) for ref, (d, _) in values.items() if d], _kept_records)
        self._append(BY_NAME, [(ref, n) for ref, (_, n) in values.items() if n], _kept_records)

    def _append(self, kind: str, items: Iterable[tuple[str, str]],
                kept: Callable[[Iterable[str]], list[str]]) -> None:
        """Add each (item, value) pair's item (a record key or account key) to the value's
        list in `kind`, the list bounded by `kept`."""
        by_value: dict[str, list[str]] = {}
        for item, value in items:
            by_value.setdefault(value, []).append(item)
        if not by_value:
            return
        stored = self.state.get_fingerprints(kind, sorted(by_value))
        self.state.set_fingerprints(kind, {
            value: " ".join(kept([*stored.get(value, "").split(), *added]))
            for value, added in by_value.items()})

    def key(self) -> None:
        """The second step: every record keyed (`account_key`) and listed under its account
        and under its domain's and name's account keys, a batch at a time."""
        for found in walk_fingerprints(self.state, VALUES, BATCH):
            values = {ref: _parse(text) for ref, text in found.items()}
            keys = self._keys_for(values, {})
            self.state.set_fingerprints(KEY, keys)
            self._append(MEMBERS, keys.items(), _all)  # an account's records: a few
            # (pairs: records of one account may have different domains or names)
            self._append(DOMAIN_KEYS, [(keys[r], d) for r, (d, _) in values.items() if d],
                         _kept_keys)
            self._append(NAME_KEYS, [(keys[r], n) for r, (_, n) in values.items() if n],
                         _kept_keys)

    def _groups(self, kind: str, wanted: Iterable[str], extra: Mapping[str, Values],
                at: int) -> dict[str, Refs]:
        """value -> the records that have it: the stored ones and the `extra` records."""
        ordered = sorted(set(wanted))
        stored = self.state.get_fingerprints(kind, ordered) if ordered else {}
        out: dict[str, Refs] = {}
        for value in ordered:
            refs = stored.get(value, "").split()
            refs += [r for r, v in extra.items() if v[at] == value and r not in refs]
            if refs:
                out[value] = refs[0] if len(refs) == 1 else refs
        return out

    def _keys_for(self, values: Mapping[str, Values], extra: Mapping[str, Values]
                  ) -> dict[str, str]:
        """The account keys of these records (`values`: theirs), with the `extra` records
        (not stored) counted in the groups they share."""
        domain_of = {r: d for r, (d, _) in values.items() if d}
        name_of = {r: n for r, (_, n) in values.items() if n}
        by_domain = self._groups(BY_DOMAIN, domain_of.values(), extra, 0)
        by_name = self._groups(BY_NAME, name_of.values(), extra, 1)
        others: set[str] = set()  # a name shared with one record of the other CRM: that one
        for ref, name in name_of.items():
            if name in by_name:
                group = by_name[name]
                other = [o for o in ((group,) if isinstance(group, str) else group)
                         if _system(o) != _system(ref)]
                if len(other) == 1 and other[0] not in values:
                    others.add(other[0])
        known = {o: extra[o] for o in others if o in extra}
        unknown = sorted(others - set(known))
        if unknown:
            stored = self.state.get_fingerprints(VALUES, unknown)
            known.update({o: _parse(text) for o, text in stored.items()})
        other_domains = {o: d for o, (d, _) in known.items() if d}
        domain_of.update(other_domains)
        by_domain.update(self._groups(BY_DOMAIN, set(other_domains.values()) - set(by_domain),
                                      extra, 0))
        return {ref: account_key(ref, domain_of, name_of, by_domain, by_name)
                for ref in values}

    # -- reading --------------------------------------------------------------------------
    def keys_with(self, records: Sequence[AccountRecord]) -> dict[str, str]:
        """The keys these records (not in the index: deleted ones) would have in it, record
        key -> account key: what the accounts were keyed as before the records left."""
        extra = {acc.ref: self.values_of(acc) for acc in records}
        return self._keys_for(extra, extra)

    def members_of(self, keys: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Account key -> its record keys (sorted), for the keys the index has."""
        stored = self.state.get_fingerprints(MEMBERS, sorted(set(keys))) if keys else {}
        return {k: tuple(sorted(v.split())) for k, v in stored.items() if v}

    def walk(self, count: int) -> Iterator[list[str]]:
        """Every account key of the index, about `count` at a time (a key may come twice,
        as a store's scan says)."""
        for found in walk_fingerprints(self.state, MEMBERS, count):
            yield sorted(found)

    def view(self, facts: Iterable[PersonAccountFacts]) -> AccountIndex:
        """The part of the index that resolving these facts reads (`AccountIndex.lookups`),
        as an `AccountIndex`: it resolves them as the whole index would."""
        refs, domains, names = AccountIndex.lookups(facts, self.free_domains)
        key_of = self.state.get_fingerprints(KEY, sorted(refs)) if refs else {}
        by_domain = {d: _as_keys(v) for d, v in (self.state.get_fingerprints(
            DOMAIN_KEYS, sorted(domains)) if domains else {}).items() if v}
        by_name = {n: _as_keys(v) for n, v in (self.state.get_fingerprints(
            NAME_KEYS, sorted(names)) if names else {}).items() if v}
        # the members of the keys a match can name (an ambiguous value names none)
        keys = {*key_of.values(), *(record_key(r) for r in refs if r not in key_of)}
        keys.update(found for found in (*by_domain.values(), *by_name.values())
                    if isinstance(found, str))
        return AccountIndex.of(key_of, self.members_of(sorted(keys)), by_domain, by_name,
                               self.free_domains)


def _parse(text: str) -> Values:
    domain, _, name = text.partition(" ")
    return domain or None, name or None
