"""Suggested points: a regularised logistic model over rule hits, mapped back to points.

Each person of the cohort is a row of 0/1 rule hits (did the rule give them points at the
snapshot; fit attributes enter through the fit rules' hits) and the outcome. scikit-learn's
L2-regularised `LogisticRegression` fits one coefficient per rule (log-odds per hit). The
coefficients are mapped back to points on the model's own scale: one factor `k` (points per
unit of log-odds) chosen so the suggested rules carry the same total |points| as the current
ones, so the MQL threshold keeps its meaning. The uncertainty is `k` times the coefficient's
standard error from the penalised fit's inverse Hessian. Rules with fewer than `min_hits`
hits keep their points (too little evidence either way).

`rules_yaml` writes a complete rules file: the live one with only `points` (and `version`)
changed, each changed rule preceded by a comment that says what changed and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from leadsync.review.figures import Scored, rule_lift

MIN_HITS = 20
RULE_SECTIONS = ("fit", "engagement", "recency")


@dataclass(frozen=True, slots=True)
class Suggestion:
    rule: str
    points: float
    suggested: float
    uncertainty: float | None  # one standard error, in points; None when kept
    hits: int
    kept: bool  # too few hits: the current points are kept


class SuggestError(ValueError):
    """The cohort cannot support a fit (one class only, or no rule with enough hits)."""


def suggest_points(scored: Sequence[Scored], rules: Sequence[tuple[str, float]], *,
                   min_hits: int = MIN_HITS, strength: float = 1.0) -> list[Suggestion]:
    """One suggestion per rule, in the order given (see the module docstring). `strength` is
    scikit-learn's C (smaller: stronger regularisation)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    y = np.array([1 if s.outcome else 0 for s in scored])
    if len(scored) == 0 or y.min() == y.max():
        raise SuggestError("the cohort needs people with and without the outcome")
    hits = {rule: sum(1 for s in scored if rule in s.hits) for rule, _ in rules}
    fitted = [(rule, points) for rule, points in rules if hits[rule] >= min_hits]
    if not fitted:
        raise SuggestError(f"no rule hit at least {min_hits} people")
    x = np.array([[1.0 if rule in s.hits else 0.0 for rule, _ in fitted] for s in scored])
    model = LogisticRegression(C=strength, max_iter=2000)
    model.fit(x, y)
    beta = [float(b) for b in model.coef_[0]]
    errors = _standard_errors(x, model.predict_proba(x)[:, 1], strength)
    total_beta = sum(abs(b) for b in beta)
    total_points = sum(abs(p) for _, p in fitted)
    scale = total_points / total_beta if total_beta else 0.0
    found = {rule: (b, e) for (rule, _), b, e in zip(fitted, beta, errors, strict=True)}
    out = []
    for rule, points in rules:
        if rule not in found:
            out.append(Suggestion(rule, points, points, None, hits[rule], True))
            continue
        b, e = found[rule]
        out.append(Suggestion(rule, points, float(_round(scale * b)),
                              round(scale * e, 1), hits[rule], False))
    return out


def _standard_errors(x: Any, p: Any, strength: float) -> list[float]:
    """Standard errors of the coefficients (not the intercept) from the inverse Hessian of
    the L2-penalised log-likelihood: (X1' W X1 + diag(0, 1/C, ...))^-1, W = p(1-p)."""
    import numpy as np

    x1 = np.hstack([np.ones((x.shape[0], 1)), x])
    weights = p * (1 - p)
    hessian = (x1 * weights[:, None]).T @ x1
    penalty = np.eye(x1.shape[1]) / strength
    penalty[0, 0] = 0.0
    covariance = np.linalg.pinv(hessian + penalty)
    return [float(math.sqrt(max(v, 0.0))) for v in np.diag(covariance)[1:]]


def _round(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def explain_change(s: Suggestion, scored: Sequence[Scored]) -> str:
    """The comment above a rule in the suggested file: what changed and why."""
    if s.kept:
        return f"{s.rule}: kept at {s.points:g} (only {s.hits} people hit it; at least " \
               f"{MIN_HITS} needed)"
    (lift,) = rule_lift(scored, [(s.rule, s.points)])
    rates = (f"outcome rate {_pct(lift.rate_with)} with it vs {_pct(lift.rate_without)} "
             f"without, {s.hits} hits")
    sign = " (evidence against its sign)" if lift.contradicts else ""
    if s.suggested == s.points:
        return f"{s.rule}: unchanged at {s.points:g} (±{s.uncertainty:g}); {rates}"
    return (f"{s.rule}: {s.points:g} -> {s.suggested:g} (±{s.uncertainty:g}){sign}; {rates}")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def rules_yaml(source: Mapping[str, Any], suggestions: Sequence[Suggestion],
               scored: Sequence[Scored], *, version: str, header: str) -> str:
    """The live rules file (`source`, as loaded from YAML) with the suggested points, as text:
    every key in its order, one rule per line, a comment above each rule."""
    by_rule = {s.rule: s for s in suggestions}
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in source.items():
        if key == "version":
            lines.append(f"version: {json_string(version)}")
        elif key in RULE_SECTIONS and isinstance(value, list):
            lines.append(f"{key}:")
            for rule in value:
                entry = dict(rule)
                s = by_rule.get(str(entry.get("id")))
                if s is not None:
                    lines.append(f"  # {explain_change(s, scored)}")
                    entry["points"] = int(s.suggested) if float(s.suggested).is_integer() \
                        else s.suggested
                lines.append("  - " + _flow(entry))
        else:
            lines.append(_flow({key: value}).removeprefix("{").removesuffix("}"))
    return "\n".join(lines) + "\n"


def _flow(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False,
                          width=10_000)
    return text.strip()


def json_string(text: str) -> str:
    """A double-quoted YAML scalar (YAML's double quotes take JSON's escapes)."""
    import json

    return json.dumps(text, ensure_ascii=False)
