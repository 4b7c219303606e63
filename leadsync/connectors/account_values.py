"""The written account fields (docs/accounts.md): logical names, CRM names, canonical values.

Logical names: `account_score` (Number(4,0)), `account_reasons` (text, 255), `engaged_people`
(how many engaged people, Number(4,0)), `mqa_at` (when the MQA episode started; cleared when it
ends), `model` (the rules version). Each is validated like the person field of the same kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from leadsync.connectors.values import InvalidValue, canonical

ACCOUNT_FIELDS: tuple[str, ...] = (
    "account_score", "account_reasons", "engaged_people", "mqa_at", "model")
SALESFORCE_ACCOUNT_FIELDS: Mapping[str, str] = MappingProxyType({
    "account_score": "LeadSync_Account_Score__c",
    "account_reasons": "LeadSync_Account_Reasons__c",
    "engaged_people": "LeadSync_Engaged_People__c",
    "mqa_at": "LeadSync_MQA_At__c",
    "model": "LeadSync_Model__c",
})
HUBSPOT_ACCOUNT_PROPERTIES: Mapping[str, str] = MappingProxyType({
    "account_score": "leadsync_account_score",
    "account_reasons": "leadsync_account_reasons",
    "engaged_people": "leadsync_engaged_people",
    "mqa_at": "leadsync_mqa_at",
    "model": "leadsync_model",
})
#: the person field each account field is validated and compared as
KIND: Mapping[str, str] = MappingProxyType({
    "account_score": "score", "account_reasons": "reasons", "engaged_people": "engagement",
    "mqa_at": "mql_at", "model": "model",
})


def account_canonical(name: str, value: object, *, reasons_len: int) -> str | datetime | None:
    """Validate one account value (`InvalidValue` names the field) into its canonical form."""
    kind = KIND.get(name)
    if kind is None:
        raise InvalidValue(f"unknown written account field {name!r}")
    if name == "engaged_people" and isinstance(value, int) and value < 0:
        raise InvalidValue(f"{name}: must be >= 0, got {value}")
    try:
        return canonical(kind, value, reasons_len=reasons_len)
    except InvalidValue as exc:
        raise InvalidValue(str(exc).replace(kind, name, 1)) from None
