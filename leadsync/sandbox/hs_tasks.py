"""HubSpot tasks (create, batch create, search, read, batch read), the contact -> task
associations (v4 batch read) and the events API."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Any

from leadsync.sandbox import hs_search
from leadsync.sandbox.hs_common import (
    CONTACT_ASSOCIATION,
    TASK_DEFAULT_PROPS,
    HsBase,
    batch_error,
    batch_inputs,
    hs_error,
    int_arg,
    invalid_property,
    search_response,
    time_ms,
)
from leadsync.sandbox.hs_schema import (
    READ_ONLY,
    TASK_OPTIONS,
    TASK_TYPES,
    normalize,
)
from leadsync.sandbox.store import hs_time, task_key
from leadsync.sandbox.wire import ApiError, Request, Response, json_response

ASSOCIATION_PAGE = 500


class TaskHandlers(HsBase):
    """Tasks associated with contacts, and contact events."""

    # -- tasks ---------------------------------------------------------------------------------

    def _new_task(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            raise hs_error(400, "VALIDATION_ERROR", "a task needs properties")
        clean: dict[str, str] = {}
        for name, value in item["properties"].items():
            if name not in TASK_TYPES or name in READ_ONLY:
                raise invalid_property(
                    name, "PROPERTY_DOESNT_EXIST", f"Property {name!r} does not exist"
                )
            try:
                clean[name] = normalize(TASK_TYPES[name], list(TASK_OPTIONS.get(name, ())), value)
            except ValueError as exc:
                raise hs_error(400, "VALIDATION_ERROR", f"Property {name!r}: {exc}") from None
        if not clean.get("hs_timestamp"):
            raise hs_error(400, "VALIDATION_ERROR", "Property hs_timestamp is required for tasks")
        owner = clean.get("hubspot_owner_id")
        if owner and not self._active_owner(owner):
            # a deleted or deactivated (archived) owner is refused like an unknown one
            raise invalid_property("hubspot_owner_id", "INVALID_OWNER_ID",
                                   f"{owner} is not a valid owner id")
        contacts = self._task_contacts(item.get("associations") or [])
        now = hs_time(self.clock.now())
        tid = self.data.new_hs_id("task")
        clean.update({"hs_object_id": tid, "hs_createdate": now, "hs_lastmodifieddate": now})
        clean.setdefault("hs_task_status", "NOT_STARTED")
        self.data.hs_tasks[tid] = clean
        self.data.hs_task_contacts[tid] = contacts
        self.stats.task_created("hubspot", task_key(clean.get("hs_task_body")))
        return self._object(tid, clean, list(clean), "hs_createdate", "hs_lastmodifieddate")

    def _active_owner(self, owner_id: str) -> bool:
        record = self.data.hs_owners.get(owner_id)
        return record is not None and not record.get("archived")

    def _task_contacts(self, associations: Any) -> list[str]:
        contacts = []
        for assoc in associations if isinstance(associations, list) else []:
            target = str((assoc.get("to") or {}).get("id", "")) if isinstance(assoc, dict) else ""
            types = assoc.get("types") or [] if isinstance(assoc, dict) else []
            if not any(
                isinstance(t, dict)
                and t.get("associationTypeId") == CONTACT_ASSOCIATION
                and t.get("associationCategory") == "HUBSPOT_DEFINED"
                for t in types
            ):
                raise hs_error(
                    400,
                    "VALIDATION_ERROR",
                    "association types must include HUBSPOT_DEFINED "
                    f"{CONTACT_ASSOCIATION} (task to contact)",
                )
            if target not in self.data.hs_contacts:
                raise hs_error(
                    400, "VALIDATION_ERROR", f"association target contact {target} does not exist"
                )
            contacts.append(target)
        return contacts

    def create_task(self, req: Request) -> Response:
        with self.data.lock:
            return json_response(201, self._new_task(req.json()), records=1)

    def batch_create_tasks(self, req: Request) -> Response:
        inputs = batch_inputs(req.json())
        results, errors = [], []
        with self.data.lock:
            for index, item in enumerate(inputs):
                try:
                    if self.faults.chance(self.faults.faults.record_failure_rate):
                        self.stats.error_injected("hubspot")
                        raise hs_error(
                            409,
                            "CONFLICT",
                            "Another request for this object is in progress; try again later.",
                        )
                    results.append(self._new_task(item))
                except ApiError as exc:
                    errors.append(
                        batch_error(
                            exc.body["category"], exc.body["message"], [], {"index": str(index)}
                        )
                    )
        return self._batch_response(results, errors, ok_status=201)

    def batch_read_tasks(self, req: Request) -> Response:
        """Up to 100 tasks by id, read from the object store (no search-index lag)."""
        body = req.json()
        inputs = batch_inputs(body)
        wanted = self._wanted(body.get("properties"), TASK_DEFAULT_PROPS)
        results, missing = [], []
        with self.data.lock:
            for item in inputs:
                tid = str(item.get("id", "")) if isinstance(item, dict) else ""
                props = self.data.hs_tasks.get(tid)
                if props is None:
                    missing.append(tid)
                else:
                    results.append(
                        self._object(tid, props, wanted, "hs_createdate", "hs_lastmodifieddate")
                    )
        errors = [batch_error("OBJECT_NOT_FOUND",
                              "Could not get some TASK objects, they may be deleted or not exist.",
                              missing)] if missing else []  # fmt: skip
        return self._batch_response(results, errors)

    def task_associations(self, req: Request) -> Response:
        """v4 batch read of contact -> task associations: per contact its task ids (type 203,
        contact_to_task), 500 a page with a per-contact `after`; a contact without tasks is a
        207 error `NO_ASSOCIATIONS_FOUND`, as HubSpot answers."""
        if req.params["from"] not in ("contact", "contacts", "0-1") or req.params["to"] not in (
            "task", "tasks", "0-27"
        ):  # fmt: skip
            raise hs_error(400, "VALIDATION_ERROR", "only contact -> task associations exist here")
        inputs = batch_inputs(req.json())
        results, empty = [], []
        with self.data.lock:
            by_contact: dict[str, list[str]] = {}
            for tid, contacts in self.data.hs_task_contacts.items():
                for cid in contacts:
                    by_contact.setdefault(cid, []).append(tid)
            for item in inputs:
                cid = str(item.get("id", "")) if isinstance(item, dict) else ""
                start = int(str(item.get("after") or 0)) if isinstance(item, dict) else 0
                tids = sorted(by_contact.get(cid, []), key=int)
                if not tids:
                    empty.append(cid)
                    continue
                page = tids[start : start + ASSOCIATION_PAGE]
                row: dict[str, Any] = {"from": {"id": cid}, "to": [
                    {"toObjectId": int(t), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 203, "label": None}]}
                    for t in page]}  # fmt: skip
                if start + ASSOCIATION_PAGE < len(tids):
                    row["paging"] = {"next": {"after": str(start + ASSOCIATION_PAGE)}}
                results.append(row)
        errors = [
            {"status": "error", "category": "OBJECT_NOT_FOUND",
             "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
             "message": f"No task is associated with contact {cid}.",
             "context": {"fromObjectId": [cid]}, "errors": [], "links": {}}
            for cid in empty
        ]  # fmt: skip
        return self._batch_response(results, errors)

    def get_task(self, req: Request) -> Response:
        wanted = self._wanted(req.query.get("properties"), TASK_DEFAULT_PROPS)
        with self.data.lock:
            props = self.data.hs_tasks.get(req.params["id"])
            if props is None:
                raise hs_error(404, "OBJECT_NOT_FOUND", "Object not found.")
            obj = self._object(
                req.params["id"], props, wanted, "hs_createdate", "hs_lastmodifieddate"
            )
        return json_response(200, obj, records=1)

    def search_tasks(self, req: Request) -> Response:
        body = req.json()
        wanted = self._wanted(body.get("properties"), TASK_DEFAULT_PROPS)
        types = {**TASK_TYPES, "associations.contact": "string"}
        lag_ms = self.faults.faults.search_lag_ms
        indexed_until = hs_time(self.clock.now() - timedelta(milliseconds=lag_ms))
        with self.data.lock:
            items = (
                (
                    tid,
                    {
                        **p,
                        "associations.contact": ";".join(self.data.hs_task_contacts.get(tid, [])),
                    },
                )
                for tid, p in self.data.hs_tasks.items()
                if not lag_ms or p.get("hs_createdate", "") <= indexed_until
            )
            page, total, nxt = hs_search.search(items, body, types)
            results = [
                self._object(t, p, wanted, "hs_createdate", "hs_lastmodifieddate") for t, p in page
            ]
        return search_response(results, total, nxt)

    # -- events --------------------------------------------------------------------------------

    def events(self, req: Request) -> Response:
        if (req.arg("objectType") or "contact") not in ("contact", "contacts", "0-1"):
            raise hs_search.validation_error("objectType must be contact")
        event_type = req.arg("eventType")
        limit = int_arg(req, "limit", 100, 1, 100)
        start_key, before = _window(req)
        object_id = req.arg("objectId")
        results: list[dict[str, Any]] = []
        more = False
        with self.data.lock:
            events = self.data.hs_events
            pos = bisect.bisect_right(events, start_key, key=lambda e: (e[0], e[1]))
            for index in range(pos, len(events)):  # O(page), not O(position)
                ms, seq, cid, etype, props = events[index]
                if before is not None and ms >= before:
                    break
                if (event_type and etype != event_type) or (object_id and cid != object_id):
                    continue
                if len(results) == limit:
                    more = True
                    break
                moment = datetime.fromtimestamp(ms / 1000, UTC)
                results.append({"occurredAt": hs_time(moment), "eventType": etype,
                                "id": f"{ms}-{seq}", "objectId": cid, "objectType": "contact",
                                "properties": props})  # fmt: skip
        payload: dict[str, Any] = {"results": results}
        if more:
            payload["paging"] = {"next": {"after": results[-1]["id"]}}
        return json_response(200, payload, records=len(payload["results"]))


def _window(req: Request) -> tuple[tuple[int, int], int | None]:
    """The (ms, seq) key to start after, from occurredAfter and the paging cursor, and the
    occurredBefore bound in ms."""
    start_key = (-(1 << 62), 0)
    if req.arg("occurredAfter"):
        start_key = (time_ms(req.arg("occurredAfter")), 1 << 62)
    cursor = req.arg("after")
    if cursor:
        try:
            ms, seq = (int(x) for x in cursor.split("-"))
        except ValueError:
            raise hs_search.validation_error(f"invalid paging cursor {cursor!r}") from None
        start_key = max(start_key, (ms, seq))
    before = time_ms(req.arg("occurredBefore")) if req.arg("occurredBefore") else None
    return start_key, before
