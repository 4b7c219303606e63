"""Account scoring (docs/accounts.md): an account's score, engaged people and MQA state.

Pure: `evaluate_account(account, members, model, version, now, previous_mqa_at=...)` is a function
of the account's member evaluations (`Member`, one per person), its fields and `now`. The rules
come from the rules file's `accounts:` section (`leadsync.config.rules_accounts`).

- An **engaged person** has engagement >= `engaged.engagement_min` and a marketing event within
  `engaged.within_days` of `now` (any time, when unset).
- Each rule gives its `points` once when its measure reaches `min`:
  `engaged_people` (how many are engaged), `best_fit` (the highest fit), `top_engagement` (the
  sum of the `k` highest engagement scores), `buying_group` (engaged people whose seniority is
  in `seniority`), or `when` (a condition over the account's fields: name, domain, industry,
  employees and any attribute such as a target-account checkbox).
- score = clamp(sum, caps); a cap adds a `cap:account` reason like the person caps.
- **MQA episode.** An account becomes an MQA when its score reaches `mqa`; it stays one while the
  score is at least `mqa_exit` (default `mqa`), so decay around the line does not start a new
  episode every cycle. `mqa_at` is when the episode started (kept from `previous_mqa_at`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from leadsync.scoring.conditions import Condition, normalize_fact
from leadsync.scoring.derived import derive_seniority
from leadsync.scoring.entries import ReasonEntry, cap_entry, shared_entry
from leadsync.scoring.evaluation import Evaluation, Reason
from leadsync.scoring.profile import EVENT_TYPES, Profile
from leadsync.scoring.reasons import clamp, round_half_away

AccountRuleKind = Literal["engaged_people", "best_fit", "top_engagement", "buying_group", "when"]
ACCOUNT_RULE_KINDS: tuple[str, ...] = AccountRuleKind.__args__  # type: ignore[attr-defined]
_MARKETING = EVENT_TYPES - {"sales_touch"}
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class AccountRule:
    """One account rule: `points` once when the `kind`'s measure is >= `minimum` (or, for
    `when`, when the condition holds over the account's fields)."""

    id: str
    label: str
    points: float
    kind: AccountRuleKind
    minimum: float = 0.0
    k: int = 1  # top_engagement: how many people's engagement to add
    seniority: frozenset[str] = frozenset()  # buying_group
    #: `when`: the compiled condition; rules compare by `when_source` (the condition as
    #: written, canonical JSON), so one file loaded twice gives equal models
    when: Condition | None = field(default=None, compare=False)
    when_source: str | None = None


#: the person facts (profile attributes) an `inherit` rule reads: the account's score and MQA
#: state as its last evaluation stored them
ACCOUNT_SCORE_FACT = "account_score"
ACCOUNT_MQA_FACT = "account_mqa"


@dataclass(frozen=True, slots=True)
class AccountInherit:
    """`accounts.inherit`: members get `points` (fit points, with a reason) while their
    account is an MQA (`score_min` None) or while its score is at least `score_min`."""

    id: str
    label: str
    points: float
    score_min: float | None = None

    def holds(self, score: int | None, mqa: bool) -> bool:
        if self.score_min is None:
            return mqa
        return score is not None and score >= self.score_min


@dataclass(frozen=True, slots=True)
class AccountModel:
    """The rules file's `accounts:` section, compiled."""

    mqa: float
    rules: tuple[AccountRule, ...] = ()
    mqa_exit: float | None = None  # None: the same as `mqa`
    engagement_min: float = 1.0
    within_days: float | None = None
    cap_min: float = 0.0
    cap_max: float = 200.0
    inherit: AccountInherit | None = None

    @property
    def exit_threshold(self) -> float:
        return self.mqa if self.mqa_exit is None else self.mqa_exit


@dataclass(frozen=True, slots=True)
class Member:
    """One person of an account, as account rules see it. `label` is what the MQA task lists
    (a name or the person's title); it is never logged."""

    key: str
    fit: int
    engagement: int
    seniority: str
    last_active_at: datetime | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class AccountFields:
    """The account's own fields, as rules' `when` conditions read them."""

    key: str
    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    attributes: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def facts(self) -> dict[str, object]:
        out = {str(k): normalize_fact(v) for k, v in self.attributes.items()}
        out.update(name=normalize_fact(self.name), domain=normalize_fact(self.domain),
                   industry=normalize_fact(self.industry), employees=self.employees)
        return out


@dataclass(frozen=True, slots=True)
class AccountEvaluation:
    key: str
    score: int
    score_raw: float
    reasons: tuple[Reason, ...]
    engaged: tuple[Member, ...]  # most engaged first
    mqa: bool
    mqa_at: datetime | None  # when the current MQA episode started; None when not an MQA
    became_mqa: bool  # this evaluation started an episode
    model: str
    members: int


def member_of(profile: Profile, evaluation: Evaluation, now: datetime,
              key: str | None = None) -> Member:
    """The account's view of one evaluated person: fit, engagement, seniority, last activity."""
    newest = max((e.at for e in profile.events if e.type in _MARKETING and e.at <= now),
                 default=None)
    name = " ".join(p for p in (profile.last_name, profile.first_name) if p) or None
    return Member(key or evaluation.person_id, evaluation.fit, evaluation.engagement,
                  derive_seniority(profile.title), newest, name or profile.title)


def engaged_members(members: Sequence[Member], model: AccountModel,
                    now: datetime) -> tuple[Member, ...]:
    """The engaged people, most engaged first (ties: by key, so the order is stable)."""
    def engaged(m: Member) -> bool:
        if m.engagement < model.engagement_min:
            return False
        if model.within_days is None:
            return True
        return m.last_active_at is not None and \
            (now - m.last_active_at).total_seconds() / _DAY <= model.within_days
    return tuple(sorted((m for m in members if engaged(m)), key=lambda m: (-m.engagement, m.key)))


def _measure(rule: AccountRule, members: Sequence[Member], engaged: Sequence[Member],
             facts: Mapping[str, object]) -> bool:
    if rule.kind == "when":
        return rule.when is not None and rule.when(facts)
    if rule.kind == "engaged_people":
        value = float(len(engaged))
    elif rule.kind == "best_fit":
        if not members:
            return False
        value = float(max(m.fit for m in members))
    elif rule.kind == "top_engagement":
        value = float(sum(sorted((m.engagement for m in members), reverse=True)[:rule.k]))
    else:  # buying_group
        value = float(sum(1 for m in engaged if m.seniority in rule.seniority))
    return value >= rule.minimum


def evaluate_account(account: AccountFields, members: Sequence[Member], model: AccountModel,
                     version: str, now: datetime, *,
                     previous_mqa_at: datetime | None = None) -> AccountEvaluation:
    """Score one account from its members and fields at `now` (module doc)."""
    engaged = engaged_members(members, model, now)
    facts = account.facts()
    total = 0.0
    entries: list[ReasonEntry] = []
    for rule in model.rules:
        if _measure(rule, members, engaged, facts):
            total += rule.points
            entry = shared_entry(rule.id, rule.label, rule.points)
            if entry is not None:
                entries.append(entry)
    raw = clamp(total, model.cap_min, model.cap_max)
    capped = cap_entry("account", total, model.cap_min, model.cap_max)
    if capped is not None:
        entries.append(capped)
    entries.sort(key=lambda e: e[0])
    score = round_half_away(raw)
    if previous_mqa_at is not None and score >= model.exit_threshold:
        mqa, mqa_at = True, previous_mqa_at
    elif score >= model.mqa:
        mqa, mqa_at = True, now
    else:
        mqa, mqa_at = False, None
    return AccountEvaluation(
        key=account.key, score=score, score_raw=raw, reasons=tuple(e[1] for e in entries),
        engaged=engaged, mqa=mqa, mqa_at=mqa_at, became_mqa=mqa and previous_mqa_at is None,
        model=version, members=len(members))
