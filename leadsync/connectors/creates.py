"""Creating tasks exactly once without an idempotency key: send; when a send's outcome is
unknown, read back which keys exist and send only the missing ones.

Neither CRM takes an idempotency key for a Task (API_NOTES), so a create whose reply was lost
(reset or read timeout after the request went out, a 5xx) may or may not have been committed.
The HTTP boundary does not replay such a create (`call_with_policy(idempotent=False)` raises
`OutcomeUnknown`); this loop settles it instead. Every task carries its key in its body
(`leadsync-key: <key>`), so the connector's own key lookup over the batch's records says which
were committed. A batch is sent at most `rounds` times, each unknown outcome settled by one
read-back. What cannot be settled is reported failed, never counted as created, and the next
cycle checks the CRM again before creating it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from leadsync.connectors.base import (
    BudgetExhausted,
    ConnectorError,
    FollowUpTask,
    TaskResult,
    TransientError,
    tasks_done,
)
from leadsync.connectors.http import OutcomeUnknown, redact

log = logging.getLogger(__name__)

SendTasks = Callable[[Sequence[FollowUpTask]], TaskResult]
FindTaskIds = Callable[[Sequence[FollowUpTask]], Mapping[str, str]]


def create_once(
    op: str, tasks: Sequence[FollowUpTask], send: SendTasks, existing: FindTaskIds,
    *, rounds: int,
) -> TaskResult:
    """Create `tasks` (one batch) with `send`; after `OutcomeUnknown`, `existing(pending)`
    (key -> task id of the keys found on those tasks' records) decides what was committed.

    The result is truthful: `created` holds exactly the keys the CRM confirmed or the read-back
    found, `failed` every other key with the reason."""
    result = TaskResult()
    pending = list(tasks)
    reason = ""
    for round_no in range(1, max(1, rounds) + 1):
        try:
            sent = send(pending)
        except BudgetExhausted as exc:  # refused before sending: what a read-back found stands
            exc.done = result
            raise
        except OutcomeUnknown as exc:
            reason = exc.reason
        except TransientError as exc:
            # every attempt was refused before processing (connect errors, 429): none exists
            result.failed.update({t.key: redact(exc, 200) for t in pending})
            return result
        else:
            result.created.update(sent.created)
            result.failed.update(sent.failed)
            return result
        try:
            found = existing(pending)
        except ConnectorError as exc:
            log.warning("could not read back an unknown create; reporting it failed",
                        extra={"op": op, "round": round_no, "tasks": len(pending)})  # fmt: skip
            why = f"outcome unknown ({reason}); read-back failed: {redact(exc, 160)}"
            result.failed.update({t.key: why for t in pending})
            return result
        committed = {t.key: found[t.key] for t in pending if t.key in found}
        result.created.update(committed)
        pending = [t for t in pending if t.key not in found]
        log.info("settled an unknown create by reading back its keys",
                 extra={"op": op, "round": round_no, "committed": len(committed),
                        "missing": len(pending)})  # fmt: skip
        if not pending:
            return result
    why = f"outcome unknown after {max(1, rounds)} sends ({reason}); not found on read-back"
    result.failed.update({t.key: why for t in pending})
    return result


def create_in_chunks(
    op: str, system: str, tasks: Sequence[FollowUpTask], send: SendTasks,
    existing: FindTaskIds, *, chunk: int, rounds: int,
) -> TaskResult:
    """Create `tasks` for `system` in chunks of `chunk`, each through `create_once`.

    A task for another system's record or with a naive due date is failed before any call. A
    budget stop (`BudgetExhausted`) carries in `exc.done` every key created before it, in this
    call's earlier chunks and in the chunk it stopped, so the caller never loses a create."""
    result = TaskResult()
    valid: list[FollowUpTask] = []
    for task in tasks:
        if task.person.system != system or task.due.tzinfo is None:
            result.failed[task.key] = f"not a {system} record or naive due date"
        else:
            valid.append(task)
    try:
        for start in range(0, len(valid), chunk):
            done = create_once(op, valid[start : start + chunk], send, existing, rounds=rounds)
            result.created.update(done.created)
            result.failed.update(done.failed)
    except BudgetExhausted as exc:  # the chunks created before the budget ran out count
        result.created.update(tasks_done(exc).created)
        exc.done = result
        raise
    return result
