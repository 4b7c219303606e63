"""Profile facts for fit rules, and the fit points they earn (DESIGN.md §2-§3).

A fact is a profile field, a derived field (email_domain, email_free, seniority, bant_count,
event_count) or an `attributes` key, normalized as conditions compare it (`normalize_fact`:
strings lower-cased and stripped, "" as missing). `FitTable` reads exactly the facts a model's
fit rules name and remembers the fit outcome per combination of fact values: a customer base
has few distinct (seniority, size band, free mail) combinations, so most profiles cost a
handful of attribute reads and one dict hit instead of running every condition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter, call
from typing import TYPE_CHECKING, Final

from leadsync.scoring.conditions import normalize_fact
from leadsync.scoring.derived import derive_seniority, email_domain
from leadsync.scoring.entries import cap_entry
from leadsync.scoring.profile import Profile
from leadsync.scoring.reasons import clamp, round_half_away

if TYPE_CHECKING:
    from leadsync.scoring.entries import ReasonEntry
    from leadsync.scoring.model import ScoringModel

Getter = Callable[[Profile], object]

_PROFILE_FIELDS: Final = (
    "id", "email", "first_name", "last_name", "title", "company", "employees", "industry",
    "country", "annual_revenue", "lead_source", "stage", "sales_status", "owner", "score_at_mql",
)
_BANT_FIELDS: Final = ("budget", "authority", "need", "timeline")
_DERIVED: Final = ("email_domain", "email_free", "seniority", "bant_count", "event_count")

#: Field names rules may read besides `attributes` keys.
KNOWN_FIELDS: Final = frozenset(
    (*_PROFILE_FIELDS, *(f"bant_{name}" for name in _BANT_FIELDS), *_DERIVED)
)
#: Fact types whose equality means "every condition sees the same thing" once the type is
#: part of the memo key (True == 1 otherwise); anything else (lists, custom types) is not cached.
#: Derived facts (`_DERIVED`) always have one type per field, so only stored facts are checked.
_PLAIN_TYPES: Final = frozenset({str, int, float, bool, type(None)})
MEMO_LIMIT: Final = 8192


def _normalized(raw: Getter) -> Getter:
    def get(profile: Profile) -> object:
        value = raw(profile)
        return normalize_fact(value) if isinstance(value, str) else value

    return get


def _seniority(profile: Profile) -> object:
    return derive_seniority(profile.title)  # already one of the lower-case level names


#: Derived facts that are normalized by construction (email_free needs the model's domains).
_DERIVED_GETTERS: Final[dict[str, Getter]] = {
    "seniority": _seniority,
    "email_domain": _normalized(lambda p: email_domain(p.email)),
    "bant_count": lambda p: p.bant.count(),
    "event_count": lambda p: len(p.events),
}


def fact_getter(name: str, free_domains: frozenset[str]) -> Getter:
    """A function returning the normalized fact `name` of a profile."""
    if name == "email_free":
        def email_free(profile: Profile) -> bool | None:
            domain = email_domain(profile.email)  # `is_free_email`, inlined: a per-profile path
            return None if domain is None else domain in free_domains

        return email_free
    derived = _DERIVED_GETTERS.get(name)
    if derived is not None:
        return derived
    if name in _PROFILE_FIELDS:
        return _normalized(attrgetter(name))
    if name.startswith("bant_") and name[5:] in _BANT_FIELDS:
        return _normalized(attrgetter(f"bant.{name[5:]}"))
    return _normalized(lambda p: p.attributes.get(name))


#: What the fit rules make of a profile: (fit after caps, rounded fit, reason entries).
FitOutcome = tuple[float, int, tuple["ReasonEntry", ...]]


class FitTable:
    """The fit rules of one model: facts to read, and a memo of their outcome per fact values.

    `score(profile)` returns a `FitOutcome`; fired rules add their own constant points, in rule
    order, and the sum is capped and rounded as DESIGN.md §3 says; a cap that changed the sum
    adds its `cap:fit` entry (§3a). The memo is bounded and
    cleared when full; it never changes a result.
    """

    __slots__ = ("caps", "entries", "getters", "memo", "names", "raw", "rules")

    def __init__(self, model: ScoringModel, entries: Sequence[ReasonEntry | None]) -> None:
        self.rules = model.fit_rules
        self.entries = tuple(entries)
        self.caps = (model.caps.fit_min, model.caps.fit_max)
        self.names = tuple(sorted(model.fit_fields))
        domains = model.free_email_domains
        self.getters = tuple(fact_getter(name, domains) for name in self.names)
        #: positions of facts read as stored (fields, attributes), which may hold any type;
        #: derived facts have fixed types (str, bool or int) and need no check
        self.raw = tuple(i for i, name in enumerate(self.names) if name not in _DERIVED)
        self.memo: dict[tuple[object, ...], FitOutcome] = {}

    def facts(self, profile: Profile) -> dict[str, object]:
        """The normalized facts the fit rules read, by field name."""
        return dict(zip(self.names, map(call, self.getters, repeat(profile)), strict=True))

    def score(self, profile: Profile) -> FitOutcome:
        """Capped and rounded fit, and reason entries, for `profile` (memoised on fact values)."""
        values = tuple(map(call, self.getters, repeat(profile)))  # no comprehension frame
        key = values
        for i in self.raw:  # facts of any type: tell True from 1 in the key, skip containers
            kind = type(values[i])
            if kind not in _PLAIN_TYPES:
                return self._run(dict(zip(self.names, values, strict=True)))
            key += (kind,)
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            found = self.memo[key] = self._run(dict(zip(self.names, values, strict=True)))
        return found

    def _run(self, facts: dict[str, object]) -> FitOutcome:
        fit_sum = 0.0
        fired: list[ReasonEntry] = []
        for rule, entry in zip(self.rules, self.entries, strict=True):
            if rule.when(facts):
                fit_sum += rule.points
                if entry is not None:
                    fired.append(entry)
        fit_raw = clamp(fit_sum, *self.caps)
        if fit_raw != fit_sum:
            cap = cap_entry("fit", fit_sum, *self.caps)
            if cap is not None:
                fired.append(cap)
        return fit_raw, round_half_away(fit_raw), tuple(fired)
