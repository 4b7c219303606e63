"""HubSpot marketing engagement outside the v3 events API, as HubSpot serves it.

HubSpot's events API does not carry marketing email events or form submissions; they come from
the email events API (`GET /email/public/v1/events`, keyed by recipient email) and the forms
APIs (`GET /marketing/v3/forms`, `GET /form-integrations/v1/submissions/forms/{guid}`, newest
first). The generator keeps emitting its v3-style event tuples; `route_events` files each one
in the store the real API reads from, so seeding and `simulate` stay deterministic.
"""

from __future__ import annotations

import bisect
import uuid
import zlib
from typing import Any

from leadsync.sandbox import hs_search, pools
from leadsync.sandbox.hs_common import HsBase, bool_arg, hs_error, int_arg
from leadsync.sandbox.store import SandboxData
from leadsync.sandbox.wire import Request, Response, json_response

EMAIL_KINDS = {"e_opened_email": "OPEN", "e_clicked_email": "CLICK",
               "e_unsubscribed_email": "STATUSCHANGE"}  # fmt: skip
FORM_EVENT = "e_submitted_form"
EMAIL_EVENT_TYPES = frozenset({
    "SENT", "DROPPED", "PROCESSED", "DELIVERED", "DEFERRED", "BOUNCE", "OPEN", "CLICK",
    "PRINT", "FORWARD", "STATUSCHANGE", "SPAMREPORT", "SUPPRESSED", "UNBOUNCE",
})  # fmt: skip
NEWSLETTER_FORM = "newsletter"
NEWSLETTER_PAGE = f"{pools.SITE}/newsletter"
PORTAL_ID = 62515
APP_ID, APP_NAME = 113, "Batch"
_NS = uuid.UUID("6f1c1d3e-2a4b-4c55-9d1e-0b7e5a6c1f00")
Row = tuple[int, int, str, str, dict[str, str]]


def form_guid(name: str) -> str:
    """The GUID of the form called `name` (stable across runs and seeds)."""
    return str(uuid.uuid5(_NS, f"form:{name}"))


def campaign_id(name: str) -> int:
    """HubSpot's numeric emailCampaignId for one of the generator's campaign names."""
    return 10_000_000 + zlib.crc32(name.encode()) % 90_000_000


def _uid(kind: str, seq: int) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{seq}"))


def _cursor(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        ms, seq = (int(x) for x in text.split("-"))
    except ValueError:
        raise hs_search.validation_error(f"invalid paging cursor {text!r}") from None
    return ms, seq


FORM_STYLE = {
    "fontFamily": "helvetica", "backgroundWidth": "100%", "labelTextColor": "#33475b",
    "labelTextSize": "14px", "helpTextColor": "#7C98B6", "helpTextSize": "11px",
    "legalConsentTextColor": "#33475b", "legalConsentTextSize": "14px", "submitColor": "#ff7a59",
    "submitAlignment": "left", "submitFontColor": "#ffffff", "submitSize": "12px",
}  # fmt: skip


def _form_field(name: str, label: str, field_type: str, required: bool) -> dict[str, Any]:
    """One field as Forms v3 serves it: every field has `dependentFields`; email fields carry
    their `validation` (block lists), as the schema (the SDK's EmailField) requires."""
    field: dict[str, Any] = {"objectTypeId": "0-1", "name": name, "label": label,
                             "fieldType": field_type, "required": required, "hidden": False,
                             "dependentFields": []}  # fmt: skip
    if field_type == "email":
        field["validation"] = {"blockedEmailDomains": [], "useDefaultBlockList": False}
    return field


def form_definition(guid: str, name: str, created: str) -> dict[str, Any]:
    """A HubSpot Forms v3 form with the parts the schema requires: `fieldGroups`,
    `configuration`, `displayOptions`, `legalConsentOptions`."""
    fields = [_form_field("email", "Email", "email", True),
              _form_field("firstname", "First name", "single_line_text", False),
              _form_field("lastname", "Last name", "single_line_text", False)]  # fmt: skip
    if name == "demo_request":
        fields.append(_form_field("company", "Company name", "single_line_text", True))
    return {
        "id": guid, "name": name, "formType": "hubspot", "archived": False,
        "createdAt": created, "updatedAt": created,
        "fieldGroups": [{"groupType": "default_group", "richTextType": "text",
                         "fields": fields}],
        "configuration": {
            "language": "ja", "cloneable": True, "editable": True, "archivable": True,
            "recaptchaEnabled": False, "notifyContactOwner": False, "notifyRecipients": [],
            "createNewContactForNewEmail": False, "prePopulateKnownValues": True,
            "allowLinkToResetKnownValues": False, "lifecycleStages": [],
            "postSubmitAction": {"type": "thank_you", "value": "ありがとうございました。"},
        },
        "displayOptions": {"renderRawHtml": False, "theme": "default_style",
                           "submitButtonText": "送信", "cssClass": "hs-form",
                           "style": dict(FORM_STYLE)},
        "legalConsentOptions": {"type": "none"},
    }  # fmt: skip


def define_forms(data: SandboxData, created: str) -> None:
    """The portal's forms: demo request, one per case study, the newsletter sign-up."""
    for name in ("demo_request", *pools.CASE_STUDY_FORMS, NEWSLETTER_FORM):
        guid = form_guid(name)
        data.hs_forms[guid] = form_definition(guid, name, created)
        data.hs_form_submissions.setdefault(guid, [])


def _email_fields(etype: str, seq: int, props: dict[str, str]) -> dict[str, Any]:
    campaign = (
        props.get("hs_email_campaign_id") or pools.EMAIL_CAMPAIGNS[seq % len(pools.EMAIL_CAMPAIGNS)]
    )
    fields: dict[str, Any] = {"emailCampaignId": campaign_id(campaign)}
    if etype == "CLICK":
        fields["url"] = props.get("hs_url", pools.SITE)
    elif etype == "STATUSCHANGE":
        fields.update({"source": "SOURCE_RECIPIENT", "portalSubscriptionStatus": "UNSUBSCRIBED",
                       "subscriptions": [{"id": 1, "status": "UNSUBSCRIBED"}]})  # fmt: skip
    return fields


def _merge(store: list[Any], new: list[Any]) -> None:
    """Append rows sorted by (ms, seq); re-sort only when they reach back into the store."""
    if store and new and new[0][:2] < store[-1][:2]:
        store.extend(new)
        store.sort(key=lambda row: (row[0], row[1]))
    else:
        store.extend(new)


def route_events(data: SandboxData, rows: list[Row]) -> list[Row]:
    """File email events and form submissions in their stores (keyed by the contact's email,
    which HubSpot records them under; a contact without an email gets neither) and return the
    rows that stay in the v3 events API (page views, webinars, meetings)."""
    kept: list[Row] = []
    emails: list[tuple[int, int, str, str, dict[str, Any]]] = []
    forms: dict[str, list[tuple[int, int, str, dict[str, str]]]] = {}
    for row in rows:
        ms, seq, cid, etype, props = row
        if etype not in EMAIL_KINDS and etype != FORM_EVENT:
            kept.append(row)
            continue
        contact = data.hs_contacts.get(cid, {})
        email = contact.get("email")
        if not email:
            continue
        if etype == FORM_EVENT:
            guid = form_guid(props.get("hs_form_id", NEWSLETTER_FORM))
            if guid not in data.hs_forms:
                raise ValueError(f"generated a submission for unknown form {props!r}")
            fields = {"pageUrl": props.get("hs_url", pools.SITE),
                      "firstname": contact.get("firstname", ""),
                      "lastname": contact.get("lastname", "")}  # fmt: skip
            forms.setdefault(guid, []).append((ms, seq, email, fields))
        else:
            kind = EMAIL_KINDS[etype]
            emails.append((ms, seq, email, kind, _email_fields(kind, seq, props)))
    _merge(data.hs_email_events, emails)
    for guid, new in forms.items():
        _merge(data.hs_form_submissions[guid], new)
    return kept


class MarketingHandlers(HsBase):
    """Email events, forms and form submissions."""

    def email_events(self, req: Request) -> Response:
        start = int_arg(req, "startTimestamp", 0, 0, None)
        end = int_arg(req, "endTimestamp", 1 << 62, 0, None)
        limit = int_arg(req, "limit", 10, 1, 1000)
        event_type = (req.arg("eventType") or "").upper()
        if event_type and event_type not in EMAIL_EVENT_TYPES:
            raise hs_search.validation_error(f"unknown eventType {req.arg('eventType')!r}")
        recipient = (req.arg("recipient") or "").lower()
        campaign = req.arg("campaignId")
        key = max((start, -1), _cursor(req.arg("offset")) or (0, -1))
        events: list[dict[str, Any]] = []
        more = False
        offset = req.arg("offset") or ""
        with self.data.lock:
            rows = self.data.hs_email_events
            for index in range(bisect.bisect_right(rows, key, key=lambda r: (r[0], r[1])),
                               len(rows)):  # fmt: skip
                ms, seq, email, etype, fields = rows[index]
                if ms > end:
                    break
                if (
                    (event_type and etype != event_type)
                    or (recipient and email.lower() != recipient)
                    or (campaign and str(fields["emailCampaignId"]) != campaign)
                ):
                    continue
                if len(events) == limit:
                    more = True
                    break
                events.append({"id": _uid("email-event", seq), "created": ms, "type": etype,
                               "recipient": email, "portalId": PORTAL_ID, "appId": APP_ID,
                               "appName": APP_NAME, "sentBy": {"id": _uid("sent", seq),
                                                               "created": ms - 60_000},
                               **fields})  # fmt: skip
                offset = f"{ms}-{seq}"
        payload = {"events": events, "hasMore": more, "offset": offset}
        return json_response(200, payload, records=len(events))

    def list_forms(self, req: Request) -> Response:
        limit = int_arg(req, "limit", 20, 1, 100)
        after = int_arg(req, "after", 0, 0, None)
        archived = bool_arg(req, "archived", False)
        with self.data.lock:
            forms = [f for f in self.data.hs_forms.values() if f["archived"] == archived]
        chunk = forms[after : after + limit]
        payload: dict[str, Any] = {"results": chunk}
        if after + limit < len(forms):
            nxt = str(after + limit)
            payload["paging"] = {"next": {"after": nxt, "link": f"{req.path}?after={nxt}"}}
        return json_response(200, payload, records=len(chunk))

    def form_submissions(self, req: Request) -> Response:
        guid = req.params["guid"]
        limit = int_arg(req, "limit", 20, 1, 50)
        before = _cursor(req.arg("after"))
        results: list[dict[str, Any]] = []
        with self.data.lock:
            rows = self.data.hs_form_submissions.get(guid)
            if rows is None:
                raise hs_error(404, "OBJECT_NOT_FOUND", f"Form {guid} does not exist")
            stop = len(rows) if before is None else bisect.bisect_left(
                rows, before, key=lambda r: (r[0], r[1]))  # fmt: skip
            for index in range(stop - 1, max(-1, stop - 1 - limit), -1):
                ms, seq, email, fields = rows[index]
                results.append({"conversionId": _uid("conversion", seq), "submittedAt": ms,
                                "values": [{"name": "email", "value": email},
                                           *({"name": n, "value": fields[n]} for n in
                                             ("firstname", "lastname") if fields.get(n))],
                                "pageUrl": fields["pageUrl"]})  # fmt: skip
            more = stop - limit > 0
            last = rows[stop - limit] if more else None
        payload: dict[str, Any] = {"results": results}
        if last is not None:
            nxt = f"{last[0]}-{last[1]}"
            payload["paging"] = {"next": {"after": nxt, "link": f"{req.path}?after={nxt}"}}
        return json_response(200, payload, records=len(results))
