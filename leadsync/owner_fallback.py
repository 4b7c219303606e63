"""Follow-up tasks the CRM refused because of their owner go to the fallback owner.

A record's owner can leave: Salesforce then refuses a Task owned by them with
`INACTIVE_OWNER_OR_USER` (deactivated user) or `INVALID_CROSS_REFERENCE_KEY` (no such user),
HubSpot with `INVALID_OWNER_ID` ("... is not a valid owner id"); a queue that does not own
Tasks (every queue but one whose supported objects include Task) with
`FIELD_INTEGRITY_EXCEPTION` ("Assigned To ID: id value of incorrect type: 00G..."; a Task
known to be for a queue is not sent at all, `followups`). Each such task is sent once
more, owned by `LEADSYNC_SLA__FALLBACK_OWNER`. With no fallback owner configured (or when the
refused owner *is* the fallback), the task stays failed with a reason saying so: its key is
released, so the next cycle that still owes it tries again, and goes to the fallback owner once
one is configured. `INVALID_CROSS_REFERENCE_KEY` can also name the person record (WhoId); the
one resend then fails the same way and is reported, at the cost of one call.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from leadsync.config.settings import SlaSettings
from leadsync.connectors.base import Connector, FollowUpTask, TaskResult

log = logging.getLogger("leadsync.owner_fallback")

OWNER_FAULTS = ("INACTIVE_OWNER_OR_USER", "INVALID_CROSS_REFERENCE_KEY", "INVALID_OWNER_ID")
QUEUE_FAULT = "FIELD_INTEGRITY_EXCEPTION"  # an owner of the wrong type: a queue
NO_FALLBACK = ("; the task owner was refused and no fallback owner is configured "
               "(set LEADSYNC_SLA__FALLBACK_OWNER; the task is retried by the next cycle)")


def is_owner_fault(reason: str, owner_id: str | None = None) -> bool:
    """The CRM refused the task for its owner. FIELD_INTEGRITY_EXCEPTION is about the owner
    only when its message names the owner's id (it covers other fields' integrity too)."""
    if QUEUE_FAULT in reason:
        return bool(owner_id) and str(owner_id) in reason
    return any(code in reason for code in OWNER_FAULTS)


def fallback_owner_id(sla: SlaSettings, owners_by_email: Mapping[str, str]) -> str | None:
    """The CRM id of the configured fallback owner, if they are one of this CRM's owners."""
    if not sla.fallback_owner:
        return None
    return owners_by_email.get(sla.fallback_owner.strip().lower())


def reassign_refused(
    conn: Connector, sent: Sequence[FollowUpTask], result: TaskResult, fallback: str | None
) -> TaskResult:
    """`result` with every owner-refused task of `sent` sent once more to `fallback`."""
    refused = [t for t in sent if t.key in result.failed
               and is_owner_fault(result.failed[t.key], t.owner_id)]
    if not refused:
        return result
    retry = [t for t in refused if fallback and t.owner_id != fallback]
    retry_keys = {t.key for t in retry}
    merged = TaskResult(created=dict(result.created), failed=dict(result.failed))
    for task in refused:
        if task.key not in retry_keys:
            merged.failed[task.key] = result.failed[task.key] + (
                NO_FALLBACK if not fallback else "; refused for the fallback owner too")
            log.warning("follow-up task refused for its owner; no other owner to give it to",
                        extra={"system": conn.system, "task_key": task.key,
                               "fallback_configured": bool(fallback)})  # fmt: skip
    if not retry:
        return merged
    again = conn.create_tasks([dataclasses.replace(t, owner_id=fallback) for t in retry])
    for task in retry:
        if task.key in again.created:
            merged.failed.pop(task.key, None)
            merged.created[task.key] = again.created[task.key]
            log.warning("follow-up task refused for its owner: given to the fallback owner",
                        extra={"system": conn.system, "task_key": task.key})
        else:
            merged.failed[task.key] = again.failed.get(task.key, result.failed[task.key])
    return merged
