"""Spreadsheet forms for `leadsync score`: CSV rows -> profile dicts, evaluations -> output rows.

CSV input has one row per event with the profile columns repeated (docs/scoring.md lists the
columns). Rows sharing an `id` make one profile, in order of first appearance; empty cells
repeat nothing, but two different values of one profile column under one id are a conflict
(two people sharing an id?). A row whose `event_type` is empty carries no event (a profile
without engagement). A bad row, or a conflict, is a problem of its person: the caller reports
it and does not score that person (never a silently different score). Columns named
`event_<prop>` become event properties (`event_url`, `event_form`, `event_channel`, ...); any
column that is neither a profile nor an event column becomes an attribute. Pure functions over
already-read rows: no file I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from leadsync.scoring.evaluation import Evaluation
from leadsync.scoring.reasons import render_reasons

PROFILE_COLUMNS: tuple[str, ...] = (
    "id", "email", "first_name", "last_name", "title", "company", "employees", "industry",
    "country", "annual_revenue", "lead_source", "stage", "stage_entered_at", "sales_status",
    "sales_status_at", "mql_at", "sql_at", "score_at_mql", "owner",
    "bant_budget", "bant_authority", "bant_need", "bant_timeline",
)
EVENT_PREFIX = "event_"
OUTPUT_COLUMNS: tuple[str, ...] = (
    "id", "score", "fit", "engagement", "grade", "stage", "instant_mql", "reasons", "model",
)
_BANT = {"bant_budget": "budget", "bant_authority": "authority", "bant_need": "need",
         "bant_timeline": "timeline"}
_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")


@dataclass(slots=True)
class CsvProfile:
    """One profile assembled from CSV rows; `event_lines` maps each event to its CSV line,
    `lines` lists every row of the person and `problems` (line, message) the rows that make
    it unscorable."""

    line: int
    fields: dict[str, object]
    bant: dict[str, object] = field(default_factory=dict)
    attributes: dict[str, object] = field(default_factory=dict)
    events: list[dict[str, object]] = field(default_factory=list)
    event_lines: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: column -> the line its value came from (for conflict messages)
    sources: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The JSON form (DESIGN.md §2) for `parse_profile`."""
        return {**self.fields, "bant": self.bant, "attributes": self.attributes,
                "events": self.events}

    def line_for(self, error_field: str) -> int:
        """The CSV line to blame for a `ProfileError` field such as `events[2].at`."""
        found = _EVENT_INDEX.match(error_field)
        if found and int(found.group(1)) < len(self.event_lines):
            return self.event_lines[int(found.group(1))]
        return self.line

    def merge(self, line: int, row: Mapping[str, str]) -> None:
        """Add one CSV row: its non-empty profile cells (a different value than an earlier row
        gave is a conflict) and its event, if any."""
        self.lines.append(line)
        for column, raw in row.items():
            value = (raw or "").strip()
            if not value or column.startswith(EVENT_PREFIX) or column == "id":
                continue
            if column in _BANT:
                target, key = self.bant, _BANT[column]
            elif column in PROFILE_COLUMNS:
                target, key = self.fields, column
            else:
                target, key = self.attributes, column
            known = target.get(key)
            if known is None:
                target[key] = value
                self.sources[column] = line
            elif known != value:
                self.problems.append((line, f"{column}: {value[:40]!r} differs from "
                                      f"{str(known)[:40]!r} on line {self.sources[column]} for "
                                      f"id {self.fields['id']!s:.40} (two people share an id?)"))
        event = _event(row)
        if event is not None:
            self.events.append(event)
            self.event_lines.append(line)


class CsvRowError(ValueError):
    """A CSV row that cannot belong to any profile; `line` is its line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _event(row: Mapping[str, str]) -> dict[str, object] | None:
    kind = (row.get("event_type") or "").strip()
    if not kind:
        return None
    event: dict[str, object] = {"type": kind, "at": (row.get("event_at") or "").strip() or None}
    for column, raw in row.items():
        if column.startswith(EVENT_PREFIX) and column not in ("event_type", "event_at"):
            value = (raw or "").strip()
            if value:
                event[column[len(EVENT_PREFIX):]] = value
    return event


#: A CSV row as read: (line number, cells by column, what is wrong with it or None).
CsvRow = tuple[int, Mapping[str, str], "str | None"]


def group_csv_rows(rows: Iterable[CsvRow]) -> tuple[list[CsvProfile], list[CsvRowError]]:
    """Group rows into profiles. A bad row with an id is a problem of that person (reported,
    person not scored); rows without an id are errors of their own."""
    profiles: dict[str, CsvProfile] = {}
    errors: list[CsvRowError] = []
    for line, row, problem in rows:
        person = (row.get("id") or "").strip()
        if not person:
            errors.append(CsvRowError(line, "id: missing" if problem is None else problem))
            continue
        entry = profiles.get(person)
        if entry is None:
            entry = profiles[person] = CsvProfile(line, {"id": person})
        if problem is None:
            entry.merge(line, row)
        else:
            entry.lines.append(line)
            entry.problems.append((line, problem))
    return list(profiles.values()), errors


def output_record(evaluation: Evaluation) -> dict[str, object]:
    """The JSONL output object of `leadsync score` (DESIGN.md §8)."""
    return {
        "id": evaluation.person_id,
        "score": evaluation.score,
        "fit": evaluation.fit,
        "engagement": evaluation.engagement,
        "grade": evaluation.grade,
        "stage": evaluation.stage,
        "instant_mql": evaluation.instant_mql,
        # additive to DESIGN.md §8: `count`, the occurrences behind an engagement rule's points
        "reasons": [{"rule": r.rule, "label": r.label, "points": r.points, "count": r.count}
                    for r in evaluation.reasons],
        "model": evaluation.model,
    }


def output_row(evaluation: Evaluation) -> list[object]:
    """The CSV output row (OUTPUT_COLUMNS); reasons rendered as the CRMs show them, uncut."""
    return [
        evaluation.person_id, evaluation.score, evaluation.fit, evaluation.engagement,
        evaluation.grade, evaluation.stage, str(evaluation.instant_mql).lower(),
        render_reasons(evaluation.reasons, 100_000), evaluation.model,
    ]


@dataclass(frozen=True, slots=True)
class RuleStat:
    rule: str
    label: str
    profiles: int  # profiles the rule contributed to
    mean_points: float  # mean contribution over those profiles


@dataclass(frozen=True, slots=True)
class Summary:
    """What someone tuning rules wants to see across a batch of evaluations."""

    profiles: int
    by_stage: dict[str, int]
    by_grade: dict[str, int]
    score_quantiles: dict[str, int]  # min, p50, p90, max
    mql_or_better: int
    rules: tuple[RuleStat, ...]


def summarize(evaluations: Iterable[Evaluation]) -> Summary:
    """Stage/grade distribution, score quantiles and per-rule hit counts, rules most used first."""
    items = list(evaluations)
    by_stage: dict[str, int] = {}
    by_grade: dict[str, int] = {}
    hits: dict[str, tuple[str, int, float]] = {}
    for ev in items:
        by_stage[ev.stage] = by_stage.get(ev.stage, 0) + 1
        by_grade[ev.grade] = by_grade.get(ev.grade, 0) + 1
        for reason in ev.reasons:
            _, count, total = hits.get(reason.rule, (reason.label, 0, 0.0))
            hits[reason.rule] = (reason.label, count + 1, total + reason.points)
    scores = sorted(ev.score for ev in items)
    quantiles = {}
    if scores:
        quantiles = {"min": scores[0], "p50": scores[len(scores) // 2],
                     "p90": scores[min(len(scores) - 1, (len(scores) * 9) // 10)],
                     "max": scores[-1]}
    rules = sorted(
        (RuleStat(rule, label, n, total / n) for rule, (label, n, total) in hits.items()),
        key=lambda s: (-s.profiles, s.rule),
    )
    advanced = {"mql", "sql", "opportunity", "customer"}
    return Summary(
        profiles=len(items),
        by_stage=dict(sorted(by_stage.items(), key=lambda kv: -kv[1])),
        by_grade=dict(sorted(by_grade.items())),
        score_quantiles=quantiles,
        mql_or_better=sum(1 for ev in items if ev.stage in advanced),
        rules=tuple(rules),
    )
