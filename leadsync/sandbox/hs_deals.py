"""HubSpot deals: `GET /crm/v3/objects/deals` (list, paged by `after`, up to 100 a page) with
`associations=contacts`, as the v3 API answers it: each deal's associated contact ids under
`associations.contacts.results` as `{"id", "type": "deal_to_contact"}`, the key absent for a
deal without contacts. The seed makes no deals (sales works in Salesforce there); `add_deal`
puts one in, for tests and demos of HubSpot-only pipelines."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from leadsync.sandbox.hs_common import HsBase, bool_arg, int_arg
from leadsync.sandbox.store import SandboxData, hs_time
from leadsync.sandbox.wire import Request, Response, json_response

DEFAULT_DEAL_PROPS = ("amount", "closedate", "createdate", "dealname", "dealstage",
                      "hs_lastmodifieddate", "hs_object_id", "pipeline")


def add_deal(data: SandboxData, contact_ids: list[str], *, created: datetime,
             closed: datetime | None = None, won: bool = False, amount: float | None = None,
             name: str = "Deal") -> str:
    """A deal in the default pipeline, associated with these contacts; closed (won or lost)
    when `closed` is given. HubSpot computes `hs_is_closed` and `hs_is_closed_won`."""
    with data.lock:
        did = data.new_hs_id("deal")
        stage = ("closedwon" if won else "closedlost") if closed else "appointmentscheduled"
        stamp = hs_time(closed or created)
        data.hs_deals[did] = {
            "hs_object_id": did, "dealname": name, "pipeline": "default", "dealstage": stage,
            "amount": "" if amount is None else f"{amount:g}",
            "createdate": hs_time(created), "closedate": hs_time(closed) if closed else "",
            "hs_is_closed": "true" if closed else "false",
            "hs_is_closed_won": "true" if closed and won else "false",
            "hs_lastmodifieddate": stamp,
        }
        data.hs_deal_contacts[did] = list(contact_ids)
        return did


class DealHandlers(HsBase):
    def list_deals(self, req: Request) -> Response:
        limit = int_arg(req, "limit", 10, 1, 100)
        after = int_arg(req, "after", 0, 0, None)
        wanted = self._wanted(req.query.get("properties"), DEFAULT_DEAL_PROPS)
        kinds = self._wanted(req.query.get("associations"), ())
        if bool_arg(req, "archived", False):  # the sandbox archives no deals
            return json_response(200, {"results": []}, records=0)
        with self.data.lock:
            ids = sorted(int(i) for i in self.data.hs_deals)
            start = bisect.bisect_right(ids, after)
            chunk = ids[start : start + limit]
            results = [self._deal(str(i), wanted, kinds) for i in chunk]
            more = start + limit < len(ids)
        payload: dict[str, Any] = {"results": results}
        if more and chunk:
            payload["paging"] = {
                "next": {"after": str(chunk[-1]), "link": f"{req.path}?after={chunk[-1]}"}
            }
        return json_response(200, payload, records=len(results))

    def _deal(self, did: str, wanted: list[str], kinds: list[str]) -> dict[str, Any]:
        props = {k: (v or None) for k, v in self.data.hs_deals[did].items()}
        out = self._object(did, props, wanted, modified_key="hs_lastmodifieddate")  # type: ignore[arg-type]
        contacts = self.data.hs_deal_contacts.get(did, [])
        if any(k in ("contacts", "contact", "0-1") for k in kinds) and contacts:
            out["associations"] = {"contacts": {"results": [
                {"id": cid, "type": "deal_to_contact"} for cid in contacts]}}
        return out
