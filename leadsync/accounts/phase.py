"""The account phase of a sync cycle (docs/accounts.md): after the people phases.

- **Which accounts.** The full run re-evaluates every account both CRMs hold plus every
  account a person of this cycle belongs to; an incremental run re-evaluates the accounts of the
  people evaluated this cycle (and the account a person left).
- **Reads.** Each CRM's accounts as changed since its account cursor, less those deleted
  since (`Connector.deleted_accounts`), on top of the stored ones: the full run too. A full
  account read on a cold start and when the cursor or last full read is older than the CRM
  keeps deleted records listed (`RETENTION`, `read_accounts`). An account whose every CRM
  record was deleted leaves (`leave`).
- **Members.** The people of this cycle resolve to their account (`resolve.AccountIndex`, with
  the CRMs' own links read by `read_account_links`); members not evaluated this cycle come from
  what the phase stored about them last time (`account_member` in the state store: account key,
  fit, engagement, seniority, newest marketing activity, record keys; no name or email). The
  account -> members index is `account_members`. In the full run the members are this cycle's.
- **Writes.** The account fields of every CRM record of the account, diffed against what
  `iter_accounts` read (a second cycle sends nothing); the lease is confirmed before writing.
  `finish` works the accounts a chunk at a time (`CHUNK_ACCOUNTS`: members and CRM records
  read back from the store, evaluated, written, forgotten) and sends the writes in the
  connectors' batches (`WRITE_BATCH`), so the calls are those of one write of every account.
- **Hand-off.** Every MQA account goes to `handoff.hand_off` (one task per episode; a known key
  costs no CRM call), `HANDOFF_BATCH` accounts at a time as the chunks are scored, the rest
  at the end of the run. The episode start (`mqa_at`) is read back
  from the CRM's MQA-at field, so a wiped state store finds the same key.
- **Budget stops.** A CRM whose budget is spent is left out: when any CRM could not read its
  accounts or links this cycle, the phase evaluates nothing (members would resolve to the wrong
  account) and says so; writes and hand-offs run per CRM under its own budget stop. When the
  phase did not finish (a budget stop, an MQA task not created), this cycle's people are
  handed to `retry` (the cycle's failed records: evaluated again next cycle, so their accounts
  are too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from leadsync.accounts.handoff import Handoff, choose_target, hand_off
from leadsync.accounts.resolve import (
    AccountIndex,
    AccountMatch,
    AccountRecord,
    PersonAccountFacts,
    normalise_domain,
)
from leadsync.accounts.stored import StoredAccountIndex
from leadsync.connectors.account_values import account_canonical
from leadsync.connectors.base import (
    AccountLinks,
    Connector,
    CrmAccount,
    FieldUpdate,
    RecordRef,
    WriteResult,
)
from leadsync.connectors.hubspot.accounts import BATCH as HUBSPOT_ACCOUNT_BATCH
from leadsync.connectors.hubspot.mapping import parse_datetime as hubspot_datetime
from leadsync.connectors.hubspot.writes import REASONS_LEN as HUBSPOT_REASONS_LEN
from leadsync.connectors.salesforce.mapping import parse_datetime as salesforce_datetime
from leadsync.connectors.salesforce.writes import COLLECTION as SALESFORCE_COLLECTION
from leadsync.connectors.salesforce.writes import REASONS_LEN as SALESFORCE_REASONS_LEN
from leadsync.identity import Person
from leadsync.report import CycleReport
from leadsync.scoring import Evaluation
from leadsync.scoring.accounts import (
    AccountEvaluation,
    AccountFields,
    AccountModel,
    Member,
    engaged_members,
    evaluate_account,
    member_of,
)
from leadsync.scoring.model import ScoringModel
from leadsync.scoring.reasons import render_reasons
from leadsync.state import InMemoryStateStore, StateStore, walk_fingerprints

log = logging.getLogger("leadsync.accounts.phase")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MEMBER_KIND = "account_member"  # person key -> compact JSON (what the account rules need)
MEMBERS_KIND = "account_members"  # account key -> space-separated person keys
TOP_ACCOUNTS = 5  # the report's top accounts (the sync and demo summaries show them)
# the CRMs' accounts as last read (incremental runs read only the changed ones: module doc)
ACCOUNT_KIND = "account_entry"  # CRM account record key -> the account as read (JSON)
# a CRM's account records as last listed: record key -> "1" (a deleted one: ""), per CRM
LISTED_KIND = "account_listed:{system}"
# the account records the CRM returned this run (working area): what finds the deleted ones
SEEN_KIND = "account_seen:{system}"
ACCOUNT_REFS_KIND = "account_refs"  # system -> record keys (the listing before LISTED_KIND)
# the record keys of the run's pages, one entry a page (`note`): what a phase that did not
# finish hands to `retry`, read back then instead of held by the process (memory flat)
RUN_KEYS_KIND = "account_run_keys"  # page number -> space-separated record keys
# the run's working area, in the store like its account index (`stored`): what the process
# held per account and per engaged person until `finish` (issue 9: memory flat). Dropped when
# the run's first page is noted and when `finish` ends.
# account key -> "" (touched by a person of the run), its domain (an account no CRM holds:
# the business domain of its people's emails, for the report), "!" once scored
RUN_TOUCHED_KIND = "account_run_touched"
# person key -> label (a name or title: what an MQA task lists) of the run's engaged people
# with an account; "" for one no longer engaged. Personal data: kept only for the run
RUN_LABELS_KIND = "account_run_labels"
SCORED = "!"
# the account read stores (and reads back) the CRMs' account records this many at a time
STORE_BATCH = 2_000
HANDOFF_BATCH = 1_000  # MQA accounts handed off at once (each held with its evaluation)
CHUNK_ACCOUNTS = 500  # `finish` scores the accounts this many at a time, members from the store
# records a CRM's account write sends per call (`write_account_updates`): the writes of the
# chunks are buffered and sent this many at a time (the rest at the end), so the phase makes the
# calls one write of every account would; a CRM not listed is written once, at the end
WRITE_BATCH: Mapping[str, int] = {"hubspot": HUBSPOT_ACCOUNT_BATCH,
                                  "salesforce": SALESFORCE_COLLECTION}
ACCOUNTS_CURSOR = "{system}:accounts"
FULL_READ_CURSOR = "{system}:accounts_full"  # when every account was last read
CURSOR_OVERLAP = timedelta(minutes=5)
# how long each CRM still lists a deleted account (HubSpot: archived companies, restorable 90
# days; Salesforce: the recycle bin, 15 days): a cursor or a last full read older than that,
# less a day's margin, makes the read full (deletions may have left the lists)
RETENTION = {"hubspot": timedelta(days=90), "salesforce": timedelta(days=15)}
RETENTION_MARGIN = timedelta(days=1)
# the CRMs' own wire formats of the MQA-at field as `iter_accounts` read it
_PARSE: Mapping[str, Callable[[object], datetime | None]] = {
    "salesforce": salesforce_datetime, "hubspot": hubspot_datetime}


def account_values(ev: AccountEvaluation) -> dict[str, object]:
    """The written account fields (docs/accounts.md) of one account evaluation."""
    return {"account_score": ev.score, "account_reasons": ev.reasons,
            "engaged_people": len(ev.engaged), "mqa_at": ev.mqa_at, "model": ev.model}


def encode_member(account: str | None, member: Member, records: Sequence[str],
                  noted: datetime | None = None) -> str:
    """A stored member; `noted`: the cycle that noted it (a full run prunes members noted
    before it started that it did not see)."""
    last = member.last_active_at.astimezone(UTC).isoformat() if member.last_active_at else None
    doc: dict[str, object] = {"a": account or "", "f": member.fit, "e": member.engagement,
                              "s": member.seniority, "t": last, "r": list(records)}
    if noted is not None:
        doc["n"] = noted.astimezone(UTC).isoformat()
    return json.dumps(doc, separators=(",", ":"))


def noted_at(payload: str) -> datetime | None:
    """When a stored member was noted (None: unreadable, or stored before entries said so)."""
    try:
        value = json.loads(payload).get("n")
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, AttributeError):
        return None


def decode_member(key: str, payload: str) -> tuple[str, Member, tuple[str, ...]] | None:
    """(account key, member, record keys) of a stored member; None when unreadable."""
    try:
        doc = json.loads(payload)
        last = datetime.fromisoformat(doc["t"]) if doc.get("t") else None
        return (str(doc["a"]), Member(key, int(doc["f"]), int(doc["e"]), str(doc["s"]), last),
                tuple(str(r) for r in doc.get("r", ())))
    except (ValueError, KeyError, TypeError):
        return None


def encode_account(acc: CrmAccount) -> str:
    return json.dumps({"n": acc.name, "w": acc.website, "i": acc.industry, "e": acc.employees,
                       "o": acc.owner_id, "a": dict(acc.attributes), "c": dict(acc.current)},
                      separators=(",", ":"), ensure_ascii=False, default=str)


def decode_account(key: str, payload: str) -> CrmAccount | None:
    """A stored account (`encode_account`); None when unreadable."""
    try:
        doc = json.loads(payload)
        employees = doc.get("e")
        return CrmAccount(RecordRef.parse(key), doc.get("n"), doc.get("w"), doc.get("i"),
                          employees if isinstance(employees, int) else None, doc.get("o"),
                          dict(doc.get("a") or {}), dict(doc.get("c") or {}))
    except (ValueError, TypeError, AttributeError):
        return None


def person_account(index: AccountIndex, person: Person,
                   links: Mapping[str, AccountLinks]) -> str | None:
    """The account of a person: its first record (primary first) that resolves to one."""
    match = person_match(index, person, links)
    return match.key if match is not None else None


def person_match(index: AccountIndex, person: Person,
                 links: Mapping[str, AccountLinks]) -> AccountMatch | None:
    """The match of `person_account` (None when no record resolves to an account)."""
    for facts in person_facts(person, links):
        match = index.resolve(facts)
        if match.key is not None:
            return match
    return None


def person_facts(person: Person, links: Mapping[str, AccountLinks]
                 ) -> list[PersonAccountFacts]:
    """What each record of a person (primary first) says about its company."""
    out: list[PersonAccountFacts] = []
    for rec in person.records:
        ref, link = rec.ref, links.get(rec.ref.key)
        ids = link.account_ids if link is not None else ()
        out.append(PersonAccountFacts(
            record=ref.key, email=rec.profile.email, company=rec.profile.company,
            account_id=ids[0] if ids and ref.system == "salesforce"
            and ref.object_type == "Contact" else None,
            converted_account_id=ids[0] if ids and ref.system == "salesforce"
            and ref.object_type == "Lead" else None,
            company_ids=ids if ref.system == "hubspot" else (),
            primary_company_id=link.primary if link is not None and ref.system == "hubspot"
            else None))
    return out


def _mqa_at(accounts: Sequence[CrmAccount]) -> datetime | None:
    """The earliest MQA-at the CRMs hold for the account (the episode start)."""
    found = [_PARSE[acc.ref.system](acc.current.get("mqa_at")) for acc in accounts
             if acc.ref.system in _PARSE]
    return min((f for f in found if f is not None), default=None)


def _fields(key: str, accounts: Sequence[CrmAccount]) -> AccountFields:
    """The account's fields: the Salesforce Account's first, then the HubSpot company's."""
    ordered = sorted(accounts, key=lambda a: (a.ref.system != "salesforce", a.ref.id))
    attributes: dict[str, object] = {}
    for acc in reversed(ordered):
        attributes.update(acc.attributes)

    def first(get: Callable[[CrmAccount], object]) -> object:
        return next((v for v in map(get, ordered) if v is not None), None)

    employees = first(lambda a: a.employees)
    name, website, industry = (first(lambda a: a.name), first(lambda a: a.website),
                               first(lambda a: a.industry))
    return AccountFields(key, name=str(name) if name is not None else None,
                         domain=str(website) if website is not None else None,
                         industry=str(industry) if industry is not None else None,
                         employees=employees if isinstance(employees, int) else None,
                         attributes=attributes)


def top_row(ev: AccountEvaluation, accounts: Sequence[CrmAccount],
            bare_domain: str | None) -> dict[str, object]:
    """One row of the report's top accounts: name, domain (an account no CRM holds: the
    business domain its people's emails share), MQA state, engaged people and reasons
    (`+40 3名以上がエンゲージ; ...`); no person is named."""
    fields = _fields(ev.key, accounts)
    return {"account": ev.key, "name": fields.name,
            "domain": normalise_domain(fields.domain) or bare_domain, "score": ev.score,
            "mqa": ev.mqa,
            "mqa_at": ev.mqa_at.astimezone(UTC).isoformat() if ev.mqa_at else None,
            "engaged": len(ev.engaged), "members": ev.members,
            "reasons": render_reasons(ev.reasons, 120)}


def best_rows(best: list[tuple[int, str, dict[str, object]]],
              done: Mapping[str, AccountEvaluation],
              crm_of: Mapping[str, Sequence[CrmAccount]],
              bare_domains: Mapping[str, str]) -> list[tuple[int, str, dict[str, object]]]:
    """The TOP_ACCOUNTS best so far (highest score first, ties by key) with a chunk's
    evaluations taken in: a row is built only for an account that makes it (a chunk's CRM
    records are at hand only while the chunk is scored)."""
    ranked = sorted([(-s, k) for s, k, _ in best] + [(-ev.score, k) for k, ev in done.items()])
    rows = {k: row for _, k, row in best}
    return [(-neg, key, rows[key] if key in rows else top_row(
        done[key], crm_of.get(key, ()), bare_domains.get(key)))
        for neg, key in ranked[:TOP_ACCOUNTS]]


class AccountPhase:
    """One cycle's account work (module doc). `crm_work(system)` is the cycle's per-CRM
    budget stop, `confirm` the lease check before writes, `stopped` the CRMs already stopped."""

    def __init__(self, *, connectors: Mapping[str, Connector], state: StateStore,
                 model: ScoringModel, report: CycleReport, now: datetime, dry_run: bool,
                 crm_work: Callable[[str], AbstractContextManager[None]],
                 confirm: Callable[[], None], stopped: set[str],
                 retry: Callable[[Iterable[str]], None] = lambda _keys: None,
                 run_started: datetime | None = None, full: bool = False) -> None:
        self.full = full  # the full run reads every account; an incremental one the changed
        self.connectors, self.state, self.model = connectors, state, model
        self.report, self.now, self.dry_run = report, now, dry_run
        # when the run began (a resumed full run: the killed run's start): a full run prunes
        # the stored members noted before it that it did not see (deleted from both CRMs)
        self.run_started = run_started or now
        self.crm_work, self.confirm, self.stopped = crm_work, confirm, stopped
        self.retry = retry
        self.unfinished = False  # a stop or a refusal: this cycle's people are retried
        self.broken = False  # a CRM's accounts or links could not be read: nothing is scored
        # the run so far: the pages noted, the accounts touched and those the run's people
        # resolve to. A real run's members are stored per page and read back by `finish` a
        # chunk of accounts at a time; a dry run stores nothing, so it keeps them in `noted`
        # (person key -> account key, member, record keys). The record keys of the run's
        # people (retried when the phase does not finish) are stored per page
        # (`RUN_KEYS_KIND`); a dry run retries nothing.
        self.noted: dict[str, tuple[str | None, Member, tuple[str, ...]]] = {}
        self.pages = 0  # pages whose record keys are stored (`RUN_KEYS_KIND`)
        self.seen_people = False  # a page with people was noted
        # deleted accounts (`gone_keys`) a person of this run still resolves to (a bare
        # email-domain account now): they stay
        self.resolved: set[str] = set()
        # the working area (the account index, the accounts touched, the engaged people's
        # labels): the state store's, a dry run's own (it stores nothing)
        self.scratch: StateStore = InMemoryStateStore() if dry_run else state
        self.opened = False  # the working area of a killed run was dropped
        # the CRMs' accounts, read once per run (`read`) and keyed in the working area
        # (`stored`); `score` reads a chunk's records back from the store (`ACCOUNT_KIND`,
        # saved by the read) when it scores the chunk. A dry run stores nothing: it keeps the
        # records (`_dry_accounts`).
        self._index: StoredAccountIndex | None = None
        self._dry_accounts: dict[str, CrmAccount] = {}  # record key -> account (dry run)
        # the account writes not sent yet, per CRM: sent `WRITE_BATCH` at a time (`flush`)
        self._outbox: dict[str, list[tuple[FieldUpdate, CrmAccount, dict[str, object]]]] = {}
        self.gone: list[AccountRecord] = []  # stored accounts the read found deleted
        self.gone_keys: set[str] = set()  # accounts left with no CRM record (they leave)

    def run(self, people: Sequence[Person], evaluations: Sequence[Evaluation], *,
            full: bool) -> None:
        """One page of people and the end of the run at once (a run of one page)."""
        self.full = full
        self.note(people, evaluations)
        self.finish(full=full)

    def note(self, people: Sequence[Person], evaluations: Sequence[Evaluation]) -> None:
        """One page of the run's people: their accounts (the CRMs' accounts are read once per
        run, the page's account links now) and what the account rules need of them. Accounts
        are scored once, by `finish`, so a run of many pages reads and writes each account
        once."""
        if self.model.accounts is None or self.broken or not people:
            return
        self.open()
        if not self.dry_run:  # retried if the phase does not finish (`finish`)
            self.state.set_fingerprints(RUN_KEYS_KIND, {str(self.pages): " ".join(
                sorted({r.ref.key for p in people for r in p.records}))})
            self.pages += 1
        read = self.read(people)
        if read is None:
            self.broken = True
            return
        stored_index, links = read
        index = stored_index.view(f for p in people for f in person_facts(p, links))
        ids = [p.id for p in people]
        before = {k: decode_member(k, v) for k, v in
                  self.state.get_fingerprints(MEMBER_KIND, ids).items()} if ids else {}
        page: dict[str, tuple[str | None, Member, tuple[str, ...]]] = {}
        bare: dict[str, str] = {}
        for person, ev in zip(people, evaluations, strict=True):
            match = person_match(index, person, links)
            account = match.key if match is not None else None
            if match is not None and match.key is not None and match.via == "email_domain" \
                    and match.detail:
                # an account no CRM holds (a bare business domain): its domain names it
                bare[match.key] = match.detail
            records = tuple(sorted({r.ref.key for r in person.records}))
            page[person.id] = (account, member_of(person.profile, ev, self.now, key=person.id),
                               records)
        moved = {pid: b[0] for pid, b in before.items() if b is not None and b[0]}
        touched = {a for a, _, _ in page.values() if a is not None} | set(moved.values())
        self.touch(touched, bare)
        self.resolved |= {a for a, _, _ in page.values() if a in self.gone_keys}
        self.seen_people = True
        if self.dry_run:
            self.noted.update(page)
            return
        rules = self.model.accounts
        self.scratch.set_fingerprints(RUN_LABELS_KIND, {
            pid: member.label if account is not None and member.label is not None
            and engaged_members([member], rules, self.now) else ""
            for pid, (account, member, _) in sorted(page.items())})
        # durable per page: a run killed before `finish` leaves its members for the next run
        self.state.set_fingerprints(MEMBER_KIND, {
            pid: encode_member(*entry, noted=self.now) for pid, entry in sorted(page.items())})
        index_of = {k: set(v.split()) for k, v in
                    self.state.get_fingerprints(MEMBERS_KIND, sorted(touched)).items()}
        for pid, (account, _, _) in page.items():
            old = moved.get(pid)
            if old is not None and old != account:
                index_of.setdefault(old, set()).discard(pid)
            if account is not None:
                index_of.setdefault(account, set()).add(pid)
        self.state.set_fingerprints(MEMBERS_KIND, {
            key: " ".join(sorted(index_of.get(key, set()))) for key in sorted(touched)})

    def open(self) -> None:
        """Drop the working area a killed run left (once a run, before its first page)."""
        if not self.opened:
            self.opened = True
            self.close()

    def close(self) -> None:
        """Drop the run's working area: its account index, touched accounts and labels."""
        if self._index is not None:
            self._index.clear()
        for kind in (RUN_TOUCHED_KIND, RUN_LABELS_KIND):
            self.scratch.drop_fingerprints(kind)

    def touch(self, keys: Iterable[str], bare: Mapping[str, str]) -> None:
        """These accounts are scored at the end of the run; `bare`: the domain of those no
        CRM holds (kept once known)."""
        wanted = sorted(set(keys))
        if not wanted:
            return
        known = self.scratch.get_fingerprints(RUN_TOUCHED_KIND, wanted)
        self.scratch.set_fingerprints(RUN_TOUCHED_KIND, {
            key: known.get(key) or bare.get(key, "") for key in wanted
            if not known.get(key) and (key not in known or bare.get(key))})

    def finish(self, *, full: bool) -> None:
        """Score the accounts the run's people touched (every account in the full run), write
        their changed fields and hand each MQA off once; then remember the members."""
        rules = self.model.accounts
        if rules is None or (not self.seen_people and not full and not self.broken):
            return
        self.open()
        try:
            if self.broken or (self._index is None and self.read([]) is None):
                self.unfinished = True
                self.report.accounts_not_evaluated += 1  # the summaries say so, too
                log.warning("accounts not evaluated: a CRM's budget stopped its account reads")
                return
            self.score(rules, full=full)
        finally:
            if self.unfinished and not self.dry_run:
                self.retry(sorted(self.run_keys()))
            if self.pages and not self.dry_run:  # the store has no delete: blanked
                self.state.set_fingerprints(RUN_KEYS_KIND,
                                            dict.fromkeys(map(str, range(self.pages)), ""))
            self.close()

    def run_keys(self) -> set[str]:
        """The record keys of the run's people (`note` stored them a page at a time)."""
        stored = self.state.get_fingerprints(RUN_KEYS_KIND, [str(n) for n in range(self.pages)])
        return {k for v in stored.values() for k in v.split()}

    def score(self, rules: AccountModel, *, full: bool) -> None:
        """Score the touched accounts `CHUNK_ACCOUNTS` at a time, end to end: each chunk's
        members and CRM records are read from the store (this run's pages stored the members,
        the account read the records; a dry run's are in `noted` and `_dry_accounts`), then the
        chunk is evaluated, its changed fields queued for writing (`write`: sent `WRITE_BATCH`
        at a time, so the calls are those of one write of every account) and forgotten. The
        run keeps the report's counters, its best `TOP_ACCOUNTS` rows and the MQA accounts'
        hand-offs, made `HANDOFF_BATCH` at a time (a look-up of the CRMs' task keys and the
        creates each: a partial batch of calls more per thousand MQA accounts at most)."""
        # an account deleted from every CRM leaves, unless a person of this run still
        # resolves to its key (a bare email domain account now)
        leaving = self.gone_keys - self.resolved
        if leaving:
            self.leave(leaving)
        dry: dict[str, dict[str, tuple[Member, tuple[str, ...]]]] = {}
        for pid, (account, member, records) in self.noted.items():  # a dry run's pages
            if account is not None:
                dry.setdefault(account, {})[pid] = (member, records)
        best: list[tuple[int, str, dict[str, object]]] = []
        handoffs: list[Handoff] = []
        pruned: set[str] = set()
        for bare in self.chunks(leaving, full=full):
            chunk = sorted(bare)
            members = self.chunk_members(chunk, dry, full=full, pruned=pruned)
            crm_of = self.chunk_accounts(chunk)
            done = {key: evaluate_account(
                _fields(key, crm_of.get(key, ())), [m for m, _ in members[key].values()], rules,
                self.model.version, self.now, previous_mqa_at=_mqa_at(crm_of.get(key, ())))
                for key in chunk}
            self.remember(rules, done, members)
            self.report.accounts_evaluated += len(done)
            self.report.accounts_mqa += sum(1 for ev in done.values() if ev.mqa)
            best = best_rows(best, done, crm_of, bare)
            self.report.top_accounts = [row for _, _, row in best]
            handoffs.extend(self.handoffs(done, crm_of, members))
            self.write(done, crm_of)
            self.scratch.set_fingerprints(RUN_TOUCHED_KIND, dict.fromkeys(chunk, SCORED))
            if len(handoffs) >= HANDOFF_BATCH:
                self.hand_off(handoffs)
                handoffs = []
        for system in sorted(self._outbox):
            self.flush(system, final=True)
        self.hand_off(handoffs)

    def chunks(self, leaving: set[str], *, full: bool) -> Iterator[dict[str, str]]:
        """The accounts to score, `CHUNK_ACCOUNTS` at a time (account key -> the domain of an
        account no CRM holds, else ""): every account of the index in the full run, then
        those the run's people touched; none twice (a scored one is marked `SCORED` before
        the next chunk is asked for; a store's walk may repeat a key), none leaving."""
        assert self._index is not None
        index = self._index

        def walks() -> Iterator[list[str]]:
            if full:
                yield from index.walk(CHUNK_ACCOUNTS)
            for found in walk_fingerprints(self.scratch, RUN_TOUCHED_KIND, CHUNK_ACCOUNTS):
                yield sorted(k for k, v in found.items() if v != SCORED)

        waiting: dict[str, str] = {}
        for keys in walks():
            fresh = [k for k in keys if k not in leaving and k not in waiting]
            marks = self.scratch.get_fingerprints(RUN_TOUCHED_KIND, fresh) if fresh else {}
            waiting.update((k, marks.get(k, "")) for k in fresh if marks.get(k) != SCORED)
            while len(waiting) >= CHUNK_ACCOUNTS:
                chunk = dict(sorted(waiting.items())[:CHUNK_ACCOUNTS])
                for key in chunk:
                    del waiting[key]
                yield chunk
        if waiting:
            yield waiting

    def chunk_accounts(self, chunk: Sequence[str]) -> dict[str, list[CrmAccount]]:
        """The CRM records of a chunk of accounts (account key -> records): read back from the
        store (`ACCOUNT_KIND`: the account read saved every record it found, and a write since
        updated the entries of what it wrote), a dry run's from the process."""
        assert self._index is not None
        listed = self._index.members_of(chunk)
        refs = {key: listed.get(key, ()) for key in chunk}
        wanted = sorted({r for rs in refs.values() for r in rs})
        if self.dry_run:
            found = {r: self._dry_accounts[r] for r in wanted if r in self._dry_accounts}
        else:
            stored = self.state.get_fingerprints(ACCOUNT_KIND, wanted) if wanted else {}
            found = {k: acc for k, acc in ((k, decode_account(k, v)) for k, v in stored.items())
                     if acc is not None}
        return {key: [found[r] for r in rs if r in found] for key, rs in refs.items() if rs}

    def chunk_members(self, chunk: Sequence[str],
                      dry: Mapping[str, Mapping[str, tuple[Member, tuple[str, ...]]]], *,
                      full: bool, pruned: set[str]
                      ) -> dict[str, dict[str, tuple[Member, tuple[str, ...]]]]:
        """The members of a chunk of accounts: the stored ones (this run's pages wrote theirs,
        with the labels of this run's engaged people), a dry run's on top. A full run prunes
        the members noted before it started that it did not see (`pruned`: counted once)."""
        members: dict[str, dict[str, tuple[Member, tuple[str, ...]]]] = {k: {} for k in chunk}
        stored = self.state.get_fingerprints(MEMBERS_KIND, list(chunk))
        others = sorted({p for v in stored.values() for p in v.split()} - set(self.noted))
        payloads = self.state.get_fingerprints(MEMBER_KIND, others) if others else {}
        gone: set[str] = set()
        if full:  # everyone in both CRMs was read: a member noted before and unseen is gone
            gone = {pid for pid in others if pid not in payloads
                    or (noted_at(payloads[pid]) or _EPOCH) < self.run_started}
        labels = self.scratch.get_fingerprints(RUN_LABELS_KIND, sorted(payloads)) \
            if payloads and not self.dry_run else {}
        for pid, payload in payloads.items():
            found = decode_member(pid, payload)
            if found is not None and found[0] in members and pid not in gone:
                member = found[1]
                if labels.get(pid):
                    member = replace(member, label=labels[pid])
                members[found[0]][pid] = (member, found[2])
        if gone:
            self.prune(stored, gone, count=len(gone - pruned))
            pruned |= gone
        for key in chunk:
            members[key].update(dry.get(key, {}))
        return members

    def remember(self, rules: AccountModel, evaluated: Mapping[str, AccountEvaluation],
                 members: Mapping[str, Mapping[str, tuple[Member, tuple[str, ...]]]]) -> None:
        """Store each account's score and MQA state (what members inherit from: module
        `inherit`); when that flips whether its members inherit, their records go on the to-do
        list so the next cycle re-evaluates them."""
        from leadsync.accounts.inherit import STATE_KIND, decode_state, encode_state

        inherit = rules.inherit
        if self.dry_run or inherit is None or not evaluated:
            return
        keys = sorted(evaluated)
        before = self.state.get_fingerprints(STATE_KIND, keys)
        flipped: dict[str, set[str]] = {}
        for key in keys:
            old = decode_state(before.get(key))
            ev = evaluated[key]
            if inherit.holds(old[0] if old else None, old[1] if old else False) \
                    != inherit.holds(ev.score, ev.mqa):
                for _, records in members[key].values():
                    for rk in records:
                        flipped.setdefault(rk.split(":", 1)[0], set()).add(rk)
        self.state.set_fingerprints(STATE_KIND, {k: encode_state(evaluated[k]) for k in keys})
        # through the cycle's retry list: the commit puts them on the to-do list after it
        # settled this page (a plain add_pending would be undone by that commit)
        self.retry(sorted(rk for system, rks in flipped.items() if system in self.connectors
                          for rk in rks))
        if flipped:
            log.info("account members re-evaluated next cycle: their inherited points changed",
                     extra={"count": sum(len(v) for v in flipped.values())})

    def leave(self, keys: set[str]) -> None:
        """Accounts whose every CRM record was deleted leave the store: their member index and
        inherit state are blanked (the MQA episode ends: no CRM record holds its MQA-at any
        more, and members inherit nothing from it), their stored members (not this run's) lose
        the account and their records are retried, so the next cycle re-evaluates them and
        they re-resolve (to another account, or none). Counted in `accounts_deleted`."""
        from leadsync.accounts.inherit import STATE_KIND

        self.report.accounts_deleted += len(keys)
        log.info("accounts left the store: deleted in every CRM", extra={"count": len(keys)})
        if self.dry_run:
            return
        listed = self.state.get_fingerprints(MEMBERS_KIND, sorted(keys))
        pids = sorted({p for v in listed.values() for p in v.split()} - set(self.noted))
        cleared: dict[str, str] = {}
        records: set[str] = set()
        for pid, payload in (self.state.get_fingerprints(MEMBER_KIND, pids).items()
                             if pids else ()):
            found = decode_member(pid, payload)
            if found is None or found[0] not in keys:
                continue
            cleared[pid] = encode_member(None, found[1], found[2], noted=noted_at(payload))
            records.update(found[2])
        if cleared:
            self.state.set_fingerprints(MEMBER_KIND, cleared)
        self.state.set_fingerprints(MEMBERS_KIND, dict.fromkeys(sorted(keys), ""))
        self.state.set_fingerprints(STATE_KIND, dict.fromkeys(sorted(keys), ""))
        self.retry(sorted(r for r in records if r.split(":", 1)[0] in self.connectors))

    def prune(self, stored: Mapping[str, str], gone: set[str], *, count: int) -> None:
        """Drop members a full run did not see from their accounts (their entries are blanked:
        the store has no delete); `count` of them (not counted before) go in the report."""
        self.report.account_members_pruned += count
        log.info("account members pruned: no longer in the CRMs", extra={"count": count})
        if self.dry_run:
            return
        self.state.set_fingerprints(MEMBERS_KIND, {
            key: " ".join(sorted(set(listed.split()) - gone))
            for key, listed in sorted(stored.items()) if set(listed.split()) & gone})
        self.state.set_fingerprints(MEMBER_KIND, dict.fromkeys(sorted(gone), ""))

    def read(self, people: Sequence[Person]
             ) -> tuple[StoredAccountIndex, dict[str, AccountLinks]] | None:
        """The account index (every CRM's accounts, read once per run, keyed in the working
        area: `stored`) and the account links of these people (the links their read carried;
        `read_account_links` for the rest); None when a CRM's budget stopped it (before or
        during)."""
        links: dict[str, AccountLinks] = {
            r.ref.key: r.account_links for p in people for r in p.records
            if r.account_links is not None and r.account_links.account_ids}
        building = StoredAccountIndex(self.scratch, self.model.free_email_domains) \
            if self._index is None else None
        if building is not None:
            building.clear()
        for system, conn in self.connectors.items():
            if system in self.stopped:
                return None
            save: Callable[[], None] | None = None
            with self.crm_work(system):
                if building is not None:
                    save = self.read_accounts(system, conn, building.add)
                refs = sorted({r.ref for p in people for r in p.records
                               if r.ref.system == system and r.account_links is None},
                              key=lambda r: r.key)
                found = conn.read_account_links(refs) if refs else []
                links.update({lk.record.key: lk for lk in found})
            if system in self.stopped:
                return None
            if save is not None:  # the read finished: its entries and cursor are kept
                save()
        if building is not None:
            building.key()
            self._index = building
            if self.gone:  # their keys as the accounts were before the deletions
                keys = set(building.keys_with(self.gone).values())
                kept = set(building.members_of(sorted(keys)))
                self.gone_keys = keys - kept
                self.touch(kept, {})  # a CRM record left: re-evaluated
        assert self._index is not None
        return self._index, links

    def read_accounts(self, system: str, conn: Connector,
                      add: Callable[[list[AccountRecord]], None]
                      ) -> Callable[[], None] | None:
        """A CRM's accounts, the full run's and an incremental run's alike: the stored ones
        updated with those changed since the cursor (one search / query per 200 / 2,000
        changed) less those deleted since it (`deleted_accounts`: HubSpot's archived list,
        Salesforce's recycle bin through queryAll). Every account is read instead (the safety
        net, module `RETENTION`) without a cursor or stored accounts, or when the cursor or
        the last full read is older than the CRM keeps deleted records listed. Hands what the
        index needs of each account (`AccountRecord`) to `add`, a batch at a time, and returns
        what to store once the read finished (the deletions, the record list, the cursors);
        the deleted ones go to `self.gone`. The read is streamed (issue 9: it was a run's
        largest transient): each `STORE_BATCH` accounts read are stored (`ACCOUNT_KIND`, the
        CRM's values as read: an entry stored by a read that did not finish is only fresher)
        and forgotten, the stored ones are read back a batch at a time (`hand_over`); a dry
        run stores nothing and keeps them."""
        name = ACCOUNTS_CURSOR.format(system=system)
        full_name = FULL_READ_CURSOR.format(system=system)
        cursor = self.state.get_cursor(name)
        last_full = self.state.get_cursor(full_name)
        listed_kind = LISTED_KIND.format(system=system)
        seen_kind = SEEN_KIND.format(system=system)
        keep_for = RETENTION.get(system, min(RETENTION.values())) - RETENTION_MARGIN
        full_read = (cursor is None or not listed_refs(self.state, system, count=1)
                     or last_full is None
                     or self.now - cursor > keep_for or self.now - last_full > keep_for)
        self.scratch.drop_fingerprints(seen_kind)
        # the record keys read from the CRM this run go to `seen_kind` a batch at a time
        self.hand_over(conn.iter_accounts() if full_read
                       else conn.iter_accounts(since=cursor), add, seen=seen_kind)
        deleted: list[str] = []  # listed, not read: deleted (or merged away) since
        if full_read:
            for batch in self.listed_batches(system):
                seen = self.scratch.get_fingerprints(seen_kind, batch)
                deleted.extend(k for k in batch if k not in seen)
        else:
            assert cursor is not None
            gone = sorted({r.key for r in conn.deleted_accounts(cursor)})
            listed = self.state.get_fingerprints(listed_kind, gone) if gone else {}
            seen = self.scratch.get_fingerprints(seen_kind, gone) if gone else {}
            deleted = [k for k in gone if listed.get(k) and k not in seen]
            left = set(deleted)
            for batch in self.listed_batches(system):  # the others as stored
                seen = self.scratch.get_fingerprints(seen_kind, batch)
                self.hand_over(self.stored_accounts(
                    [k for k in batch if k not in seen and k not in left]), add)
        deleted = sorted(set(deleted))  # a scan may return a key twice
        if deleted:
            self.gone.extend(AccountRecord(a.ref.key, a.name, a.website)
                             for a in self.stored_accounts(sorted(deleted)))
            log.info("accounts deleted in a CRM", extra={"system": system,
                                                          "count": len(deleted)})
        if self.dry_run:
            return None

        def save() -> None:
            if deleted:
                # the store has no delete
                self.state.set_fingerprints(ACCOUNT_KIND, dict.fromkeys(sorted(deleted), ""))
            if full_read:  # the listing is what the CRM returned
                self.state.drop_fingerprints(listed_kind)
            else:
                self.state.set_fingerprints(listed_kind, dict.fromkeys(deleted, ""))
            # what the CRM returned joins the listing
            for found in walk_fingerprints(self.scratch, seen_kind, STORE_BATCH):
                self.state.set_fingerprints(listed_kind, dict.fromkeys(sorted(found), "1"))
            self.scratch.drop_fingerprints(seen_kind)
            self.state.set_fingerprints(ACCOUNT_REFS_KIND, {system: ""})  # an older listing
            self.state.set_cursor(name, self.now - CURSOR_OVERLAP)
            if full_read:
                self.state.set_cursor(full_name, self.now - CURSOR_OVERLAP)

        return save

    def hand_over(self, accounts: Iterable[CrmAccount],
                  add: Callable[[list[AccountRecord]], None], *, seen: str | None = None
                  ) -> None:
        """Hand these accounts to the index (`add`) and, with `seen` (accounts the CRM just
        returned), to the store (`ACCOUNT_KIND`) and their record keys to the working area's
        `seen` kind, `STORE_BATCH` at a time (a dry run keeps the accounts instead)."""
        records: list[AccountRecord] = []
        entries: dict[str, str] = {}

        def flush() -> None:
            if entries:
                self.state.set_fingerprints(ACCOUNT_KIND, entries)
            if seen is not None and records:
                self.scratch.set_fingerprints(seen, {r.ref: "1" for r in records})
            if records:
                add(records[:])
            records.clear()
            entries.clear()

        for acc in accounts:
            records.append(AccountRecord(acc.ref.key, acc.name, acc.website))
            if self.dry_run:
                self._dry_accounts[acc.ref.key] = acc
            elif seen is not None:
                entries[acc.ref.key] = encode_account(acc)
            if len(records) >= STORE_BATCH:
                flush()
        flush()

    def listed_batches(self, system: str) -> Iterator[list[str]]:
        """The CRM's listed account record keys (`LISTED_KIND`), about `STORE_BATCH` at a
        time (a key may come twice, as a store's scan says)."""
        for found in walk_fingerprints(self.state, LISTED_KIND.format(system=system),
                                       STORE_BATCH):
            batch = sorted(k for k, v in found.items() if v)
            if batch:
                yield batch

    def stored_accounts(self, keys: Sequence[str]) -> Iterator[CrmAccount]:
        """The stored accounts (`ACCOUNT_KIND`) of these record keys, in their order, read
        back `STORE_BATCH` at a time; keys not stored (or unreadable) are left out."""
        for start in range(0, len(keys), STORE_BATCH):
            batch = keys[start:start + STORE_BATCH]
            stored = self.state.get_fingerprints(ACCOUNT_KIND, batch)
            for key in batch:
                acc = decode_account(key, stored[key]) if key in stored else None
                if acc is not None:
                    yield acc

    def write(self, evaluated: Mapping[str, AccountEvaluation],
              crm_of: Mapping[str, Sequence[CrmAccount]]) -> None:
        """Queue a chunk's account fields: each CRM diffs them first (`write_account_updates`
        with `dry_run`: no call), the records it refuses are reported, those with a change go
        to the CRM's outbox, sent `WRITE_BATCH` at a time (`flush`). A dry run counts them."""
        by_system: dict[str, list[tuple[FieldUpdate, CrmAccount, dict[str, object]]]] = {}
        for key, ev in evaluated.items():
            values = account_values(ev)
            for acc in crm_of.get(key, ()):
                by_system.setdefault(acc.ref.system, []).append(
                    (FieldUpdate(ref=acc.ref, values=values, previous=acc.current), acc, values))
        for system, queued in by_system.items():
            if system in self.stopped:
                continue
            planned = WriteResult()
            with self.crm_work(system):
                if not self.dry_run:  # as before every write: a lost lease stops here
                    self.confirm()
                planned = self.connectors[system].write_account_updates(
                    [u for u, _, _ in queued], dry_run=True)
            if system in self.stopped:
                self.unfinished = True
                continue
            for err in planned.failed:
                self.report.add_failure(err.ref.key, f"account write: {err.reason}")
            if self.dry_run:
                self.report.account_records_written[system] += len(planned.written)
                continue
            changed = {ref.key for ref in planned.written}
            self._outbox.setdefault(system, []).extend(
                q for q in queued if q[0].ref.key in changed)
            self.flush(system, final=False)

    def flush(self, system: str, *, final: bool) -> None:
        """Send a CRM's queued account writes: whole batches of `WRITE_BATCH` (all of them
        when `final`, or for a CRM without a known batch size only then), under its budget
        stop, the lease confirmed first; the store's accounts take the values written."""
        queued = self._outbox.get(system, [])
        batch = WRITE_BATCH.get(system)
        count = len(queued) if final else (len(queued) // batch * batch if batch else 0)
        if not count:
            return
        sending, self._outbox[system] = queued[:count], queued[count:]
        if system in self.stopped:
            return
        result = WriteResult()
        with self.crm_work(system):
            self.confirm()
            result = self.connectors[system].write_account_updates(
                [u for u, _, _ in sending], dry_run=False)
        if result.written:
            self.report.account_records_written[system] += len(result.written)
            self.remember_written(result.written,
                                  {u.ref.key: (acc, values) for u, acc, values in sending})
        if system in self.stopped:  # refused records are reported, not retried each cycle
            self.unfinished = True
        for err in result.failed:
            self.report.add_failure(err.ref.key, f"account write: {err.reason}")

    def remember_written(self, written: Sequence[RecordRef],
                         sent: Mapping[str, tuple[CrmAccount, dict[str, object]]]) -> None:
        """The stored accounts take the values just written: the next cycle, which reads only
        the accounts changed since its cursor, diffs against what the CRM now holds, not what
        it held before this write (else every cycle that re-evaluates an unchanged account
        rewrites the same values when the CRM's stamps lag the cursor)."""
        entries: dict[str, str] = {}
        for ref in written:
            if ref.key not in sent:
                continue
            acc, values = sent[ref.key]
            current = {**acc.current,
                       **{k: _stored(ref.system, k, v) for k, v in values.items()}}
            entries[ref.key] = encode_account(replace(acc, current=current))
        if entries:
            self.state.set_fingerprints(ACCOUNT_KIND, entries)

    def handoffs(self, evaluated: Mapping[str, AccountEvaluation],
                 crm_of: Mapping[str, Sequence[CrmAccount]],
                 members: Mapping[str, Mapping[str, tuple[Member, tuple[str, ...]]]]
                 ) -> list[Handoff]:
        """The hand-offs of a chunk's MQA accounts (those with a target: `choose_target`)."""
        handoffs: list[Handoff] = []
        for key, ev in evaluated.items():
            if not ev.mqa:
                continue
            records = {pid: tuple(RecordRef.parse(r) for r in refs if _parses(r))
                       for pid, (_, refs) in members[key].items()}
            chosen = choose_target(ev, crm_of.get(key, ()), records)
            if chosen is None:
                continue
            name = _fields(key, crm_of.get(key, ())).name or key
            handoffs.append(Handoff(key, name, ev, *chosen))
        return handoffs

    def hand_off(self, handoffs: Sequence[Handoff]) -> None:
        """Hand the run's MQA accounts off, per CRM under its budget stop (module doc)."""
        for system, conn in self.connectors.items():
            mine = [h for h in handoffs if h.target.system == system]
            if not mine or system in self.stopped:
                continue
            with self.crm_work(system):
                if not self.dry_run:
                    self.confirm()
                result = hand_off(mine, {system: conn}, self.state, self.now,
                                  dry_run=self.dry_run)
                if result.created:  # tasks_created counts every task leadsync created
                    self.report.mqa_tasks_created[system] += len(result.created)
                    self.report.tasks_created[system] += len(result.created)
                self.report.mqa_tasks_existing += len(result.known)
                if result.failed:  # released claims: created next cycle
                    self.unfinished = True
            if system in self.stopped:
                self.unfinished = True


def listed_refs(state: StateStore, system: str, *, count: int | None = None) -> set[str]:
    """The account record keys a CRM listed at its last account read (`LISTED_KIND`); with
    `count`, about that many at most (`count=1`: whether there is a listing at all)."""
    out: set[str] = set()
    for found in walk_fingerprints(state, LISTED_KIND.format(system=system),
                                   count or STORE_BATCH):
        out.update(k for k, v in found.items() if v)
        if count is not None and len(out) >= count:
            break
    return out


def _stored(system: str, name: str, value: object) -> object:
    """A written account value as the CRM holds it after the write: its canonical form (the
    reasons rendered and cut to the CRM's length), an instant as ISO 8601 UTC."""
    reasons_len = HUBSPOT_REASONS_LEN if system == "hubspot" else SALESFORCE_REASONS_LEN
    canon = account_canonical(name, value, reasons_len=reasons_len)
    return canon.astimezone(UTC).isoformat() if isinstance(canon, datetime) else canon


def _parses(key: str) -> bool:
    try:
        RecordRef.parse(key)
    except ValueError:
        return False
    return True
