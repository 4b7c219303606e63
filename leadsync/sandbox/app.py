"""`Sandbox`: the in-process handle on a running emulator (seed, serve, observe, control)."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from leadsync.sandbox import tls
from leadsync.sandbox.faults import FaultInjector, Faults
from leadsync.sandbox.hubspot import HubSpotApi
from leadsync.sandbox.salesforce import SalesforceApi, SfCredentials
from leadsync.sandbox.seed import seed as seed_data
from leadsync.sandbox.seed_deals import add_deal_history
from leadsync.sandbox.server import Dispatcher, _Server, serve
from leadsync.sandbox.sf_convert import convert_lead
from leadsync.sandbox.simulate import simulate
from leadsync.sandbox.store import Clock, SandboxData, Stats, parse_time
from leadsync.sandbox.wire import ApiError, Request, Response, json_response

log = logging.getLogger(__name__)


class Sandbox:
    """A seeded HubSpot + Salesforce emulator on 127.0.0.1; use as a context manager.

    The clock starts at `now` (default 2026-11-20T09:00Z, so seeds are reproducible), ticks with
    real time, and moves forward with `advance` / `simulate`. `data` exposes the stores
    (see `SandboxData`)."""

    def __init__(
        self,
        contacts: int = 500,
        seed: int = 7,
        *,
        faults: Faults | None = None,
        hubspot_rate_limit: int = 100,
        sf_daily_limit: int = 100_000,
        provision_hubspot: bool = True,
        now: datetime | None = None,
        hubspot_port: int = 0,
        salesforce_port: int = 0,
        hubspot_daily_limit: int = 250_000,
        search_per_second: int = 5,
        session_ttl_seconds: float = 7200,
        deals: bool = False,
    ) -> None:
        if hubspot_rate_limit < 1 or sf_daily_limit < 1:
            raise ValueError("hubspot_rate_limit and sf_daily_limit must be >= 1")
        self.contacts, self.seed = contacts, seed
        self.clock = Clock(now)
        self.data = SandboxData()
        self.stats_store = Stats()
        self.faults = FaultInjector(faults)
        self.hubspot_token = "pat-na1-" + secrets.token_hex(16)
        self.credentials = SfCredentials(
            "integration@leadsync-sandbox.example",
            "sandbox-" + secrets.token_hex(8),
            secrets.token_hex(12),
        )
        self.hubspot = HubSpotApi(
            self.data,
            self.clock,
            self.stats_store,
            self.faults,
            token=self.hubspot_token,
            rate_limit=hubspot_rate_limit,
            daily_limit=hubspot_daily_limit,
            search_per_second=search_per_second,
        )
        self.salesforce = SalesforceApi(
            self.data,
            self.clock,
            self.stats_store,
            self.faults,
            credentials=self.credentials,
            daily_limit=sf_daily_limit,
            session_ttl_seconds=session_ttl_seconds,
        )
        self._ports = (hubspot_port, salesforce_port)
        self._provision = provision_hubspot
        self._deals = deals  # an outcome history in HubSpot deals (seed_deals)
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._workdir: Path | None = None
        self.ca_bundle = ""
        self.hubspot_url = self.salesforce_url = self.stats_url = ""
        self._seeded = False
        if self.faults.faults.expire_sessions:
            self.salesforce.expire_sessions()

    # -- lifecycle -----------------------------------------------------------------------------

    def seed_data(self) -> None:
        """Generate the data set (done by `start` if not done before)."""
        with self.data.lock:
            if not self._seeded:
                seed_data(
                    self.data, self.contacts, self.seed, self.clock.virtual_now(), self._provision
                )
                if self._deals:
                    add_deal_history(self.data, self.seed, self.clock.virtual_now())
                self._seeded = True

    def start(self) -> Sandbox:
        if self._servers:
            return self
        self.seed_data()
        self._workdir = Path(tempfile.mkdtemp(prefix="leadsync-sandbox-"))
        files = tls.generate(self._workdir)
        self.ca_bundle = str(files.ca_bundle)
        hs = Dispatcher(
            "hubspot",
            self.hubspot,
            self.stats_store,
            self.faults,
            authorize=self.hubspot.authorize,
            control=self.control,
        )
        sf = Dispatcher(
            "salesforce",
            self.salesforce,
            self.stats_store,
            self.faults,
            authorize=self._sf_authorize,
            after=self.salesforce.limit_header,
            control=self.control,
        )
        self._servers = [
            serve(self._ports[0], hs),
            serve(self._ports[1], sf, tls.server_context(files)),
        ]
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"sandbox-{server.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        hs_port, sf_port = (s.server_address[1] for s in self._servers)
        self.salesforce.instance = f"127.0.0.1:{sf_port}"
        self.hubspot_url = f"http://127.0.0.1:{hs_port}"
        self.salesforce_url = f"https://127.0.0.1:{sf_port}"
        self.stats_url = f"{self.hubspot_url}/__sandbox__/stats"
        log.info("sandbox started", extra={"hubspot_port": hs_port, "salesforce_port": sf_port})
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _sf_authorize(self, req: Request, endpoint: str) -> dict[str, str]:
        if endpoint.startswith("POST /services/"):  # login endpoints need no session
            return {}
        self.salesforce.authorize(req)
        return {}

    # -- the Python API ------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The LEADSYNC_* environment that points leadsync at this sandbox."""
        if not self._servers:
            raise RuntimeError(
                "the sandbox is not running; use it as a context manager or call start()"
            )
        c = self.credentials
        return {
            "LEADSYNC_HUBSPOT__ACCESS_TOKEN": self.hubspot_token,
            "LEADSYNC_HUBSPOT__BASE_URL": self.hubspot_url,
            "LEADSYNC_HUBSPOT__RATE_LIMIT_PER_10S": str(self.hubspot.window.limit),
            "LEADSYNC_SALESFORCE__USERNAME": c.username,
            "LEADSYNC_SALESFORCE__PASSWORD": c.password,
            "LEADSYNC_SALESFORCE__SECURITY_TOKEN": c.security_token,
            "LEADSYNC_SALESFORCE__LOGIN_URL": self.salesforce_url,
            "LEADSYNC_SALESFORCE__CA_BUNDLE": self.ca_bundle,
            "LEADSYNC_SANDBOX_STATS_URL": self.stats_url,
        }

    def stats(self) -> dict[str, Any]:
        out = self.stats_store.snapshot()
        out["now"] = self.clock.now().isoformat()
        out["salesforce"]["api_usage"] = self.salesforce.allowance.used()
        return out

    def reset_stats(self) -> None:
        self.stats_store.reset()

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def simulate(self, hours: float) -> dict[str, int]:
        """Advance the clock by `hours` and generate the activity people and reps produce."""
        return simulate(self, hours)

    def convert_lead(self, lead_id: str, *, account_id: str | None = None,
                     contact_id: str | None = None) -> dict[str, Any]:
        """Convert a Salesforce Lead now, as a rep would (`sf_convert`)."""
        return convert_lead(self.data, lead_id, self.clock.now(), account_id=account_id,
                            contact_id=contact_id)

    def set_faults(self, faults: Faults) -> None:
        self.faults.set(faults)
        if faults.expire_sessions:
            self.salesforce.expire_sessions()

    # -- control endpoints ---------------------------------------------------------------------

    def control(self, req: Request) -> Response:
        """`/__sandbox__/{stats,clock,simulate,convert,faults}`; never subject to faults or
        limits. `convert` takes {"lead_id", "account_id"?, "contact_id"?}."""
        body = json.loads(req.body or b"{}") if req.method == "POST" else {}
        if not isinstance(body, dict):
            raise ApiError(400, {"error": "expected a JSON object"})
        name = req.path.removeprefix("/__sandbox__").strip("/")
        if name == "stats" and req.method == "GET":
            return json_response(200, self.stats())
        if name == "stats" and req.method in ("POST", "DELETE"):
            self.reset_stats()
            return json_response(200, self.stats())
        if name == "clock":
            if "advance_seconds" in body:
                self.advance(float(body["advance_seconds"]))
            elif "now" in body:
                self.clock.set(parse_time(str(body["now"])))
            return json_response(200, {"now": self.now().isoformat()})
        if name == "simulate" and req.method == "POST":
            return json_response(
                200,
                {"now": None, **self.simulate(float(body.get("hours", 1)))}
                | {"now": self.now().isoformat()},
            )
        if name == "convert" and req.method == "POST":
            return json_response(200, self.convert_lead(
                str(body["lead_id"]), account_id=body.get("account_id"),
                contact_id=body.get("contact_id")))
        if name == "faults":
            if req.method == "POST":
                self.set_faults(Faults.from_mapping(body))
            return json_response(200, self.faults.faults.to_dict())
        raise ApiError(404, {"error": f"unknown sandbox control endpoint {req.method} {req.path}"})
