"""HubSpot contacts (list, read, batch read/update, search), properties, groups, owners."""

from __future__ import annotations

import bisect
from typing import Any

from leadsync.sandbox import hs_search
from leadsync.sandbox.hs_common import (
    DEFAULT_PROPS,
    HsBase,
    batch_error,
    batch_inputs,
    bool_arg,
    hs_error,
    int_arg,
    invalid_property,
    search_response,
)
from leadsync.sandbox.hs_schema import (
    LIFECYCLE,
    READ_ONLY,
    normalize,
    property_definition,
)
from leadsync.sandbox.store import hs_time
from leadsync.sandbox.wire import Request, Response, json_response

#: association rows a v3 object read lists inline per associated object type before it pages
#: them (the rest through the associations API)
INLINE_ASSOCIATIONS = 100


class ContactHandlers(HsBase):
    """Contacts, contact properties and owners."""

    def list_contacts(self, req: Request) -> Response:
        limit = int_arg(req, "limit", 10, 1, 100)
        after = int_arg(req, "after", 0, 0, None)
        wanted = self._wanted(req.query.get("properties"), DEFAULT_PROPS)
        kinds = self._wanted(req.query.get("associations"), ())
        companies = any(k in ("companies", "company", "0-2") for k in kinds)
        if bool_arg(req, "archived", False):  # the sandbox archives no contacts
            return json_response(200, {"results": []}, records=0)
        with self.data.lock:
            ids = self._sorted_ids()
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            results = [self._object(str(i), self.data.hs_contacts[str(i)], wanted) for i in chunk]
            if companies:
                for out in results:
                    block = self._inline_companies(out["id"])
                    if block is not None:
                        out["associations"] = {"companies": block}
            more = start + limit < len(ids)
        payload: dict[str, Any] = {"results": results}
        if more and chunk:
            payload["paging"] = {
                "next": {"after": str(chunk[-1]), "link": f"{req.path}?after={chunk[-1]}"}
            }
        return json_response(200, payload, records=len(results))

    def _inline_companies(self, cid: str) -> dict[str, Any] | None:
        """A contact's companies as the v3 read lists them inline: every company as
        `contact_to_company_unlabeled`, the primary one also as `contact_to_company`; at most
        INLINE_ASSOCIATIONS rows, then `paging.next` (the rest only through the associations
        API); None (the key absent) for a contact without companies."""
        companies = self.data.hs_contact_companies.get(cid, [])
        if not companies:
            return None
        primary = self.data.hs_company_primary.get(cid)
        rows = [row for c in companies for row in (
            *([{"id": c, "type": "contact_to_company"}] if c == primary else []),
            {"id": c, "type": "contact_to_company_unlabeled"})]
        block: dict[str, Any] = {"results": rows[:INLINE_ASSOCIATIONS]}
        if len(rows) > INLINE_ASSOCIATIONS:
            block["paging"] = {"next": {
                "after": str(INLINE_ASSOCIATIONS),
                "link": f"/crm/v3/objects/contacts/{cid}/associations/companies"
                        f"?after={INLINE_ASSOCIATIONS}"}}
        return block

    def _sorted_ids(self) -> list[int]:
        cached = getattr(self, "_ids_cache", None)
        if cached is None or cached[0] != len(self.data.hs_contacts):
            cached = (len(self.data.hs_contacts), sorted(int(i) for i in self.data.hs_contacts))
            self._ids_cache = cached
        return cached[1]

    def get_contact(self, req: Request) -> Response:
        wanted = self._wanted(req.query.get("properties"), DEFAULT_PROPS)
        archived = bool_arg(req, "archived", False)
        with self.data.lock:
            props = self.data.hs_contacts.get(req.params["id"])
            if props is None or archived:
                raise hs_error(
                    404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
                )
            return json_response(200, self._object(req.params["id"], props, wanted), records=1)

    def batch_read(self, req: Request) -> Response:
        """Read up to 100 contacts by id or, with `idProperty: "email"`, by email (matched
        case-insensitively; with duplicates, the oldest contact, as HubSpot keeps one)."""
        body = req.json()
        inputs = batch_inputs(body)
        wanted = self._wanted(body.get("properties"), DEFAULT_PROPS)
        id_property = body.get("idProperty") or "hs_object_id"
        if id_property not in ("hs_object_id", "email"):
            raise hs_error(
                400, "VALIDATION_ERROR", f"idProperty {id_property!r} is not a unique property"
            )
        results, errors = [], []
        with self.data.lock:
            by_email = self._email_index() if id_property == "email" else {}
            for item in inputs:
                key = str(item.get("id", "")) if isinstance(item, dict) else ""
                rid = by_email.get(key.strip().lower()) if id_property == "email" else key
                props = self.data.hs_contacts.get(rid or "")
                if props is None:
                    errors.append(key)
                else:
                    results.append(self._object(str(rid), props, wanted))
        return self._batch_response(
            results,
            [
                batch_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some CONTACT objects, they may be deleted or not exist.",
                    errors,
                )
            ]
            if errors
            else [],
        )

    def _email_index(self) -> dict[str, str]:
        """Lowercased email -> the lowest contact id with it; rebuilt when contacts are added
        or an email is written."""
        version = (len(self.data.hs_contacts), self.data.counters["hs_email_writes"])
        cached = getattr(self, "_email_cache", None)
        if cached is None or cached[0] != version:
            index: dict[str, str] = {}
            for rid in sorted(self.data.hs_contacts, key=int):
                email = self.data.hs_contacts[rid].get("email")
                if email:
                    index.setdefault(email.lower(), rid)
            cached = (version, index)
            self._email_cache = cached
        return cached[1]

    def batch_update(self, req: Request) -> Response:
        return self._batch_update(req, self._update, conflicts=True)

    def update_contact(self, req: Request) -> Response:
        body = req.json()
        with self.data.lock:
            obj = self._update(
                req.params["id"], body.get("properties") or {}, hs_time(self.clock.now())
            )
        return json_response(200, obj, records=1)

    def _update(self, rid: str, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        """Validate and apply one contact update; raise ApiError naming the property at fault."""
        props = self.data.hs_contacts.get(rid)
        if props is None:
            raise hs_error(404, "OBJECT_NOT_FOUND", f"Object not found. objectId={rid}")
        clean: dict[str, str] = {}
        for name, value in values.items():
            definition = self.data.hs_properties.get(name)
            if definition is None:
                raise invalid_property(
                    name, "PROPERTY_DOESNT_EXIST", f"Property {name!r} does not exist"
                )
            if name in READ_ONLY:
                raise hs_error(400, "VALIDATION_ERROR", f"Property {name!r} is read-only")
            try:
                options = [o["value"] for o in definition.get("options", [])]
                clean[name] = normalize(definition["type"], options, value)
            except ValueError as exc:
                raise invalid_property(name, "INVALID_OPTION", str(exc)) from None
        stage = clean.get("lifecyclestage")
        current = props.get("lifecyclestage") or ""
        if stage and current and LIFECYCLE.index(stage) < LIFECYCLE.index(current):
            raise invalid_property(
                "lifecyclestage",
                "INVALID_OPTION",
                f"{stage} is not a valid option: lifecyclestage can only move forward "
                f"(currently {current}); clear it first",
            )
        if "email" in clean:
            self.data.counters["hs_email_writes"] += 1
        for name, value in clean.items():
            if value == "":
                props.pop(name, None)
            else:
                props[name] = value
        props["lastmodifieddate"] = stamp
        self.stats.written("hubspot")
        return self._object(rid, props, list(dict.fromkeys([*DEFAULT_PROPS, *clean])))

    def search_contacts(self, req: Request) -> Response:
        body = req.json()
        wanted = self._wanted(body.get("properties"), DEFAULT_PROPS)
        with self.data.lock:
            page, total, nxt = hs_search.search(self.data.hs_contacts.items(), body, self._types())
            results = [self._object(rid, props, wanted) for rid, props in page]
        return search_response(results, total, nxt)

    # -- properties and owners -----------------------------------------------------------------

    def _property_stores(
        self, req: Request
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(property definitions, property groups) of the path's object: companies or contacts."""
        if req.params.get("object") in ("companies", "company", "0-2"):
            return self.data.hs_company_properties, self.data.hs_company_groups
        return self.data.hs_properties, self.data.hs_groups

    def list_properties(self, req: Request) -> Response:
        properties, _ = self._property_stores(req)
        with self.data.lock:
            results = list(properties.values())
        return json_response(200, {"results": results}, records=len(results))

    def get_property(self, req: Request) -> Response:
        properties, _ = self._property_stores(req)
        with self.data.lock:
            found = properties.get(req.params["name"])
        if found is None:
            raise hs_error(
                404, "OBJECT_NOT_FOUND", f"Unable to find property {req.params['name']!r}"
            )
        return json_response(200, found, records=1)

    def create_property(self, req: Request) -> Response:
        body = req.json()
        properties, groups = self._property_stores(req)
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise hs_error(
                400, "VALIDATION_ERROR", f"Property definition is missing {', '.join(missing)}"
            )
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise hs_error(400, "VALIDATION_ERROR", f"Unknown property type {body['type']!r}")
        options = tuple(
            str(o.get("value")) for o in body.get("options") or [] if isinstance(o, dict)
        )
        if body["type"] == "enumeration" and not options:
            raise hs_error(
                400, "VALIDATION_ERROR", f"Enumeration property {body['name']!r} needs options"
            )
        with self.data.lock:
            if body["name"] in properties:
                raise hs_error(
                    409,
                    "OBJECT_ALREADY_EXISTS",
                    f"A property named {body['name']!r} already exists.",
                )
            if body["groupName"] not in groups:
                raise hs_error(
                    400, "VALIDATION_ERROR", f"Property group {body['groupName']!r} does not exist"
                )
            definition = property_definition(
                body["name"],
                body["label"],
                body["type"],
                body["fieldType"],
                options=options,
                group=body["groupName"],
                now=self.clock.now(),
            )
            properties[body["name"]] = definition
        return json_response(201, definition, records=1)

    def list_groups(self, req: Request) -> Response:
        _, groups = self._property_stores(req)
        with self.data.lock:
            results = list(groups.values())
        return json_response(200, {"results": results}, records=len(results))

    def create_group(self, req: Request) -> Response:
        body = req.json()
        _, groups = self._property_stores(req)
        if not body.get("name") or not body.get("label"):
            raise hs_error(400, "VALIDATION_ERROR", "A property group needs name and label")
        with self.data.lock:
            if body["name"] in groups:
                raise hs_error(
                    409, "OBJECT_ALREADY_EXISTS", f"A group named {body['name']!r} already exists."
                )
            group = {
                "name": body["name"],
                "label": body["label"],
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            groups[body["name"]] = group
        return json_response(201, group, records=1)

    def owners(self, req: Request) -> Response:
        email = (req.arg("email") or "").lower()
        limit = int_arg(req, "limit", 100, 1, 500)
        after = int_arg(req, "after", 0, 0, None)
        archived = bool_arg(req, "archived", False)
        with self.data.lock:
            owners = [
                o
                for o in self.data.hs_owners.values()
                if o["archived"] == archived and (not email or o.get("email", "").lower() == email)
            ]
        page = owners[after : after + limit]
        payload: dict[str, Any] = {"results": page}
        if after + limit < len(owners):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, payload, records=len(page))
