"""`leadsync explain --account DOMAIN|ID`: one account's score, MQA state, rules and members.

Like `explain` for a person it reads the CRMs and evaluates exactly as a cycle would, writing
nothing: the accounts of both CRMs (`iter_accounts`, to find the account and its fields), the
account's members as the sync stored them (`account_members` / `account_member` in the state
store: the person keys and their record keys; docs/accounts.md) re-read from the CRMs now
(`read_people`) with their engagement, each person evaluated as `explain EMAIL` does, then
the account (`evaluate_account`, the episode start read back from the CRMs' MQA-at field).
People who joined the account after the last sync are not among the members until a sync
stores them. Shown per member: the person key, its record keys, fit, engagement, seniority,
newest marketing activity and whether it counts as engaged (no names, no emails, as `explain`
for a person).

The argument: a domain (`example.co.jp`, a URL or an email domain is normalised the same way as
an Account's Website), a CRM account id (Salesforce Account Id, HubSpot company id, or a record
key `salesforce:Account:001...`) or an account key (`a-...`). An argument that names no account
is a usage error (exit `exitcodes.CONFIG`, 2), as is a domain two accounts of one CRM share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table

from leadsync.accounts.phase import (
    MEMBER_KIND,
    MEMBERS_KIND,
    _fields,
    _mqa_at,
    decode_member,
)
from leadsync.accounts.resolve import (
    AccountIndex,
    AccountRecord,
    domain_key,
    is_account_key,
    normalise_domain,
)
from leadsync.config.settings import Settings
from leadsync.connectors.base import CrmAccount, CrmPerson, RecordRef
from leadsync.explain import _engagement, evaluate_people, reasons_table
from leadsync.runtime import Runtime, build_runtime
from leadsync.scoring import format_points
from leadsync.scoring.accounts import (
    AccountEvaluation,
    AccountModel,
    Member,
    engaged_members,
    evaluate_account,
    member_of,
)


class AccountNotFound(ValueError):
    """The argument names no account (or a domain several accounts of one CRM share)."""


@dataclass(frozen=True, slots=True)
class AccountExplanation:
    key: str
    records: tuple[CrmAccount, ...]  # the CRM account records of the account
    evaluation: AccountEvaluation
    members: tuple[tuple[Member, tuple[str, ...]], ...]  # re-evaluated now, with record keys
    gone: tuple[str, ...]  # stored members none of whose records the CRMs still have


def find_account(index: AccountIndex, accounts: Sequence[CrmAccount], target: str,
                 stored: Mapping[str, str]) -> str:
    """The account key the argument names (module doc); `stored` maps account keys to their
    stored member lists (an account no CRM holds yet is known by its members)."""
    text = target.strip()
    for acc in accounts:
        if text in (acc.ref.id, acc.ref.key) or _same_sf_id(text, acc.ref):
            return index.key_for_ref(acc.ref.key)
    if is_account_key(text) and (text in index.members or text in stored):
        return text
    domain = normalise_domain(text.rpartition("@")[2] if "@" in text else text)
    if domain is not None:
        keys = index.keys_for_domain(domain)
        if len(keys) > 1:
            raise AccountNotFound(
                f"ACCOUNT: {domain!r} is the domain of {len(keys)} accounts "
                f"({', '.join(sorted(keys))}): name one by its CRM id or account key")
        if keys:
            return next(iter(keys))
        if domain_key(domain) in stored:  # a company no CRM holds as an account yet
            return domain_key(domain)
    shown = text if len(text) <= 60 else text[:57] + "..."
    person = _person_id_kind(text)
    if person is not None:
        raise AccountNotFound(
            f"ACCOUNT: {shown!r} is {person}, not an account: give its account's domain or "
            "Salesforce Account / HubSpot company id (`leadsync explain EMAIL` explains a "
            "person)")
    raise AccountNotFound(
        f"ACCOUNT: {shown!r} names no account: no Salesforce Account Website or HubSpot "
        "company domain has it, no account id or key matches, and no person the sync stored "
        "belongs to it")


_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
#: Salesforce key prefixes of the person objects (an id's first three characters)
_SF_PERSON_PREFIXES = {"003": "a Salesforce Contact id", "00Q": "a Salesforce Lead id"}
_PERSON_RECORD_KEYS = {"salesforce:Contact:": "a Salesforce Contact",
                       "salesforce:Lead:": "a Salesforce Lead",
                       "hubspot:contact:": "a HubSpot contact"}


def _same_sf_id(text: str, ref: RecordRef) -> bool:
    """A Salesforce Account id as the classic UI shows it: its 15-character, case-sensitive
    form (the API returns 18 characters: the 15 plus a checksum)."""
    return (ref.system == "salesforce" and len(text) == 15 and len(ref.id) == 18
            and ref.id[:15] == text)


def _person_id_kind(text: str) -> str | None:
    """What person record an argument names, when it names one instead of an account."""
    for prefix, kind in _PERSON_RECORD_KEYS.items():
        if text.startswith(prefix):
            return kind
    if _SF_ID.match(text):
        return _SF_PERSON_PREFIXES.get(text[:3])
    return None


def explain_account_data(runtime: Runtime, target: str) -> AccountExplanation:
    """Find the account, re-read and re-evaluate its stored members, evaluate the account."""
    model = runtime.model
    rules = model.accounts
    if rules is None:
        raise AccountNotFound("ACCOUNT: the rules file has no accounts: section "
                              "(docs/accounts.md): no account is scored")
    accounts = [acc for conn in runtime.connectors.values() for acc in conn.iter_accounts()]
    index = AccountIndex((AccountRecord(a.ref.key, a.name, a.website) for a in accounts),
                         model.free_email_domains)
    candidates = {index.key_for_ref(a.ref.key) for a in accounts}
    domain = normalise_domain(target.strip())
    if domain is not None:
        candidates.add(domain_key(domain))
    if is_account_key(target.strip()):
        candidates.add(target.strip())
    stored = runtime.state.get_fingerprints(MEMBERS_KIND, sorted(candidates))
    key = find_account(index, accounts, target, stored)
    records = tuple(a for a in accounts if index.key_for_ref(a.ref.key) == key)
    now = runtime.clock()
    members, gone = _members(runtime, rules, key, stored.get(key, ""), now)
    evaluation = evaluate_account(_fields(key, records), [m for m, _ in members], rules,
                                  model.version, now, previous_mqa_at=_mqa_at(records))
    return AccountExplanation(key, records, evaluation, tuple(members), tuple(gone))


def _members(runtime: Runtime, rules: AccountModel, key: str, listed: str, now: datetime
             ) -> tuple[list[tuple[Member, tuple[str, ...]]], list[str]]:
    pids = sorted(set(listed.split()))
    entries = {pid: decode_member(pid, payload) for pid, payload in
               (runtime.state.get_fingerprints(MEMBER_KIND, pids).items() if pids else ())}
    mine = {pid: e[2] for pid, e in entries.items() if e is not None and e[0] == key}
    refs: dict[str, list[RecordRef]] = {}
    for record_keys in mine.values():
        for rk in record_keys:
            try:
                ref = RecordRef.parse(rk)
            except ValueError:
                continue
            if ref.system in runtime.connectors:
                refs.setdefault(ref.system, []).append(ref)
    found: dict[str, CrmPerson] = {}
    for system, wanted in refs.items():
        for rec in runtime.connectors[system].read_people(sorted(set(wanted))):
            found[rec.ref.key] = rec
    owner = {rk: pid for pid, rks in mine.items() for rk in rks}
    events = _engagement(runtime, found)
    out: list[tuple[Member, tuple[str, ...]]] = []
    seen: set[str] = set()
    for group, person_key, profile, ev in evaluate_people(runtime, list(found.values()),
                                                          events, now):
        # a member keeps the key the sync stored it under (its records say which)
        pid = next((owner[r.ref.key] for r in group if r.ref.key in owner), person_key)
        if pid in seen:
            continue
        seen.add(pid)
        out.append((member_of(profile, ev, now, key=pid),
                    tuple(sorted(r.ref.key for r in group))))
    out.sort(key=lambda item: (-item[0].engagement, item[0].key))
    return out, sorted(set(mine) - seen)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


NO_MEMBERS = "No member stored: a sync stores the people it evaluates."
NO_REDIS = ("No member stored here: LEADSYNC_REDIS_URL is not set, and the members a sync "
            "stored are in Redis: set it as the worker has it.")


def render_account(console: Console, found: AccountExplanation, rules: AccountModel,
                   now: datetime, no_members_note: str = NO_MEMBERS) -> None:
    ev = found.evaluation
    fields = _fields(found.key, found.records)
    domain = normalise_domain(fields.domain) or ""
    console.print(f"[bold]Account {found.key}[/bold]  {domain}  records: "
                  + (", ".join(a.ref.key for a in found.records) or "none (no CRM account)"),
                  highlight=False)
    table = reasons_table(f"Account score {ev.score}  (MQA at {rules.mqa:g}, model {ev.model})")
    for reason in ev.reasons:
        table.add_row(reason.rule, reason.label, format_points(reason.points))
    if not ev.reasons:
        table.add_row("—", "no rule matched", "0")
    console.print(table)
    if ev.mqa:
        new = " (starts now: the next cycle hands it off)" if ev.became_mqa else ""
        console.print(f"MQA: [bold]yes[/bold], since {_when(ev.mqa_at)}{new}", highlight=False)
    else:
        exit_note = (f"; an episode ends below {rules.exit_threshold:g}"
                     if rules.exit_threshold != rules.mqa else "")
        console.print(f"MQA: [bold]no[/bold] (score {ev.score} < {rules.mqa:g}{exit_note})",
                      highlight=False)
    for acc in found.records:  # what the last cycle wrote, as the CRM holds it
        score = acc.current.get("account_score")
        if score not in (None, ""):
            console.print(f"{acc.ref.key} holds score {score}, MQA at "
                          f"{acc.current.get('mqa_at') or '—'}", highlight=False)
    engaged = {m.key for m in engaged_members([m for m, _ in found.members], rules, now)}
    window = f" within {rules.within_days:g} days" if rules.within_days is not None else ""
    members = Table(title=f"Members: {len(found.members)} ({len(engaged)} engaged: engagement "
                          f"≥ {rules.engagement_min:g}{window})", title_justify="left")
    members.add_column("person", no_wrap=True, min_width=26)  # whole keys, on any terminal
    members.add_column("records", overflow="fold")
    for column in ("fit", "engagement"):
        members.add_column(column, justify="right")
    for column in ("seniority", "last active", "engaged"):
        members.add_column(column)
    for member, record_keys in found.members:
        members.add_row(member.key, ", ".join(record_keys), str(member.fit),
                        str(member.engagement), member.seniority,
                        _when(member.last_active_at), "yes" if member.key in engaged else "no")
    console.print(members)
    if not found.members:  # a line, not a row: readable on any terminal width
        console.print(no_members_note, highlight=False)
    if found.gone:
        console.print(f"{len(found.gone)} stored member(s) no longer in the CRMs: "
                      + ", ".join(found.gone), highlight=False)


def explain_account(settings: Settings, target: str, console: Console) -> None:
    """The CLI's `explain --account`: raises AccountNotFound for an unknown account."""
    runtime = build_runtime(settings)
    found = explain_account_data(runtime, target)
    assert runtime.model.accounts is not None
    render_account(console, found, runtime.model.accounts, runtime.clock(),
                   NO_MEMBERS if settings.redis_url else NO_REDIS)
