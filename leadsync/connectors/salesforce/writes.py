"""Salesforce writes through sObject Collections (200 per call, allOrNone=false, per-record
results) and follow-up Tasks (created the same way, found again by their key line)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from simple_salesforce.format import format_soql

from leadsync.config.settings import SalesforceFieldNames
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
from leadsync.connectors.salesforce.client import SalesforceClient, SalesforceRequestError, soql
from leadsync.connectors.salesforce.mapping import OWN_TASK_PREFIX, format_datetime, same_value
from leadsync.connectors.values import InvalidValue, canonical, clean_text, cut

COLLECTION = 200
REASONS_LEN = 255
KEY_LINE = re.compile(r"leadsync-key:\s*(\S+)")
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_RUNNING_TOO_LONG", "SERVER_UNAVAILABLE"}
)


def _wire(logical: str, value: str | datetime | None) -> object:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_datetime(value)
    return int(value) if logical in ("score", "engagement") else value


def plan_update(update: FieldUpdate, fields: SalesforceFieldNames) -> dict[str, object]:
    """Fields to send (Salesforce names -> JSON values), only those that differ from what was
    read. `InvalidValue` rejects the record with a reason naming the field."""
    names = {**fields.model_dump(), "owner_id": "OwnerId"}  # owner: routing (docs/routing.md)
    out: dict[str, object] = {}
    for logical, value in update.values.items():
        if logical not in names:
            raise InvalidValue(f"unknown written field {logical!r}")
        wire = _wire(logical, canonical(logical, value, reasons_len=REASONS_LEN))
        if not same_value(logical, wire, update.previous.get(logical)):
            out[names[logical]] = wire
    return out


def _error_reason(item: dict[str, Any]) -> tuple[str, bool]:
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode", "UNKNOWN"))
    return f"{code}: {redact(first.get('message', ''), 200)}", code in RETRYABLE_CODES


def _collection(
    client: SalesforceClient, method: str, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One sObject Collections call. PATCH (update) is idempotent and retried; POST (create)
    is not: once it may have been processed it raises `OutcomeUnknown` instead."""
    body = {"allOrNone": False, "records": records}
    result = client.rest(f"collections {method}", "composite/sobjects", method=method, json=body,
                         idempotent=method != "POST")  # fmt: skip
    return list(result or [])


def write_updates(
    client: SalesforceClient, fields: SalesforceFieldNames, updates: Sequence[FieldUpdate],
    *, dry_run: bool = False,
) -> WriteResult:
    """Validate, diff and PATCH changed fields; failures are per record, never the batch.
    With `dry_run`, nothing is sent: `written` lists the records that would be."""
    result = WriteResult()
    pending: list[tuple[RecordRef, dict[str, Any]]] = []
    for update in updates:
        ref = update.ref
        if ref.system != "salesforce" or ref.object_type not in ("Lead", "Contact"):
            result.failed.append(RecordError(ref, "not a Salesforce Lead or Contact", False))
            continue
        try:
            changed = plan_update(update, fields)
        except InvalidValue as exc:
            result.failed.append(RecordError(ref, f"invalid value: {exc}", False))
            continue
        if not changed:
            result.unchanged.append(ref)
            continue
        pending.append((ref, {"attributes": {"type": ref.object_type}, "id": ref.id, **changed}))
    if dry_run:
        result.written.extend(ref for ref, _ in pending)
        return result
    return patch_collections(client, pending, result)


def patch_collections(client: SalesforceClient, pending: Sequence[tuple[RecordRef, dict[str, Any]]],
                      result: WriteResult) -> WriteResult:
    """PATCH the planned records in sObject Collections, record by record into `result`; a
    budget stop carries what the collections sent before it wrote (the rest is retried)."""
    for start in range(0, len(pending), COLLECTION):
        chunk = pending[start : start + COLLECTION]
        try:
            answers = _collection(client, "PATCH", [rec for _, rec in chunk])
        except SalesforceRequestError as exc:
            result.failed.extend(RecordError(ref, str(exc), False) for ref, _ in chunk)
            continue
        except BudgetExhausted as exc:  # the collections sent before count; the rest is retried
            exc.done = result
            raise
        for i, (ref, _) in enumerate(chunk):
            item = answers[i] if i < len(answers) else {}
            if item.get("success"):
                result.written.append(ref)
            else:
                reason, retryable = _error_reason(item)
                result.failed.append(RecordError(ref, reason, retryable))
    return result


def task_record(task: FollowUpTask) -> dict[str, Any]:
    """The Task sObject for a follow-up (Subject keeps the `[LeadSync]` prefix)."""
    subject = clean_text(task.subject)
    if not subject.startswith(OWN_TASK_PREFIX):
        subject = f"{OWN_TASK_PREFIX} {subject}"
    body = clean_text(task.body)
    line = f"leadsync-key: {task.key}"
    if line not in body:
        body = f"{body}\n{line}".strip()
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "Subject": cut(subject, 255),
        "Description": cut(body, 32000),
        "ActivityDate": (task.due_date or task.due.date()).isoformat(),
        "Priority": "High" if task.priority == "high" else "Normal",
        "Status": "Not Started",
        "WhoId": task.person.id,
    }
    if task.owner_id:
        record["OwnerId"] = task.owner_id
    return record


def create_tasks(client: SalesforceClient, tasks: Sequence[FollowUpTask]) -> TaskResult:
    """POST Tasks in collections of 200; results come back in order, one per record. A
    collection whose outcome is unknown is never re-sent blindly: its keys are looked up on its
    records and only the missing Tasks are sent again (`connectors.creates`)."""
    return create_in_chunks(
        "Salesforce collections POST", "salesforce", tasks,
        lambda pending: _send_tasks(client, pending),
        lambda pending: find_task_ids(client, [t.person for t in pending]),
        chunk=COLLECTION, rounds=client.session.policy.create_rounds,
    )  # fmt: skip


def _send_tasks(client: SalesforceClient, chunk: Sequence[FollowUpTask]) -> TaskResult:
    result = TaskResult()
    try:
        answers = _collection(client, "POST", [task_record(t) for t in chunk])
    except SalesforceRequestError as exc:
        result.failed.update({t.key: str(exc) for t in chunk})
        return result
    for i, task in enumerate(chunk):
        item = answers[i] if i < len(answers) else {}
        if item.get("success") and item.get("id"):
            result.created[task.key] = str(item["id"])
        else:
            result.failed[task.key] = _error_reason(item)[0]
    return result


def find_task_keys(client: SalesforceClient, refs: Sequence[RecordRef]) -> set[str]:
    """Keys of `[LeadSync]` Tasks on these records."""
    return set(find_task_ids(client, refs))


def find_task_ids(client: SalesforceClient, refs: Sequence[RecordRef]) -> dict[str, str]:
    """Key -> Task Id of the `[LeadSync]` Tasks on these records (Description is not
    filterable in SOQL, so the key lines are parsed here)."""
    ids = sorted({r.id for r in refs if r.system == "salesforce"})
    found: dict[str, str] = {}
    for start in range(0, len(ids), COLLECTION):
        where = format_soql("WhoId IN {} AND Subject LIKE '[LeadSync]%'",
                            ids[start : start + COLLECTION])  # fmt: skip
        query = soql("Id, Description", "Task", where)
        for page in client.query_pages("task keys", query):
            for raw in page:
                for key in KEY_LINE.findall(str(raw.get("Description") or "")):
                    found.setdefault(key, str(raw.get("Id")))
    return found
