"""Validators for each section and rule of a rules file (used by `leadsync.config.rules`).

Each validator takes a `Where` (file, rule id, key prefix) so errors name exactly what is wrong
and where, without threading three strings through every call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from leadsync.scoring.conditions import ConditionError, Predicate, compile_condition, compile_ops
from leadsync.scoring.derived import FREE_EMAIL_DOMAINS
from leadsync.scoring.entries import CAP_PREFIX
from leadsync.scoring.model import (
    Caps,
    Decay,
    EngagementRule,
    FitRule,
    Grade,
    RecencyRule,
    SlaPolicy,
)
from leadsync.scoring.profile import EVENT_TYPES

_FIT_KEYS = frozenset({"id", "label", "points", "when"})
_ENGAGEMENT_KEYS = frozenset({"id", "label", "points", "event", "where", "within_days",
                              "min_count", "max_times", "decay", "max_points", "instant_mql"})
_RECENCY_KEYS = frozenset({"id", "label", "points", "inactive_days", "active_days"})
_DECAY_KEYS = frozenset({"half_life_days", "lifespan_days"})
#: What the CRM number fields hold: LeadSync_Score__c / _Engagement__c are Number(4,0), so
#: score, fit and engagement (and so any one rule's points) stay within +-9999.
CRM_NUMBER_MAX = 9999
#: Day counts (windows, decay, recency, horizon): up to a century.
MAX_DAYS = 36_500
_FIELD_NOTE = "score, fit and engagement are written to CRM fields Number(4,0) (-9999..9999)"


class RulesError(ValueError):
    """An invalid rules file. The message names the file, the rule id (if any) and the key."""

    def __init__(self, source: str, rule_id: str | None, key: str, message: str) -> None:
        where = f"{source}: rule {rule_id!r}: {key}" if rule_id else f"{source}: {key}"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.rule_id = rule_id
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class Where:
    """Error context: file, rule id and the dotted key prefix inside it."""

    source: str
    rule_id: str | None = None
    prefix: str = ""

    def at(self, key: str) -> Where:
        return Where(self.source, self.rule_id, self._join(key))

    def rule(self, rule_id: str) -> Where:
        return Where(self.source, rule_id, "")

    def error(self, key: str, message: str) -> RulesError:
        return RulesError(self.source, self.rule_id, self._join(key), message)

    def _join(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key


def section(data: Mapping[object, object], key: str, where: Where,
            allowed: set[str]) -> Mapping[object, object]:
    """An optional mapping section with a closed set of keys ({} when absent)."""
    raw = data.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise where.error(key, "expected a mapping")
    for name in raw:
        if name not in allowed:
            expected = ", ".join(sorted(allowed))
            raise where.at(key).error(str(name), f"unknown key (expected {expected})")
    return raw


def _shown(raw: object) -> str:
    """A value for an error message, never longer than 40 characters."""
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _not_a_number(raw: object) -> str:
    if isinstance(raw, str):
        try:
            value = float(raw.replace("_", ""))
        except ValueError:
            pass
        else:
            if not math.isfinite(value):
                return f"expected a finite number, got the text {_shown(raw)}"
            if "e" not in raw.lower():  # a quoted number: '2'
                return f"expected a number, got the text {_shown(raw)}: write it without quotes"
            # PyYAML reads 1e308 or 1e-3 (no dot, or an unsigned exponent) as text
            return (f"expected a number, got the text {_shown(raw)}: YAML reads an exponent "
                    "without a dot and a sign as text; write the number out (e.g. 1000) "
                    "or as 1.0e+3")
    if isinstance(raw, float) and not math.isfinite(raw):
        return f"expected a finite number, got {_shown(raw)}"
    return f"expected a number, got {_shown(raw)}"


def number(data: Mapping[object, object], key: str, where: Where, *, default: float | None = None,
           minimum: float | None = None, above: float | None = None,
           maximum: float | None = None, integer: bool = False) -> float:
    """A finite number at `key` (required when `default` is None), with optional bounds."""
    raw = data.get(key)
    if raw is None:
        if default is None:
            raise where.error(key, "required")
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise where.error(key, _not_a_number(raw))
    if integer and not float(raw).is_integer():
        raise where.error(key, f"expected a whole number, got {_shown(raw)}")
    if minimum is not None and raw < minimum:
        raise where.error(key, f"must be >= {minimum:g}, got {_shown(raw)}")
    if above is not None and raw <= above:
        raise where.error(key, f"must be > {above:g}, got {_shown(raw)}")
    if maximum is not None and raw > maximum:
        raise where.error(key, f"must be <= {maximum:g}, got {_shown(raw)}")
    return float(raw)


def points_value(data: Mapping[object, object], key: str, where: Where, *,
                 default: float | None = None) -> float:
    """Points (or a points bound) that a CRM number field can carry: |value| <= 9999."""
    value = number(data, key, where, default=default)
    if abs(value) > CRM_NUMBER_MAX:
        raise where.error(key, f"{_shown(data.get(key))} is beyond what the CRM fields hold: "
                          f"{_FIELD_NOTE}")
    return value


def days(data: Mapping[object, object], key: str, where: Where, *, minimum: float | None = None,
         above: float | None = None, integer: bool = False) -> float | None:
    """An optional number of days, at most `MAX_DAYS` (a century)."""
    if data.get(key) is None:
        return None
    return number(data, key, where, minimum=minimum, above=above, maximum=MAX_DAYS,
                  integer=integer)


def _optional(data: Mapping[object, object], key: str, where: Where, *,
              minimum: float | None = None, above: float | None = None,
              maximum: float | None = None, integer: bool = False) -> float | None:
    if data.get(key) is None:
        return None
    return number(data, key, where, minimum=minimum, above=above, maximum=maximum,
                  integer=integer)


def rule_header(raw: object, at: str, top: Where, *, allowed: frozenset[str], seen: set[str],
                noun: str, duplicate: str, reserved: bool = True, id_max: int | None = None
                ) -> tuple[Mapping[object, object], Where, str, str]:
    """The head every rule of the file has (scoring, account and routing rules): a mapping
    with an id (unique in `seen`, cut to `id_max`; `reserved`: not a cap's), only `allowed`
    keys, and a label (default: the id). `at` names the rule by place (`fit[2]`) until its id
    names it; `noun` (`a fit rule`) and `duplicate` word the errors."""
    if not isinstance(raw, Mapping):
        raise top.error(at, "expected a rule mapping")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise top.error(f"{at}.id", "required: a non-empty string")
    rule_id = rule_id.strip()[:id_max]
    if reserved and rule_id.startswith(CAP_PREFIX):
        raise top.error(f"{at}.id", f"{rule_id[:40]!r}: ids starting with "
                        f"'{CAP_PREFIX}' are reserved for the caps' reason lines")
    where = top.rule(rule_id)
    if rule_id in seen:
        raise where.error("id", duplicate)
    seen.add(rule_id)
    for key in raw:
        if key not in allowed:
            raise where.error(str(key), f"unknown key for {noun} "
                              f"(expected {', '.join(sorted(allowed))})")
    label = raw.get("label", rule_id)
    if not isinstance(label, str) or not label.strip():
        raise where.error("label", "expected a non-empty string")
    return raw, where, rule_id, label.strip()


def _rule_head(raw: object, kind: str, index: int, top: Where, *, allowed: frozenset[str],
               seen: set[str]) -> tuple[Mapping[object, object], Where, str, str, float]:
    """Common part of every scoring rule: the header (`rule_header`) and its points."""
    data, where, rule_id, label = rule_header(
        raw, f"{kind}[{index}]", top, allowed=allowed, seen=seen, noun=f"a {kind} rule",
        duplicate="duplicate rule id (unique across fit, engagement, recency)")
    return data, where, rule_id, label, points_value(data, "points", where)


def parse_fit_rule(raw: object, index: int, top: Where, seen: set[str]) -> FitRule:
    data, where, rule_id, label, points = _rule_head(
        raw, "fit", index, top, allowed=_FIT_KEYS, seen=seen)
    if data.get("when") is None:
        raise where.error("when", "required: the condition under which the points apply")
    try:
        condition, fields = compile_condition(data["when"], "when")
    except ConditionError as exc:
        raise where.error(exc.key, exc.message) from None
    return FitRule(rule_id, label, points, condition, fields)


def _where(raw: object, where: Where) -> tuple[tuple[str, Predicate], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise where.error("where", "expected a mapping of event property to {OP: value}")
    out: list[tuple[str, Predicate]] = []
    for prop, ops in raw.items():
        try:
            out.append((str(prop), compile_ops(ops, f"where.{prop}", text_only=True)))
        except ConditionError as exc:
            raise where.error(exc.key, exc.message) from None
    return tuple(out)


def _decay(raw: object, where: Where) -> Decay | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in _DECAY_KEYS:
        raise where.error("decay", "expected exactly one of {half_life_days: H} or "
                          "{lifespan_days: L}")
    kind = str(next(iter(raw)))
    value = days(raw, kind, where.at("decay"), above=0)
    return Decay(**{kind: value})


def _max_points(data: Mapping[object, object], where: Where) -> float | None:
    if data.get("max_points") is None:
        return None
    value = points_value(data, "max_points", where)
    if value <= 0:
        raise where.error("max_points", f"must be > 0, got {_shown(data.get('max_points'))}")
    return value


def parse_engagement_rule(raw: object, index: int, top: Where, seen: set[str]) -> EngagementRule:
    data, where, rule_id, label, points = _rule_head(
        raw, "engagement", index, top, allowed=_ENGAGEMENT_KEYS, seen=seen)
    event = data.get("event")
    if not isinstance(event, str) or event not in EVENT_TYPES:
        raise where.error("event", f"expected one of {', '.join(sorted(EVENT_TYPES))}, "
                          f"got {event!r}")
    instant = data.get("instant_mql", False)
    if not isinstance(instant, bool):
        raise where.error("instant_mql", "expected true or false")
    max_times = _optional(data, "max_times", where, minimum=1, maximum=1_000_000,
                          integer=True)
    return EngagementRule(
        id=rule_id,
        label=label,
        points=points,
        event=event,
        where=_where(data.get("where"), where),
        within_days=days(data, "within_days", where, above=0),
        min_count=int(number(data, "min_count", where, default=1, minimum=1,
                             maximum=1_000_000, integer=True)),
        max_times=None if max_times is None else int(max_times),
        decay=_decay(data.get("decay"), where),
        max_points=_max_points(data, where),
        instant_mql=instant,
    )


def parse_recency_rule(raw: object, index: int, top: Where, seen: set[str]) -> RecencyRule:
    data, where, rule_id, label, points = _rule_head(
        raw, "recency", index, top, allowed=_RECENCY_KEYS, seen=seen)
    inactive = days(data, "inactive_days", where, minimum=0)
    active = days(data, "active_days", where, minimum=0)
    if (inactive is None) == (active is None):
        raise where.error("inactive_days", "give exactly one of inactive_days or active_days")
    return RecencyRule(rule_id, label, points, inactive_days=inactive, active_days=active)


def parse_grades(raw: object, top: Where) -> tuple[Grade, ...]:
    if raw is None:
        return (Grade("A", 40), Grade("B", 25), Grade("C", 10), Grade("D"))
    if not isinstance(raw, list) or not raw:
        raise top.error("grades", "expected a non-empty list of {grade, min}")
    grades: list[Grade] = []
    for i, item in enumerate(raw):
        where = top.at(f"grades[{i}]")
        if not isinstance(item, Mapping) or set(item) - {"grade", "min"}:
            raise where.error("grade", "expected {grade: X, min: N} (only those keys)")
        letter = item.get("grade")
        if not isinstance(letter, str) or len(letter.strip()) != 1:
            raise where.error("grade", "expected one character (the CRM field is Text(1))")
        last = i == len(raw) - 1
        if last and item.get("min") is not None:
            raise where.error("min", "the last grade has no min: it catches every other fit")
        minimum = None if last else points_value(item, "min", where)
        if minimum is not None and grades and grades[-1].min is not None \
                and minimum >= grades[-1].min:
            raise where.error("min", "mins must decrease down the list (first match wins)")
        grades.append(Grade(letter.strip(), minimum))
    return tuple(grades)


def parse_caps(raw: object, top: Where) -> Caps:
    """Caps of fit and engagement. They bound everything written, so they must keep fit,
    engagement and their sum (the score) inside the CRM number fields (|value| <= 9999)."""
    caps = section({"caps": raw}, "caps", top, {"fit", "engagement"})
    limits: dict[str, float] = {}
    for part, low, high in (("fit", -100.0, 100.0), ("engagement", -100.0, 150.0)):
        sub = section(caps, part, top.at("caps"), {"min", "max"})
        where = top.at(f"caps.{part}")
        limits[f"{part}_min"] = points_value(sub, "min", where, default=low)
        limits[f"{part}_max"] = points_value(sub, "max", where, default=high)
        if limits[f"{part}_min"] > limits[f"{part}_max"]:
            raise where.error("min", "must not exceed max")
    for end, sign in (("max", 1), ("min", -1)):
        fit, engagement = limits[f"fit_{end}"], limits[f"engagement_{end}"]
        score = _rounded(fit) + _rounded(engagement)
        if sign * score > CRM_NUMBER_MAX:
            raise top.at("caps").error(
                f"engagement.{end}", f"fit.{end} {fit:g} + engagement.{end} {engagement:g} "
                f"allows a score of {score}: {_FIELD_NOTE}; lower one of them")
    return Caps(**limits)


def _rounded(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def parse_sla(raw: object, top: Where) -> SlaPolicy:
    from leadsync.config.rules_hours import parse_business_hours  # it builds on this module

    sla = section({"sla": raw}, "sla", top,
                  {"mql_hours", "sql_hours", "warn_hours", "business_hours"})
    where = top.at("sla")
    warn = section(sla, "warn_hours", where, {"mql", "sql"})
    policy = SlaPolicy(
        mql_hours=number(sla, "mql_hours", where, default=24, above=0, maximum=MAX_DAYS * 24),
        sql_hours=number(sla, "sql_hours", where, default=48, above=0, maximum=MAX_DAYS * 24),
        mql_warn_hours=number(warn, "mql", where.at("warn_hours"), default=4, minimum=0),
        sql_warn_hours=number(warn, "sql", where.at("warn_hours"), default=8, minimum=0),
        calendar=parse_business_hours(sla.get("business_hours"), where),
    )
    if policy.calendar is not None:
        _within_a_century(policy, policy.calendar.weekdays, policy.calendar.hours, where)
    if policy.mql_warn_hours > policy.mql_hours:
        raise where.error("warn_hours.mql", "must not exceed mql_hours")
    if policy.sql_warn_hours > policy.sql_hours:
        raise where.error("warn_hours.sql", "must not exceed sql_hours")
    return policy


def _within_a_century(policy: SlaPolicy, weekdays: frozenset[int],
                      hours: tuple[tuple[int, int], ...], where: Where) -> None:
    """SLA hours counted in business hours must end within MAX_DAYS (as wall-clock hours do):
    a few opening minutes a week stretch 1,000 working hours past the calendar's last year."""
    weekly = len(weekdays) * sum(end - start for start, end in hours) / 60  # open hours a week
    for key, value in (("mql_hours", policy.mql_hours), ("sql_hours", policy.sql_hours)):
        days_needed = value / weekly * 7
        if days_needed > MAX_DAYS:
            raise where.error(key, f"{value:g} working hours take about "
                              f"{days_needed / 365.25:,.0f} years at sla.business_hours' "
                              f"{weekly:.3g} open hours a week: at most "
                              f"{math.floor(weekly * MAX_DAYS / 7):,} (a century)")


def parse_free_domains(raw: object, top: Where) -> frozenset[str]:
    """Extra free-mail domains, added to the built-in list."""
    if raw is None:
        return FREE_EMAIL_DOMAINS
    if not isinstance(raw, list) or not all(isinstance(d, str) and d.strip() for d in raw):
        raise top.error("free_email_domains", "expected a list of domain names")
    return FREE_EMAIL_DOMAINS | {d.strip().lower().lstrip("@") for d in raw}
