"""Salesforce SOQL queries: run, page with query locators, project parent fields."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from leadsync.sandbox.faults import FaultInjector
from leadsync.sandbox.sf_records import sf_error
from leadsync.sandbox.sf_schema import FIELDS, FIELDS_LOWER, OBJECT_NAMES, PARENTS
from leadsync.sandbox.soql import Query, SoqlError, matches, parse, sort_rows, where_fields
from leadsync.sandbox.store import Clock, SandboxData, Stats, sf_time
from leadsync.sandbox.wire import Request, Response, json_response

PAGE_SIZE = 2000
RECYCLE_RETENTION = timedelta(days=15)  # deleted records queryAll still returns


class QueryHandlers:
    """`GET /query`, `/queryAll` and `/query/<locator>`."""

    data: SandboxData
    clock: Clock
    stats: Stats
    faults: FaultInjector
    _lock: threading.Lock
    _cursors: OrderedDict[str, tuple[Query, list[dict[str, Any]], int]]

    def query_all(self, req: Request) -> Response:
        """`GET /queryAll`: the query plus the recycle bin's records (IsDeleted true)."""
        return self.query(req, include_deleted=True)

    def query(self, req: Request, include_deleted: bool = False) -> Response:
        text = req.arg("q")
        if not text:
            raise sf_error(400, "MALFORMED_QUERY", "missing query parameter q")
        try:
            query = parse(text, self.clock.now().date())
            rows = self._run(query, include_deleted)
        except SoqlError as exc:
            raise sf_error(400, exc.code, str(exc)) from None
        if query.count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        return self._page(query, rows, 0, req.params["version"])

    def query_more(self, req: Request) -> Response:
        locator = req.params["locator"].rsplit("-", 1)[0]
        with self._lock:
            entry = self._cursors.get(locator)
        if entry is None:
            raise sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        query, rows, _ = entry
        try:
            offset = int(req.params["locator"].rsplit("-", 1)[1])
        except (IndexError, ValueError):
            raise sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
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

    def _run(self, query: Query, include_deleted: bool = False) -> list[dict[str, Any]]:
        obj = OBJECT_NAMES.get(query.sobject.lower())
        if obj is None:
            raise SoqlError(f"sObject type '{query.sobject}' is not supported.", "INVALID_TYPE")
        names = list(query.fields) + where_fields(query.where) + [o[0] for o in query.order]
        get = self._getter(obj, names)
        with self.data.lock:
            source = list(self.data.sf.setdefault(obj, {}).values())
            if include_deleted:  # the recycle bin keeps a deleted record 15 days
                oldest = sf_time(self.clock.now() - RECYCLE_RETENTION)
                source += [r for r in self.data.sf_recycle.get(obj, {}).values()
                           if str(r.get("SystemModstamp") or "") >= oldest]
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
