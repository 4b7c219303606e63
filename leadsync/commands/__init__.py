"""Click commands of `leadsync` other than `score` and `sandbox` (DESIGN.md §8)."""

from leadsync.commands.admin import check, explain, provision, worker
from leadsync.commands.demo import demo
from leadsync.commands.health import health
from leadsync.commands.sync import sync

__all__ = ["check", "demo", "explain", "health", "provision", "sync", "worker"]
