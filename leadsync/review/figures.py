"""The review's figures: pure functions over as-of scores and funnel dates (no I/O, no clock).

Two kinds of input:
- `Journey`: one person's funnel dates (created, MQL, SQL, opportunity, won) and lead source,
  for the funnel counts, rates and times in stage;
- `Scored`: one person's as-of score, grade, the rules that contributed, and the outcome (did
  the person reach the outcome after the snapshot, within the horizon), for everything that
  compares the score with what happened.

Every rate is `None` when its denominator is zero (an empty cohort has no rate, not 0 %); the
AUC is `None` when the cohort has only one class. Ties are handled explicitly: people with the
same score share a band, and the AUC counts a tied positive/negative pair as one half.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median

FUNNEL: tuple[str, ...] = ("lead", "mql", "sql", "opportunity", "won")
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Journey:
    """One person's funnel: when each stage was first reached (None: not reached, or unknown).
    A later stage implies the earlier ones (a won deal without an `mql_at` still passed MQL)."""

    person_id: str
    lead_source: str | None = None
    lead_at: datetime | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    opportunity_at: datetime | None = None
    won_at: datetime | None = None

    def dates(self) -> tuple[datetime | None, ...]:
        return (self.lead_at, self.mql_at, self.sql_at, self.opportunity_at, self.won_at)

    def reached(self) -> int:
        """How many funnel stages this person reached (1 = lead only; every person is a lead)."""
        last = 0
        for i, at in enumerate(self.dates()):
            if at is not None:
                last = i
        return last + 1


@dataclass(frozen=True, slots=True)
class Scored:
    """One person as of the snapshot: score, fit grade, contributing rule ids, the outcome."""

    person_id: str
    score: float
    outcome: bool
    grade: str = ""
    hits: frozenset[str] = frozenset()


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- funnel ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Funnel:
    """People who reached each stage (FUNNEL order) and the step rates between neighbours
    (`"lead->mql"`, ...) and overall (`"lead->won"`)."""

    counts: dict[str, int]
    rates: dict[str, float | None]


def funnel(journeys: Iterable[Journey]) -> Funnel:
    counts = dict.fromkeys(FUNNEL, 0)
    for journey in journeys:
        for stage in FUNNEL[: journey.reached()]:
            counts[stage] += 1
    rates: dict[str, float | None] = {
        f"{a}->{b}": rate(counts[b], counts[a]) for a, b in itertools.pairwise(FUNNEL)
    }
    rates["lead->won"] = rate(counts["won"], counts["lead"])
    return Funnel(counts, rates)


def funnel_by(journeys: Iterable[Journey], key: Callable[[Journey], str | None]
              ) -> dict[str, Funnel]:
    """One funnel per key value (people whose key is None are left out), keys sorted."""
    groups: dict[str, list[Journey]] = {}
    for journey in journeys:
        value = key(journey)
        if value is not None:
            groups.setdefault(value, []).append(journey)
    return {value: funnel(groups[value]) for value in sorted(groups)}


def by_source(journey: Journey) -> str:
    return journey.lead_source or "(none)"


def by_mql_month(journey: Journey) -> str | None:
    """The MQL cohort: the month (YYYY-MM, UTC) of `mql_at`; None for people never MQL'd."""
    return None if journey.mql_at is None else f"{journey.mql_at:%Y-%m}"


def median_days_in_stage(journeys: Iterable[Journey]) -> dict[str, float | None]:
    """Per stage but the last: the median days from entering it to entering the next, over the
    people with both dates known (and the next not before the first)."""
    spans: dict[str, list[float]] = {stage: [] for stage in FUNNEL[:-1]}
    for journey in journeys:
        dates = journey.dates()
        for i, stage in enumerate(FUNNEL[:-1]):
            start, end = dates[i], dates[i + 1]
            if start is not None and end is not None and end >= start:
                spans[stage].append((end - start).total_seconds() / SECONDS_PER_DAY)
    return {stage: (median(days) if days else None) for stage, days in spans.items()}


# -- score against outcome --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Band:
    """People in one score band and their outcome rate; `low`/`high` the band's score range."""

    label: str
    low: float
    high: float
    people: int
    outcomes: int

    @property
    def rate(self) -> float | None:
        return rate(self.outcomes, self.people)


def deciles(scored: Sequence[Scored]) -> list[Band]:
    """Score deciles, lowest first. A person's decile is that of the first position its score
    takes in the ascending order, so equal scores share a band; deciles nobody falls in (ties
    across an edge) are left out, so there may be fewer than ten bands. Labels are "D1".."D10"."""
    ordered = sorted(scored, key=lambda s: s.score)
    n = len(ordered)
    bands: dict[int, list[Scored]] = {}
    first_at: dict[float, int] = {}
    for position, person in enumerate(ordered):
        first = first_at.setdefault(person.score, position)
        bands.setdefault(10 * first // n, []).append(person)
    return [_band(f"D{index + 1}", members) for index, members in sorted(bands.items())]


def split_at(scored: Sequence[Scored], threshold: float) -> list[Band]:
    """Two bands: below the threshold and at or above it (the MQL bar)."""
    below = [s for s in scored if s.score < threshold]
    above = [s for s in scored if s.score >= threshold]
    return [_band(f"< {threshold:g}", below), _band(f">= {threshold:g}", above)]


def _band(label: str, members: Sequence[Scored]) -> Band:
    scores = [s.score for s in members]
    return Band(label, min(scores, default=0.0), max(scores, default=0.0), len(members),
                sum(1 for s in members if s.outcome))


def by_grade(scored: Iterable[Scored], grades: Sequence[str] = ("A", "B", "C", "D")
             ) -> list[Band]:
    """One band per grade, in `grades` order (grades nobody has included, with 0 people);
    grades not listed follow, sorted."""
    groups: dict[str, list[Scored]] = {grade: [] for grade in grades}
    for person in scored:
        groups.setdefault(person.grade, []).append(person)
    order = [*grades, *sorted(g for g in groups if g not in grades)]
    return [_band(grade, groups[grade]) for grade in order]


def auc(scored: Sequence[Scored]) -> float | None:
    """ROC AUC by ranks (Mann-Whitney U / (positives x negatives)); tied scores take their
    average rank, so a tied positive/negative pair counts one half. None with one class only."""
    positives = sum(1 for s in scored if s.outcome)
    negatives = len(scored) - positives
    if not positives or not negatives:
        return None
    return _auc_counts(_histogram((s.score, s.outcome) for s in scored), positives, negatives)


def _histogram(pairs: Iterable[tuple[float, bool]]) -> dict[float, list[int]]:
    """score -> [negatives, positives]."""
    counts: dict[float, list[int]] = {}
    for score, outcome in pairs:
        counts.setdefault(score, [0, 0])[1 if outcome else 0] += 1
    return counts


def _auc_counts(counts: dict[float, list[int]], positives: int, negatives: int) -> float:
    """Pairs (positive, negative) the positive wins, plus half the ties, over all pairs: walking
    scores upwards, each positive beats the negatives already passed and ties those at its score."""
    below = 0
    wins = 0.0
    for score in sorted(counts):
        neg, pos = counts[score]
        wins += pos * (below + neg / 2)
        below += neg
    return wins / (positives * negatives)


def roc_points(scored: Sequence[Scored]) -> list[tuple[float, float]]:
    """The ROC curve: (false positive rate, true positive rate) from (0, 0) to (1, 1), one
    point per distinct score taken as the threshold, highest first (tied scores move both
    rates at once: the diagonal step whose area is the AUC's one half). Empty with one class."""
    positives = sum(1 for s in scored if s.outcome)
    negatives = len(scored) - positives
    if not positives or not negatives:
        return []
    counts = _histogram((s.score, s.outcome) for s in scored)
    points = [(0.0, 0.0)]
    fp = tp = 0
    for score in sorted(counts, reverse=True):
        neg, pos = counts[score]
        fp, tp = fp + neg, tp + pos
        points.append((fp / negatives, tp / positives))
    return points


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float
    rounds: int
    level: float


def auc_interval(scored: Sequence[Scored], *, rounds: int = 200, level: float = 0.95,
                 seed: int = 0) -> Interval | None:
    """A percentile bootstrap interval of the AUC, resampling positives and negatives apart
    (a stratified bootstrap: every resample has both classes). Seeded: the same input gives the
    same interval. None when the AUC itself is undefined."""
    if rounds < 1 or not 0 < level < 1:
        raise ValueError("auc_interval: rounds >= 1 and 0 < level < 1")
    pos = [s.score for s in scored if s.outcome]
    neg = [s.score for s in scored if not s.outcome]
    if not pos or not neg:
        return None
    rng = random.Random(seed)  # noqa: S311 - reproducible resampling, not security
    values = []
    for _ in range(rounds):
        counts: dict[float, list[int]] = {}
        for score in rng.choices(pos, k=len(pos)):
            counts.setdefault(score, [0, 0])[1] += 1
        for score in rng.choices(neg, k=len(neg)):
            counts.setdefault(score, [0, 0])[0] += 1
        values.append(_auc_counts(counts, len(pos), len(neg)))
    values.sort()
    tail = (1 - level) / 2
    low = values[min(rounds - 1, int(tail * rounds))]
    high = values[max(0, min(rounds - 1, int((1 - tail) * rounds + 0.5) - 1))]
    return Interval(low, high, rounds, level)


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    """At this threshold: how many people would be MQLs (per month of history too), how many
    of them reached the outcome (precision) and what share of all outcomes they hold (recall)."""

    threshold: float
    volume: int
    per_month: float | None
    outcomes: int
    precision: float | None
    recall: float | None
    current: bool


def threshold_table(scored: Sequence[Scored], thresholds: Iterable[float], *, current: float,
                    months: float | None = None) -> list[ThresholdRow]:
    """One row per threshold (ascending; the current one is always included and marked).
    `months`: the length of the history, for the monthly MQL volume."""
    total_outcomes = sum(1 for s in scored if s.outcome)
    rows = []
    for threshold in sorted({*thresholds, current}):
        above = [s for s in scored if s.score >= threshold]
        hits = sum(1 for s in above if s.outcome)
        rows.append(ThresholdRow(
            threshold=threshold, volume=len(above),
            per_month=len(above) / months if months else None, outcomes=hits,
            precision=rate(hits, len(above)), recall=rate(hits, total_outcomes),
            current=threshold == current))
    return rows


def threshold_for_capacity(rows: Sequence[ThresholdRow], capacity: float) -> ThresholdRow | None:
    """The lowest threshold whose monthly MQL volume sales can work (<= `capacity` a month);
    None when no row has a monthly volume or none fits."""
    fitting = [r for r in rows if r.per_month is not None and r.per_month <= capacity]
    return min(fitting, key=lambda r: r.threshold, default=None)


# -- rules ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RuleLift:
    """How a rule's hits fared: outcome rate of the people it contributed to and of the rest;
    `lift` = rate_with / rate_without (None when either is undefined or rate_without is 0).
    `contradicts`: the evidence points the other way than the rule's sign (a positive rule whose
    people do worse than the rest, or a negative rule whose people do better)."""

    rule: str
    points: float
    hits: int
    outcomes_with: int
    rate_with: float | None
    rate_without: float | None
    lift: float | None
    contradicts: bool


def rule_lift(scored: Sequence[Scored], rules: Sequence[tuple[str, float]]) -> list[RuleLift]:
    """One row per (rule id, points), in the order given."""
    total = len(scored)
    total_outcomes = sum(1 for s in scored if s.outcome)
    out = []
    for rule, points in rules:
        hit = [s for s in scored if rule in s.hits]
        with_outcome = sum(1 for s in hit if s.outcome)
        rate_with = rate(with_outcome, len(hit))
        rate_without = rate(total_outcomes - with_outcome, total - len(hit))
        lift = (rate_with / rate_without
                if rate_with is not None and rate_without else None)
        contradicts = (rate_with is not None and rate_without is not None and (
            (points > 0 and rate_with < rate_without) or (points < 0 and rate_with > rate_without)))
        out.append(RuleLift(rule, points, len(hit), with_outcome, rate_with, rate_without, lift,
                            contradicts))
    return out


# -- misfits and SLA --------------------------------------------------------------------------

def misfits(scored: Sequence[Scored], threshold: float, *, top: int = 10
            ) -> tuple[list[Scored], list[Scored]]:
    """("high score but no outcome": at or above `threshold`, highest first; "low score but
    reached it": below `threshold`, lowest first), `top` of each; ties by person id."""
    high = sorted((s for s in scored if s.score >= threshold and not s.outcome),
                  key=lambda s: (-s.score, s.person_id))
    low = sorted((s for s in scored if s.score < threshold and s.outcome),
                 key=lambda s: (s.score, s.person_id))
    return high[:top], low[:top]


@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA clock: a person entered `stage` (mql or sql) at `started`; `touched` is the first
    sales touch at or after it (None: none seen); `hours` the SLA's deadline."""

    person_id: str
    stage: str
    started: datetime
    hours: float
    touched: datetime | None = None
    owner: str | None = None
    outcome: bool = False

    def met(self) -> bool:
        return self.touched is not None and (
            self.touched - self.started).total_seconds() <= self.hours * 3600


#: Time-to-first-touch buckets: (label, upper bound in hours, exclusive; None: no bound)
TOUCH_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("< 1 h", 1.0), ("1-4 h", 4.0), ("4-24 h", 24.0), ("24-48 h", 48.0), ("48 h +", None))


@dataclass(frozen=True, slots=True)
class SlaFigures:
    """For one stage's clocks: how many were decided (deadline passed, or touched), met, the
    share met, by owner, time-to-first-touch buckets (plus "never"), and the outcome rate of
    met versus breached clocks. Clocks still running at `until` (not touched, deadline ahead)
    are counted apart as `open`."""

    stage: str
    decided: int
    met: int
    share_met: float | None
    open: int
    by_owner: dict[str, tuple[int, int]]  # owner -> (decided, met)
    touch_buckets: dict[str, int]
    outcome_met: float | None
    outcome_breached: float | None


def sla_figures(clocks: Iterable[Clock], stage: str, until: datetime) -> SlaFigures:
    decided: list[Clock] = []
    still_open = 0
    for clock in clocks:
        if clock.stage != stage:
            continue
        due_passed = (until - clock.started).total_seconds() > clock.hours * 3600
        if clock.touched is None and not due_passed:
            still_open += 1
        else:
            decided.append(clock)
    met = [c for c in decided if c.met()]
    breached = [c for c in decided if not c.met()]
    by_owner: dict[str, tuple[int, int]] = {}
    for clock in decided:
        name = clock.owner or "(no owner)"
        seen, ok = by_owner.get(name, (0, 0))
        by_owner[name] = (seen + 1, ok + (1 if clock.met() else 0))
    buckets = dict.fromkeys([label for label, _ in TOUCH_BUCKETS] + ["never"], 0)
    for clock in decided:
        buckets[_bucket(clock)] += 1
    return SlaFigures(
        stage=stage, decided=len(decided), met=len(met), share_met=rate(len(met), len(decided)),
        open=still_open, by_owner=dict(sorted(by_owner.items())), touch_buckets=buckets,
        outcome_met=rate(sum(1 for c in met if c.outcome), len(met)),
        outcome_breached=rate(sum(1 for c in breached if c.outcome), len(breached)))


def _bucket(clock: Clock) -> str:
    if clock.touched is None:
        return "never"
    hours = (clock.touched - clock.started).total_seconds() / 3600
    for label, bound in TOUCH_BUCKETS:
        if bound is None or hours < bound:
            return label
    return TOUCH_BUCKETS[-1][0]  # pragma: no cover - the last bucket has no bound
