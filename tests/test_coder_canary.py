"""One canary secret against the Coder store: every API key and both Bedrock access keys hold it,
and another canary is the session token. Every command (validate, plan in each format and to a
file, apply with a report and a metrics file, apply of a saved plan, export) and every error path
we can make (Coder refusing a write with the secret echoed in its answer, 500s until the deadline,
dropped connections, answers too late, a missing secret, a wrong token, an unreadable token file,
an unreachable server, a missing endpoint, a secret written in plaintext in a manifest) runs
through `python -m reconciler`; neither canary appears in any stdout, stderr or file written.

The fake Coder legitimately receives the secrets (`secrets_seen`); it is not searched.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cliharness import BEDROCK_STATIC, Manifests, example_manifests
from tests.conftest import run_cli
from tests.fakecoder import FakeCoder
from tests.fakecoder.fixtures import DEFAULT_ORGANIZATION, DEFAULT_PRICE_BOOK

CANARY = "sk-canary-c0der-7f3a9c1e5b2d4f6a"
TOKEN = "tok-canary-9d8e7f6a5b4c3d2e1f00"
WRONG_TOKEN = "tok-wrong-1a2b3c4d5e6f7a8b9c0d"
PROVIDERS = "/api/v2/ai/providers"
PLAINTEXT = f"""apiVersion: reconciler/v1
kind: Provider
metadata:
  name: leaky
spec:
  type: openai
  api_keys:
    - {CANARY}
"""
ECHO = {  # a Coder answer that quotes the secret it was sent, everywhere it can
    "message": f"Invalid API key {CANARY}.", "detail": f"key={CANARY}",
    "validations": [{"field": "api_keys[0]", "detail": f"{CANARY} is not accepted"}],
}


def forms(value: str) -> dict[str, bytes]:
    """How a value would look if it leaked plainly, encoded, or masked/truncated."""
    return {"plaintext": value.encode(), "base64": base64.b64encode(value.encode()),
            "hex": value.encode().hex().encode(), "middle": value[6:20].encode()}


NEEDLES = {f"{name} {form}": needle for name, value in (("canary", CANARY), ("token", TOKEN),
                                                       ("wrong token", WRONG_TOKEN))
           for form, needle in forms(value).items()}


class Witness:
    """Runs commands, keeps everything they printed, and searches it and `out` at the end."""

    def __init__(self, fake: FakeCoder, manifests: Manifests, out: Path) -> None:
        self.fake = fake
        self.manifests = manifests
        self.out = out
        self.seen: list[tuple[str, bytes]] = []
        self.commands = 0
        self.errors = 0

    def run(self, *args: str, expect: int | tuple[int, ...], env: dict[str, str] | None = None,
            store: str | None = "fake") -> Any:
        if store == "fake":
            store = "coder+" + self.fake.url
        argv = list(args) if store is None else [*args, "--store", store]
        done = run_cli(*argv, env=self.manifests.env if env is None else env)
        label = " ".join(args)
        allowed = expect if isinstance(expect, tuple) else (expect,)
        assert done.returncode in allowed, f"{label}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
        self.seen += [(f"stdout of {label}", done.stdout.encode()), (f"stderr of {label}", done.stderr.encode())]
        self.commands += 1
        self.errors += done.returncode == 1
        return done

    def check(self, *places: Path) -> int:
        files = sorted(p for place in (self.out, *places) for p in place.rglob("*") if p.is_file())
        self.seen += [(str(p), p.read_bytes()) for p in files]
        leaks = [f"{what} in {where}" for where, data in self.seen for what, needle in NEEDLES.items()
                 if needle in data]
        assert leaks == []
        return len(files)


@pytest.fixture
def fake() -> Iterator[FakeCoder]:
    with FakeCoder(token=TOKEN) as coder:
        coder.add_organization(DEFAULT_ORGANIZATION, is_default=True)
        coder.seed_default_prices(DEFAULT_PRICE_BOOK)
        yield coder


@pytest.fixture
def manifests(tmp_path: Path) -> Manifests:
    """examples/ and a Bedrock provider with static keys, every secret the canary."""
    found = example_manifests(tmp_path, secret=CANARY)
    (found.path / "providers" / "bedrock-static.yaml").write_text(BEDROCK_STATIC)
    found.env.update(AWS_ACCESS_KEY_ID=CANARY, AWS_SECRET_ACCESS_KEY=CANARY, CODER_SESSION_TOKEN=TOKEN,
                     XDG_CACHE_HOME=str(tmp_path / "cache"))
    return found


def rename(manifests: Manifests, old: str, new: str) -> None:
    file = manifests.file("providers/openai.yaml")
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


def test_the_canary_and_the_token_appear_nowhere(fake: FakeCoder, manifests: Manifests, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    out = tmp_path / "out"
    out.mkdir()
    witness = Witness(fake, manifests, out)
    path = str(manifests.path)
    run = witness.run

    # every command, every format
    for fmt in ("text", "json", "github"):
        run("validate", path, "--format", fmt, expect=0, store=None)
    for fmt in ("text", "json", "markdown"):
        run("plan", path, "--format", fmt, "-v", expect=0)
    no_secrets = {k: v for k, v in manifests.env.items() if v != CANARY}
    run("plan", path, "--format", "json", expect=0, env=no_secrets)  # a pull-request job
    run("plan", path, "--out", str(out / "plan.json"), expect=0)
    run("apply", path, "--report", str(out / "report.json"), "--metrics-file", str(out / "apply.prom"), "-v",
        expect=0)
    assert CANARY in fake.secrets_seen  # the keys did reach Coder
    run("plan", path, "--detailed-exitcode", "--format", "markdown", expect=(0, 2))
    rename(manifests, "display_name: OpenAI", "display_name: OpenAI (saved plan)")
    run("plan", path, "--out", str(out / "saved.json"), "--rotate-secrets", expect=0)
    run("apply", str(out / "saved.json"), "--report", str(out / "saved-report.json"),
        "--metrics-file", str(out / "saved.prom"), expect=0)
    run("apply", path, "--rotate-secrets", "--format", "json", expect=0)
    run("export", "--out", str(out / "export"), expect=0)
    run("export", expect=0)

    # Coder refuses a write and quotes the key back; 500s (quoting it too), dropped connections and
    # late answers until the deadline, each on one provider's route (they stay armed: the later
    # error paths fail before any write)
    resend = ("apply", path, "--rotate-secrets", "--report", str(out / "failed.json"),
              "--metrics-file", str(out / "failed.prom"), "--deadline", "1.5", "--request-timeout", "0.3", "-v")
    fake.inject(400, method="PATCH", path_prefix=PROVIDERS, body=ECHO)
    failed = run(*resend, expect=1)
    assert "(redacted)" in failed.stdout
    ids = {p.name: p.id for p in fake.state.providers.values() if not p.deleted}
    for name, fault in (("openai", {"status": 500, "body": ECHO}), ("anthropic", {"drop_connection": True}),
                        ("gemini", {"delay": 1.0})):
        fake.inject(**fault, times=1000, method="PATCH", path_prefix=f"{PROVIDERS}/{ids[name]}")
        failed = run(*resend, expect=1)
        assert f"failed update Provider/{name}" in failed.stdout
    # a secret not given; a wrong, missing or unreadable token; no server; an older Coder
    run(*resend, expect=1, env={k: v for k, v in manifests.env.items() if k != "ACME_OPENAI_API_KEY"})
    wrong = {**manifests.env, "CODER_SESSION_TOKEN": WRONG_TOKEN}
    run("plan", path, expect=1, env=wrong)
    run(*resend, expect=1, env=wrong)
    token_file = tmp_path / "token"
    token_file.write_text(WRONG_TOKEN + "\n")
    run("plan", path, "--token-file", str(token_file), expect=1)
    run("plan", path, "--token-file", str(tmp_path / "no-such-token"), expect=1)
    run("plan", path, expect=1, env={**manifests.env, "CODER_SESSION_TOKEN": ""})
    run(*resend, expect=1, store="coder+http://127.0.0.1:9")
    fake.missing_endpoints = {"providers"}
    run(*resend, expect=1)
    # a secret written in plaintext where a reference belongs
    leaky = tmp_path / "leaky"
    shutil.copytree(manifests.path, leaky)
    (leaky / "providers" / "leaky.yaml").write_text(PLAINTEXT)
    for command in ("validate", "plan", "apply"):
        run(command, str(leaky), "--format", "json" if command != "apply" else "text", expect=1,
            store=None if command == "validate" else "fake")

    files = witness.check(tmp_path / "cache")
    assert fake.server_errors == []
    request.node.user_properties += [("commands", witness.commands), ("failing_commands", witness.errors),
                                     ("files_searched", files)]
