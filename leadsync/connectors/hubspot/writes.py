"""HubSpot writes: field updates (batches of 100, 207 per record, clear-then-set lifecycle
moves) and follow-up tasks (batch create with the contact association 204, key search)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadsync.config.settings import HubSpotFieldNames
from leadsync.connectors.base import (
    BudgetExhausted,
    FieldUpdate,
    FollowUpTask,
    RecordError,
    RecordRef,
    TaskResult,
    WriteResult,
)
from leadsync.connectors.creates import create_in_chunks
from leadsync.connectors.http import redact
from leadsync.connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from leadsync.connectors.hubspot.mapping import (
    format_datetime,
    is_backward,
    lifecycle_target,
    same_value,
)
from leadsync.connectors.values import InvalidValue, canonical, clean_text, cut

log = logging.getLogger(__name__)
BATCH = 100
REASONS_LEN = 1000
TASK_CONTACT_ASSOCIATION = 204
KEY_LINE = re.compile(r"leadsync-key:\s*(\S+)")
OWN_SUBJECT = "[LeadSync]"
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "CONFLICT", "TEMPORARILY_UNAVAILABLE"})


def _wire(value: str | datetime | None) -> str:
    if value is None:
        return ""
    return format_datetime(value) if isinstance(value, datetime) else value


def plan_update(
    update: FieldUpdate, fields: HubSpotFieldNames
) -> tuple[dict[str, str], str | None]:
    """(properties to send, lifecyclestage to set in a second request or None).

    Values are validated and formatted first (`InvalidValue` rejects the record); only those
    differing from `update.previous` are kept. A backward `lifecyclestage` move is sent as ""
    now and the real value later, because HubSpot refuses to move it backwards.
    """
    names = {**fields.model_dump(), "owner_id": "hubspot_owner_id"}  # owner: docs/routing.md
    props: dict[str, str] = {}
    second: str | None = None
    for logical, value in update.values.items():
        if logical not in names:
            raise InvalidValue(f"unknown written field {logical!r}")
        wire = _wire(canonical(logical, value, reasons_len=REASONS_LEN))
        if not same_value(logical, wire, update.previous.get(logical)):
            props[names[logical]] = wire
        if logical == "stage" and isinstance(value, str):
            current = update.previous.get("lifecyclestage")
            current_s = str(current) if current else None
            lifecycle = lifecycle_target(value, current_s)
            if current_s != lifecycle:
                if is_backward(current_s, lifecycle):
                    props["lifecyclestage"], second = "", lifecycle
                else:
                    props["lifecyclestage"] = lifecycle
    return props, second


def write_updates(
    client: HubSpotClient, fields: HubSpotFieldNames, updates: Sequence[FieldUpdate],
    *, dry_run: bool = False,
) -> WriteResult:
    """Validate, diff and send updates; per-record failures come back in the result.
    With `dry_run`, nothing is sent: `written` lists the records that would be."""
    result = WriteResult()
    pending: list[tuple[RecordRef, dict[str, str]]] = []
    seconds: dict[str, str] = {}
    for update in updates:
        if update.ref.system != "hubspot":
            result.failed.append(RecordError(update.ref, "not a HubSpot record", False))
            continue
        try:
            props, second = plan_update(update, fields)
        except InvalidValue as exc:
            result.failed.append(RecordError(update.ref, f"invalid value: {exc}", False))
            continue
        if not props:
            result.unchanged.append(update.ref)
            continue
        pending.append((update.ref, props))
        if second is not None:
            seconds[update.ref.id] = second
    if dry_run:
        result.written.extend(ref for ref, _ in pending)
        return result
    ok: list[RecordRef] = []
    ok_second: list[RecordRef] = []
    try:
        _send(client, pending, result.failed, ok)
        followups = [(ref, {"lifecyclestage": seconds[ref.id]}) for ref in ok
                     if ref.id in seconds]
        _send(client, followups, result.failed, ok_second)
    except BudgetExhausted as exc:  # what was taken so far is reported, the rest retried
        halfway = [ref for ref in ok if ref.id in seconds and ref not in ok_second]
        result.failed.extend(RecordError(ref, "lifecyclestage cleared but not yet set: API "
                                              "budget spent", True) for ref in halfway)
        result.written.extend(ref for ref in ok if ref.id not in seconds or ref in ok_second)
        exc.done = result
        raise
    failed_second = {ref for ref in ok if ref.id in seconds} - set(ok_second)
    result.written.extend(ref for ref in ok if ref not in failed_second)
    return result


def _send(
    client: HubSpotClient,
    items: Sequence[tuple[RecordRef, Mapping[str, str]]],
    failed: list[RecordError],
    accepted: list[RecordRef],
) -> None:
    """Batch-update `items`; append the refs HubSpot accepted to `accepted` as each batch is
    answered (a budget stop midway leaves the earlier batches there), the others to `failed`."""
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        by_id = {ref.id: ref for ref, _ in chunk}
        body = {"inputs": [{"id": ref.id, "properties": dict(p)} for ref, p in chunk]}
        try:
            _, resp = client.call("contacts batch update", client.contacts_batch.update, body)
        except HubSpotRequestError as exc:
            reason = f"{exc.status} {exc.category}: {exc.message}"
            failed.extend(RecordError(ref, reason, exc.status == 409) for ref in by_id.values())
            continue
        errored: set[str] = set()
        for err in resp.get("errors", []) or []:
            ids = [str(i) for i in (err.get("context") or {}).get("ids", []) or []]
            category = str(err.get("category", ""))
            reason = f"{category}: {redact(err.get('message', ''), 200)}"
            for rid in ids or [i for i in by_id if i not in _result_ids(resp)]:
                if rid in by_id and rid not in errored:
                    errored.add(rid)
                    failed.append(RecordError(by_id[rid], reason,
                                              category in RETRYABLE_CATEGORIES))  # fmt: skip
        accepted.extend(ref for rid, ref in by_id.items() if rid not in errored)


def _result_ids(resp: Mapping[str, Any]) -> set[str]:
    return {str(r.get("id")) for r in resp.get("results", []) or []}


def task_body(task: FollowUpTask) -> str:
    """The task body, guaranteed to carry the `leadsync-key:` line used for idempotency."""
    body = clean_text(task.body)
    line = f"leadsync-key: {task.key}"
    return body if line in body else f"{body}\n{line}".strip()


def _task_input(task: FollowUpTask) -> dict[str, Any]:
    props = {
        "hs_task_subject": cut(clean_text(task.subject), 255),
        "hs_task_body": task_body(task),
        "hs_timestamp": format_datetime(task.due),
        "hs_task_priority": "HIGH" if task.priority == "high" else "MEDIUM",
        "hs_task_type": "TODO",
        "hs_task_status": "NOT_STARTED",
    }
    if task.owner_id:
        props["hubspot_owner_id"] = task.owner_id
    assoc = {"associationCategory": "HUBSPOT_DEFINED",
             "associationTypeId": TASK_CONTACT_ASSOCIATION}  # fmt: skip
    to = {"to": {"id": task.person.id}, "types": [assoc]}
    return {"properties": props, "associations": [to]}


def create_tasks(client: HubSpotClient, tasks: Sequence[FollowUpTask]) -> TaskResult:
    """Create tasks in batches of 100; created ids are matched to keys through the body line.
    A batch whose outcome is unknown is never re-sent blindly: its keys are read back from its
    contacts' tasks and only the missing ones are sent again (`connectors.creates`)."""
    return create_in_chunks(
        "HubSpot tasks batch create", "hubspot", tasks,
        lambda pending: _send_tasks(client, pending),
        lambda pending: read_back_task_ids(client, [t.person for t in pending]),
        chunk=BATCH, rounds=client.policy.create_rounds,
    )  # fmt: skip


def _send_tasks(client: HubSpotClient, chunk: Sequence[FollowUpTask]) -> TaskResult:
    """One batch create, never replayed once it may have been processed (`OutcomeUnknown`)."""
    result = TaskResult()
    body = {"inputs": [_task_input(t) for t in chunk]}
    try:
        _, resp = client.call("tasks batch create", client.tasks_batch.create, body,
                              idempotent=False)  # fmt: skip
    except HubSpotRequestError as exc:
        result.failed.update({t.key: f"{exc.status} {exc.category}: {exc.message}" for t in chunk})
        return result
    for raw in resp.get("results", []) or []:
        match = KEY_LINE.search(str((raw.get("properties") or {}).get("hs_task_body", "")))
        if match:
            result.created[match.group(1)] = str(raw.get("id"))
    refused = _refused_inputs(resp, len(chunk))
    for i, task in enumerate(chunk):
        if task.key not in result.created:
            result.failed[task.key] = refused.get(i, "HubSpot did not confirm the task")
    return result


def _refused_inputs(resp: Mapping[str, Any], size: int) -> dict[int, str]:
    """Input index -> HubSpot's reason, from a 207's per-input errors (`context.index`)."""
    out: dict[int, str] = {}
    for err in resp.get("errors", []) or []:
        for raw in (err.get("context") or {}).get("index", []) or []:
            if str(raw).isascii() and str(raw).isdigit() and int(raw) < size:
                out[int(raw)] = (f"{err.get('category', '')}: "
                                 f"{redact(str(err.get('message', '')), 200)}")
    return out


def find_task_keys(client: HubSpotClient, refs: Sequence[RecordRef]) -> set[str]:
    """Keys in the bodies of `[LeadSync]` tasks associated with these contacts."""
    return set(find_task_ids(client, refs))


def find_task_ids(client: HubSpotClient, refs: Sequence[RecordRef]) -> dict[str, str]:
    """Key -> task id of the `[LeadSync]` tasks associated with these contacts."""
    ids = sorted({r.id for r in refs if r.system == "hubspot"})
    found: dict[str, str] = {}
    for start in range(0, len(ids), BATCH):
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [
                    {"propertyName": "associations.contact", "operator": "IN",
                     "values": ids[start : start + BATCH]},
                    {"propertyName": "hs_task_subject", "operator": "CONTAINS_TOKEN",
                     "value": "[LeadSync]"},
                ]}],
                "properties": ["hs_task_body", "hs_task_subject"], "limit": 200,
            }  # fmt: skip
            if after:
                body["after"] = after
            _, page = client.call("tasks search", client.tasks_search.do_search, body, search=True)
            for raw in page.get("results", []) or []:
                text = str((raw.get("properties") or {}).get("hs_task_body", ""))
                for key in KEY_LINE.findall(text):
                    found.setdefault(key, str(raw.get("id")))
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
    return found


def read_back_task_ids(client: HubSpotClient, refs: Sequence[RecordRef]) -> dict[str, str]:
    """Key -> task id of the `[LeadSync]` tasks associated with these contacts, read from the
    association and object stores: a v4 association batch read (contact -> task ids, paged per
    contact) and task batch reads. Unlike search, whose index shows a new task only after a
    short lag, these see a create the moment it is committed, so a lost reply is settled
    without a duplicate. Costs 1 call per 100 contacts plus 1 per 100 of their tasks."""
    contacts = sorted({r.id for r in refs if r.system == "hubspot"})
    task_ids: list[str] = []
    for start in range(0, len(contacts), BATCH):
        inputs: list[dict[str, str]] = [{"id": c} for c in contacts[start : start + BATCH]]
        while inputs:
            _, page = client.call("task associations", client.associations_batch.get_page,
                                  "contacts", "tasks", {"inputs": inputs})  # fmt: skip
            inputs = []
            for row in page.get("results", []) or []:
                task_ids.extend(str(t.get("toObjectId")) for t in row.get("to", []) or [])
                after = ((row.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    inputs.append({"id": str((row.get("from") or {}).get("id")), "after": after})
    found: dict[str, str] = {}
    unique = sorted(set(task_ids))
    for start in range(0, len(unique), BATCH):
        body = {"properties": ["hs_task_subject", "hs_task_body"], "propertiesWithHistory": [],
                "inputs": [{"id": t} for t in unique[start : start + BATCH]]}  # fmt: skip
        _, page = client.call("tasks batch read", client.tasks_batch.read, body)
        for raw in page.get("results", []) or []:
            props = raw.get("properties") or {}
            if OWN_SUBJECT not in str(props.get("hs_task_subject", "")):
                continue
            for key in KEY_LINE.findall(str(props.get("hs_task_body", ""))):
                found.setdefault(key, str(raw.get("id")))
    return found
