"""Accounts: which company a person belongs to (`resolve`), docs/accounts.md.

The account score itself is pure scoring (`leadsync.scoring.accounts`); this package holds the
resolution of CRM records to one account key per company across both CRMs.
"""
