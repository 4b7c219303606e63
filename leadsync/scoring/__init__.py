"""leadsync.scoring: the pure core (DESIGN.md §2-§5).

Profiles in, evaluations out: `evaluate(profile, model, now)` scores a person with a compiled
`ScoringModel`, decides the lifecycle stage and the SLA clock, and says which follow-up task
is owed. No I/O, no clock, no settings.
"""

from leadsync.scoring.core import evaluate
from leadsync.scoring.derived import derive_seniority
from leadsync.scoring.evaluation import Evaluation, FollowUp, Reason, StageDecision
from leadsync.scoring.model import (
    Caps,
    Decay,
    EngagementRule,
    FitRule,
    Grade,
    RecencyRule,
    ScoringModel,
    SlaPolicy,
)
from leadsync.scoring.parse import ProfileError, parse_datetime, parse_profile, profile_to_dict
from leadsync.scoring.profile import Bant, Event, Profile
from leadsync.scoring.reasons import format_points, render_reason, render_reasons, round_half_away
from leadsync.scoring.sla import task_key

__all__ = [
    "Bant",
    "Caps",
    "Decay",
    "EngagementRule",
    "Evaluation",
    "Event",
    "FitRule",
    "FollowUp",
    "Grade",
    "Profile",
    "ProfileError",
    "Reason",
    "RecencyRule",
    "ScoringModel",
    "SlaPolicy",
    "StageDecision",
    "derive_seniority",
    "evaluate",
    "format_points",
    "parse_datetime",
    "parse_profile",
    "profile_to_dict",
    "render_reason",
    "render_reasons",
    "round_half_away",
    "task_key",
]
