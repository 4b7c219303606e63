"""The profile: one person as seen across both CRMs, merged (DESIGN.md §2).

Plain frozen values. Parsing from JSON-like dicts lives in `leadsync.scoring.parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

EventType = Literal[
    "page_view",
    "form_submit",
    "email_open",
    "email_click",
    "email_unsubscribe",
    "webinar_attended",
    "meeting_booked",
    "sales_touch",
]
EVENT_TYPES: frozenset[str] = frozenset(EventType.__args__)  # type: ignore[attr-defined]

SalesStatus = Literal[
    "working", "accepted", "rejected", "disqualified", "opportunity_open", "won", "lost"
]
SALES_STATUSES: frozenset[str] = frozenset(SalesStatus.__args__)  # type: ignore[attr-defined]

Stage = Literal[
    "subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"
]
STAGE_ORDER: tuple[str, ...] = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
STAGES: frozenset[str] = frozenset(Stage.__args__)  # type: ignore[attr-defined]

_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Event:
    """One engagement or sales event. `props` holds url / form / channel and anything else."""

    type: str
    at: datetime  # always timezone-aware (UTC)
    props: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str | None = None  # "hubspot" | "salesforce" | None; for dedupe and explain


@dataclass(frozen=True, slots=True)
class Bant:
    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    timeline: bool | None = None

    def count(self) -> int:
        return sum(1 for v in (self.budget, self.authority, self.need, self.timeline) if v)


@dataclass(frozen=True, slots=True)
class Profile:
    """A person. Every field but `id` may be None. Datetimes are timezone-aware UTC."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    company: str | None = None
    employees: int | None = None
    industry: str | None = None
    country: str | None = None
    annual_revenue: float | None = None
    lead_source: str | None = None
    attributes: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    bant: Bant = Bant()
    events: tuple[Event, ...] = ()
    # previous lifecycle state (as last written by leadsync, or from the CRM)
    stage: str | None = None
    stage_entered_at: datetime | None = None
    sales_status: str | None = None
    sales_status_at: datetime | None = None
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    score_at_mql: int | None = None
    owner: str | None = None
