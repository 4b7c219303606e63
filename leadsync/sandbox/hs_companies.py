"""HubSpot companies: `GET /crm/v3/objects/companies` (list, paged by `after`, up to 100 a
page) and the v4 batch read of contact -> company associations, as HubSpot answers them: per
contact its companies, the primary one with association type 1 (`Primary`) and every one with
type 279 (`contact_to_company_unlabeled`); a contact without companies is a 207 error
`NO_ASSOCIATIONS_FOUND`. `add_company` puts a company in (the seed and tests)."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from leadsync.sandbox.hs_common import HsBase, batch_inputs, bool_arg, int_arg
from leadsync.sandbox.store import SandboxData, hs_time
from leadsync.sandbox.wire import Request, Response, json_response

DEFAULT_COMPANY_PROPS = ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name")
COMPANY_KINDS = ("company", "companies", "0-2")
CONTACT_KINDS = ("contact", "contacts", "0-1")
PRIMARY_TYPE = 1
UNLABELED_TYPE = 279


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


class CompanyHandlers(HsBase):
    def list_companies(self, req: Request) -> Response:
        limit = int_arg(req, "limit", 10, 1, 100)
        after = int_arg(req, "after", 0, 0, None)
        wanted = self._wanted(req.query.get("properties"), DEFAULT_COMPANY_PROPS)
        if bool_arg(req, "archived", False):  # the sandbox archives no companies
            return json_response(200, {"results": []}, records=0)
        with self.data.lock:
            ids = sorted(int(i) for i in self.data.hs_companies)
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            results = [self._object(str(i), {k: (v or None) for k, v in  # type: ignore[misc]
                                             self.data.hs_companies[str(i)].items()},
                                    wanted, modified_key="hs_lastmodifieddate")
                       for i in chunk]
            more = start + limit < len(ids)
        payload: dict[str, Any] = {"results": results}
        if more and chunk:
            payload["paging"] = {
                "next": {"after": str(chunk[-1]), "link": f"{req.path}?after={chunk[-1]}"}
            }
        return json_response(200, payload, records=len(results))

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
