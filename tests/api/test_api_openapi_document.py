"""The OpenAPI document describes the real contract, and `/schema` works offline (issue 14)."""

import re
import typing

import httpx

from payguard.events.contract import EventIn, EventType, MerchantCategory


def _document(client: httpx.Client) -> dict[str, typing.Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, typing.Any] = response.json()
    return body


def _request_schema(client: httpx.Client, method: str, path: str) -> dict[str, typing.Any]:
    operation = _document(client)["paths"][path][method]
    schema: dict[str, typing.Any] = operation["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def _enum(schema: dict[str, typing.Any]) -> set[str]:
    options = [schema, *schema.get("anyOf", [])]
    return {value for option in options for value in option.get("enum", [])}


def test_event_schema_is_the_contract(client: httpx.Client) -> None:
    event = _request_schema(client, "post", "/v1/events")
    assert set(event["properties"]) == set(EventIn.__struct_fields__)
    assert event["additionalProperties"] is False
    assert set(event["required"]) == {"event_id", "type", "ts"}
    assert _enum(event["properties"]["type"]) == set(typing.get_args(EventType))
    merchant = event["properties"]["merchant"]["anyOf"][0]
    assert merchant["additionalProperties"] is False
    assert _enum(merchant["properties"]["category"]) == set(typing.get_args(MerchantCategory))
    batch = _request_schema(client, "post", "/v1/events/batch")
    assert batch["items"] == event


def test_other_bodies_forbid_unknown_fields(client: httpx.Client) -> None:
    for path in ("/v1/holds", "/v1/otp/send", "/v1/otp/verify"):
        schema = _request_schema(client, "post", path)
        assert schema["additionalProperties"] is False, path
        assert schema["required"], path


def test_an_unknown_field_the_document_forbids_is_refused(client: httpx.Client) -> None:
    body = {"event_id": "doc-1", "type": "login", "ts": 1_600_000_000_000, "user_id": "u"}
    assert client.post("/v1/events", json=body).status_code == 200
    refused = client.post("/v1/events", json={**body, "event_id": "doc-2", "colour": "red"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "colour"


def test_schema_page_needs_no_outside_host(client: httpx.Client) -> None:
    page = client.get("/schema", headers={"Authorization": ""})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/v1/events/batch" in html and "openapi.json" in html
    assert not re.search(r"<script|<link|@import|https?://", html, re.I), "loads from elsewhere"
