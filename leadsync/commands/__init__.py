"""Click commands of `leadsync` other than `score` and `sandbox` (DESIGN.md §8)."""

from leadsync.commands.admin import check, explain, provision, worker
from leadsync.commands.demo import demo
from leadsync.commands.sync import sync

__all__ = ["check", "demo", "explain", "provision", "sync", "worker"]
