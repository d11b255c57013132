"""Tests of the fake Coder server itself, over real HTTP on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakecoder import FakeCoder, fixtures, mask_secret
from tests.fakecoder.fixtures import DEFAULT_PRICE_BOOK
from tests.fakecoder.providers import WIF_KEYS_MESSAGE

fake_coder = fixtures.fake_coder

PROVIDERS = "/api/v2/ai/providers"
MODELS = "/api/v2/organizations/coder/chats/models"
PRICES = "/api/experimental/ai/model-prices"
OVERRIDES = "/api/v2/organizations/coder/chats/model-overrides"
TOGGLE = "/api/v2/chats/config/personal-model-overrides"
KEY_A = "sk-ant-api03-aaaaaaaa1111"
KEY_B = "sk-ant-api03-bbbbbbbb2222"
KEY_C = "sk-ant-api03-cccccccc3333"


@pytest.fixture
def api(fake_coder: FakeCoder) -> Iterator[httpx.Client]:
    headers = {"Coder-Session-Token": fake_coder.token}
    # Plain HTTP on loopback: a transport without TLS verification skips loading
    # the CA bundle, which costs ~80 ms per client.
    transport = httpx.HTTPTransport(verify=False)
    with httpx.Client(
        base_url=fake_coder.url, headers=headers, timeout=5, transport=transport
    ) as client:
        yield client


def provider_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "anthropic",
        "name": "anthropic-corp",
        "base_url": "https://api.anthropic.com/",
        "enabled": True,
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def create_provider(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post(PROVIDERS, json=provider_body(**fields))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_model(api: httpx.Client, provider_id: str, **fields: Any) -> dict[str, Any]:
    body = {"ai_provider_id": provider_id, "model": "claude-sonnet-4-5", "context_limit": 200_000}
    body.update(fields)
    response = api.post(MODELS, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_error(response: httpx.Response, status: int, message: str, detail: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "detail", "validations"}
    assert body["message"] == message
    assert detail in body["detail"]


BEDROCK = {
    "_type": "bedrock",
    "_version": 1,
    "region": "us-east-1",
    "model": "anthropic.claude-sonnet-4-5",
    "small_fast_model": "anthropic.claude-haiku-4-5",
    "access_key": "AKIAEXAMPLEKEY000001",
    "access_key_secret": "bedrock-secret-value-0001",
}


# ------------------------------------------------------------------ masking


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-ant-api03-abcdefgh", "sk-a...efgh"),
        ("thisisquitelong", "th...ng"),
        ("short", "s...t"),
        ("abcd", "..."),
        ("", ""),
        ("a" * 19 + "Z", "aaaa...aaaZ"),
        ("0123456789abcdefghi", "01...hi"),
        ("123456789", "1...9"),
        ("äöüäöüäöüä", "äö...üä"),
    ],
)
def test_mask_secret(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked


def test_provider_keys_are_returned_masked_only(api: httpx.Client) -> None:
    created = create_provider(api, api_keys=["sk-ant-api03-abcdefgh"])
    assert [k["masked"] for k in created["api_keys"]] == ["sk-a...efgh"]
    assert "sk-ant-api03-abcdefgh" not in api.get(f"{PROVIDERS}/{created['id']}").text


# --------------------------------------------------------- auth and routing


def test_missing_token_is_401(fake_coder: FakeCoder) -> None:
    response = httpx.get(f"{fake_coder.url}{PROVIDERS}")
    assert_error(response, 401, "You must be logged in to use this endpoint.")


def test_wrong_token_is_401_and_never_echoed(fake_coder: FakeCoder) -> None:
    response = httpx.get(f"{fake_coder.url}{PROVIDERS}", headers={"Coder-Session-Token": "nope-x"})
    assert response.status_code == 401
    assert response.json()["message"].startswith("You must be logged in")
    assert "nope-x" not in response.text and fake_coder.token not in response.text


def test_buildinfo_reports_configurable_version(fake_coder: FakeCoder) -> None:
    assert httpx.get(f"{fake_coder.url}/api/v2/buildinfo").json() == {"version": "v2.38.0"}
    fake_coder.version = "v2.37.1"
    assert httpx.get(f"{fake_coder.url}/api/v2/buildinfo").json()["version"] == "v2.37.1"


def test_unknown_route_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/api/v2/nothing-here"), 404, "Route not found.")
    assert_error(api.get(f"{PROVIDERS}/"), 404, "Route not found.")


def test_wrong_method_is_405(api: httpx.Client) -> None:
    response = api.put(PROVIDERS, json={})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2]", b'{"name": 5}', b'{"enabled": "yes"}', b'{"a": NaN}'],
)
def test_undecodable_body_is_400(api: httpx.Client, content: bytes) -> None:
    response = api.post(PROVIDERS, content=content)
    assert_error(response, 400, "Request body must be valid JSON.")


def test_unknown_top_level_fields_are_ignored(api: httpx.Client) -> None:
    created = create_provider(api, surprise={"x": 1})
    assert "surprise" not in created


def test_organizations_and_me(api: httpx.Client, fake_coder: FakeCoder) -> None:
    orgs = api.get("/api/v2/organizations").json()
    assert [(o["name"], o["is_default"]) for o in orgs] == [("coder", True)]
    org_id = orgs[0]["id"]
    assert api.get(f"/api/v2/organizations/{org_id}").json()["name"] == "coder"
    assert api.get("/api/v2/organizations/coder").json()["id"] == org_id
    assert api.get("/api/v2/organizations/missing").status_code == 404
    assert api.get("/api/v2/users/me").json()["username"] == "admin"
    other = fake_coder.add_organization("research")
    assert api.get(f"/api/v2/organizations/{other}").json()["is_default"] is False


# ---------------------------------------------------------------- providers


def test_create_provider_defaults(api: httpx.Client) -> None:
    created = create_provider(api, enabled=None, display_name=None)
    assert created["enabled"] is False  # Go zero value when omitted
    assert created["display_name"] == "anthropic-corp"
    assert created["settings"] is None
    assert created["api_keys"] == []
    assert api.get(PROVIDERS).json() == [created]


@pytest.mark.parametrize(
    ("fields", "field", "detail"),
    [
        ({"type": None}, "type", "type is required"),
        ({"type": "mistral"}, "type", 'unsupported provider type "mistral"'),
        ({"name": None}, "name", "name is required"),
        ({"name": "Bad_Name"}, "name", "name must match ^[a-z0-9]+(-[a-z0-9]+)*$"),
        ({"name": "trailing-"}, "name", "name must match"),
        ({"base_url": None}, "base_url", "base_url is required"),
        ({"base_url": "api.example.com/v1"}, "base_url", "base_url must be an absolute URL"),
        ({"base_url": "ftp://files.example.com"}, "base_url", 'got "ftp"'),
        ({"api_keys": [""]}, "api_keys[0]", "api_keys entries must not be empty"),
        ({"api_keys": ["ok-key-1", " sk-x"]}, "api_keys[1]", "leading or trailing whitespace"),
        ({"api_keys": [f"key-{i}" for i in range(6)]}, "api_keys", "at most 5"),
        (
            {"type": "copilot", "api_keys": ["gh-token-1"]},
            "api_keys",
            "type=copilot does not accept api_keys",
        ),
        (
            {"type": "bedrock", "api_keys": ["k-1"], "settings": BEDROCK},
            "api_keys",
            "type=bedrock does not accept api_keys",
        ),
        ({"type": "bedrock"}, "settings", "type=bedrock requires bedrock settings"),
        (
            {"type": "openai", "settings": BEDROCK},
            "settings",
            "bedrock settings are only valid for type=anthropic or type=bedrock",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "model": ""}},
            "settings.model",
            "model is required for the invoke-model protocol",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "protocol": "mantle", "region": ""}},
            "settings.region",
            "region is required for the mantle protocol",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "protocol": "grpc"}},
            "settings.protocol",
            "protocol must be one of invoke-model, mantle",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "role_arn": "BedrockRole"}},
            "settings.role_arn",
            "is not a valid ARN, e.g. arn:aws:iam::123456789012:role/BedrockRole",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "role_arn": "arn:aws:s3:::bucket"}},
            "settings.role_arn",
            "must be an IAM ARN",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "role_arn": "arn:aws:iam::1:user/bob"}},
            "settings.role_arn",
            "must reference an IAM role",
        ),
        (
            {"type": "bedrock", "settings": {**BEDROCK, "external_id": "mine"}},
            "settings.external_id",
            "external_id is server-generated and cannot be set",
        ),
    ],
)
def test_create_provider_validation(
    api: httpx.Client, fields: dict[str, Any], field: str, detail: str
) -> None:
    body = provider_body(**fields)
    for key, value in fields.items():
        if value is None:
            body.pop(key, None)
    response = api.post(PROVIDERS, json=body)
    assert_error(response, 400, "Invalid AI provider request.", detail)
    assert field in [v["field"] for v in response.json()["validations"]]
    assert api.get(PROVIDERS).json() == []


def headers_settings(headers: dict[str, str]) -> dict[str, Any]:
    return {"_type": "upstream-headers", "_version": 1, "headers": headers}


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"Authorization": "Bearer x"}, "is managed by the gateway and cannot be overridden"),
        ({"X-AI-Bridge-Actor-Id": "x"}, "is managed by the gateway"),
        ({"Cookie": "a=b"}, "is managed by the gateway"),
        ({"bad header": "x"}, "is not a valid HTTP token"),
        ({"X-" + "a" * 127: "x"}, "exceeds 128 characters"),
        ({"X-Team": ""}, "value must not be empty"),
        ({"X-Team": "a\r\nInjected: yes"}, "must not contain control characters"),
        ({"X-Team": "v" * 4097}, "exceeds 4096 bytes"),
        ({"X-Chat": "{{user_id}}"}, 'unknown placeholder "{{user_id}}"; only "{{chat_id}}"'),
        ({"X-Chat": "chat-{{chat_id"}, "header value has an unterminated {{ placeholder"),
        ({"X-Chat": "{{chat_id}}-{{"}, "header value has an unterminated {{ placeholder"),
        ({"X-Team": "a", "x-team": "b"}, "names are case-insensitive"),
        ({f"X-H{i}": "v" for i in range(17)}, "at most 16 upstream headers"),
    ],
)
def test_upstream_header_validation(
    api: httpx.Client, headers: dict[str, str], detail: str
) -> None:
    response = api.post(PROVIDERS, json=provider_body(settings=headers_settings(headers)))
    assert_error(response, 400, "Invalid AI provider request.", detail)


def test_upstream_headers_are_echoed(api: httpx.Client) -> None:
    headers = {"X-Team": "platform", "X-Chat": "{{chat_id}}"}
    created = create_provider(api, settings=headers_settings(headers))
    assert created["settings"] == headers_settings(headers)


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        ({"region": "us-east-1"}, "settings missing _type discriminator"),
        ({"_type": "azure-ad", "_version": 1}, 'unknown settings type "azure-ad"'),
        ({**BEDROCK, "_version": 2}, 'unsupported "bedrock" settings version 2 (expected 1)'),
        ({**BEDROCK, "_version": None}, 'unsupported "bedrock" settings version 0'),
        ("bedrock", "cannot unmarshal string"),
    ],
)
def test_settings_union_decoding(api: httpx.Client, settings: Any, detail: str) -> None:
    response = api.post(PROVIDERS, json=provider_body(type="bedrock", settings=settings))
    assert_error(response, 400, "Request body must be valid JSON.", detail)


def claude_platform_settings(**fields: str) -> dict[str, Any]:
    settings = {"_type": "claude_platform_aws", "_version": 1, "region": "us-east-1",
                "workspace_id": "wrkspc_123"}
    return {k: v for k, v in {**settings, **fields}.items() if v}


CLAUDE_PLATFORM_URL = "https://aws-external-anthropic.us-east-1.api.aws/"


def test_claude_platform_settings_round_trip_with_or_without_keys(api: httpx.Client) -> None:
    created = create_provider(api, base_url=CLAUDE_PLATFORM_URL, settings=claude_platform_settings())
    assert created["settings"] == claude_platform_settings()
    assert created["api_keys"] == []
    keyed = create_provider(api, name="claude-keyed", base_url=CLAUDE_PLATFORM_URL, api_keys=[KEY_A],
                            settings=claude_platform_settings(workspace_id="wrkspc_456"))
    assert keyed["settings"]["workspace_id"] == "wrkspc_456" and len(keyed["api_keys"]) == 1
    patched = api.patch(f"{PROVIDERS}/{created['id']}",
                        json={"settings": claude_platform_settings(region="eu-west-1")})
    assert patched.status_code == 200, patched.text
    assert api.get(f"{PROVIDERS}/{created['id']}").json()["settings"]["region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("fields", "field", "detail"),
    [
        ({"type": "openai", "base_url": "https://api.openai.com/v1"}, "settings",
         "claude_platform_aws settings are only valid for type=anthropic"),
        ({"settings": claude_platform_settings(region="")}, "settings.region", "region is required"),
        ({"settings": claude_platform_settings(workspace_id="")}, "settings.workspace_id",
         "workspace_id is required"),
    ],
)
def test_claude_platform_settings_validation(
    api: httpx.Client, fields: dict[str, Any], field: str, detail: str
) -> None:
    body = provider_body(base_url=CLAUDE_PLATFORM_URL, settings=claude_platform_settings())
    body.update(fields)
    response = api.post(PROVIDERS, json=body)
    assert_error(response, 400, "Invalid AI provider request.", detail)
    assert field in [v["field"] for v in response.json()["validations"]]
    assert api.get(PROVIDERS).json() == []


def test_duplicate_provider_name_is_409(api: httpx.Client) -> None:
    create_provider(api)
    response = api.post(PROVIDERS, json=provider_body())
    assert_error(response, 409, 'AI provider "anthropic-corp" already exists.')


def wif_settings(**fields: str) -> dict[str, Any]:
    settings = {
        "_type": "wif",
        "_version": 1,
        "federation_rule_id": "fdrl_01abc",
        "organization_id": "org-123",
        "identity_token_file": "/var/run/secrets/token",
    }
    return {**settings, **fields}


def test_wif_rules(api: httpx.Client) -> None:
    response = api.post(PROVIDERS, json=provider_body(type="openai", settings=wif_settings()))
    assert_error(response, 400, "WIF settings are only valid for type=anthropic.")
    response = api.post(PROVIDERS, json=provider_body(api_keys=[KEY_A], settings=wif_settings()))
    assert_error(response, 400, WIF_KEYS_MESSAGE)
    body = provider_body(base_url="http://anthropic.internal/", settings=wif_settings())
    assert_error(
        api.post(PROVIDERS, json=body),
        400,
        "WIF providers require an https base_url; http is allowed for loopback hosts only.",
    )
    body = provider_body(settings=wif_settings(identity_token_file="token"))
    assert_error(api.post(PROVIDERS, json=body), 400, "Invalid AI provider request.", "absolute")
    created = create_provider(api, base_url="http://127.0.0.1:9000/", settings=wif_settings())
    assert created["settings"] == wif_settings()


def test_enabling_wif_requires_clearing_keys_in_the_same_patch(api: httpx.Client) -> None:
    created = create_provider(api, api_keys=[KEY_A])
    url = f"{PROVIDERS}/{created['id']}"
    response = api.patch(url, json={"settings": wif_settings()})
    assert_error(response, 400, WIF_KEYS_MESSAGE)
    response = api.patch(url, json={"settings": wif_settings(), "api_keys": []})
    assert response.status_code == 200
    assert response.json()["api_keys"] == []


def test_bedrock_secrets_are_write_only(api: httpx.Client, fake_coder: FakeCoder) -> None:
    created = create_provider(api, type="bedrock", name="bedrock", settings=BEDROCK)
    settings = created["settings"]
    assert "access_key" not in settings and "access_key_secret" not in settings
    assert settings["region"] == "us-east-1" and settings["_version"] == 1
    assert settings["external_id"]
    assert BEDROCK["access_key"] in fake_coder.secrets_seen
    assert BEDROCK["access_key_secret"] in fake_coder.secrets_seen
    assert BEDROCK["access_key_secret"] not in api.get(f"{PROVIDERS}/bedrock").text
    assert "bedrock-secret" not in repr(fake_coder.secrets_seen)


def test_bedrock_patch_merges_secrets_and_keeps_external_id(
    api: httpx.Client, fake_coder: FakeCoder
) -> None:
    created = create_provider(api, type="bedrock", name="bedrock", settings=BEDROCK)
    external_id = created["settings"]["external_id"]
    without_secrets = {k: v for k, v in BEDROCK.items() if not k.startswith("access_key")}
    patched = api.patch(f"{PROVIDERS}/bedrock", json={"settings": {**without_secrets}}).json()
    stored = fake_coder.state.providers[created["id"]].settings
    assert stored is not None and stored["access_key"] == BEDROCK["access_key"]
    assert patched["settings"]["external_id"] == external_id

    same = {**without_secrets, "external_id": external_id, "access_key": ""}
    assert api.patch(f"{PROVIDERS}/bedrock", json={"settings": same}).status_code == 200
    stored = fake_coder.state.providers[created["id"]].settings
    assert stored is not None and "access_key" not in stored
    assert stored["access_key_secret"] == BEDROCK["access_key_secret"]

    changed = {**without_secrets, "external_id": "other"}
    response = api.patch(f"{PROVIDERS}/bedrock", json={"settings": changed})
    assert_error(
        response, 400, "The Bedrock external ID is server-generated and cannot be changed."
    )
    response = api.patch(f"{PROVIDERS}/bedrock", json={"settings": {}})
    assert_error(response, 400, "Invalid AI provider request.", "requires bedrock settings")


def test_provider_lookup_by_id_or_name(api: httpx.Client) -> None:
    created = create_provider(api)
    assert api.get(f"{PROVIDERS}/{created['id']}").json() == created
    assert api.get(f"{PROVIDERS}/anthropic-corp").json() == created
    assert_error(
        api.get(f"{PROVIDERS}/Not_A_Name"),
        400,
        "Invalid provider id or name: must be a UUID or match ^[a-z0-9]+(-[a-z0-9]+)*$.",
    )
    assert_error(
        api.get(f"{PROVIDERS}/unknown-name"),
        404,
        "Resource not found or you do not have access to this resource",
    )


@pytest.mark.parametrize(
    "body", [b"{}", b'{"name": "renamed", "type": "openai"}', b'{"display_name": null}', b"null"]
)
def test_empty_patch_is_400(api: httpx.Client, body: bytes) -> None:
    create_provider(api)
    response = api.patch(f"{PROVIDERS}/anthropic-corp", content=body)
    assert_error(response, 400, "At least one field must be provided.")


def test_patch_fields_and_display_name_fallback(api: httpx.Client) -> None:
    create_provider(api, display_name="Anthropic (corp)")
    patched = api.patch(
        f"{PROVIDERS}/anthropic-corp",
        json={"display_name": "", "icon": "/icon/claude.svg", "enabled": False},
    ).json()
    assert patched["display_name"] == "anthropic-corp"
    assert patched["icon"] == "/icon/claude.svg"
    assert patched["enabled"] is False
    response = api.patch(f"{PROVIDERS}/anthropic-corp", json={"base_url": "not a url"})
    assert_error(response, 400, "Invalid AI provider request.", "absolute URL")


def test_api_key_mutations(api: httpx.Client, fake_coder: FakeCoder) -> None:
    created = create_provider(api, api_keys=[KEY_A, KEY_B])
    first, second = (k["id"] for k in created["api_keys"])
    url = f"{PROVIDERS}/{created['id']}"

    patched = api.patch(url, json={"api_keys": [{"api_key": KEY_C}, {"id": second}]}).json()
    assert [k["masked"] for k in patched["api_keys"]] == [mask_secret(KEY_C), mask_secret(KEY_B)]
    assert patched["api_keys"][1]["id"] == second
    assert first not in {k["id"] for k in patched["api_keys"]}
    assert KEY_C in fake_coder.secrets_seen

    untouched = api.patch(url, json={"enabled": False}).json()
    assert untouched["api_keys"] == patched["api_keys"]
    cleared = api.patch(url, json={"api_keys": []}).json()
    assert cleared["api_keys"] == []


@pytest.mark.parametrize(
    ("mutations", "message", "detail"),
    [
        ([{"id": "KEEP", "api_key": KEY_C}], "Invalid AI provider request.", "exactly one of"),
        ([{}], "Invalid AI provider request.", "exactly one of id or api_key must be set"),
        ([{"api_key": ""}], "Invalid AI provider request.", "api_key must not be empty"),
        ([{"api_key": KEY_C + "\n"}], "Invalid AI provider request.", "whitespace"),
        (
            [{"id": "KEEP"}, {"id": "KEEP"}],
            "Invalid AI provider request.",
            "already referenced at api_keys[0]",
        ),
        (
            [{"id": "00000000-0000-4000-8000-000000000000"}],
            "api_keys references an unknown id for this provider",
            "",
        ),
        ([{"id": "not-a-uuid"}], "Request body must be valid JSON.", ""),
    ],
)
def test_api_key_mutation_errors(
    api: httpx.Client, mutations: list[dict[str, str]], message: str, detail: str
) -> None:
    created = create_provider(api, api_keys=[KEY_A])
    keep = created["api_keys"][0]["id"]
    entries = [{k: keep if v == "KEEP" else v for k, v in m.items()} for m in mutations]
    response = api.patch(f"{PROVIDERS}/{created['id']}", json={"api_keys": entries})
    assert_error(response, 400, message, detail)
    assert api.get(f"{PROVIDERS}/{created['id']}").json()["api_keys"] == created["api_keys"]


def test_keyless_types_reject_keys_on_patch(api: httpx.Client) -> None:
    create_provider(api, type="copilot", name="copilot", base_url="https://api.githubcopilot.com")
    response = api.patch(f"{PROVIDERS}/copilot", json={"api_keys": [{"api_key": KEY_A}]})
    assert_error(
        response,
        400,
        "Copilot providers do not accept api_keys; "
        "they authenticate via request-time GitHub OAuth tokens.",
    )
    create_provider(api, type="bedrock", name="bedrock", settings=BEDROCK)
    response = api.patch(f"{PROVIDERS}/bedrock", json={"api_keys": [{"api_key": KEY_A}]})
    assert_error(
        response,
        400,
        "Bedrock providers do not accept api_keys; configure access credentials via settings.",
    )


def test_delete_is_soft_and_idempotent(api: httpx.Client, fake_coder: FakeCoder) -> None:
    created = create_provider(api)
    url = f"{PROVIDERS}/{created['id']}"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.patch(url, json={"enabled": True}).status_code == 404
    assert api.get(PROVIDERS).json() == []
    assert api.delete(url).status_code == 204
    assert api.delete(f"{PROVIDERS}/anthropic-corp").status_code == 204
    assert fake_coder.state.providers[created["id"]].deleted
    assert create_provider(api)["id"] != created["id"]


# ------------------------------------------------------------------ models


def test_create_model_defaults_and_first_default(api: httpx.Client) -> None:
    provider = create_provider(api, api_keys=[KEY_A])
    first = create_model(api, provider["id"], model="  claude-sonnet-4-5 ")
    assert first["model"] == "claude-sonnet-4-5"
    assert first["display_name"] == "claude-sonnet-4-5"
    assert first["enabled"] is True
    assert first["is_default"] is True
    assert first["compression_threshold"] == 70
    assert "model_config" not in first and first["reasoning_efforts"] == []
    second = create_model(api, provider["id"], model="claude-opus-4-1", context_limit=1_000_000)
    assert second["is_default"] is False
    assert second["compression_threshold"] == 30
    third = create_model(
        api, provider["id"], model="claude-haiku-4-5", compression_threshold=0, enabled=False
    )
    assert third["compression_threshold"] == 0 and third["enabled"] is False

    listing = api.get(MODELS).json()
    assert [m["id"] for m in listing["models"]] == [first["id"], second["id"], third["id"]]
    assert listing["providers"][0]["id"] == provider["id"]
    assert listing["providers"][0]["has_api_key"] is True
    assert listing["unsupported_providers"] == []


def defaults(api: httpx.Client) -> list[str]:
    return [m["model"] for m in api.get(MODELS).json()["models"] if m["is_default"]]


def test_default_model_promotion_and_demotion(api: httpx.Client) -> None:
    provider = create_provider(api)
    a = create_model(api, provider["id"], model="a")
    b = create_model(api, provider["id"], model="b", is_default=True)
    assert defaults(api) == ["b"]
    api.patch(f"{MODELS}/{a['id']}", json={"is_default": True})
    assert defaults(api) == ["a"]
    response = api.patch(f"{MODELS}/{a['id']}", json={"is_default": False})
    assert response.json()["is_default"] is False
    assert defaults(api) == ["b"]
    assert api.delete(f"{MODELS}/{b['id']}").status_code == 204
    assert defaults(api) == ["a"]
    api.patch(f"{MODELS}/{a['id']}", json={"is_default": False})
    assert defaults(api) == ["a"]  # the only model stays default


@pytest.mark.parametrize(
    ("fields", "status", "message", "detail"),
    [
        ({"model": "   "}, 400, "Model is required.", ""),
        (
            {"context_limit": 0},
            400,
            "Context limit is required.",
            "context_limit must be greater than zero.",
        ),
        ({"context_limit": None}, 400, "Context limit is required.", ""),
        (
            {"compression_threshold": 101},
            400,
            "Invalid compression threshold.",
            "context_compression_threshold must be between 0 and 100",
        ),
        ({"compression_threshold": -1}, 400, "Invalid compression threshold.", ""),
        (
            {"ai_provider_id": "00000000-0000-4000-8000-000000000000"},
            400,
            "Chat provider is not configured.",
            "",
        ),
        ({"context_limit": 1.5}, 400, "Request body must be valid JSON.", "int64"),
        ({"compression_threshold": 2**31}, 400, "Request body must be valid JSON.", "int32"),
    ],
)
def test_create_model_validation(
    api: httpx.Client, fields: dict[str, Any], status: int, message: str, detail: str
) -> None:
    provider = create_provider(api)
    body = {"ai_provider_id": provider["id"], "model": "m", "context_limit": 1000, **fields}
    assert_error(api.post(MODELS, json=body), status, message, detail)
    assert api.get(MODELS).json()["models"] == []


def test_model_provider_must_be_usable(api: httpx.Client) -> None:
    copilot = create_provider(api, type="copilot", name="gh", base_url="https://api.github.com")
    response = api.post(
        MODELS, json={"ai_provider_id": copilot["id"], "model": "gpt-5", "context_limit": 1}
    )
    assert response.status_code == 400
    assert "cannot back Coder Agents" in response.json()["detail"]
    assert api.get(MODELS).json()["providers"] == []
    gone = create_provider(api)
    api.delete(f"{PROVIDERS}/{gone['id']}")
    response = api.post(
        MODELS, json={"ai_provider_id": gone["id"], "model": "m", "context_limit": 1}
    )
    assert_error(response, 400, "Chat provider is not configured.")


def test_duplicate_model_is_409(api: httpx.Client) -> None:
    provider = create_provider(api)
    create_model(api, provider["id"], model="a")
    b = create_model(api, provider["id"], model="b")
    response = api.post(
        MODELS, json={"ai_provider_id": provider["id"], "model": "a", "context_limit": 5}
    )
    assert_error(response, 409, "Chat model config already exists.")
    assert_error(
        api.patch(f"{MODELS}/{b['id']}", json={"model": "a"}),
        409,
        "Chat model config already exists.",
    )


def test_patch_model(api: httpx.Client) -> None:
    provider = create_provider(api)
    model = create_model(api, provider["id"], display_name="Sonnet")
    url = f"{MODELS}/{model['id']}"
    patched = api.patch(url, json={"model": "", "display_name": "", "context_limit": 300}).json()
    assert (patched["model"], patched["display_name"]) == (model["model"], "Sonnet")
    assert patched["context_limit"] == 300
    assert_error(
        api.patch(url, json={"context_limit": 0}), 400, "Context limit must be greater than zero."
    )
    assert api.get(url).json()["context_limit"] == 300


def test_models_are_scoped_to_their_organization(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.add_organization("research")
    provider = create_provider(api)
    model = create_model(api, provider["id"])
    other = f"/api/v2/organizations/research/chats/models/{model['id']}"
    assert api.get(other).status_code == 404
    assert api.get(f"{MODELS}/{model['id']}").status_code == 200
    assert api.get("/api/v2/organizations/nope/chats/models").status_code == 404
    assert_error(api.get(f"{MODELS}/not-a-uuid"), 400, 'Invalid UUID "not-a-uuid".')


# ------------------------------------------------------------ model_config


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"temprature": 1}, 'unknown field "temprature"'),
        (
            {"provider_options": {"anthropic": {"thinking": {"budget": 10}}}},
            'unknown field "budget"',
        ),
        ({"provider_options": {"mistral": {}}}, 'unknown field "mistral"'),
        ({"provider_options": {"openai": {"reasoning_summary": 1}}}, "cannot unmarshal number"),
        ({"provider_options": {"anthropic": {"effort": "max"}}}, 'unknown field "effort"'),
        (
            {"provider_options": {"openai": {"reasoning_effort": "high"}}},
            'unknown field "reasoning_effort"',
        ),
        (
            {"provider_options": {"openaicompat": {"reasoning_effort": "high"}}},
            'unknown field "reasoning_effort"',
        ),
        (
            {"provider_options": {"vercel": {"reasoning": {"effort": "low"}}}},
            'unknown field "effort"',
        ),
        (
            {"provider_options": {"google": {"thinking_config": {"thinking_level": "max"}}}},
            "provider_options.google.thinking_config.thinking_level must be one of "
            "minimal, low, medium, high",
        ),
        (
            {
                "provider_options": {
                    "google": {"thinking_config": {"thinking_level": "low", "thinking_budget": 9}}
                }
            },
            "thinking_level cannot be combined with thinking_budget",
        ),
        ({"max_output_tokens": "1000"}, "cannot unmarshal string"),
        ({"max_output_tokens": 10.5}, "cannot unmarshal number"),
        ({"temperature": 2.5}, "temperature must be between 0 and 2"),
        ({"reasoning_effort": {"default": "low"}}, "must both be set"),
        ({"reasoning_effort": {"max": "high"}}, "must both be set"),
        ({"reasoning_effort": {"default": "high", "max": "low"}}, "exceeds reasoning_effort.max"),
        ({"reasoning_effort": {"default": "low", "max": "extreme"}}, "is not one of"),
        ({"openai_config": {"use_responses_api": "yes"}}, "cannot unmarshal string"),
        (
            {
                "provider_options": {
                    "anthropic": {"allowed_domains": ["a"], "blocked_domains": ["b"]}
                }
            },
            "cannot be used together",
        ),
        ([], "cannot unmarshal array"),
    ],
)
def test_model_config_is_strict(api: httpx.Client, config: Any, detail: str) -> None:
    provider = create_provider(api)
    body = {
        "ai_provider_id": provider["id"],
        "model": "m",
        "context_limit": 10,
        "model_config": config,
    }
    assert_error(api.post(MODELS, json=body), 400, "Invalid model config.", detail)


def test_model_config_round_trip(api: httpx.Client) -> None:
    provider = create_provider(api)
    config = {
        "provider_options": {
            "anthropic": {
                "context_1m_enabled": True,
                "thinking": {"budget_tokens": 4096},
                "allowed_domains": [],
            },
            "openai": {"text_verbosity": "low"},
        },
        "reasoning_effort": {"max": "high", "default": "medium"},
        "temperature": 1.0,
        "max_output_tokens": 8192,
        "cost": {"input_price_per_million_tokens": "3"},
        "output_price_per_million_tokens": 15,
        "top_k": None,
    }
    model = create_model(api, provider["id"], model_config=config)
    stored = model["model_config"]
    assert list(stored) == [
        "max_output_tokens",
        "temperature",
        "reasoning_effort",
        "provider_options",
    ]
    assert stored["temperature"] == 1 and isinstance(stored["temperature"], int)
    assert stored["provider_options"]["anthropic"] == {
        "thinking": {"budget_tokens": 4096},
        "context_1m_enabled": True,
    }
    assert model["reasoning_efforts"] == ["none", "minimal", "low", "medium", "high"]

    url = f"{MODELS}/{model['id']}"
    assert api.patch(url, json={"model_config": None}).json()["model_config"] == stored
    cleared = api.patch(url, json={"model_config": {}}).json()
    assert "model_config" not in cleared and cleared["reasoning_efforts"] == []


def test_every_family_accepts_its_documented_options(api: httpx.Client) -> None:
    provider = create_provider(api)
    options = {
        "openai": {"reasoning_summary": "auto", "service_tier": "flex", "store": False},
        "anthropic": {"thinking_display": "summarized", "send_reasoning": True},
        "google": {"thinking_config": {"thinking_level": "high", "include_thoughts": True}},
        "openaicompat": {"user": "acme"},
        "openrouter": {"reasoning": {"enabled": True, "exclude": False, "max_tokens": 100}},
        "vercel": {"reasoning": {"enabled": True}, "parallel_tool_calls": True},
    }
    model = create_model(api, provider["id"], model_config={"provider_options": options})
    assert model["model_config"]["provider_options"] == options


def test_reasoning_summary_and_service_tier_are_free_strings(api: httpx.Client) -> None:
    """Coder's `enum` struct tags are UI hints: these two are stored as any string."""
    provider = create_provider(api)
    options = {"openai": {"reasoning_summary": "brief", "service_tier": "reserved"}}
    model = create_model(api, provider["id"], model_config={"provider_options": options})
    assert model["model_config"]["provider_options"] == options


# ------------------------------------------------------------------ prices


def test_price_listing_sources(api: httpx.Client) -> None:
    listed = api.get(PRICES).json()
    assert len(listed) == len(DEFAULT_PRICE_BOOK)
    assert {p["source"] for p in listed} == {"default"}
    sonnet = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_price": 3_100_000,
        "output_price": 15_000_000,
        "cache_read_price": None,
        "cache_write_price": 0,
    }
    assert api.post(PRICES, json={"prices": [sonnet]}).status_code == 204

    effective = api.get(PRICES, params={"provider": "anthropic", "model": "claude-sonnet-4-5"})
    assert [(p["source"], p["input_price"]) for p in effective.json()] == [("custom", 3_100_000)]
    assert effective.json()[0]["cache_read_price"] is None
    both = api.get(PRICES, params={"source": "all", "model": "claude-sonnet-4-5"}).json()
    assert [p["source"] for p in both] == ["custom", "default"]
    assert len(api.get(PRICES, params={"source": "custom"}).json()) == 1
    assert len(api.get(PRICES, params={"source": "default"}).json()) == len(DEFAULT_PRICE_BOOK)
    assert_error(
        api.get(PRICES, params={"provider": "openai-compat"}),
        400,
        'Provider "openai-compat" is not supported. Supported providers: anthropic, azure, '
        "bedrock, copilot, google, openai, openrouter, vercel.",
    )
    assert api.get(PRICES, params={"source": "mine"}).status_code == 400


def price(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-5",
        "input_price": 1,
        "output_price": 2,
        "cache_read_price": None,
        "cache_write_price": None,
    }
    entry.update(fields)
    return {k: v for k, v in entry.items() if v != "OMIT"}


@pytest.mark.parametrize(
    ("entries", "field", "detail"),
    [
        ([], "prices", "At least one model price is required."),
        ([price(provider="")], "prices[0].provider", "Provider is required. Supported providers:"),
        (
            [price(provider="openai-compat")],
            "prices[0].provider",
            'Provider "openai-compat" is not supported.',
        ),
        ([price(model=" ")], "prices[0].model", "Model is required."),
        ([price(input_price=-1)], "prices[0].input_price", "Price must not be negative."),
        (
            [price(cache_write_price="OMIT")],
            "prices[0].cache_write_price",
            "Price is required. Use 'null' for a price that is not known.",
        ),
        (
            [price(input_price=None, output_price=None)],
            "prices[0]",
            "At least one price must be set. Use 0 to declare a model free of charge.",
        ),
        (
            [
                price(input_price="OMIT", output_price="OMIT")
                | {"cache_read_price": "OMIT", "cache_write_price": "OMIT"}
            ],
            "prices[0]",
            "At least one price must be set.",
        ),
        (
            [price(), price(model="gpt-5-mini"), price()],
            "prices[2]",
            "openai/gpt-5 appears more than once.",
        ),
        ([price(model="ok"), price(provider="nope")], "prices[1].provider", "is not supported"),
    ],
)
def test_price_validation_rejects_the_whole_request(
    api: httpx.Client, entries: list[dict[str, Any]], field: str, detail: str
) -> None:
    entries = [{k: v for k, v in e.items() if v != "OMIT"} for e in entries]
    response = api.post(PRICES, json={"prices": entries})
    assert_error(response, 400, "Invalid AI model prices.", detail)
    assert field in [v["field"] for v in response.json()["validations"]]
    assert api.get(PRICES, params={"source": "custom"}).json() == []


def test_price_upsert_keeps_other_models_and_created_at(api: httpx.Client) -> None:
    api.post(PRICES, json={"prices": [price(), price(model="gpt-5-mini")]})
    before = {p["model"]: p for p in api.get(PRICES, params={"source": "custom"}).json()}
    time.sleep(0.01)
    assert api.post(PRICES, json={"prices": [price(input_price=7)]}).status_code == 204
    after = {p["model"]: p for p in api.get(PRICES, params={"source": "custom"}).json()}
    assert after["gpt-5"]["input_price"] == 7
    assert after["gpt-5"]["created_at"] == before["gpt-5"]["created_at"]
    assert after["gpt-5"]["updated_at"] != before["gpt-5"]["updated_at"]
    assert after["gpt-5-mini"] == before["gpt-5-mini"]


def test_price_for_a_configured_provider_id(api: httpx.Client) -> None:
    compat = create_provider(api, type="openai-compat", name="vllm", base_url="http://vllm:8000/v1")
    entry = price(provider=None, provider_id=compat["id"], model="llama")
    entry.pop("provider")
    assert api.post(PRICES, json={"prices": [entry]}).status_code == 204
    listed = api.get(PRICES, params={"provider_id": compat["id"]}).json()
    assert [(p["provider"], p["model"]) for p in listed] == [("openai-compat", "llama")]
    unknown = price(provider_id="00000000-0000-4000-8000-000000000000")
    assert api.post(PRICES, json={"prices": [unknown]}).status_code == 400


def test_prices_cannot_be_deleted_and_body_is_capped(api: httpx.Client) -> None:
    assert api.delete(PRICES).status_code == 405
    assert api.put(PRICES, json=[price()]).status_code == 405
    big = {"prices": [price(model="m" * 1024, input_price=i) for i in range(1100)]}
    response = api.post(PRICES, json=big)
    assert_error(response, 413, "Request body too large.")
    response = api.post(PRICES, json={"prices": [price(input_price=1.5)]})
    assert_error(response, 400, "Request body must be valid JSON.")


# --------------------------------------------------------------- overrides


@pytest.fixture
def reasoning_model(api: httpx.Client) -> dict[str, Any]:
    provider = create_provider(api)
    config = {"reasoning_effort": {"default": "low", "max": "medium"}}
    return create_model(api, provider["id"], model_config=config)


def test_overrides_set_list_and_clear(api: httpx.Client, reasoning_model: dict[str, Any]) -> None:
    assert api.get(OVERRIDES).json() == {"overrides": []}
    body = {"model_config_id": reasoning_model["id"], "reasoning_effort": "medium"}
    response = api.put(f"{OVERRIDES}/explore", json=body)
    assert response.status_code == 200
    assert response.json() == {"context": "explore", **body}
    api.put(f"{OVERRIDES}/general", json={"model_config_id": reasoning_model["id"]})
    listed = api.get(OVERRIDES).json()["overrides"]
    assert listed == [
        {"context": "general", "model_config_id": reasoning_model["id"]},
        {"context": "explore", **body},
    ]
    cleared = api.put(f"{OVERRIDES}/explore", json={"model_config_id": ""})
    assert cleared.json() == {"context": "explore", "model_config_id": ""}
    assert [o["context"] for o in api.get(OVERRIDES).json()["overrides"]] == ["general"]


@pytest.mark.parametrize(
    ("context", "body", "message", "detail"),
    [
        ("root", {"model_config_id": ""}, "Invalid model override context.", "general, explore"),
        ("general", {"model_config_id": "nope"}, "Invalid model_config_id.", ""),
        (
            "general",
            {"model_config_id": "00000000-0000-0000-0000-000000000000"},
            "Invalid model_config_id.",
            "",
        ),
        (
            "general",
            {"model_config_id": "00000000-0000-4000-8000-000000000000"},
            "Invalid model_config_id.",
            "",
        ),
        (
            "general",
            {"model_config_id": "MODEL", "reasoning_effort": "high"},
            "Invalid reasoning_effort value.",
            "Must be one of none, minimal, low, medium.",
        ),
        (
            "general",
            {"model_config_id": "MODEL", "reasoning_effort": "turbo"},
            "Invalid reasoning_effort value.",
            "Must be one of none, minimal, low, medium, high, xhigh, max.",
        ),
        (
            "advisor",
            {"model_config_id": "", "reasoning_effort": "low"},
            "reasoning_effort requires model_config_id.",
            "",
        ),
    ],
)
def test_override_validation(
    api: httpx.Client,
    reasoning_model: dict[str, Any],
    context: str,
    body: dict[str, str],
    message: str,
    detail: str,
) -> None:
    sent = {k: reasoning_model["id"] if v == "MODEL" else v for k, v in body.items()}
    assert_error(api.put(f"{OVERRIDES}/{context}", json=sent), 400, message, detail)
    assert api.get(OVERRIDES).json() == {"overrides": []}


def test_override_model_must_be_enabled_same_org_and_support_effort(
    api: httpx.Client, fake_coder: FakeCoder, reasoning_model: dict[str, Any]
) -> None:
    plain = create_model(api, reasoning_model["ai_provider_id"], model="plain")
    response = api.put(
        f"{OVERRIDES}/compaction", json={"model_config_id": plain["id"], "reasoning_effort": "low"}
    )
    assert_error(response, 400, "This model does not support reasoning effort.")
    api.patch(f"{MODELS}/{plain['id']}", json={"enabled": False})
    response = api.put(f"{OVERRIDES}/compaction", json={"model_config_id": plain["id"]})
    assert_error(response, 400, "Invalid model_config_id.")
    fake_coder.add_organization("research")
    response = api.put(
        "/api/v2/organizations/research/chats/model-overrides/general",
        json={"model_config_id": reasoning_model["id"]},
    )
    assert_error(response, 400, "Invalid model_config_id.")


def test_personal_override_toggle(api: httpx.Client) -> None:
    assert api.get(TOGGLE).json() == {"allow_users": False}
    response = api.put(TOGGLE, json={"allow_users": True})
    assert response.status_code == 204 and response.content == b""
    assert api.get(TOGGLE).json() == {"allow_users": True}


# ------------------------------------------------------------------ faults


def test_injected_status_with_retry_after(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.inject(status=503, times=2, method="POST", path_prefix=PROVIDERS, retry_after=2)
    assert api.get(PROVIDERS).status_code == 200  # method does not match
    for _ in range(2):
        response = api.post(PROVIDERS, json=provider_body())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json()["message"] == "Service Unavailable."
    assert api.post(PROVIDERS, json=provider_body()).status_code == 201
    assert fake_coder.count("POST", PROVIDERS) == 3
    assert [r.status for r in fake_coder.requests] == [200, 503, 503, 201]


def test_injected_custom_body(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.inject(status=429, body="slow down", path_prefix="/api/experimental")
    response = api.get(PRICES)
    assert response.status_code == 429 and response.text == "slow down"
    assert "Retry-After" not in response.headers


def test_dropped_connection(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.inject(drop_connection=True, method="GET")
    with pytest.raises(httpx.TransportError):
        api.get(PROVIDERS)
    assert api.get(PROVIDERS).status_code == 200
    assert [r.status for r in fake_coder.requests] == [0, 200]


def test_delay_past_client_timeout_still_applies_the_write(
    api: httpx.Client, fake_coder: FakeCoder
) -> None:
    fake_coder.inject(delay=0.6, method="POST")
    with pytest.raises(httpx.ReadTimeout):
        api.post(PROVIDERS, json=provider_body(), timeout=0.2)
    deadline = time.monotonic() + 3
    while not fake_coder.state.providers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p.name for p in fake_coder.state.providers.values()] == ["anthropic-corp"]
    assert fake_coder.server_errors == []


def test_latency_is_added_to_every_request(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.latency = 0.05
    started = time.monotonic()
    api.get(PROVIDERS)
    api.get("/api/v2/buildinfo")
    assert time.monotonic() - started >= 0.1


def test_connections_queue_beyond_socketservers_default_backlog(fake_coder: FakeCoder) -> None:
    """socketserver listens with a backlog of 5: a burst of clients would wait for SYN retries."""
    server = fake_coder._server
    assert server is not None
    server.shutdown()  # stop accepting: new connections now wait in the listen queue
    host, port = server.server_address[:2]
    connected: list[socket.socket] = []
    try:
        for _ in range(32):
            connected.append(socket.create_connection((str(host), port), timeout=0.5))
    except TimeoutError:
        pass
    finally:
        for sock in connected:
            sock.close()
    assert len(connected) == 32


def test_inject_arguments_are_checked(fake_coder: FakeCoder) -> None:
    with pytest.raises(ValueError):
        fake_coder.inject()
    with pytest.raises(ValueError):
        fake_coder.inject(status=500, drop_connection=True)
    with pytest.raises(ValueError):
        fake_coder.inject(status=500, times=0)


# --------------------------------------------------------------- recording


def test_requests_are_recorded(api: httpx.Client, fake_coder: FakeCoder) -> None:
    create_provider(api, api_keys=[KEY_A])
    api.get(PRICES, params={"source": "all", "model": "gpt-5"})
    post, get = fake_coder.requests
    assert (post.method, post.path, post.status) == ("POST", PROVIDERS, 201)
    assert post.body["api_keys"] == [KEY_A]
    assert post.headers["coder-session-token"] == fake_coder.token
    assert KEY_A not in repr(post) and KEY_A not in repr(fake_coder.secrets_seen)
    assert (get.query, get.body) == ({"source": "all", "model": "gpt-5"}, None)
    assert fake_coder.count() == 2
    assert fake_coder.count(method="get") == 1
    assert fake_coder.count(path_prefix="/api/v2/") == 1
    fake_coder.reset_requests()
    assert fake_coder.requests == [] and fake_coder.count() == 0


def test_concurrent_writes_are_serialised(api: httpx.Client, fake_coder: FakeCoder) -> None:
    def create(i: int) -> None:
        api.post(PROVIDERS, json=provider_body(name=f"p-{i}"))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(api.get(PROVIDERS).json()) == 16
    assert fake_coder.count("POST") == 16


# ------------------------------------------------------------ older servers


@pytest.mark.parametrize(
    ("collection", "path"),
    [
        ("providers", f"{PROVIDERS}/anthropic-corp"),
        ("models", MODELS),
        ("prices", PRICES),
        ("overrides", f"{OVERRIDES}/general"),
        ("toggle", TOGGLE),
    ],
)
def test_missing_endpoints_answer_404(
    api: httpx.Client, fake_coder: FakeCoder, collection: str, path: str
) -> None:
    fake_coder.missing_endpoints = {collection}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        response = api.request(method, path, json={})
        assert_error(response, 404, "Route not found.")
    assert api.get("/api/v2/organizations").status_code == 200


def test_missing_endpoints_names_are_checked(fake_coder: FakeCoder) -> None:
    with pytest.raises(ValueError):
        fake_coder.missing_endpoints = {"price"}


def test_drop_fields_silently_ignores_request_fields(
    api: httpx.Client, fake_coder: FakeCoder
) -> None:
    fake_coder.drop_fields = {"provider": {"icon"}, "model": {"compression_threshold"}}
    provider = create_provider(api, icon="/icon/claude.svg")
    assert provider["icon"] == ""
    assert_error(
        api.patch(f"{PROVIDERS}/{provider['id']}", json={"icon": "/x.svg"}),
        400,
        "At least one field must be provided.",
    )
    model = create_model(api, provider["id"], compression_threshold=55)
    assert model["compression_threshold"] == 70
    with pytest.raises(ValueError):
        fake_coder.drop_fields = {"providers": {"icon"}}


def test_fixture_state(fake_coder: FakeCoder) -> None:
    orgs = list(fake_coder.state.organizations.values())
    assert [(o.name, o.is_default) for o in orgs] == [("coder", True)]
    assert len(fake_coder.state.default_prices) == len(DEFAULT_PRICE_BOOK)
    assert fake_coder.url.startswith("http://127.0.0.1:")


def test_stop_closes_idle_keep_alive_connections() -> None:
    with FakeCoder(token="t") as coder, httpx.Client(base_url=coder.url) as client:
        assert client.get("/api/v2/buildinfo").status_code == 200
        coder.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/api/v2/buildinfo")
    with pytest.raises(RuntimeError):
        _ = coder.url


def test_claude_platform_settings_are_unknown_to_coder_2_37(api: httpx.Client, fake_coder: FakeCoder) -> None:
    fake_coder.version = "v2.37.4"
    body = provider_body(base_url=CLAUDE_PLATFORM_URL, settings=claude_platform_settings())
    assert_error(api.post(PROVIDERS, json=body), 400, "Request body must be valid JSON.",
                 'unknown settings type "claude_platform_aws"')
