"""API fidelity of the HubSpot sandbox and of what the connector sends it: owners carry `type`,
boolean query parameters are HubSpot's "true"/"false" only, `list_owners` sends no `archived`,
and Forms v3 definitions carry every part the schema (the SDK's models) requires."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import Client
from hubspot.marketing.forms import models as form_models
from hubspot.marketing.forms.configuration import Configuration as FormsConfiguration

from leadsync.config.settings import load_settings
from leadsync.connectors.hubspot.adapter import HubSpotConnector
from leadsync.sandbox import Sandbox
from tests.sandbox_support import hubspot_client


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(contacts=150, seed=5, hubspot_rate_limit=1000) as box:
        yield box


def _raw(sb: Sandbox, path: str, **qs: Any) -> Any:
    client = Client.create(access_token=sb.hubspot_token, base_url=sb.hubspot_url)
    return client.api_request({"method": "GET", "path": path, "qs": qs})


def test_owners_carry_type_and_archived_is_a_filter(sb: Sandbox) -> None:
    owners = sb.data.hs_owners.values()
    active = [o for o in owners if not o["archived"]]
    page = _raw(sb, "/crm/v3/owners", limit=100)
    assert page.status_code == 200
    listed = page.json()["results"]
    assert [o["id"] for o in listed] == [o["id"] for o in active]
    assert {o["type"] for o in listed} == {"PERSON", "QUEUE"}
    queue = [o for o in listed if o["type"] == "QUEUE"]
    assert len(queue) == 1 and "email" not in queue[0]
    archived = _raw(sb, "/crm/v3/owners", limit=100, archived="true").json()["results"]
    assert [(o["type"], o["archived"], o["userId"]) for o in archived] == [
        ("PERSON", True, None)]
    # the SDK model reads `type` (PERSON / QUEUE) from every owner
    sdk = hubspot_client(sb).crm.owners.owners_api.get_page(limit=100)
    assert [o.type for o in sdk.results] == [o["type"] for o in active]


@pytest.mark.parametrize("value", ["False", "True", "0", "1", "FALSE", ""])
def test_a_boolean_query_parameter_other_than_true_or_false_is_a_400(
    sb: Sandbox, value: str
) -> None:
    contact = next(iter(sb.data.hs_contacts))
    for path in ("/crm/v3/owners", "/marketing/v3/forms", "/crm/v3/objects/contacts",
                 f"/crm/v3/objects/contacts/{contact}"):
        resp = _raw(sb, path, archived=value)
        assert resp.status_code == 400, (path, value)
        body = resp.json()
        assert body["category"] == "VALIDATION_ERROR" and "'archived'" in body["message"]


def test_archived_true_and_false_are_filters(sb: Sandbox) -> None:
    assert len(_raw(sb, "/crm/v3/objects/contacts", archived="false").json()["results"]) == 10
    assert _raw(sb, "/crm/v3/objects/contacts", archived="true").json()["results"] == []
    forms = _raw(sb, "/marketing/v3/forms", archived="false").json()["results"]
    assert len(forms) == len(sb.data.hs_forms)


def test_the_sdk_rendering_archived_false_is_refused(sb: Sandbox) -> None:
    """What `list_owners` used to send: the SDK turns the Python bool into "False"."""
    from hubspot.crm.owners import ApiException

    with pytest.raises(ApiException) as info:
        hubspot_client(sb).crm.owners.owners_api.get_page(limit=100, archived=False)
    assert info.value.status == 400
    assert "'False' is not a valid boolean" in json.loads(info.value.body)["message"]


def test_list_owners_sends_no_archived_parameter(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in sb.env.items():
        monkeypatch.setenv(key, value)
    conn = HubSpotConnector(load_settings().hubspot)
    rest = conn.client.owners.api_client.rest_client
    sent: list[tuple[str, str, Any]] = []
    real = rest.pool_manager.request

    def record(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url, kwargs.get("fields")))
        return real(method, url, *args, **kwargs)

    monkeypatch.setattr(rest.pool_manager, "request", record)
    owners = conn.list_owners()
    assert len(sent) == 1
    method, url, fields = sent[0]
    assert method == "GET" and url.endswith("/crm/v3/owners/")
    assert dict(fields) == {"limit": 100}
    expected = {o["id"]: o["email"].lower() for o in sb.data.hs_owners.values()
                if not o["archived"] and o.get("email")}  # fmt: skip
    assert owners == expected  # the queue (no email) and the former rep are not owners


_STRICT = FormsConfiguration()
_STRICT.client_side_validation = True
_FIELD_MODELS = {"email": form_models.EmailField,
                 "single_line_text": form_models.SingleLineTextField}  # fmt: skip
_NESTED = {"FieldGroup", "HubSpotFormConfiguration", "FormDisplayOptions", "FormStyle",
           "FormPostSubmitAction", "EmailFieldValidation", "LifecycleStage"}  # fmt: skip


def _strict(klass: type, data: dict[str, Any]) -> Any:
    """Build `klass` from a JSON object with the SDK's client-side validation on: a missing
    required part or a value outside the schema's enum raises ValueError."""
    kwargs: dict[str, Any] = {}
    for attr, kind in klass.openapi_types.items():
        key = klass.attribute_map[attr]
        if key not in data:
            continue
        value = data[key]
        if kind in _NESTED:
            value = _strict(getattr(form_models, kind), value)
        elif kind == "list[DependentFieldDependentField]":  # a oneOf by fieldType
            value = [_strict(_FIELD_MODELS[f["fieldType"]], f) for f in value]
        elif kind == "HubSpotFormDefinitionAllOfLegalConsentOptions":  # a oneOf by type
            assert value == {"type": "none"}
            value = _strict(form_models.LegalConsentOptionsNone, value)
        elif kind.startswith("list[") and kind[5:-1] in _NESTED:
            value = [_strict(getattr(form_models, kind[5:-1]), v) for v in value]
        kwargs[attr] = value
    return klass(local_vars_configuration=_STRICT, **kwargs)


def test_forms_carry_what_the_forms_v3_schema_requires(sb: Sandbox) -> None:
    page = Client.create(access_token=sb.hubspot_token, host=sb.hubspot_url) \
        .marketing.forms.forms_api.get_page(limit=100)
    assert len(page.results) == len(sb.data.hs_forms) == 5
    for form in page.results:  # the SDK deserialises every part
        assert form.configuration.language == "ja"
        assert form.display_options.theme == "default_style"
        assert form.legal_consent_options.type == "none"
        for field in form.field_groups[0].fields:
            assert field.dependent_fields == []
            assert field.field_type in ("email", "single_line_text")
    raw = _raw(sb, "/marketing/v3/forms", limit=100).json()["results"]
    for form in raw:
        built = _strict(form_models.HubSpotFormDefinition, form)  # required parts present
        fields = built.field_groups[0].fields
        assert [type(f).__name__ for f in fields][:3] == [
            "EmailField", "SingleLineTextField", "SingleLineTextField"]
        assert fields[0].validation.use_default_block_list is False
    with pytest.raises(ValueError, match="display_options"):
        _strict(form_models.HubSpotFormDefinition,
                {k: v for k, v in raw[0].items() if k != "displayOptions"})
