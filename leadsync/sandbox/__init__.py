"""leadsync.sandbox: a local HubSpot + Salesforce API emulator with seeded, realistic data.

`Sandbox` starts it in-process (a context manager on free ports); `Faults` switches fault
injection; `leadsync sandbox serve` runs it standalone. See docs/sandbox.md.
"""

from leadsync.sandbox.app import Sandbox
from leadsync.sandbox.faults import Faults
from leadsync.sandbox.store import DEFAULT_NOW, SandboxData

__all__ = ["DEFAULT_NOW", "Faults", "Sandbox", "SandboxData"]
