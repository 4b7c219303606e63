"""leadsync.review: the outcome analysis (DESIGN.md §1 `review/`).

`figures` holds the pure figures (funnel, score against outcome, AUC, thresholds, rule lift,
misfits, SLA) over as-of scores; `asof` scores people as they stood at a snapshot.
"""
