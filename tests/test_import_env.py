"""`reconciler import-env`: Coder's provider environment variables -> Provider manifests.

One test per rule of Coder's ReadAIProvidersFromEnv (coder-api.md §8), then a
round trip: variables -> manifests -> apply (SQLite) -> read, compared with the
providers Coder itself creates from the same variables.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import UsageError
from reconciler.importers.envvars import import_env, read_env_file
from reconciler.secrets import Secret
from reconciler.state import PROVIDER, normalize_url
from reconciler.stores import open_store
from reconciler.validate import validate_paths
from tests.conftest import KEY_A, run_cli

P = "CODER_AI_GATEWAY_PROVIDER_"
OLD = "CODER_AIBRIDGE_PROVIDER_"
SECRET_VALUES = ("sk-ant-aaaaaaaaaaaaaaaa", "sk-ant-bbbbbbbbbbbbbbbb", "sk-openai-cccccccccccccc",
                 "AKIAEXAMPLE000000001", "aws-secret-example-00000000000000000001")


def problems(environ: dict[str, str]) -> str:
    with pytest.raises(UsageError) as caught:
        import_env(environ)
    message = str(caught.value)
    for value in SECRET_VALUES:
        assert value not in message
    return message


# --- indexes and prefixes ---------------------------------------------------------------------


def test_the_two_prefixes_are_not_mixed():
    message = problems({f"{OLD}0_TYPE": "openai", f"{P}0_TYPE": "anthropic"})
    assert "cannot mix CODER_AIBRIDGE_PROVIDER_* and CODER_AI_GATEWAY_PROVIDER_*" in message
    assert f"{OLD}0_TYPE" in message and f"{P}0_TYPE" in message


def test_the_deprecated_prefix_alone_is_read():
    result = import_env({f"{OLD}0_TYPE": "openai", f"{OLD}0_KEY": SECRET_VALUES[2]})
    assert result.prefix == OLD
    assert [s.env for s in result.providers[0].api_keys] == [f"{OLD}0_KEY"]


def test_indexes_are_contiguous_from_zero():
    message = problems({f"{P}0_TYPE": "openai", f"{P}2_TYPE": "anthropic"})
    assert f"{P}2_TYPE: provider index 2 skips index 1" in message
    assert "skips index 0" in problems({f"{P}1_TYPE": "openai"})


def test_indexes_sort_as_numbers():
    environ = {f"{P}{i}_TYPE": "openai" for i in range(11)} | {f"{P}{i}_NAME": f"p{i}" for i in range(11)}
    result = import_env(environ)
    assert [p.name for p in result.providers] == [f"p{i}" for i in range(11)]  # p10 after p2


def test_an_index_must_be_a_number():
    assert f"{P}XXX_TYPE: expected {P}<N>_<FIELD>" in problems({f"{P}XXX_TYPE": "openai"})


# --- TYPE and NAME ----------------------------------------------------------------------------


def test_type_is_required():
    assert f"provider 0: {P}0_TYPE is required" in problems({f"{P}0_NAME": "mine", f"{P}0_KEY": "k"})


def test_type_must_be_known():
    message = problems({f"{P}0_TYPE": "gemini"})
    assert f"{P}0_TYPE: unknown TYPE 'gemini'" in message and "openai-compat" in message


def test_name_defaults_to_type():
    assert import_env({f"{P}0_TYPE": "copilot"}).providers[0].name == "copilot"


@pytest.mark.parametrize("environ, where", [
    ({f"{P}0_TYPE": "anthropic", f"{P}0_NAME": "mine", f"{P}1_TYPE": "openai", f"{P}1_NAME": "mine"},
     f"{P}1_NAME: duplicate NAME 'mine'"),
    ({f"{P}0_TYPE": "anthropic", f"{P}1_TYPE": "anthropic"}, f"{P}1_TYPE: duplicate NAME 'anthropic'"),
])
def test_names_are_unique(environ, where):
    assert where in problems(environ)


def test_a_name_must_fit_a_gateway_route():
    assert f"{P}0_NAME: 'Anthropic_EU' is not a valid provider name" in problems(
        {f"{P}0_TYPE": "anthropic", f"{P}0_NAME": "Anthropic_EU"})


# --- KEY and KEYS ------------------------------------------------------------------------------


def test_key_and_keys_are_mutually_exclusive():
    message = problems({f"{P}0_TYPE": "openai", f"{P}0_KEY": "sk-1", f"{P}0_KEYS": "sk-2"})
    assert f"{P}0_KEY and {P}0_KEYS: KEY and KEYS are mutually exclusive" in message


def test_keys_are_comma_separated_and_trimmed():
    result = import_env({f"{P}0_TYPE": "openai", f"{P}0_KEYS": " sk-a , sk-b "})
    sources = result.providers[0].api_keys
    assert [(s.variable, s.position, s.env) for s in sources] == [
        (f"{P}0_KEYS", 1, "RECONCILER_OPENAI_API_KEY_1"), (f"{P}0_KEYS", 2, "RECONCILER_OPENAI_API_KEY_2")]
    assert len(result.split_commands()) == 2


def test_a_variable_holding_exactly_one_key_is_referenced_as_it_is():
    result = import_env({f"{P}0_TYPE": "openai", f"{P}0_KEYS": "sk-only"})
    assert [s.env for s in result.providers[0].api_keys] == [f"{P}0_KEYS"]
    assert result.split_commands() == []


@pytest.mark.parametrize("keys, message", [
    ("sk-1,sk-2,sk-3,sk-4,sk-5,sk-6", "too many keys (6), maximum is 5"),
    ("sk-a,,sk-b", "key at index 1 is empty"),
    ("sk-a,sk-b,sk-a", "duplicate key at index 2"),
])
def test_key_lists_have_at_most_five_distinct_keys(keys, message):
    assert f"{P}0_KEYS: {message}" in problems({f"{P}0_TYPE": "openai", f"{P}0_KEYS": keys})


@pytest.mark.parametrize("ptype", ["copilot", "bedrock"])
def test_keys_are_refused_for_copilot_and_bedrock(ptype):
    environ = {f"{P}0_TYPE": ptype, f"{P}0_KEY": "sk-x", f"{P}0_BEDROCK_REGION": "us-east-1"}
    if ptype == "copilot":
        del environ[f"{P}0_BEDROCK_REGION"]
    assert f"{P}0_KEY: KEY/KEYS are not supported for TYPE {ptype}" in problems(environ)


# --- BEDROCK_* ---------------------------------------------------------------------------------


def test_bedrock_fields_only_on_anthropic_or_bedrock():
    message = problems({f"{P}0_TYPE": "openai", f"{P}0_BEDROCK_REGION": "us-west-2"})
    assert f"{P}0_BEDROCK_REGION: BEDROCK_* fields are only supported with TYPE anthropic or bedrock" in message


def test_anthropic_takes_keys_or_bedrock_fields_not_both():
    message = problems({f"{P}0_TYPE": "anthropic", f"{P}0_KEYS": "sk-ant", f"{P}0_BEDROCK_REGION": "us-east-1"})
    assert f"{P}0_KEYS and {P}0_BEDROCK_REGION: KEY/KEYS and BEDROCK_* fields are mutually exclusive" in message


def test_bedrock_needs_bedrock_fields():
    message = problems({f"{P}0_TYPE": "bedrock", f"{P}0_NAME": "bedrock-prod"})
    assert f"{P}0_TYPE: TYPE bedrock requires BEDROCK_* fields to be configured" in message


@pytest.mark.parametrize("single, plural", [
    ("BEDROCK_ACCESS_KEY", "BEDROCK_ACCESS_KEYS"),
    ("BEDROCK_ACCESS_KEY_SECRET", "BEDROCK_ACCESS_KEY_SECRETS"),
])
def test_singular_and_plural_bedrock_keys_are_mutually_exclusive(single, plural):
    message = problems({f"{P}0_TYPE": "anthropic", f"{P}0_{single}": "a", f"{P}0_{plural}": "b"})
    assert f"{P}0_{single} and {P}0_{plural}: {single} and {plural} are mutually exclusive" in message


def test_access_key_and_secret_counts_match():
    message = problems({f"{P}0_TYPE": "anthropic", f"{P}0_BEDROCK_ACCESS_KEYS": "AKID1,AKID2",
                        f"{P}0_BEDROCK_ACCESS_KEY_SECRET": "secret1"})
    assert "BEDROCK_ACCESS_KEYS count (2) must match BEDROCK_ACCESS_KEY_SECRETS count (1)" in message
    assert f"{P}0_BEDROCK_ACCESS_KEYS" in message


def test_more_than_one_bedrock_key_pair_has_no_manifest_equivalent():
    message = problems({f"{P}0_TYPE": "anthropic", f"{P}0_BEDROCK_REGION": "us-west-2",
                        f"{P}0_BEDROCK_ACCESS_KEYS": "AKID1,AKID2",
                        f"{P}0_BEDROCK_ACCESS_KEY_SECRETS": "secret1,secret2"})
    assert f"{P}0_BEDROCK_ACCESS_KEYS: 2 access key pairs" in message


def test_bedrock_models_coder_would_default_are_an_error_naming_the_variables():
    """Coder fills them from deployment-level defaults whose values reconciler cannot read."""
    message = problems({f"{P}0_TYPE": "bedrock", f"{P}0_BEDROCK_REGION": "us-west-2",
                        f"{P}0_BEDROCK_MODEL": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"})
    assert message.startswith("1 problem(s)")
    assert f"{P}0_BEDROCK_SMALL_FAST_MODEL is not set: Coder falls back to a deployment-level default" in message


def test_a_bedrock_provider_without_region_or_base_url_has_no_endpoint():
    message = problems({f"{P}0_TYPE": "bedrock", f"{P}0_BEDROCK_ACCESS_KEY": SECRET_VALUES[3],
                        f"{P}0_BEDROCK_ACCESS_KEY_SECRET": SECRET_VALUES[4], f"{P}0_BEDROCK_MODEL": "m",
                        f"{P}0_BEDROCK_SMALL_FAST_MODEL": "s"})
    assert f"{P}0_BEDROCK_REGION is not set: a bedrock provider's endpoint comes from its region" in message


@pytest.mark.parametrize(("url", "code"), [
    ("https://acme-eastus2.openai.azure.com/", "RC305"),
    ("https://acme-eastus2.openai.azure.com/openai/v1/chat/completions", "RC307"),
    ("https://acme-eastus2.openai.azure.com/openai/v1?api-version=2025-01-01", "RC303"),
])
def test_a_base_url_validation_refuses_is_an_import_error_naming_the_variable(url, code):
    message = problems({f"{P}0_TYPE": "azure", f"{P}0_KEY": SECRET_VALUES[2], f"{P}0_BASE_URL": url})
    assert f"{P}0_BASE_URL: the manifest written from it would fail `reconciler validate` ({code}:" in message


def test_claude_platform_variables_become_claude_platform_aws_settings():
    result = import_env({f"{P}0_TYPE": "anthropic", f"{P}0_NAME": "claude-aws",
                         f"{P}0_CLAUDE_PLATFORM_REGION": "us-east-1",
                         f"{P}0_CLAUDE_PLATFORM_WORKSPACE_ID": "wrkspc_01AbCdEf",
                         f"{P}0_BASE_URL": "https://aws-external-anthropic.us-east-1.api.aws/",
                         f"{P}1_TYPE": "anthropic", f"{P}1_NAME": "claude-aws-keyed", f"{P}1_KEY": SECRET_VALUES[0],
                         f"{P}1_claude_platform_region": "eu-west-1",
                         f"{P}1_CLAUDE_PLATFORM_WORKSPACE_ID": "wrkspc_02GhIjKl"})
    import yaml

    specs = [yaml.safe_load(f.body())["spec"] for f in result.files()]
    assert specs == [
        {"type": "anthropic",  # the region's endpoint is the default: left out
         "settings": {"claude_platform_aws": {"region": "us-east-1", "workspace_id": "wrkspc_01AbCdEf"}}},
        {"type": "anthropic", "api_keys": [{"env": f"{P}1_KEY"}],
         "settings": {"claude_platform_aws": {"region": "eu-west-1", "workspace_id": "wrkspc_02GhIjKl"}}},
    ]
    assert result.warnings == []


@pytest.mark.parametrize(("environ", "needle"), [
    ({f"{P}0_TYPE": "openai", f"{P}0_CLAUDE_PLATFORM_REGION": "us-east-1",
      f"{P}0_CLAUDE_PLATFORM_WORKSPACE_ID": "w"},
     f"{P}0_CLAUDE_PLATFORM_REGION: CLAUDE_PLATFORM_* fields are only supported with TYPE anthropic"),
    ({f"{P}0_TYPE": "anthropic", f"{P}0_CLAUDE_PLATFORM_WORKSPACE_ID": "w"},
     f"{P}0_CLAUDE_PLATFORM_REGION is not set: Claude Platform for AWS needs both"),
    ({f"{P}0_TYPE": "anthropic", f"{P}0_BEDROCK_REGION": "us-east-1", f"{P}0_CLAUDE_PLATFORM_REGION": "us-east-1",
      f"{P}0_CLAUDE_PLATFORM_WORKSPACE_ID": "w"},
     f"{P}0_BEDROCK_REGION and {P}0_CLAUDE_PLATFORM_REGION: BEDROCK_* and CLAUDE_PLATFORM_* fields are mutually"),
    ({f"{P}0_TYPE": "anthropic", f"{P}0_CLAUDE_PLATFORM_REGION": "Virginia",
      f"{P}0_CLAUDE_PLATFORM_WORKSPACE_ID": "w"},
     f"{P}0_CLAUDE_PLATFORM_REGION: the manifest written from it would fail `reconciler validate` (RC426:"),
])
def test_claude_platform_rules(environ, needle):
    assert needle in problems(environ)


# --- everything else ---------------------------------------------------------------------------


def test_unknown_fields_warn_and_field_names_ignore_case():
    result = import_env({f"{P}0_TYPE": "openai", f"{P}0_Name": "test", f"{P}0_TYYYPPOO": "openai"})
    assert [p.name for p in result.providers] == ["test"]
    assert result.warnings == [f"{P}0_TYYYPPOO: unknown field TYYYPPOO, ignored (check for typos)"]


def test_workload_identity_variables_are_not_guessed():
    message = problems({f"{P}0_TYPE": "anthropic", f"{P}0_WIF_IDENTITY_TOKEN_FILE": "/var/run/token"})
    assert f"{P}0_WIF_IDENTITY_TOKEN_FILE: workload identity (WIF_*) variables are not converted" in message


def test_azure_and_openai_compat_need_a_base_url():
    assert f"{P}0_BASE_URL is required for TYPE azure" in problems({f"{P}0_TYPE": "azure"})


def test_base_url_and_bedrock_base_url_must_agree():
    message = problems({f"{P}0_TYPE": "bedrock", f"{P}0_BEDROCK_REGION": "us-east-1",
                        f"{P}0_BASE_URL": "https://a.example.com", f"{P}0_BEDROCK_BASE_URL": "https://b.example.com"})
    assert f"{P}0_BASE_URL and {P}0_BEDROCK_BASE_URL name different URLs" in message


def test_every_problem_is_reported_at_once():
    message = problems({f"{P}0_TYPE": "gemini", f"{P}1_TYPE": "openai", f"{P}1_KEYS": "a,,b",
                        f"{P}2_TYPE": "copilot", f"{P}2_KEY": SECRET_VALUES[0]})
    assert message.startswith("3 problem(s)")


def test_no_variables_at_all_is_an_error():
    assert "no CODER_AI_GATEWAY_PROVIDER_* or CODER_AIBRIDGE_PROVIDER_* variables found" in problems({"HOME": "/"})


def test_the_cli_exits_1_naming_the_variable(tmp_path):
    result = run_cli("import-env", env={f"{P}0_TYPE": "copilot", f"{P}0_KEY": SECRET_VALUES[0]})
    assert result.returncode == 1
    assert f"{P}0_KEY: KEY/KEYS are not supported for TYPE copilot" in result.stderr
    assert SECRET_VALUES[0] not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_the_cli_reads_the_environment_and_streams_to_stdout(tmp_path):
    environ = {f"{P}0_TYPE": "openai", f"{P}0_KEY": SECRET_VALUES[2], f"{P}1_TYPE": "copilot"}
    result = run_cli("import-env", env=environ)
    assert result.returncode == 0, result.stderr
    assert SECRET_VALUES[2] not in result.stdout + result.stderr
    stream = tmp_path / "providers.yaml"
    stream.write_text(result.stdout)
    validation = validate_paths([str(stream)])
    assert validation.diagnostics == []
    assert [(p.name, p.api_keys) for p in validation.manifests.providers] == [
        ("openai", (f"env:{P}0_KEY",)), ("copilot", ())]


def test_the_cli_never_overwrites_a_provider_file(tmp_path):
    mine = tmp_path / "providers" / "openai.yaml"
    mine.parent.mkdir()
    mine.write_text("# hand-written\n")
    result = run_cli("import-env", "--out", str(tmp_path), env={f"{P}0_TYPE": "openai", f"{P}0_KEY": "sk-x"})
    assert result.returncode == 1 and "refusing to overwrite" in result.stderr
    assert mine.read_text() == "# hand-written\n"


# --- .env files --------------------------------------------------------------------------------


def test_env_files_take_comments_export_and_quotes(tmp_path):
    path = tmp_path / "coder.env"
    path.write_text(
        "# seeds\n\n"
        "export A=plain\n"
        "B = spaced   # a comment\n"
        "C='single # not a comment'\n"
        'D="double \\"quoted\\" \\\\ value"  # comment\n'
        "E=\n"
        "F=has#hash\n"
    )
    assert read_env_file(str(path)) == {"A": "plain", "B": "spaced", "C": "single # not a comment",
                                        "D": 'double "quoted" \\ value', "E": "", "F": "has#hash"}


@pytest.mark.parametrize("line, message", [
    ("just words", ":1: expected NAME=VALUE"),
    ("KEY='unterminated", ":1: the value's closing ' is missing"),
    ('KEY="x" trailing', ":1: unexpected text after the closing \""),
])
def test_a_malformed_line_names_the_file_and_line_not_the_value(tmp_path, line, message):
    path = tmp_path / "coder.env"
    path.write_text(line + "\n")
    with pytest.raises(UsageError) as caught:
        read_env_file(str(path))
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "unterminated" not in str(caught.value) and "trailing" not in str(caught.value)


# --- round trip --------------------------------------------------------------------------------

ENV_FILE = f"""\
# What the deployment was started with.
export {P}0_TYPE=anthropic
{P}0_NAME=anthropic-corp
{P}0_KEYS=" {SECRET_VALUES[0]} , {SECRET_VALUES[1]} "
{P}1_TYPE=openai
{P}1_KEY='{SECRET_VALUES[2]}'   # the only key
{P}1_BASE_URL=https://api.openai.com/v1/
{P}2_TYPE=copilot
{P}3_TYPE=bedrock
{P}3_NAME=bedrock-prod
{P}3_BEDROCK_REGION=us-west-2
{P}3_BEDROCK_ACCESS_KEY={SECRET_VALUES[3]}
{P}3_BEDROCK_ACCESS_KEY_SECRET={SECRET_VALUES[4]}
{P}3_BEDROCK_MODEL=global.anthropic.claude-sonnet-4-5-20250929-v1:0
{P}3_BEDROCK_SMALL_FAST_MODEL=global.anthropic.claude-haiku-4-5-20251001-v1:0
{P}4_TYPE=anthropic
{P}4_Name=claude-bedrock
{P}4_BEDROCK_REGION=eu-central-1
{P}4_BEDROCK_ACCESS_KEYS=AKIAEXAMPLE000000002
{P}4_BEDROCK_ACCESS_KEY_SECRETS=" aws-secret-example-00000000000000000002"
{P}5_TYPE=azure
{P}5_NAME=azure-eastus2
{P}5_KEY=azure-key-dddddddddddddd
{P}5_BASE_URL=https://acme-eastus2.openai.azure.com/openai/v1
"""

# What Coder creates from ENV_FILE (its rules, by hand): name, type, base URL (the type's default
# when none is given), the keys in order (trimmed), and the Bedrock settings. An anthropic provider
# on Bedrock without a BEDROCK_BASE_URL gets Bedrock's endpoint for its region (docs/ADOPTION.md).
CODER_CREATES = {
    "anthropic-corp": ("anthropic", "https://api.anthropic.com", [SECRET_VALUES[0], SECRET_VALUES[1]], None),
    "openai": ("openai", "https://api.openai.com/v1", [SECRET_VALUES[2]], None),
    "copilot": ("copilot", "https://api.individual.githubcopilot.com", [], None),
    "bedrock-prod": ("bedrock", "https://bedrock-runtime.us-west-2.amazonaws.com", [], {
        "region": "us-west-2", "model": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "small_fast_model": "global.anthropic.claude-haiku-4-5-20251001-v1:0", "protocol": "invoke-model",
        "access_key": SECRET_VALUES[3], "access_key_secret": SECRET_VALUES[4]}),
    "claude-bedrock": ("anthropic", "https://bedrock-runtime.eu-central-1.amazonaws.com", [], {
        "region": "eu-central-1", "protocol": "invoke-model",
        "access_key": "AKIAEXAMPLE000000002", "access_key_secret": "aws-secret-example-00000000000000000002"}),
    "azure-eastus2": ("azure", "https://acme-eastus2.openai.azure.com/openai/v1", ["azure-key-dddddddddddddd"],
                      None),
}


def _split_variables(commands: list[str], cwd: Path) -> dict[str, str]:
    """Run the printed commands in a POSIX shell; the variables they set."""
    script = "\n".join(commands) + "\nenv -0\n"
    output = subprocess.run(["bash", "-ec", script], cwd=cwd, capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"]}, check=True).stdout
    pairs = (item.partition("=") for item in output.split("\0") if item)
    return {name: value for name, _, value in pairs if name.startswith("RECONCILER_")}


def test_variables_to_manifests_to_apply_give_the_providers_coder_creates(tmp_path):
    env_file = tmp_path / "coder.env"
    env_file.write_text(ENV_FILE)
    out = tmp_path / "manifests"
    result = run_cli("import-env", "--env-file", str(env_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = "".join(p.read_text() for p in out.rglob("*.yaml"))
    for value in SECRET_VALUES:
        assert value not in written + result.stdout + result.stderr
    assert sorted(p.name for p in (out / "providers").iterdir()) == sorted(f"{n}.yaml" for n in CODER_CREATES)
    assert validate_paths([str(out)]).diagnostics == []

    commands = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    split = _split_variables(commands, tmp_path)
    assert sorted(split) == ["RECONCILER_ANTHROPIC_CORP_API_KEY_1", "RECONCILER_ANTHROPIC_CORP_API_KEY_2",
                             "RECONCILER_CLAUDE_BEDROCK_BEDROCK_ACCESS_KEY_SECRET"]

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    environ = read_env_file(str(env_file)) | split | {"RECONCILER_ENCRYPTION_KEY": KEY_A}
    applied = run_cli("apply", str(out), "--store", store_url, env=environ)
    assert applied.returncode == 0, applied.stderr

    store = open_store(store_url)
    try:
        providers = store.read().of(PROVIDER)

        def view(value: str, group: str) -> str | None:
            return store.secret_view(value, group)

        assert set(providers) == {(name,) for name in CODER_CREATES}
        for name, (ptype, base_url, keys, bedrock) in CODER_CREATES.items():
            record = providers[(name,)]
            assert (record["type"], record["base_url"]) == (ptype, normalize_url(base_url)), name
            assert [s.view for s in record["api_keys"]] == [view(k, "api_keys") for k in keys], name
            if bedrock is None:
                assert record["settings"] is None, name
                continue
            got = record["settings"]["bedrock"]
            want = {k: Secret(view=view(v, "settings")) if k.startswith("access_key") else v
                    for k, v in bedrock.items()}
            assert set(got) == set(want), name
            for field, value in want.items():
                if isinstance(value, Secret):
                    assert got[field].view == value.view, (name, field)
                else:
                    assert got[field] == value, (name, field)
    finally:
        store.close()


def test_credentials_in_a_base_url_are_never_copied(tmp_path):
    secret = "hunter2-base-url-password"
    result = run_cli("import-env", "--out", str(tmp_path), env={
        f"{P}0_TYPE": "openai-compat", f"{P}0_KEY": "sk-x",
        f"{P}0_BASE_URL": f"https://proxy-user:{secret}@llm.internal.example/v1"})
    assert result.returncode == 1
    assert f"{P}0_BASE_URL carries credentials" in result.stderr
    written = "".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
    assert secret not in result.stdout + result.stderr + written


# --- whatever is imported validates ----------------------------------------------------------------

URL_CHOICES = (
    None, "https://api.openai.com/v1", "https://acme-eastus2.openai.azure.com/openai/v1",
    "https://acme-eastus2.openai.azure.com", "https://llm.internal.example/v1", "http://llm.internal.example",
    "https://api.anthropic.com/v1", "https://api.anthropic.com", "https://proxy-user:hunter2@llm.example/v1",
    "https://llm.example/v1/chat/completions", "https://llm.example/v1?key=abc", "not a url",
    "https://coder.example/api/v2/aibridge/openai/v1", "https://bedrock-runtime.us-east-1.amazonaws.com",
    "https://aws-external-anthropic.us-east-1.api.aws", "https://openrouter.ai/api/v1", "https://openrouter.ai",
)
KEY_CHOICES = (None, SECRET_VALUES[0], f" {SECRET_VALUES[0]} , {SECRET_VALUES[1]} ", f"{SECRET_VALUES[0]},,x")
REGIONS = ("us-east-1", "eu-central-1", "us east", "US-EAST-1")
SETTINGS_CHOICES: tuple[dict[str, str], ...] = (
    {},
    {"BEDROCK_REGION": "us-west-2"},
    {"BEDROCK_REGION": "us-west-2", "BEDROCK_MODEL": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
     "BEDROCK_SMALL_FAST_MODEL": "global.anthropic.claude-haiku-4-5-20251001-v1:0"},
    {"BEDROCK_REGION": "us east", "BEDROCK_MODEL": "m", "BEDROCK_SMALL_FAST_MODEL": "s"},
    {"BEDROCK_ACCESS_KEY": SECRET_VALUES[3], "BEDROCK_ACCESS_KEY_SECRET": SECRET_VALUES[4],
     "BEDROCK_MODEL": "m", "BEDROCK_SMALL_FAST_MODEL": "s"},
    {"BEDROCK_ACCESS_KEY": SECRET_VALUES[3], "BEDROCK_REGION": "eu-west-1"},
    {"CLAUDE_PLATFORM_REGION": "us-east-1", "CLAUDE_PLATFORM_WORKSPACE_ID": "wrkspc_01AbCdEf"},
    {"CLAUDE_PLATFORM_REGION": "us east", "CLAUDE_PLATFORM_WORKSPACE_ID": "wrkspc_01AbCdEf"},
    {"CLAUDE_PLATFORM_REGION": "eu-west-1"},
)


def seeding(index: int, ptype: str, url: str | None, keys: str | None, settings: dict[str, str],
            name: str | None = None) -> dict[str, str]:
    environ = {f"{P}{index}_TYPE": ptype} | {f"{P}{index}_{field}": v for field, v in settings.items()}
    for field, value in (("BASE_URL", url), ("KEYS", keys), ("NAME", name)):
        if value is not None:
            environ[f"{P}{index}_{field}"] = value
    return environ


def outcome(environ: dict[str, str], tmp: Path) -> str:
    """"refused" (an import error that shows no secret) or "written" (files that validate: no errors)."""
    from reconciler.diagnostics import ERROR
    from reconciler.export import write_files

    try:
        result = import_env(environ)
    except UsageError as exc:
        assert not [v for v in (*SECRET_VALUES, "hunter2") if v in str(exc)]
        return "refused"
    write_files(result.files(), str(tmp))
    written = "".join(p.read_text() for p in tmp.rglob("*.yaml"))
    assert not [v for v in (*SECRET_VALUES, "hunter2") if v in written]
    errors = [d for d in validate_paths([str(tmp)]).diagnostics if d.severity == ERROR]
    assert errors == [], (environ, [f"{d.code} {d.path}: {d.message}" for d in errors])
    return "written"


def test_every_single_provider_seeding_is_refused_or_validates(tmp_path):
    """Each provider type x base URL x keys x settings: an import error, or manifests with no validation error."""
    from collections import Counter
    from itertools import product

    from reconciler.importers.envvars import PROVIDER_TYPES

    seen: Counter[str] = Counter()
    for n, (ptype, url, keys, fields) in enumerate(product(PROVIDER_TYPES, URL_CHOICES, KEY_CHOICES,
                                                            SETTINGS_CHOICES)):
        seen[outcome(seeding(0, ptype, url, keys, fields), tmp_path / str(n))] += 1
    assert seen["written"] >= 200 and seen["refused"] >= 200, seen  # both sides are exercised


@st.composite
def seedings(draw: st.DrawFn) -> dict[str, str]:
    from reconciler.importers.envvars import PROVIDER_TYPES

    environ: dict[str, str] = {}
    for index in range(draw(st.integers(1, 4))):
        environ |= seeding(index, draw(st.sampled_from(PROVIDER_TYPES)), draw(st.sampled_from(URL_CHOICES)),
                           draw(st.sampled_from(KEY_CHOICES)), draw(st.sampled_from(SETTINGS_CHOICES)),
                           draw(st.sampled_from((None, "corp", "corp-eu", "Corp", "anthropic", "openai"))))
    return environ


@settings(max_examples=150)
@given(seedings())
def test_every_multi_provider_seeding_is_refused_or_validates(environ):
    with tempfile.TemporaryDirectory() as tmp:
        outcome(environ, Path(tmp))
