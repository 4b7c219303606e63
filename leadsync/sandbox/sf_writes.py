"""Salesforce writes: sObject Collections, single records, describe and /limits."""

from __future__ import annotations

from typing import Any

from leadsync.sandbox import sf_records as recs
from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.sf_records import sf_error
from leadsync.sandbox.sf_schema import FIELDS, OBJECT_NAMES, describe
from leadsync.sandbox.store import Clock, DailyAllowance, SandboxData, Stats, task_key
from leadsync.sandbox.wire import ApiError, Request, Response, json_response

ROLLED_BACK = recs.error(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)
COLLECTION_LIMIT = 200


class WriteHandlers:
    """`/composite/sobjects`, `/sobjects/...`, `/limits`."""

    data: SandboxData
    clock: Clock
    stats: Stats
    faults: FaultInjector
    allowance: DailyAllowance

    def collection(self, req: Request) -> Response:
        body = req.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise sf_error(400, "JSON_PARSER_ERROR", "the request body needs a records array")
        if len(records) > COLLECTION_LIMIT:
            raise sf_error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records",
            )
        all_or_none = bool(body.get("allOrNone", False))
        creating = req.method == "POST"
        with self.data.lock:
            planned = [self._plan(r, creating) for r in records]
            failed = any(errs for _, _, _, errs in planned)
            results: list[dict[str, Any]] = []
            for obj, target, values, planned_errors in planned:
                if planned_errors or (all_or_none and failed):
                    errs = planned_errors or [ROLLED_BACK]
                    rid = target["Id"] if target else None
                    results.append(
                        {"id": rid, "success": False, "errors": errs}
                        if rid
                        else {"success": False, "errors": errs}
                    )
                    continue
                results.append(self._apply(obj, target, values, creating))
        return json_response(200, results)

    def _plan(
        self, record: Any, creating: bool
    ) -> tuple[str, dict[str, Any] | None, dict[str, Any], list[recs.SfError]]:
        if not isinstance(record, dict):
            return "", None, {}, [recs.error("JSON_PARSER_ERROR", "each record must be an object")]
        obj = OBJECT_NAMES.get(str((record.get("attributes") or {}).get("type", "")).lower())
        if obj is None:
            return (
                "",
                None,
                {},
                [
                    recs.error(
                        "INVALID_TYPE", "each record needs attributes.type of a supported sObject"
                    )
                ],
            )
        target = None
        if not creating:
            rid = str(record.get("id") or record.get("Id") or "")
            found = recs.find(self.data, rid) if rid else None
            if found is None or found[0] != obj:
                code = "MALFORMED_ID" if len(rid) not in (15, 18) else "ENTITY_IS_DELETED"
                return (
                    obj,
                    None,
                    {},
                    [recs.error(code, f"invalid or missing id for {obj}: {rid[:18]}")],
                )
            target = found[1]
        values, errs = recs.prepare(self.data, obj, record, creating)
        if not errs:
            errs = self._refusals(obj, target, values, creating)
        if not errs and self.faults.chance(self.faults.faults.record_failure_rate):
            self.stats.error_injected("salesforce")
            errs = [
                recs.error(
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records",
                )
            ]
        return obj, target, values, errs

    def _refusals(self, obj: str, target: dict[str, Any] | None, values: dict[str, Any],
                  creating: bool) -> list[recs.SfError]:
        """What the org refuses for good: updates of a converted Lead, and its validation rules
        (`SandboxData.sf_validation_rules`)."""
        if target is not None and obj == "Lead" and target.get("IsConverted"):
            return [recs.error("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]
        rules = self.data.sf_validation_rules
        message = rules.get(obj) if creating else None
        if target is not None and any(f.startswith("LeadSync_") for f in values):
            message = rules.get(str(target.get("Id")))
        if message is None:
            return []
        return [recs.error("FIELD_CUSTOM_VALIDATION_EXCEPTION", message)]

    def _apply(
        self, obj: str, target: dict[str, Any] | None, values: dict[str, Any], creating: bool
    ) -> dict[str, Any]:
        now = self.clock.now()
        if creating or target is None:
            target = recs.insert(self.data, obj, values, now)
            if obj == "Task":
                self.stats.task_created("salesforce", task_key(target.get("Description")))
            else:
                self.stats.written("salesforce")
        else:
            recs.update(target, obj, values, now, self.data)
            self.stats.written("salesforce")
        return {"id": target["Id"], "success": True, "errors": []}

    def create_one(self, req: Request) -> Response:
        obj = self._object(req)
        with self.data.lock:
            values, errs = recs.prepare(self.data, obj, req.json(), creating=True)
            errs = errs or self._refusals(obj, None, values, creating=True)
            if errs:
                raise ApiError(
                    400,
                    [
                        {
                            "message": e["message"],
                            "errorCode": e["statusCode"],
                            "fields": e["fields"],
                        }
                        for e in errs
                    ],
                )
            result = self._apply(obj, None, values, creating=True)
        return json_response(201, result)

    def get_one(self, req: Request) -> Response:
        obj = self._object(req)
        with self.data.lock:
            found = recs.find(self.data, req.params["id"])
            if found is None or found[0] != obj:
                raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            record = {"attributes": {"type": obj}, **{f: found[1].get(f) for f in FIELDS[obj]}}
        return json_response(200, record, records=1)

    def delete_one(self, req: Request) -> Response:
        """`DELETE /sobjects/{object}/{id}`: to the recycle bin (204); a record already there
        is Salesforce's 404 ENTITY_IS_DELETED."""
        obj = self._object(req)
        rid = req.params["id"]
        with self.data.lock:
            if rid in self.data.sf_recycle.get(obj, {}):
                raise sf_error(404, "ENTITY_IS_DELETED", "entity is deleted")
            if not recs.delete(self.data, obj, rid, self.clock.now()):
                raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(204)

    def update_one(self, req: Request) -> Response:
        obj = self._object(req)
        with self.data.lock:
            found = recs.find(self.data, req.params["id"])
            if found is None or found[0] != obj:
                raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            values, errs = recs.prepare(self.data, obj, req.json(), creating=False)
            errs = errs or self._refusals(obj, found[1], values, creating=False)
            if errs:
                raise ApiError(
                    400,
                    [
                        {
                            "message": e["message"],
                            "errorCode": e["statusCode"],
                            "fields": e["fields"],
                        }
                        for e in errs
                    ],
                )
            self._apply(obj, found[1], values, creating=False)
        return Response(204)

    def _object(self, req: Request) -> str:
        obj = OBJECT_NAMES.get(req.params["object"].lower())
        if obj is None:
            raise sf_error(
                404, "NOT_FOUND", f"The requested resource does not exist: {req.params['object']}"
            )
        return obj

    def describe(self, req: Request) -> Response:
        return json_response(200, describe(self._object(req), req.params["version"]))

    def limits(self, req: Request) -> Response:
        used = self.allowance.used()
        limit = self.allowance.limit
        return json_response(
            200, {"DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)}}
        )
