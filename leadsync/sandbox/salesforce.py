"""Salesforce REST handlers: login (SOAP, OAuth), SOQL with paging, sObject Collections, single
records, describe, /limits; sessions, the rolling daily allocation and Sforce-Limit-Info."""

from __future__ import annotations

import html
import re
import secrets
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from leadsync.sandbox import sf_records as recs
from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.sf_schema import FIELDS, FIELDS_LOWER, OBJECT_NAMES, PARENTS, describe
from leadsync.sandbox.soql import Query, SoqlError, matches, parse, sort_rows, where_fields
from leadsync.sandbox.store import Clock, DailyAllowance, SandboxData, Stats, task_key
from leadsync.sandbox.wire import ApiError, Request, Response, json_response

PAGE_SIZE = 2000
ROLLED_BACK = recs.error(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
)
COLLECTION_LIMIT = 200
API = r"/services/data/v(?P<version>\d+\.\d)"


@dataclass(frozen=True, slots=True)
class SfCredentials:
    username: str
    password: str
    security_token: str


def _sf_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, [{"message": message, "errorCode": code}])


class SalesforceApi:
    """The Salesforce side of the sandbox. `instance` is `127.0.0.1:<port>` once serving."""

    def __init__(
        self,
        data: SandboxData,
        clock: Clock,
        stats: Stats,
        faults: FaultInjector,
        *,
        credentials: SfCredentials,
        daily_limit: int,
        session_ttl_seconds: float = 7200,
    ) -> None:
        self.data, self.clock, self.stats, self.faults = data, clock, stats, faults
        self.credentials = credentials
        self.allowance = DailyAllowance(daily_limit, clock)
        self.session_ttl = session_ttl_seconds
        self.instance = "127.0.0.1"
        self._sessions: dict[str, float] = {}
        self._cursors: OrderedDict[str, tuple[Query, list[dict[str, Any]], int]] = OrderedDict()
        self._lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], str, Callable[[Request], Response]]] = [
            (
                "POST",
                re.compile(r"/services/Soap/u/[\d.]+"),
                "POST /services/Soap/u",
                self.soap_login,
            ),
            (
                "POST",
                re.compile(r"/services/oauth2/token"),
                "POST /services/oauth2/token",
                self.oauth,
            ),
            ("GET", re.compile(API + r"/query"), "GET /query", self.query),
            ("GET", re.compile(API + r"/queryAll"), "GET /query", self.query),
            (
                "GET",
                re.compile(API + r"/query/(?P<locator>[\w-]+)"),
                "GET /query/{locator}",
                self.query_more,
            ),
            (
                "PATCH",
                re.compile(API + r"/composite/sobjects"),
                "PATCH /composite/sobjects",
                self.collection,
            ),
            (
                "POST",
                re.compile(API + r"/composite/sobjects"),
                "POST /composite/sobjects",
                self.collection,
            ),
            ("GET", re.compile(API + r"/limits"), "GET /limits", self.limits),
            (
                "GET",
                re.compile(API + r"/sobjects/(?P<object>\w+)/describe"),
                "GET /sobjects/{object}/describe",
                self.describe,
            ),
            (
                "POST",
                re.compile(API + r"/sobjects/(?P<object>\w+)"),
                "POST /sobjects/{object}",
                self.create_one,
            ),
            (
                "GET",
                re.compile(API + r"/sobjects/(?P<object>\w+)/(?P<id>\w+)"),
                "GET /sobjects/{object}/{id}",
                self.get_one,
            ),
            (
                "PATCH",
                re.compile(API + r"/sobjects/(?P<object>\w+)/(?P<id>\w+)"),
                "PATCH /sobjects/{object}/{id}",
                self.update_one,
            ),
        ]

    # -- sessions and limits -------------------------------------------------------------------

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def _new_session(self) -> str:
        sid = "00D5g0000000001!" + secrets.token_urlsafe(48)
        with self._lock:
            self._sessions[sid] = self.clock.now().timestamp() + self.session_ttl
        return sid

    def authorize(self, req: Request) -> None:
        """Check the session (401 INVALID_SESSION_ID) and spend one call of the daily allocation
        (403 REQUEST_LIMIT_EXCEEDED)."""
        auth = req.headers.get("authorization", "")
        sid = auth.split(" ", 1)[1].strip() if " " in auth else ""
        with self._lock:
            expires = self._sessions.get(sid)
        if expires is None or expires <= self.clock.now().timestamp():
            raise _sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        allowed, _ = self.allowance.try_acquire()
        if not allowed:
            self.stats.rate_limited("salesforce")
            raise _sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.allowance.used()}/{self.allowance.limit}"}

    # -- login ---------------------------------------------------------------------------------

    def _check_login(self, username: str, password: str) -> bool:
        c = self.credentials
        return secrets.compare_digest(username, c.username) and secrets.compare_digest(
            password, c.password + c.security_token
        )

    def soap_login(self, req: Request) -> Response:
        text = req.body.decode("utf-8", "replace")
        user = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", text, re.S)
        pwd = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", text, re.S)
        if (
            not user
            or not pwd
            or not self._check_login(html.unescape(user.group(1)), html.unescape(pwd.group(1)))
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
                "username, password, security token; or user locked out.</faultstring><detail>"
                "<sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
                "<sf:exceptionMessage>Invalid username, password, security token; or user "
                "locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return Response(500, fault.encode(), {"Content-Type": "text/xml;charset=UTF-8"})
        sid = self._new_session()
        base = f"https://{self.instance}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{base}/services/Soap/m/59.0/00D5g0000000001</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/59.0/00D5g0000000001</serverUrl>"
            f"<sessionId>{sid}</sessionId><userId>{self.data.sf_integration_user}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), {"Content-Type": "text/xml;charset=UTF-8"})

    def oauth(self, req: Request) -> Response:
        form = {
            k: v[-1] for k, v in urllib.parse.parse_qs(req.body.decode("utf-8", "replace")).items()
        }
        grant = form.get("grant_type", "")
        ok = False
        if grant == "password":
            ok = self._check_login(form.get("username", ""), form.get("password", ""))
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = _jwt_subject(form.get("assertion", "")) == self.credentials.username
        if not ok:
            return json_response(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        payload = {
            "access_token": self._new_session(),
            "instance_url": f"https://{self.instance}",
            "id": f"https://{self.instance}/id/00D5g0000000001/{self.data.sf_integration_user}",
            "token_type": "Bearer",
            "issued_at": str(int(self.clock.now().timestamp() * 1000)),
        }
        return json_response(200, payload)

    # -- queries -------------------------------------------------------------------------------

    def query(self, req: Request) -> Response:
        text = req.arg("q")
        if not text:
            raise _sf_error(400, "MALFORMED_QUERY", "missing query parameter q")
        try:
            query = parse(text, self.clock.now().date())
            rows = self._run(query)
        except SoqlError as exc:
            raise _sf_error(400, exc.code, str(exc)) from None
        if query.count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        return self._page(query, rows, 0, req.params["version"])

    def query_more(self, req: Request) -> Response:
        locator = req.params["locator"].rsplit("-", 1)[0]
        with self._lock:
            entry = self._cursors.get(locator)
        if entry is None:
            raise _sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        query, rows, _ = entry
        try:
            offset = int(req.params["locator"].rsplit("-", 1)[1])
        except (IndexError, ValueError):
            raise _sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
        return self._page(query, rows, offset, req.params["version"], locator)

    def _page(
        self,
        query: Query,
        rows: list[dict[str, Any]],
        offset: int,
        version: str,
        locator: str | None = None,
    ) -> Response:
        chunk = rows[offset : offset + PAGE_SIZE]
        with self.data.lock:
            records = [self._project(query, row, version) for row in chunk]
        payload: dict[str, Any] = {
            "totalSize": len(rows),
            "done": offset + PAGE_SIZE >= len(rows),
            "records": records,
        }
        if not payload["done"]:
            if locator is None:
                locator = "01g5g" + secrets.token_hex(6).upper()
                with self._lock:
                    self._cursors[locator] = (query, rows, 0)
                    while len(self._cursors) > 64:
                        self._cursors.popitem(last=False)
            payload["nextRecordsUrl"] = (
                f"/services/data/v{version}/query/{locator}-{offset + PAGE_SIZE}"
            )
        return json_response(200, payload, records=len(records))

    def _getter(self, obj: str, names: list[str]) -> Callable[[dict[str, Any], str], Any]:
        """Resolve query field names (any case, `Parent.Field`) once; return a row accessor."""
        access: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for name in names:
            access[name] = self._accessor(obj, name)
        return lambda row, name: access[name](row)

    def _accessor(self, obj: str, name: str) -> Callable[[dict[str, Any]], Any]:
        if "." in name:
            rel, _, sub = name.partition(".")
            parent = {k.lower(): v for k, v in PARENTS.get(obj, {}).items()}.get(rel.lower())
            if parent is None:
                raise SoqlError(f"Didn't understand relationship '{rel}' on {obj}", "INVALID_FIELD")
            id_field, parent_obj = parent
            inner = self._accessor(parent_obj, sub)
            store = self.data.sf.setdefault(parent_obj, {})

            def parent_value(row: dict[str, Any]) -> Any:
                target = store.get(row.get(id_field) or "")
                return inner(target) if target is not None else None

            return parent_value
        canon = FIELDS_LOWER[obj].get(name.lower())
        if canon is None:
            raise SoqlError(f"No such column '{name}' on entity '{obj}'", "INVALID_FIELD")
        if FIELDS[obj][canon].type == "boolean":
            return lambda row: row.get(canon, False)
        return lambda row: row.get(canon)

    def _run(self, query: Query) -> list[dict[str, Any]]:
        obj = OBJECT_NAMES.get(query.sobject.lower())
        if obj is None:
            raise SoqlError(f"sObject type '{query.sobject}' is not supported.", "INVALID_TYPE")
        names = list(query.fields) + where_fields(query.where) + [o[0] for o in query.order]
        get = self._getter(obj, names)
        with self.data.lock:
            source = self.data.sf.setdefault(obj, {}).values()
            rows = [r for r in source if query.where is None or matches(query.where, r, get)]
        sort_rows(rows, query.order, get)
        if query.limit is not None:
            rows = rows[: query.limit]
        return rows

    def _project(self, query: Query, row: dict[str, Any], version: str) -> dict[str, Any]:
        obj = OBJECT_NAMES[query.sobject.lower()]
        get = self._getter(obj, list(query.fields))
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{version}/sobjects/{obj}/{row['Id']}",
            }
        }
        for name in query.fields:
            if "." not in name:
                out[FIELDS_LOWER[obj][name.lower()]] = get(row, name)
                continue
            rel, _, sub = name.partition(".")
            id_field, parent_obj = {k.lower(): v for k, v in PARENTS[obj].items()}[rel.lower()]
            rel_name = next(k for k in PARENTS[obj] if k.lower() == rel.lower())
            parent = self.data.sf.get(parent_obj, {}).get(row.get(id_field) or "")
            if parent is None:
                out[rel_name] = None
                continue
            nested = out.get(rel_name) or {
                "attributes": {
                    "type": parent_obj,
                    "url": f"/services/data/v{version}/sobjects/{parent_obj}/{parent['Id']}",
                }
            }
            nested[FIELDS_LOWER[parent_obj].get(sub.lower(), sub)] = get(row, name)
            out[rel_name] = nested
        return out

    # -- writes --------------------------------------------------------------------------------

    def collection(self, req: Request) -> Response:
        body = req.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise _sf_error(400, "JSON_PARSER_ERROR", "the request body needs a records array")
        if len(records) > COLLECTION_LIMIT:
            raise _sf_error(
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
        if not errs and self.faults.chance(self.faults.faults.record_failure_rate):
            self.stats.error_injected("salesforce")
            errs = [
                recs.error(
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records",
                )
            ]
        return obj, target, values, errs

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
            recs.update(target, obj, values, now)
            self.stats.written("salesforce")
        return {"id": target["Id"], "success": True, "errors": []}

    def create_one(self, req: Request) -> Response:
        obj = self._object(req)
        with self.data.lock:
            values, errs = recs.prepare(self.data, obj, req.json(), creating=True)
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
                raise _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            record = {"attributes": {"type": obj}, **{f: found[1].get(f) for f in FIELDS[obj]}}
        return json_response(200, record, records=1)

    def update_one(self, req: Request) -> Response:
        obj = self._object(req)
        with self.data.lock:
            found = recs.find(self.data, req.params["id"])
            if found is None or found[0] != obj:
                raise _sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            values, errs = recs.prepare(self.data, obj, req.json(), creating=False)
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
            raise _sf_error(
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


def _jwt_subject(assertion: str) -> str | None:
    """The `sub` claim of a JWT (the sandbox does not verify signatures)."""
    import base64
    import json

    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub"))
    except (IndexError, ValueError):
        return None


SESSION_TTL = timedelta(hours=2)
