"""The registry of diagnostic codes. Codes are stable: never renumber, only add.

RC1xx loading, RC2xx schema, RC3xx base URLs, RC4xx cross-document rules, RC5xx plan-time
price checks, RC6xx `verify` against the upstreams.
`docs/RULES.md` lists them for users; `tests/test_codes.py` keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.diagnostics import ERROR, WARNING


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: str
    summary: str


_CODES = [
    # loading
    Code("RC101", "unreadable-path", ERROR, "a path does not exist or cannot be read"),
    Code("RC102", "file-too-large", ERROR, "a file is larger than the size cap"),
    Code("RC103", "not-utf8", ERROR, "a file is not valid UTF-8"),
    Code("RC104", "byte-order-mark", WARNING, "a file starts with a UTF-8 byte-order mark"),
    Code("RC105", "yaml-syntax", ERROR, "YAML syntax error"),
    Code("RC106", "tab-indentation", ERROR, "a tab character is used for indentation"),
    Code("RC107", "duplicate-key", ERROR, "a mapping has the same key twice"),
    Code("RC108", "alias-budget", ERROR, "anchors and aliases expand beyond the budget"),
    Code("RC109", "nesting-too-deep", ERROR, "collections are nested too deeply"),
    Code("RC110", "unsupported-tag", ERROR, "a YAML tag other than the standard ones"),
    Code("RC111", "not-a-mapping", ERROR, "a document is not a mapping"),
    Code("RC112", "unknown-api-version", ERROR, "apiVersion is missing or not reconciler/v1"),
    Code("RC113", "unknown-kind", ERROR, "kind is missing or not one of the five kinds"),
    Code("RC114", "empty-file", WARNING, "a file holds no documents"),
    Code("RC115", "no-manifests", ERROR, "no manifest files were found under the paths given"),
    Code("RC116", "non-string-key", ERROR, "a mapping key is not a string"),
    Code("RC117", "project-file", ERROR, "the project file (reconciler.yaml) is invalid, or names what is not there"),
    Code("RC118", "overlay-kind", ERROR, "an overlay document names a base document of another kind"),
    Code("RC119", "overlay-remove-missing", ERROR, "reconciler/remove names a document the base does not define"),
    Code("RC120", "overlay-duplicate", ERROR, "the overlays of one environment give the same object twice"),
    # schema
    Code("RC201", "schema", ERROR, "the document does not match the kind's JSON Schema"),
    Code("RC202", "plaintext-secret", ERROR, "a secret position holds a value, not a reference"),
    Code("RC203", "not-finite", ERROR, "a number is NaN, infinite or outside the 64-bit range"),
    # base URLs
    Code("RC301", "base-url-invalid", ERROR, "base_url is not an absolute http(s) URL with a host"),
    Code("RC302", "base-url-userinfo", ERROR, "base_url carries credentials (user-info)"),
    Code("RC303", "base-url-query", ERROR, "base_url carries a query or a fragment"),
    Code("RC304", "base-url-plain-http", WARNING, "base_url uses plain http to a non-loopback host"),
    Code("RC305", "base-url-prefix", ERROR, "base_url lacks the exact path prefix of a known host"),
    Code("RC306", "base-url-empty-path", WARNING, "an OpenAI-shaped base_url on an unknown host has no path"),
    Code("RC307", "base-url-request-suffix", ERROR, "base_url ends in a request suffix"),
    Code("RC308", "base-url-gateway-route", ERROR, "base_url points back at a Coder AI Gateway route"),
    Code("RC309", "base-url-anthropic-v1", ERROR, "api.anthropic.com base_url must not carry /v1"),
    Code("RC310", "base-url-required", ERROR, "the provider type has no default base_url"),
    Code("RC311", "base-url-obfuscated", ERROR, "base_url hides its path or host behind encoding"),
    # cross-document
    Code("RC401", "duplicate-object", ERROR, "two documents define the same object"),
    Code("RC402", "unknown-provider", ERROR, "a model names a provider no manifest defines"),
    Code("RC403", "unknown-model", ERROR, "an override names a model no manifest defines"),
    Code("RC404", "multiple-defaults", ERROR, "more than one default model in an organization"),
    Code("RC405", "options-family", ERROR, "provider_options family does not fit the provider type"),
    Code("RC406", "secrets-not-allowed", ERROR, "the provider type does not accept api_keys"),
    Code("RC407", "settings-not-allowed", ERROR, "the settings block is not valid for the provider type"),
    Code("RC408", "bedrock-unconfigured", ERROR, "a bedrock provider needs region, role_arn or keys"),
    Code("RC409", "price-conflict", ERROR, "two manifests give different prices for one field"),
    Code("RC410", "price-precision", ERROR, "a price is not exact to the micro-dollar"),
    Code("RC411", "model-unpriced", WARNING, "a model ends up with no price at all"),
    Code("RC412", "effort-range", ERROR, "reasoning_effort default is above max"),
    Code("RC413", "override-effort", ERROR, "an override's reasoning_effort is outside the model's range"),
    Code("RC414", "override-model-disabled", ERROR, "an override names a disabled model"),
    Code("RC415", "override-organization", ERROR, "an override names a model of another organization"),
    Code("RC416", "copilot-model", ERROR, "copilot providers cannot back models"),
    Code("RC417", "upstream-header", ERROR, "an upstream header is refused"),
    Code("RC418", "no-default-model", WARNING, "an organization with models has no default model"),
    Code("RC419", "exclusive-options", ERROR, "two mutually exclusive options are both set"),
    Code("RC420", "wif-insecure", ERROR, "workload identity federation needs an https base_url"),
    Code("RC421", "bedrock-model-required", ERROR, "bedrock invoke-model needs model and small_fast_model"),
    Code("RC422", "role-arn", ERROR, "role_arn is not an IAM role ARN"),
    Code("RC423", "model-provider-disabled", WARNING, "a model's provider is disabled"),
    Code("RC424", "bedrock-key-pair", ERROR, "access_key and access_key_secret must come together"),
    Code("RC425", "moved-from", ERROR, "reconciler/moved-from is not <provider>/<model> of another model"),
    Code("RC426", "aws-region", ERROR, "a Claude Platform for AWS region is not an AWS region name"),
    Code("RC427", "option-value-undocumented", WARNING, "a provider option value is outside its documented set"),
    Code("RC428", "effort-not-sent", WARNING, "a reasoning effort the model's provider family is not sent"),
    # plan time, against the store's price book
    Code("RC501", "price-none", WARNING, "an enabled model has no price in the manifests, the store or its book"),
    Code("RC502", "price-openai-compat", WARNING, "an openai-compat model has no price (no book covers them)"),
    Code("RC503", "price-off-book", WARNING, "a price in the manifests differs from the store's price book"),
    Code("RC504", "price-pins-book", WARNING, "a price in the manifests equals the store's price book (a pin)"),
    Code("RC505", "access-unknown", ERROR, "an access list names a group or user the organization does not have"),
    # verify, against the upstreams (`reconciler verify`)
    Code("RC601", "upstream-auth-failed", ERROR, "the upstream refused a key (401/403)"),
    Code("RC602", "upstream-not-found", ERROR, "the model listing is not found (404): base_url's path is wrong"),
    Code("RC603", "upstream-unreachable", ERROR, "the upstream cannot be reached (DNS, connect, TLS, timeout)"),
    Code("RC604", "upstream-protocol-error", ERROR, "the upstream's answer is not a model list"),
    Code("RC605", "upstream-rate-limited", ERROR, "the upstream kept answering 429"),
    Code("RC606", "upstream-skipped", WARNING, "a provider or key was not checked (and why)"),
    Code("RC607", "model-id-unknown", ERROR, "a model id is not in its provider's model list"),
    Code("RC608", "model-id-unlisted", WARNING, "an Azure model id is not listed (it may name a deployment)"),
    Code("RC609", "context-above-upstream", ERROR, "context_limit is above the upstream's context window"),
    Code("RC610", "price-differs-upstream", WARNING, "a price differs from the upstream's own price list"),
    Code("RC611", "model-not-served", ERROR, "--live: a one-token completion of a listed model failed"),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}


def severity(code: str) -> str:
    return CODES[code].severity
