"""Account resolution: one account key per company across both CRMs (docs/accounts.md).

Pure: plain values in, plain values out, no I/O. The sync reads the CRMs' account records
(Salesforce Accounts, HubSpot companies) and each person record's account facts, builds an
`AccountIndex` once per cycle and asks it for each person record's `AccountMatch`.

- **Account key.** `"a-"` + 24 hex of SHA-256 over `"domain:" + domain` when the company has a
  domain (Account Website / company domain, or a person's non-free-mail domain); a CRM account
  without a usable domain whose normalised name is claimed by no other account of its CRM gets
  the name key (`"name:" + normalised name`), or the domain key of the one account with that name
  in the other CRM; anything else (a domain or a name two accounts of one CRM share) gets
  `"a-r-"` + a digest of its record key. Derivable from CRM data alone, like person keys.
- **A person record's account** (first rule that applies wins):
  Salesforce Contact -> its `AccountId`; converted Lead -> its `ConvertedAccountId`;
  HubSpot contact -> its associated company (the primary one when several);
  unconverted Lead / HubSpot contact without company -> its email domain, unless free mail;
  unconverted Lead without a business domain -> its normalised company name.
  A domain or name that leads to two accounts is reported (`ambiguous`), never guessed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from leadsync.scoring.derived import FREE_EMAIL_DOMAINS, email_domain

ACCOUNT_PREFIX = "a-"
RECORD_PREFIX = "a-r-"
AMBIGUOUS_LISTED = 20  # candidates an ambiguous match lists (the first, by key)

Via = Literal["account_id", "converted_account_id", "association", "email_domain",
              "company_name", "none"]

# Legal forms, after NFKC (which turns ㈱ into (株)) and case folding. Japanese forms are removed
# wherever they stand (株式会社リクルート, トヨタ自動車株式会社); English ones only at the end,
# as whole words, so "Cisco" and "Incline" keep their letters.
_JA_FORMS = re.compile(r"株式会社|有限会社|合同会社|合資会社|合名会社|\(株\)|\(有\)|\(同\)")
_EN_FORMS = re.compile(
    r"(?:^|[\s,.])(?:inc|incorporated|corp|corporation|co\.?\s*,?\s*ltd|ltd|limited|llc|"
    r"l\.l\.c|co|company|k\.?\s*k|gmbh|plc|pte)\.?\s*$")
_DOMAIN = re.compile(r"^[0-9a-z\u00a0-\uffff](?:[0-9a-z\u00a0-\uffff-]*[0-9a-z\u00a0-\uffff])?"
                     r"(?:\.[0-9a-z\u00a0-\uffff](?:[0-9a-z\u00a0-\uffff-]*"
                     r"[0-9a-z\u00a0-\uffff])?)+$")
_MAX_NAME = 255


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def normalise_company(name: str | None) -> str | None:
    """A company name as matched: NFKC, case folded, legal forms (株式会社, (株), Inc., Co., Ltd.
    ...) and every space and punctuation mark removed. None when nothing is left."""
    if not name or not isinstance(name, str):
        return None
    text = unicodedata.normalize("NFKC", name[:_MAX_NAME]).casefold().strip()
    text = _JA_FORMS.sub(" ", text)
    for _ in range(4):  # "Foo Co., Ltd. Inc." -> "foo": a few suffixes, never a loop on input
        stripped = _EN_FORMS.sub("", text).rstrip(" ,.")
        if stripped == text:
            break
        text = stripped
    kept = "".join(ch for ch in text
                   if unicodedata.category(ch)[0] in "LN")  # letters and digits only
    return kept or None


def normalise_domain(value: str | None) -> str | None:
    """A company domain from a website or domain field: scheme, path, port, `www.` and a
    trailing dot removed, NFKC, lower-cased. None when it is not a domain."""
    if not value or not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    if len(text) > 253 or not _DOMAIN.match(text):
        return None
    return text


def domain_key(domain: str) -> str:
    return ACCOUNT_PREFIX + _digest("domain:" + domain)


def name_key(name: str) -> str:
    return ACCOUNT_PREFIX + _digest("name:" + name)


def record_key(account_ref: str) -> str:
    return RECORD_PREFIX + _digest(account_ref)


def is_account_key(value: str) -> bool:
    return value.startswith(ACCOUNT_PREFIX)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A CRM's company: `ref` is "salesforce:Account:001..." or "hubspot:company:123";
    `website` the Account's Website or the company's domain."""

    ref: str
    name: str | None = None
    website: str | None = None

    @property
    def system(self) -> str:
        return self.ref.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class PersonAccountFacts:
    """What a person record says about its company. `record` is its record key
    ("salesforce:Contact:003..."); `account_id` a Contact's AccountId; `converted_account_id`
    a converted Lead's; `company_ids` a HubSpot contact's associated companies, with
    `primary_company_id` the primary association when HubSpot marked one."""

    record: str
    email: str | None = None
    company: str | None = None
    account_id: str | None = None
    converted_account_id: str | None = None
    company_ids: tuple[str, ...] = ()
    primary_company_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccountMatch:
    """The account of one person record. `key` is None when there is none (`via` "none") or
    when the match is ambiguous: `ambiguous` then lists the candidate keys, and `detail` says
    what matched (a domain or a normalised name; never an email)."""

    record: str
    key: str | None
    via: Via
    accounts: tuple[str, ...] = ()  # the CRM account records behind `key`
    ambiguous: tuple[str, ...] = ()
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """Two or more accounts of one CRM claim one domain or normalised name."""

    system: str
    kind: Literal["domain", "name"]
    value: str
    accounts: tuple[str, ...]


Refs = str | list[str]  # one record key, or several (in the order added)
Keys = str | tuple[str, ...]  # one account key (most), or several


def _add(index: dict[str, Refs], value: str, ref: str) -> None:
    have = index.get(value)
    if have is None:
        index[value] = ref
    elif isinstance(have, str):
        index[value] = [have, ref]
    else:
        have.append(ref)


def _refs(value: Refs) -> Sequence[str]:
    return (value,) if isinstance(value, str) else value


def _system(ref: str) -> str:
    return ref.split(":", 1)[0]


def _alone(refs: Refs, system: str) -> bool:
    """Whether `refs` hold a single record of `system` (one record, or one of that CRM)."""
    return isinstance(refs, str) or sum(_system(r) == system for r in refs) == 1


def account_key(ref: str, domain_of: Mapping[str, str], name_of: Mapping[str, str],
                by_domain: Mapping[str, Refs], by_name: Mapping[str, Refs]) -> str:
    """The account key of one CRM account record (module doc), from the normalised domain
    and name of each record (`domain_of`, `name_of`: only records that have one) and the
    records that share each value (`by_domain`, `by_name`, both CRMs). What it reads: the
    record's own values and groups, and for a name shared with exactly one record of the other
    CRM, that record's domain and domain group; so a store can answer it a batch of records
    at a time (`leadsync.accounts.stored`). Rules, in order:

    - a domain no other record of the same CRM has: its domain key;
    - a record with a shared domain, without a name, or whose name another record of its CRM
      shares: its record key;
    - a name that exactly one record of the other CRM has: that record's domain key when it
      has one of its own; its record key when it has a shared domain and sorts first (an
      account read in that order: the records are keyed in record key order); else
    - the name key."""
    system = _system(ref)
    domain = domain_of.get(ref)
    if domain is not None and _alone(by_domain[domain], system):
        return domain_key(domain)
    name = name_of.get(ref)
    if domain is not None or name is None or not _alone(by_name[name], system):
        return record_key(ref)
    others = [o for o in _refs(by_name[name]) if _system(o) != system]
    if len(others) == 1:
        other = others[0]
        other_domain = domain_of.get(other)
        if other_domain is not None and _alone(by_domain[other_domain], _system(other)):
            return domain_key(other_domain)
        if other_domain is not None and other < ref:
            return record_key(other)
    return name_key(name)


def _key_records(refs: Sequence[str], domain_of: dict[str, str], name_of: dict[str, str],
                 by_domain: dict[str, Refs], by_name: dict[str, Refs]) -> dict[str, str]:
    """Record key -> account key (`account_key`); each account key is one string object."""
    shared: dict[str, str] = {}
    return {ref: shared.setdefault(key := account_key(ref, domain_of, name_of, by_domain,
                                                      by_name), key)
            for ref in refs}


def _ambiguities(kind: Literal["domain", "name"], index: dict[str, Refs]
                 ) -> list[Ambiguity]:
    """The values two or more records of one CRM share, by (system, value)."""
    found: list[Ambiguity] = []
    for value, refs in index.items():
        if isinstance(refs, str):
            continue
        by_system: dict[str, list[str]] = defaultdict(list)
        for ref in refs:
            by_system[_system(ref)].append(ref)
        found.extend(Ambiguity(system, kind, value, tuple(rs))
                     for system, rs in by_system.items() if len(rs) > 1)
    return sorted(found, key=lambda a: (a.system, a.value))


def _keys_by(index: dict[str, Refs], key_of: Mapping[str, str]) -> dict[str, Keys]:
    """Normalised domain / name -> the account key(s) of its records: a key, or a sorted
    tuple when they have several."""
    out: dict[str, Keys] = {}
    for value, refs in index.items():
        if isinstance(refs, str):
            out[value] = key_of[refs]
            continue
        keys = sorted({key_of[r] for r in refs})
        out[value] = keys[0] if len(keys) == 1 else tuple(keys)
    return out


def _keys(value: Keys | None) -> tuple[str, ...]:
    return () if value is None else (value,) if isinstance(value, str) else value


class AccountIndex:
    """The accounts of both CRMs, keyed once (see the module doc for the key rules). Holds only
    what resolving needs (the account read is the largest thing a run keeps: issue 9): record
    key -> account key (`key_of`), account key -> its record keys (`members`), domain and name
    -> account keys, and the ambiguities; each account key is one string object, shared. Built
    with one entry per value (a record key, a list only where values are shared): the build's
    own transient is a few dicts, not a list and a set per account."""

    def __init__(self, accounts: Iterable[AccountRecord],
                 free_domains: frozenset[str] = FREE_EMAIL_DOMAINS) -> None:
        self.free_domains = free_domains
        records = {a.ref: a for a in accounts}  # the last of a record key wins
        refs = sorted(records)
        domain_of: dict[str, str] = {}
        name_of: dict[str, str] = {}
        by_domain: dict[str, Refs] = {}
        by_name: dict[str, Refs] = {}
        for ref in refs:
            acc = records[ref]
            domain = normalise_domain(acc.website)
            if domain is not None and domain not in free_domains:
                domain_of[ref] = domain
                _add(by_domain, domain, ref)
            name = normalise_company(acc.name)
            if name is not None:
                name_of[ref] = name
                _add(by_name, name, ref)
        del records
        self.ambiguities: tuple[Ambiguity, ...] = tuple(
            _ambiguities("domain", by_domain) + _ambiguities("name", by_name))
        key_of = _key_records(refs, domain_of, name_of, by_domain, by_name)
        del refs, domain_of, name_of
        self.key_of: dict[str, str] = key_of
        grouped: dict[str, Refs] = {}
        for ref, key in key_of.items():
            _add(grouped, key, ref)
        self.members: dict[str, tuple[str, ...]] = {k: (v,) if isinstance(v, str)
                                                    else tuple(sorted(v))
                                                    for k, v in grouped.items()}
        del grouped
        self._keys_by_domain = _keys_by(by_domain, key_of)
        self._keys_by_name = _keys_by(by_name, key_of)

    @classmethod
    def of(cls, key_of: dict[str, str], members: dict[str, tuple[str, ...]],
           keys_by_domain: dict[str, Keys], keys_by_name: dict[str, Keys],
           free_domains: frozenset[str] = FREE_EMAIL_DOMAINS) -> AccountIndex:
        """An index of parts already keyed: the part of a stored index (`leadsync.accounts.
        stored`) that resolving some people reads (`lookups`); no ambiguities listed."""
        index = cls.__new__(cls)
        index.free_domains = free_domains
        index.ambiguities = ()
        index.key_of, index.members = key_of, members
        index._keys_by_domain, index._keys_by_name = keys_by_domain, keys_by_name
        return index

    def key_for_ref(self, ref: str) -> str:
        """The key of a CRM account record; an account the index has not read gets its
        record key (a Contact's AccountId always names its account)."""
        return self.key_of.get(ref) or record_key(ref)

    def keys_for_domain(self, domain: str) -> set[str]:
        """The keys of the accounts with this (normalised) domain: one, none, or several when
        accounts of one CRM share it."""
        return set(_keys(self._keys_by_domain.get(domain)))

    def _by_ref(self, facts: PersonAccountFacts, ref: str, via: Via) -> AccountMatch:
        key = self.key_for_ref(ref)
        return AccountMatch(facts.record, key, via, self.members.get(key, (ref,)))

    def _by_candidates(self, facts: PersonAccountFacts, keys: Collection[str], via: Via,
                       detail: str) -> AccountMatch:
        if len(keys) > 1:  # the first candidates listed (a stored index keeps no more)
            return AccountMatch(facts.record, None, via,
                                ambiguous=tuple(sorted(keys)[:AMBIGUOUS_LISTED]), detail=detail)
        key = next(iter(keys))
        return AccountMatch(facts.record, key, via, self.members.get(key, ()), detail=detail)

    def resolve(self, facts: PersonAccountFacts) -> AccountMatch:
        """The account of one person record (module doc: first rule that applies wins)."""
        system, object_type = [*facts.record.split(":", 2), "", ""][:2]
        linked = self._linked(facts, system, object_type)
        if linked is not None:
            return linked
        domain = normalise_domain(email_domain(facts.email))
        if domain is not None and domain not in self.free_domains:
            known = _keys(self._keys_by_domain.get(domain))
            if known:
                return self._by_candidates(facts, known, "email_domain", domain)
            return AccountMatch(facts.record, domain_key(domain), "email_domain",
                                detail=domain)
        name = normalise_company(facts.company) if system == "salesforce" else None
        known = _keys(self._keys_by_name.get(name)) if name is not None else ()
        if name is not None and known:
            return self._by_candidates(facts, known, "company_name", name)
        return AccountMatch(facts.record, None, "none")

    @staticmethod
    def lookups(facts: Iterable[PersonAccountFacts], free_domains: frozenset[str]
                ) -> tuple[set[str], set[str], set[str]]:
        """What resolving these facts may read of an index: account record keys, normalised
        domains and names (a superset: `resolve` stops at the first rule that applies)."""
        refs: set[str] = set()
        domains: set[str] = set()
        names: set[str] = set()
        for facts_ in facts:
            system = facts_.record.split(":", 1)[0]
            if facts_.account_id:
                refs.add(f"salesforce:Account:{facts_.account_id}")
            if facts_.converted_account_id:
                refs.add(f"salesforce:Account:{facts_.converted_account_id}")
            refs.update(f"hubspot:company:{c}" for c in facts_.company_ids)
            if facts_.primary_company_id:
                refs.add(f"hubspot:company:{facts_.primary_company_id}")
            domain = normalise_domain(email_domain(facts_.email))
            if domain is not None and domain not in free_domains:
                domains.add(domain)
            name = normalise_company(facts_.company) if system == "salesforce" else None
            if name is not None:
                names.add(name)
        return refs, domains, names

    def _linked(self, facts: PersonAccountFacts, system: str,
                object_type: str) -> AccountMatch | None:
        """The account the CRM itself links the record to (AccountId, ConvertedAccountId, a
        company association), else None."""
        if system == "salesforce" and object_type == "Contact" and facts.account_id:
            return self._by_ref(facts, f"salesforce:Account:{facts.account_id}", "account_id")
        if system == "salesforce" and facts.converted_account_id:
            return self._by_ref(facts, f"salesforce:Account:{facts.converted_account_id}",
                                "converted_account_id")
        if system != "hubspot" or not (facts.primary_company_id or facts.company_ids):
            return None
        if facts.primary_company_id:
            return self._by_ref(facts, f"hubspot:company:{facts.primary_company_id}",
                                "association")
        keys = {self.key_for_ref(f"hubspot:company:{c}") for c in facts.company_ids}
        if len(keys) == 1:
            return self._by_ref(facts, f"hubspot:company:{facts.company_ids[0]}", "association")
        return AccountMatch(facts.record, None, "association", ambiguous=tuple(sorted(keys)),
                            detail="companies")
