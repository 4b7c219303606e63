"""Exit codes, the same for every `leadsync` command (documented in the README).

The Celery tasks' results carry the same outcome (`ok`, `stopped_reason`, `exit_code`), so what a
cron job sees from `leadsync sync --once` and what an operator sees in Flower agree.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0  # everything asked for was done
FAILED_RECORDS: Final = 1  # finished, but some records/rows/tasks/checks failed (named on stderr)
# a setting, the rules file, an argument (also: `explain --account` names no account) or an
# input file is wrong: fix and rerun
CONFIG: Final = 2
STOPPED_EARLY: Final = 3  # stopped before the end: API budget spent, lock lost, time limit
UNREACHABLE: Final = 4  # a CRM or Redis could not be reached, or refused our credentials

MEANING: Final[dict[int, str]] = {
    OK: "done",
    FAILED_RECORDS: "finished with failed records",
    CONFIG: "settings, rules or argument error",
    STOPPED_EARLY: "stopped early",
    UNREACHABLE: "unreachable or authentication failure",
}


def for_outcome(*, failed: int, stopped_reason: str | None) -> int:
    """The exit code of a run that finished (or stopped cleanly): stopped early wins over
    failed records, which win over done."""
    if stopped_reason:
        return STOPPED_EARLY
    if failed:
        return FAILED_RECORDS
    return OK
