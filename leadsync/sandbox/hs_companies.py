"""HubSpot companies: `GET /crm/v3/objects/companies` (list, paged by `after`, up to 100 a
page) and the v4 batch read of contact -> company associations, as HubSpot answers them: per
contact its companies, the primary one with association type 1 (`Primary`) and every one with
type 279 (`contact_to_company_unlabeled`); a contact without companies is a 207 error
`NO_ASSOCIATIONS_FOUND`. `add_company` puts a company in (the seed and tests).

Deleting a company (`DELETE /crm/v3/objects/companies/{id}`, or `archive_company`) archives it
as HubSpot does: a normal read, the search and a batch update no longer find it (404 /
absent), its contact associations go, and `GET /crm/v3/objects/companies?archived=true` lists
it (`archived: true`, `archivedAt`) for 90 days (HubSpot's restore window), paged like the
live list."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from leadsync.sandbox import hs_search
from leadsync.sandbox.hs_common import (
    HsBase,
    batch_inputs,
    bool_arg,
    hs_error,
    int_arg,
    invalid_property,
    search_response,
)
from leadsync.sandbox.hs_schema import normalize, property_definition
from leadsync.sandbox.store import SandboxData, hs_time
from leadsync.sandbox.wire import Request, Response, json_response

DEFAULT_COMPANY_PROPS = ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name")
COMPANY_KINDS = ("company", "companies", "0-2")
CONTACT_KINDS = ("contact", "contacts", "0-1")
PRIMARY_TYPE = 1
UNLABELED_TYPE = 279
ARCHIVE_RETENTION = timedelta(days=90)  # an archived company can be restored (and is listed)


# name, label, type, fieldType of a fresh portal's company properties used here
_COMPANY = (
    ("name", "Name", "string", "text"), ("domain", "Company domain name", "string", "text"),
    ("industry", "Industry", "string", "text"),
    ("numberofemployees", "Number of Employees", "number", "number"),
    ("hubspot_owner_id", "Company owner", "enumeration", "select"),
    ("hs_is_target_account", "Target Account", "bool", "booleancheckbox"),
    ("createdate", "Create Date", "datetime", "date"),
    ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date"),
    ("hs_object_id", "Record ID", "number", "number"),
)
LEADSYNC_COMPANY = (
    ("leadsync_account_score", "LeadSync account score", "number", "number"),
    ("leadsync_account_reasons", "LeadSync account reasons", "string", "textarea"),
    ("leadsync_engaged_people", "LeadSync engaged people", "number", "number"),
    ("leadsync_mqa_at", "LeadSync MQA at", "datetime", "date"),
    ("leadsync_model", "LeadSync model", "string", "text"),
)
_READ_ONLY = frozenset({"createdate", "hs_lastmodifieddate", "hs_object_id"})


def define_company_properties(data: SandboxData, now: datetime, provisioned: bool) -> None:
    """The company properties and groups of a fresh portal, plus leadsync's when
    `provisioned` (owner ids are free text here: the sandbox checks no owner options)."""
    data.hs_company_groups = {"companyinformation": {
        "name": "companyinformation", "label": "Company information", "displayOrder": 0,
        "archived": False}}
    data.hs_company_properties = {
        p[0]: property_definition(*p, options=(("true", "false") if p[2] == "bool" else ()),
                                  group="companyinformation", now=now)
        for p in _COMPANY if p[2] != "enumeration"}
    data.hs_company_properties["hubspot_owner_id"] = property_definition(
        "hubspot_owner_id", "Company owner", "string", "text", options=(),
        group="companyinformation", now=now)
    if provisioned:
        data.hs_company_groups["leadsync"] = {"name": "leadsync", "label": "LeadSync",
                                              "displayOrder": 1, "archived": False}
        data.hs_company_properties.update({p[0]: property_definition(
            *p, options=(), group="leadsync", now=now) for p in LEADSYNC_COMPANY})


def add_company(data: SandboxData, name: str, *, domain: str | None, created: datetime,
                **props: str) -> str:
    """A company; `props` are further properties (industry, numberofemployees,
    hubspot_owner_id, hs_is_target_account ...), all strings as HubSpot stores them."""
    with data.lock:
        cid = data.new_hs_id("company")
        stamp = hs_time(created)
        data.hs_companies[cid] = {"hs_object_id": cid, "name": name, "domain": domain or "",
                                  "createdate": stamp, "hs_lastmodifieddate": stamp, **props}
        return cid


def archive_company(data: SandboxData, company_id: str, at: datetime) -> bool:
    """Archive (delete) a company at `at`: it leaves the live companies and its contacts'
    associations, and is listed with `archived=true`. False when no live company has the id."""
    with data.lock:
        props = data.hs_companies.pop(company_id, None)
        if props is None:
            return False
        data.hs_companies_archived[company_id] = {**props, "archivedAt": hs_time(at)}
        for contact, companies in data.hs_contact_companies.items():
            if company_id in companies:
                companies.remove(company_id)
                if data.hs_company_primary.get(contact) == company_id:
                    data.hs_company_primary[contact] = ""
                    if contact in data.hs_contacts:  # HubSpot clears the primary company id
                        data.hs_contacts[contact]["associatedcompanyid"] = ""
        return True


def associate_company(data: SandboxData, contact_id: str, company_id: str, *,
                      primary: bool = True) -> None:
    """Associate a contact with a company; the primary one is listed first."""
    with data.lock:
        companies = data.hs_contact_companies.setdefault(contact_id, [])
        if company_id in companies:
            companies.remove(company_id)
        companies.insert(0 if primary else len(companies), company_id)
        data.hs_company_primary[contact_id] = companies[0] if primary else \
            data.hs_company_primary.get(contact_id, "")
        if contact_id in data.hs_contacts:  # the contact's `associatedcompanyid` follows
            data.hs_contacts[contact_id]["associatedcompanyid"] = \
                data.hs_company_primary[contact_id]


class CompanyHandlers(HsBase):
    def list_companies(self, req: Request) -> Response:
        limit = int_arg(req, "limit", 10, 1, 100)
        after = int_arg(req, "after", 0, 0, None)
        wanted = self._wanted(req.query.get("properties"), DEFAULT_COMPANY_PROPS)
        archived = bool_arg(req, "archived", False)
        with self.data.lock:
            if archived:  # within the restore window only
                oldest = hs_time(self.clock.now() - ARCHIVE_RETENTION)
                source = {cid: p for cid, p in self.data.hs_companies_archived.items()
                          if p["archivedAt"] >= oldest}
            else:
                source = self.data.hs_companies
            ids = sorted(int(i) for i in source)
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            results = [self._company(str(i), source[str(i)], wanted) for i in chunk]
            more = start + limit < len(ids)
        payload: dict[str, Any] = {"results": results}
        if more and chunk:
            payload["paging"] = {
                "next": {"after": str(chunk[-1]), "link": f"{req.path}?after={chunk[-1]}"}
            }
        return json_response(200, payload, records=len(results))

    def _company(self, cid: str, props: dict[str, str], wanted: list[str]) -> dict[str, Any]:
        """A company as HubSpot shows it; an archived one with `archived` and `archivedAt`."""
        shown = {k: (v or None) for k, v in props.items() if k != "archivedAt"}
        out = self._object(cid, shown, wanted,  # type: ignore[arg-type]
                           modified_key="hs_lastmodifieddate")
        if "archivedAt" in props:
            out["archived"], out["archivedAt"] = True, props["archivedAt"]
        return out

    def get_company(self, req: Request) -> Response:
        """`GET /crm/v3/objects/companies/{id}`: an archived (deleted) company is a 404."""
        wanted = self._wanted(req.query.get("properties"), DEFAULT_COMPANY_PROPS)
        cid = req.params["id"]
        with self.data.lock:
            props = self.data.hs_companies.get(cid)
            if props is None:
                raise hs_error(404, "OBJECT_NOT_FOUND", f"Object not found. objectId={cid}")
            return json_response(200, self._company(cid, props, wanted), records=1)

    def delete_company(self, req: Request) -> Response:
        """`DELETE /crm/v3/objects/companies/{id}`: archive it (204; an id that is not a live
        company gets 204 too: HubSpot's archive is idempotent)."""
        archive_company(self.data, req.params["id"], self.clock.now())
        return Response(204)

    def search_companies(self, req: Request) -> Response:
        """`POST /crm/v3/objects/companies/search`: the search of `hs_search` over the
        companies (filters on any company property; `hs_lastmodifieddate` as a datetime)."""
        body = req.json()
        wanted = self._wanted(body.get("properties"), DEFAULT_COMPANY_PROPS)
        types = {name: str(d.get("type", "string"))
                 for name, d in self.data.hs_company_properties.items()}
        types.update(hs_lastmodifieddate="datetime", createdate="datetime")
        with self.data.lock:
            items = ((cid, {k: v for k, v in p.items() if v not in (None, "")})
                     for cid, p in self.data.hs_companies.items())
            page, total, nxt = hs_search.search(items, body, types)
            results = [self._object(cid, {k: (v or None) for k, v in  # type: ignore[misc]
                                          self.data.hs_companies[cid].items()},
                                    wanted, modified_key="hs_lastmodifieddate")
                       for cid, _ in page]
        return search_response(results, total, nxt)

    def batch_associations(self, req: Request) -> Response:
        """v4 batch read: contact -> task (`hs_tasks`) or contact -> company (here)."""
        if req.params["from"] in CONTACT_KINDS and req.params["to"] in COMPANY_KINDS:
            return self._company_associations(req)
        return self.task_associations(req)  # type: ignore[attr-defined, no-any-return]

    def _company_associations(self, req: Request) -> Response:
        inputs = batch_inputs(req.json())
        results, errors = [], []
        with self.data.lock:
            for item in inputs:
                cid = str(item.get("id", "")) if isinstance(item, dict) else ""
                companies = self.data.hs_contact_companies.get(cid, [])
                if not companies:
                    errors.append({
                        "status": "error", "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No company is associated with contact {cid}.",
                        "context": {"fromObjectId": [cid]}, "errors": [], "links": {}})
                    continue
                primary = self.data.hs_company_primary.get(cid)
                results.append({"from": {"id": cid}, "to": [
                    {"toObjectId": int(c), "associationTypes": [
                        *([{"category": "HUBSPOT_DEFINED", "typeId": PRIMARY_TYPE,
                            "label": "Primary"}] if c == primary else []),
                        {"category": "HUBSPOT_DEFINED", "typeId": UNLABELED_TYPE,
                         "label": None}]}
                    for c in companies]})
        return self._batch_response(results, errors)

    def batch_update_companies(self, req: Request) -> Response:
        """`POST /crm/v3/objects/companies/batch/update`: each input validated against the
        company property definitions; a refused input is an error row (207), the rest apply."""
        return self._batch_update(req, self._update_company)

    def _update_company(self, rid: str, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        props = self.data.hs_companies.get(rid)
        if props is None:
            raise hs_error(404, "OBJECT_NOT_FOUND", f"Object not found. objectId={rid}")
        clean: dict[str, str] = {}
        for name, value in values.items():
            definition = self.data.hs_company_properties.get(name)
            if definition is None:
                raise invalid_property(name, "PROPERTY_DOESNT_EXIST",
                                       f"Property {name!r} does not exist")
            if name in _READ_ONLY:
                raise hs_error(400, "VALIDATION_ERROR", f"Property {name!r} is read-only")
            try:
                options = [o["value"] for o in definition.get("options", [])]
                clean[name] = normalize(definition["type"], options, value)
            except ValueError as exc:
                raise invalid_property(name, "INVALID_OPTION", str(exc)) from None
        props.update(clean)  # "" clears: read back as null
        props["hs_lastmodifieddate"] = stamp
        self.stats.written("hubspot")
        return self._object(rid, {k: (v or None) for k, v in props.items()},  # type: ignore[misc]
                            list(values), modified_key="hs_lastmodifieddate")
