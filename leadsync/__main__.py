"""`python -m leadsync`: the same as the `leadsync` command."""

from leadsync.cli import main

main()
