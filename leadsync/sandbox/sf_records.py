"""Salesforce record writes: value validation and conversion, create and update, per-record errors.

Errors are returned, not raised, in Salesforce's per-record shape
`{"statusCode", "message", "fields"}` so sObject Collections can report them in order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadsync.sandbox.sf_schema import (
    CLOSED_STAGES,
    FIELDS,
    FIELDS_LOWER,
    ID_PREFIX,
    OPP_HISTORY_FIELDS,
    OPP_STAGES,
    PREFIX_OBJECT,
    SfField,
)
from leadsync.sandbox.store import SandboxData, parse_time, sf_time
from leadsync.sandbox.wire import ApiError

SfError = dict[str, Any]


def sf_error(status: int, code: str, message: str) -> ApiError:
    """A whole-request Salesforce error: `[{"message", "errorCode"}]`."""
    return ApiError(status, [{"message": message, "errorCode": code}])


def error(code: str, message: str, fields: list[str] | None = None) -> SfError:
    return {"statusCode": code, "message": message, "fields": fields or []}


def find(data: SandboxData, record_id: str) -> tuple[str, dict[str, Any]] | None:
    """Look a record up by id (15 or 18 characters) across objects."""
    obj = PREFIX_OBJECT.get(record_id[:3])
    if obj is None:
        return None
    store = data.sf.get(obj, {})
    record = store.get(record_id)
    if record is None and len(record_id) == 15:
        record = next((r for k, r in store.items() if k.startswith(record_id)), None)
    return (obj, record) if record is not None else None


def _reference_problem(data: SandboxData, obj: str, f: SfField, value: str) -> SfError | None:
    """A lookup to no record, an owner who is a deactivated user, or a queue (Group) owning
    an object it does not support, as Salesforce refuses them (INVALID_CROSS_REFERENCE_KEY,
    INACTIVE_OWNER_OR_USER, FIELD_INTEGRITY_EXCEPTION)."""
    found = find(data, value)
    if found is None:
        return error("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id in {f.name}",
                     [f.name])
    if f.name == "OwnerId" and found[0] == "User" and found[1].get("IsActive") is False:
        return error("INACTIVE_OWNER_OR_USER",
                     f"operation performed with inactive user [{value}] as owner of "
                     f"{obj.lower()}")
    if f.name == "OwnerId" and found[0] == "Group" and not queue_supports(data, value, obj):
        return queue_refused(obj, value)
    return None


def queue_supports(data: SandboxData, group_id: str, obj: str) -> bool:
    """A queue may own a record of `obj` only when `obj` is one of its supported objects
    (a QueueSobject row); a Group that is not a queue owns nothing."""
    group = data.sf.get("Group", {}).get(group_id[:18], {})
    return group.get("Type") == "Queue" and any(
        q.get("QueueId") == group_id and q.get("SobjectType") == obj
        for q in data.sf.get("QueueSobject", {}).values())


def queue_refused(obj: str, value: str) -> SfError:
    """What Salesforce answers for a record owned by a queue that does not support its object
    (a Task's OwnerId is labelled "Assigned To ID")."""
    label = "Assigned To ID" if obj in ("Task", "Event") else "Owner ID"
    return error("FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}",
                 ["OwnerId"])


def _convert(  # noqa: PLR0911 - one return per field type and refusal
    data: SandboxData, obj: str, f: SfField, value: Any
) -> tuple[Any, SfError | None]:
    """Convert one JSON value to its stored form, or explain why it is refused."""
    bad = error(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{f.name}: value not of required type: {str(value)[:40]}",
        [f.name],
    )
    if f.type in ("string", "email", "textarea", "picklist", "reference", "url"):
        if not isinstance(value, str):
            return None, bad
        if f.length and len(value) > f.length:
            return None, error(
                "STRING_TOO_LONG",
                f"{f.name}: data value too large (max length={f.length})",
                [f.name],
            )
        if f.picklist and obj != "Task" and value not in f.picklist:
            return None, error(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{f.name}: bad value for restricted picklist field",
                [f.name],
            )
        if f.type == "reference" and (problem := _reference_problem(data, obj, f, value)):
            return None, problem
        return value, None
    if f.type == "boolean":
        return (value, None) if isinstance(value, bool) else (None, bad)
    if f.type in ("double", "int", "currency"):
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            return None, bad
        if f.length and abs(number) >= 10 ** (f.length if f.type != "currency" else 16):
            return None, error(
                "NUMBER_OUTSIDE_VALID_RANGE", f"{f.name}: value outside of valid range", [f.name]
            )
        return (int(number) if f.type == "int" else number), None
    if not isinstance(value, str):
        return None, bad
    try:
        parsed: datetime = parse_time(value)
    except ValueError:
        return None, bad
    return (parsed.date().isoformat() if f.type == "date" else sf_time(parsed)), None


def prepare(
    data: SandboxData, obj: str, values: dict[str, Any], creating: bool
) -> tuple[dict[str, Any], list[SfError]]:
    """Validate field values for `obj`; return (canonical values, errors)."""
    out: dict[str, Any] = {}
    errors: list[SfError] = []
    lookup = FIELDS_LOWER[obj]
    for raw_name, value in values.items():
        if raw_name in ("attributes", "id", "Id"):
            continue
        name = lookup.get(raw_name.lower())
        if name is None:
            errors.append(
                error("INVALID_FIELD", f"No such column '{raw_name}' on sobject of type {obj}")
            )
            continue
        f = FIELDS[obj][name]
        if not f.updateable:
            code = "INVALID_FIELD_FOR_INSERT_UPDATE"
            errors.append(error(code, f"Unable to create/update fields: {name}.", [name]))
            continue
        if value is None:
            if f.required:
                errors.append(
                    error(
                        "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name]
                    )
                )
            out[name] = None
            continue
        converted, problem = _convert(data, obj, f, value)
        if problem:
            errors.append(problem)
        else:
            out[name] = converted
    if creating:
        missing = [f.name for f in FIELDS[obj].values() if f.required and out.get(f.name) is None]
        if missing:
            errors.append(
                error(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            )
    return out, errors


def _defaults(data: SandboxData, obj: str) -> dict[str, Any]:
    owner = {"OwnerId": data.sf_integration_user} if data.sf_integration_user else {}
    defaults: dict[str, dict[str, Any]] = {
        "Task": {"Status": "Not Started", "Priority": "Normal", "TaskSubtype": "Task", **owner},
        "Lead": {"Status": "Open - Not Contacted", "IsConverted": False, **owner},
        "Contact": owner,
        "Opportunity": {"IsClosed": False, "IsWon": False, **owner},
    }
    return dict(defaults.get(obj, {}))


def stamp(record: dict[str, Any], obj: str, now: datetime, created: bool = False) -> None:
    """Set the audit timestamps every write touches."""
    text = sf_time(now)
    if created:
        record["CreatedDate"] = text
    if "LastModifiedDate" in FIELDS[obj]:
        record["LastModifiedDate"] = text
    record["SystemModstamp"] = text


def insert(data: SandboxData, obj: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Store a new record of `obj` from already-prepared values; return it."""
    record: dict[str, Any] = {"Id": data.new_sf_id(ID_PREFIX[obj])}
    record.update(_defaults(data, obj))
    record.update({k: v for k, v in values.items() if v is not None})
    stamp(record, obj, now, created=True)
    data.sf.setdefault(obj, {})[record["Id"]] = record
    if obj == "Opportunity":
        opportunity_changed(data, record, sf_time(now), created=True)
    return record


def delete(data: SandboxData, obj: str, record_id: str, now: datetime) -> bool:
    """Delete a record: it moves to the recycle bin (IsDeleted true, SystemModstamp now),
    where `queryAll` finds it for 15 days and `query` and reads by id do not. An Account takes
    its Contacts and Opportunities with it, as Salesforce's delete does. False when no live
    record of `obj` has the id."""
    record = data.sf.get(obj, {}).pop(record_id, None)
    if record is None:
        return False
    if "IsDeleted" in FIELDS[obj]:
        record["IsDeleted"] = True
    stamp(record, obj, now)
    data.sf_recycle.setdefault(obj, {})[record_id] = record
    if obj == "Account":
        for child in ("Contact", "Opportunity"):
            for cid in [i for i, r in data.sf.get(child, {}).items()
                        if r.get("AccountId") == record_id]:
                delete(data, child, cid, now)
    return True


def update(
    record: dict[str, Any], obj: str, values: dict[str, Any], now: datetime,
    data: SandboxData | None = None,
) -> None:
    """Apply prepared values to a stored record (None clears a field) and stamp it. Only the
    record itself is stamped: closing an Opportunity leaves its Contacts and Leads untouched,
    as in Salesforce. An Opportunity's stage/amount/close-date change adds a history row."""
    before = {f: record.get(f) for f in OPP_HISTORY_FIELDS} if obj == "Opportunity" else {}
    for name, value in values.items():
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    stamp(record, obj, now)
    if obj == "Opportunity" and data is not None:
        changed = any(record.get(f) != v for f, v in before.items())
        opportunity_changed(data, record, sf_time(now), created=changed)


def opportunity_changed(
    data: SandboxData, opp: dict[str, Any], at: str, *, created: bool = True
) -> None:
    """Derive IsClosed/IsWon from StageName (OpportunityStage) and, when `created` (the insert
    or a change of StageName, Amount or CloseDate), add the OpportunityHistory row Salesforce
    writes, dated `at` (Salesforce text form)."""
    opp["IsClosed"], opp["IsWon"] = CLOSED_STAGES.get(str(opp.get("StageName")), (False, False))
    if not created:
        return
    hid = data.new_sf_id(ID_PREFIX["OpportunityHistory"])
    row = {"Id": hid, "OpportunityId": opp["Id"], "CreatedDate": at, "SystemModstamp": at}
    row.update({f: opp[f] for f in OPP_HISTORY_FIELDS if opp.get(f) is not None})
    data.sf.setdefault("OpportunityHistory", {})[hid] = row


def opportunity_stages(data: SandboxData, at: str) -> None:
    """The org's OpportunityStage rows (the picklist with its closed/won flags)."""
    stages = data.sf.setdefault("OpportunityStage", {})
    for order, name in enumerate(OPP_STAGES, 1):
        sid = data.new_sf_id(ID_PREFIX["OpportunityStage"])
        closed, won = CLOSED_STAGES.get(name, (False, False))
        stages[sid] = {"Id": sid, "ApiName": name, "MasterLabel": name, "IsClosed": closed,
                       "IsWon": won, "IsActive": True, "SortOrder": order,
                       "CreatedDate": at, "SystemModstamp": at}  # fmt: skip
