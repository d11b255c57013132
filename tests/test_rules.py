"""Semantic rules: one folder per case under tests/rules/, and a table of base URLs.

A case is `tests/rules/<CODE>-<what>/bad*.yaml` or `good*.yaml`, or a folder
`bad*/` / `good*/` of several files. A bad case declares what it expects in
comment lines `# expect: RC305 line 9` (with the file name when the case has
several files: `# expect: RC403 overrides.yaml line 7`); it may produce
warnings it does not declare, never errors. A good case produces nothing at
all, except codes it allows with `# allow: RC304`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.diagnostics import ERROR, Diagnostic
from reconciler.validate import validate_paths
from reconciler.validate.codes import CODES
from reconciler.validate.urls import check_base_url, plain_http_to_remote

RULES_DIR = Path(__file__).parent / "rules"
EXPECT = re.compile(r"#\s*expect:\s*(RC\d{3})\s+(?:(\S+)\s+)?line\s+(\d+)\s*$")
ALLOW = re.compile(r"#\s*allow:\s*(RC\d{3})\s*$")
RULE_PASS = ("RC3", "RC4")  # RC1xx (loader) and RC2xx (schema) are tested elsewhere

Expectation = tuple[str, str, int]  # (code, file name, line)


def _cases() -> list[Path]:
    return sorted(
        entry
        for case in RULES_DIR.iterdir()
        if case.is_dir()
        for entry in case.iterdir()
        if entry.name.startswith(("bad", "good"))
    )


def _files(case: Path) -> list[Path]:
    return sorted(case.rglob("*.yaml")) if case.is_dir() else [case]


def _header(case: Path) -> tuple[set[Expectation], set[str]]:
    expected: set[Expectation] = set()
    allowed: set[str] = set()
    for path in _files(case):
        for line in path.read_text(encoding="utf-8").splitlines():
            if match := EXPECT.match(line):
                expected.add((match[1], match[2] or path.name, int(match[3])))
            elif match := ALLOW.match(line):
                allowed.add(match[1])
    return expected, allowed


def _key(diagnostic: Diagnostic) -> Expectation:
    return diagnostic.code, Path(diagnostic.file).name, diagnostic.line


def _show(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(
        f"  {Path(d.file).name}:{d.line}:{d.column} {d.severity} {d.code} {d.message}"
        for d in diagnostics
    )


@pytest.mark.parametrize("case", _cases(), ids=lambda p: str(p.relative_to(RULES_DIR)))
def test_rule_case(case: Path) -> None:
    expected, allowed = _header(case)
    diagnostics = validate_paths([str(case)]).diagnostics
    found = {_key(d) for d in diagnostics}
    if case.name.startswith("bad"):
        assert expected, "a bad case declares what it expects"
        missing = sorted(expected - found)
        assert not missing, f"expected {missing}, got:\n{_show(diagnostics)}"
        unexpected = [d for d in diagnostics if d.severity == ERROR and _key(d) not in expected]
        assert not unexpected, f"unexpected errors:\n{_show(unexpected)}"
    else:
        assert not expected, "a good case expects nothing"
        unexpected = [d for d in diagnostics if d.code not in allowed]
        assert not unexpected, f"a good case yields nothing, got:\n{_show(unexpected)}"


def test_every_rule_code_has_a_bad_case() -> None:
    bad = [case for case in _cases() if case.name.startswith("bad")]
    covered = {code for case in bad for code, _, _ in _header(case)[0]}
    rule_codes = {code for code in CODES if code.startswith(RULE_PASS)}
    assert sorted(rule_codes - covered) == []


def test_every_case_has_bad_and_good() -> None:
    for case in sorted(p for p in RULES_DIR.iterdir() if p.is_dir()):
        names = [entry.name for entry in case.iterdir()]
        assert any(n.startswith("bad") for n in names), f"{case.name} has no bad case"
        assert any(n.startswith("good") for n in names), f"{case.name} has no good case"


def test_header_values_are_never_echoed() -> None:
    case = RULES_DIR / "RC417-upstream-headers" / "bad.yaml"
    diagnostics = validate_paths([str(case)]).diagnostics
    messages = " ".join(d.message for d in diagnostics)
    assert diagnostics
    for value in ("not-here", "someone", "Injected", "user_id", "é"):
        assert value not in messages


OAI, ANT, C = "openai", "anthropic", "openai-compat"

URLS: list[tuple[str, str, tuple[str, ...]]] = [
    # well-known hosts and their exact prefixes; host case, trailing dots and slashes, ports
    ("https://api.openai.com/v1", OAI, ()),
    ("https://api.openai.com/v1/", OAI, ()),
    ("https://API.OpenAI.COM/v1", OAI, ()),
    ("https://api.openai.com./v1", OAI, ()),
    ("https://api.openai.com:443/v1", OAI, ()),
    ("https://api.openai.com", OAI, ("RC305",)),
    ("https://api.openai.com/v2", OAI, ("RC305",)),
    ("https://api.openai.com/v1/extra", OAI, ("RC305",)),
    ("https://api.openai.com/V1", C, ("RC305",)),
    ("https://acme.openai.azure.com/openai/v1", "azure", ()),
    ("https://acme.openai.azure.com/openai", "azure", ("RC305",)),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", "google", ()),
    ("https://generativelanguage.googleapis.com/v1beta", "google", ("RC305",)),
    ("https://openrouter.ai/api/v1/", "openrouter", ()),
    ("https://openrouter.ai", "openrouter", ("RC305",)),
    ("https://ai-gateway.vercel.sh/v1", "vercel", ()),
    ("https://ai-gateway.vercel.sh/v1/ai", "vercel", ("RC305",)),
    ("https://api.openai.com", ANT, ()),
    # unknown hosts: an empty path is a warning for OpenAI-shaped types only
    ("https://llm.example.com", C, ("RC306",)),
    ("https://llm.example.com///", C, ("RC306",)),
    ("https://llm.example.com", ANT, ()),
    ("https://llm.example.com:8443/v1", C, ()),
    # IP literals: allowed, no prefix rule
    ("https://10.0.0.1", C, ()),
    ("https://[2001:db8::1]/v1", C, ()),
    ("https://[2001:db8::1]", OAI, ()),
    # plain http: fine to loopback, a warning elsewhere
    ("http://[::1]:8080/v1", C, ()),
    ("http://127.1.2.3/v1", C, ()),
    ("http://localhost:4000/v1", C, ()),
    ("http://llm.example.com/v1", C, ("RC304",)),
    ("http://10.0.0.1:8000/v1", C, ("RC304",)),
    ("http://[2001:db8::1]/v1", C, ("RC304",)),
    ("http://llm.example.com", C, ("RC304", "RC306")),
    # user-info, query, fragment
    ("https://user:hunter2@llm.example.com/v1", C, ("RC302",)),
    ("https://sk-secret-token@llm.example.com/v1", C, ("RC302",)),
    ("https://:hunter2@llm.example.com/v1", C, ("RC302",)),
    ("https://u:hunter2@api.openai.com", OAI, ("RC302", "RC305")),
    ("https://llm.example.com/v1/@team", C, ()),
    ("https://llm.example.com/v1?api-version=1", C, ("RC303",)),
    ("https://llm.example.com/v1#frag", C, ("RC303",)),
    ("https://llm.example.com/v1?", C, ("RC303",)),
    # not an absolute http(s) URL with a host and a port
    ("ftp://llm.example.com/v1", C, ("RC301",)),
    ("file:///etc/passwd", C, ("RC301",)),
    ("javascript:alert(1)", C, ("RC301",)),
    ("llm.example.com/v1", C, ("RC301",)),
    ("//llm.example.com/v1", C, ("RC301",)),
    ("https:///v1", C, ("RC301",)),
    ("https://:8080/v1", C, ("RC301",)),
    ("https://llm.example.com:0/v1", C, ("RC301",)),
    ("https://llm.example.com:65536/v1", C, ("RC301",)),
    ("https://llm.example.com:80a/v1", C, ("RC301",)),
    ("https://llm example.com/v1", C, ("RC301",)),
    ("https://llm.example.com/v1\n", C, ("RC301",)),
    ("https://llm.example.com/v1/100%", C, ("RC301",)),
    ("https://[::1/v1", C, ("RC301",)),
    ("https://[not-an-ip]/v1", C, ("RC301",)),
    ("https://llm..example.com/v1", C, ("RC301",)),
    ("https://-llm.example.com/v1", C, ("RC301",)),
    # request suffixes, with trailing slashes and any case
    ("https://llm.example.com/v1/chat/completions", C, ("RC307",)),
    ("https://llm.example.com/v1/responses//", C, ("RC307",)),
    ("https://llm.example.com/v1/Models", C, ("RC307",)),
    ("https://api.anthropic.com/v1/messages", ANT, ("RC307",)),
    ("https://llm.example.com/v1/models?x", C, ("RC303", "RC307")),
    ("https://llm.example.com/v1/models-list", C, ()),
    # Coder AI Gateway routes, anywhere in the path, any case
    ("https://coder.example.com/api/v2/aibridge/openai/v1", C, ("RC308",)),
    ("https://coder.example.com/api/v2/aibridge", ANT, ("RC308",)),
    ("https://coder.example.com/Api/V2/AiBridge/openai/v1", C, ("RC308",)),
    ("https://coder.example.com/api/v2/ai-gateway/openai/v1", C, ("RC308",)),
    ("https://coder.example.com/proxy/api/v2/ai-gateway/x/v1", C, ("RC308",)),
    ("https://coder.example.com/api/v2/aibridgex/v1", C, ()),
    # api.anthropic.com and /v1
    ("https://api.anthropic.com/v1", ANT, ("RC309",)),
    ("https://api.anthropic.com/v1/", ANT, ("RC309",)),
    ("https://api.anthropic.com", ANT, ()),
    ("https://api.anthropic.com/v1/", C, ()),
    # obfuscation
    ("https://coder.example.com/api%2Fv2%2Faibridge/openai/v1", C, ("RC311",)),
    ("https://coder.example.com/api/v2/%41I-Gateway/openai/v1", C, ("RC311",)),
    ("https://llm.example.com/api%2fv1", C, ("RC311",)),
    ("https://llm.example.com/v1/%2E%2E/admin", C, ("RC311",)),
    ("https://llm.example.com/v1/../v1", C, ("RC311",)),
    ("https://llm.example.com/./v1", C, ("RC311",)),
    ("https://llm.example.com\\v1", C, ("RC311",)),
    ("https://llm.example.com/v1/chat%5ccompletions", C, ("RC311",)),
    ("https://llm.example.com/v1/chat/completion%73", C, ("RC311",)),
    ("https://llm.example.com/v1/chat\uff0fcompletions", C, ("RC311",)),
    ("https://llm.example.com\uff0fv1", C, ("RC311",)),
    ("https://xn--pple-43d.com/v1", C, ("RC311",)),
    ("https://\u0430pi.openai.com/v1", OAI, ("RC311",)),
    ("https://llm%2eexample.com/v1", C, ("RC311",)),
    ("https://2130706433/v1", C, ("RC311",)),
    ("https://0x7f.0.0.1/v1", C, ("RC311",)),
    ("https://0177.0.0.1/v1", C, ("RC311",)),
    ("https://llm.example.com/team%20a/v1", C, ()),
]


@pytest.mark.parametrize(("url", "provider_type", "codes"), URLS)
def test_base_url(url: str, provider_type: str, codes: tuple[str, ...]) -> None:
    problems = check_base_url(url, provider_type)
    assert sorted(code for code, _ in problems) == sorted(codes)
    for _, message in problems:
        assert url.strip() not in message
        assert "hunter2" not in message and "sk-secret" not in message


@pytest.mark.parametrize(
    ("url", "remote"),
    [
        ("http://anthropic-proxy.example.com", True),
        ("http://localhost:8443", False),
        ("http://127.0.0.1", False),
        ("http://[::1]/", False),
        ("https://anthropic-proxy.example.com", False),
        ("not a url", False),
    ],
)
def test_plain_http_to_remote(url: str, remote: bool) -> None:
    assert plain_http_to_remote(url) is remote
