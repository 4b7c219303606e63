"""Members inherit points from their account (`accounts.inherit`, docs/accounts.md).

Accounts are evaluated after people (an account's score is a function of its members'
evaluations), so a person's inherited points come from the account's **stored state of its
previous evaluation** (`account_state`: score and MQA per account key, written by the account
phase) and the person's stored membership (`account_member`). The sync puts them on the
profile as the attributes `account_score` and `account_mqa`; the rules file's `inherit` is
compiled into one more fit rule over them (`rules_accounts.inherit_fit_rule`), so the core
scores it like any rule, purely. When an evaluation flips whether an account's members inherit
(it became an MQA, or left its episode), the account phase puts its members' records on the
to-do list (`pending`): the next incremental cycle re-evaluates them with the new state.
A person the sync has not stored as a member yet (new this cycle) inherits from the next
evaluation on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from leadsync.accounts.phase import MEMBER_KIND, decode_member
from leadsync.identity import Person
from leadsync.scoring.accounts import (
    ACCOUNT_MQA_FACT,
    ACCOUNT_SCORE_FACT,
    AccountEvaluation,
)
from leadsync.scoring.model import ScoringModel
from leadsync.state import StateStore

STATE_KIND = "account_state"  # account key -> {"s": score, "m": 1|0}


def encode_state(ev: AccountEvaluation) -> str:
    return json.dumps({"s": ev.score, "m": int(ev.mqa)}, separators=(",", ":"))


def decode_state(payload: str | None) -> tuple[int, bool] | None:
    """(score, MQA) of a stored account state; None when absent or unreadable."""
    if not payload:
        return None
    try:
        doc = json.loads(payload)
        return int(doc["s"]), bool(doc["m"])
    except (ValueError, KeyError, TypeError):
        return None


def with_account_facts(state: StateStore, model: ScoringModel,
                       people: Sequence[Person]) -> list[Person]:
    """The people, each stored member's profile carrying its account's stored score and MQA
    state (only when the rules file has `accounts.inherit`)."""
    if model.accounts is None or model.accounts.inherit is None or not people:
        return list(people)
    entries = state.get_fingerprints(MEMBER_KIND, [p.id for p in people])
    account_of: dict[str, str] = {}
    for pid, payload in entries.items():
        found = decode_member(pid, payload)
        if found is not None and found[0]:
            account_of[pid] = found[0]
    states = state.get_fingerprints(STATE_KIND, sorted(set(account_of.values()))) \
        if account_of else {}
    out: list[Person] = []
    for person in people:
        stored = decode_state(states.get(account_of.get(person.id, "")))
        if stored is None:
            out.append(person)
            continue
        score, mqa = stored
        attributes = {**person.profile.attributes, ACCOUNT_SCORE_FACT: score,
                      ACCOUNT_MQA_FACT: mqa}
        out.append(replace(person, profile=replace(person.profile, attributes=attributes)))
    return out
