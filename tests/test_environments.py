"""Environments (issue 16): the project file, precedence of every layer, overlays, envs diff, init, --exclude.

Everything runs through the real entry point (`python -m reconciler`) against real SQLite files
and the fake Coder over HTTP; overlay merging is also checked in-process on real files.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reconciler.validate import validate_paths
from tests.cliharness import example_manifests, new_encryption_key
from tests.conftest import EXAMPLES, run_cli
from tests.fakecoder import FakeCoder, fixtures

fake_coder = fixtures.fake_coder

PROVIDER = """\
apiVersion: reconciler/v1
kind: Provider
metadata:
  name: proxy
spec:
  type: openai-compat
  base_url: https://llm.example.com/v1
  api_keys:
    - env: PROXY_KEY
"""


def model(name: str, tier: str, display: str | None = None, default: bool = False) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: {name}
          labels:
            tier: {tier}
        spec:
          provider: proxy
          model: {name}
          display_name: {display or name.upper()}
          default: {'true' if default else 'false'}
          context_limit: 128000
          config:
            max_output_tokens: 8000
            temperature: 0.5
          pricing:
            input: "1.00"
            output: "2.00"
        """)


SECRETS = {"PROXY_KEY": "sk-proxy-0123456789abcdef"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def base_repo(root: Path) -> Path:
    write(root / "base" / "providers.yaml", PROVIDER)
    write(root / "base" / "models.yaml", model("m1", "a", default=True) + "---\n" + model("m2", "b"))
    return root


def project(root: Path, body: str) -> Path:
    return write(root / "reconciler.yaml", "apiVersion: reconciler/v1\nkind: Project\npaths: [base]\n"
                 + textwrap.dedent(body))


def apply_to(url: str, *paths: Path, env: dict[str, str] | None = None) -> None:
    done = run_cli("apply", *map(str, paths), "--store", url, env={**SECRETS, **(env or {})})
    assert done.returncode == 0, done.stderr


# --- precedence: flag > RECONCILER_* > environment entry > project top level > built-in ----------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A project, and a store holding its models under old display names plus two models (x1, x2)
    no manifest of the project names: a plan shows two updates, and two deletes when pruning."""
    tmp = tmp_path_factory.mktemp("world")
    root = base_repo(tmp / "proj")
    old = tmp / "old"
    write(old / "providers.yaml", PROVIDER)
    write(old / "models.yaml", "---\n".join([model("m1", "a", "Old 1", default=True), model("m2", "b", "Old 2"),
                                             model("x1", "c"), model("x2", "c")]))
    key = {"RECONCILER_ENCRYPTION_KEY": new_encryption_key()}
    url = f"sqlite:///{tmp / 'full.db'}"
    apply_to(url, old, env=key)
    return {"root": root, "url": url, "key": key}


def plan_changes(world: dict[str, Any], body: str, *args: str, env: dict[str, str] | None = None,
                 expect: int = 0) -> tuple[set[tuple[str, str]], str | None]:
    project(world["root"], body)
    done = run_cli("plan", "--format", "json", *args, env={**world["key"], **(env or {})}, cwd=world["root"])
    assert done.returncode == expect, done.stderr
    plan = json.loads(done.stdout)
    return {(c["action"], c["key"].rsplit("/", 1)[-1]) for c in plan["changes"]}, plan["refusal"]


UPDATES = {("update", "m1"), ("update", "m2")}
DELETES = {("delete", "x1"), ("delete", "x2")}


def test_prune_every_layer(world: dict[str, Any]) -> None:
    store = f"store: {world['url']}\n"
    envs = "environments:\n  e:\n    options: {prune: false}\n"
    assert plan_changes(world, store)[0] == UPDATES  # built-in: no prune
    assert plan_changes(world, store + "options: {prune: true}\n")[0] == UPDATES | DELETES  # project
    top_and_env = store + "options: {prune: true}\n" + envs
    assert plan_changes(world, top_and_env, "--env", "e")[0] == UPDATES  # environment over project
    assert plan_changes(world, top_and_env, env={"RECONCILER_ENV": "e"})[0] == UPDATES  # RECONCILER_ENV too
    assert plan_changes(world, top_and_env, "--env", "e", env={"RECONCILER_PRUNE": "true"})[0] == UPDATES | DELETES
    assert plan_changes(world, store + envs, "--env", "e", "--prune",
                        env={"RECONCILER_PRUNE": "false"})[0] == UPDATES | DELETES  # flag over variable


def test_max_deletes_every_layer(world: dict[str, Any]) -> None:
    top = f"store: {world['url']}\noptions: {{prune: true, max_deletes: 1}}\n"
    env = top + "environments:\n  e:\n    options: {max_deletes: 5}\n"
    assert plan_changes(world, f"store: {world['url']}\noptions: {{prune: true}}\n")[1] == ""  # built-in 10
    changes, refusal = plan_changes(world, top, expect=1)  # project: 1
    assert refusal and "max-deletes" in refusal.replace("_", "-")
    assert plan_changes(world, env, "--env", "e")[1] == ""  # environment: 5
    assert plan_changes(world, env, "--env", "e", env={"RECONCILER_MAX_DELETES": "1"}, expect=1)[1]
    assert plan_changes(world, env, "--env", "e", "--max-deletes", "5",
                        env={"RECONCILER_MAX_DELETES": "1"})[1] == ""  # flag over variable


def test_select_every_layer(world: dict[str, Any]) -> None:
    store = f"store: {world['url']}\n"
    top = store + "options: {select: {tier: a}}\n"
    env = top + "environments:\n  e:\n    options: {select: {tier: b}}\n"
    assert plan_changes(world, store)[0] == UPDATES
    assert plan_changes(world, top)[0] == {("update", "m1")}
    assert plan_changes(world, env, "--env", "e")[0] == {("update", "m2")}
    assert plan_changes(world, env, "--env", "e", env={"RECONCILER_SELECT": "tier=a"})[0] == {("update", "m1")}
    assert plan_changes(world, env, "--env", "e", "--select", "tier=b",
                        env={"RECONCILER_SELECT": "tier=a"})[0] == {("update", "m2")}


def test_store_every_layer(tmp_path: Path) -> None:
    root = base_repo(tmp_path / "proj")
    key = {"RECONCILER_ENCRYPTION_KEY": new_encryption_key(), **SECRETS}
    urls = {layer: f"sqlite:///{tmp_path / layer}.db" for layer in ("top", "env", "var", "flag")}
    body = f"store: {urls['top']}\nenvironments:\n  e:\n    store: {urls['env']}\n"
    cases = [  # (project file, arguments, environment, the file that must be created)
        ("environments: {e: {}}\n", ["--env", "e"], {}, root / ".reconciler" / "store.db"),  # built-in
        (body, [], {}, tmp_path / "top.db"),
        (body, ["--env", "e"], {}, tmp_path / "env.db"),
        (body, ["--env", "e"], {"RECONCILER_STORE": urls["var"]}, tmp_path / "var.db"),
        (body, ["--env", "e", "--store", urls["flag"]], {"RECONCILER_STORE": urls["var"]}, tmp_path / "flag.db"),
    ]
    made: set[Path] = set()
    for body_, args, env, expected in cases:
        project(root, body_)
        done = run_cli("apply", *args, env={**key, **env}, cwd=root)
        assert done.returncode == 0, done.stderr
        made.add(expected)
        assert {p for p in [*tmp_path.glob("*.db"), *root.glob(".reconciler/*.db")]} == made, (args, env)


def test_help_states_the_precedence() -> None:
    for command in ("plan", "apply", "validate"):
        text = " ".join(run_cli(command, "--help").stdout.split())
        assert ("the command line, its RECONCILER_* variable, the --env environment's entry in reconciler.yaml, "
                "the project file's top level, the built-in default") in text


def test_without_a_project_file_paths_default_to_the_working_directory(tmp_path: Path) -> None:
    base_repo(tmp_path)
    done = run_cli("validate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(2 files)" in done.stderr


# --- overlays ------------------------------------------------------------------------------------


def overlay_repo(root: Path, overlay: str, base_extra: str = "") -> Path:
    base_repo(root)
    if base_extra:
        write(root / "base" / "extra.yaml", base_extra)
    write(root / "envs" / "st" / "patch.yaml", textwrap.dedent(overlay))
    return root


def validate_env(root: Path) -> Any:
    return validate_paths([str(root / "base")], overlays=[str(root / "envs" / "st")])


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_overlay_merges_maps_replaces_lists_removes_nulls_adds_and_removes(tmp_path: Path) -> None:
    root = overlay_repo(tmp_path, """\
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m1
          labels: {env: staging}
        spec:
          display_name: Staging One
          config:
            max_output_tokens: 4000
            temperature: null
        ---
        apiVersion: reconciler/v1
        kind: Provider
        metadata:
          name: proxy
        spec:
          api_keys:
            - env: STAGING_KEY_A
            - env: STAGING_KEY_B
        ---
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m2
          annotations:
            reconciler/remove: "true"
        ---
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m3
        spec:
          provider: proxy
          model: m3
          context_limit: 32000
          pricing: {input: "1.00", output: "1.00"}
        """)
    result = validate_env(root)
    assert result.errors == 0, result.diagnostics
    models = {m.name: m for m in result.manifests.models}
    assert set(models) == {"m1", "m3"}  # m2 removed, m3 added
    m1 = models["m1"]
    assert m1.display_name == "Staging One"
    assert m1.meta.labels == {"tier": "a", "env": "staging"}  # maps merge
    assert m1.config == {"max_output_tokens": 4000}  # temperature removed by null, the rest merged
    assert m1.default is True and m1.context_limit == 128000  # untouched base values stay
    (provider,) = result.manifests.providers
    assert provider.api_keys == ("env:STAGING_KEY_A", "env:STAGING_KEY_B")  # lists replace
    assert provider.base_url == "https://llm.example.com/v1"


def test_diagnostics_point_at_the_file_the_value_came_from(tmp_path: Path) -> None:
    root = overlay_repo(tmp_path, """\
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m1
        spec:
          context_limit: 0
        ---
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m2
        spec:
          provider: nowhere
        ---
        apiVersion: reconciler/v1
        kind: Model
        metadata:
          name: m4
        spec:
          display_name: Four (staging)
        """, base_extra=model("m4", "d").replace("temperature: 0.5", "temprature: 0.5"))
    patch, extra = root / "envs" / "st" / "patch.yaml", root / "base" / "extra.yaml"
    found = {(d.code, d.file, d.line) for d in validate_env(root).diagnostics}
    assert ("RC201", str(patch), line_of(patch, "context_limit: 0")) in found  # set by the overlay
    assert ("RC402", str(patch), line_of(patch, "provider: nowhere")) in found  # a rule, on an overlay value
    assert ("RC201", str(extra), line_of(extra, "temprature")) in found  # a base value of a patched document


def test_an_overlay_patches_a_thousand_documents_in_parallel_workers_as_in_one_process(tmp_path: Path) -> None:
    from benchmarks.generate import generate
    from benchmarks.generate import overlay as make_overlay

    generate(str(tmp_path / "base"), 10, 450)
    make_overlay(str(tmp_path / "overlay"), 450, 100)
    one = validate_paths([str(tmp_path / "base")], jobs=1, overlays=[str(tmp_path / "overlay")])
    many = validate_paths([str(tmp_path / "base")], jobs=2, overlays=[str(tmp_path / "overlay")])
    assert one.errors == 0, one.diagnostics[:3]
    assert one.diagnostics == many.diagnostics
    assert [m.display_name for m in one.manifests.models] == [m.display_name for m in many.manifests.models]
    assert sum(m.display_name.endswith("(overlay)") for m in one.manifests.models) == 100


# --- bad input: file:line, exit 1, no store read or written --------------------------------------

BAD = {
    "unknown environment": ("environments: {st: {overlays: [envs/st]}}\n", "--env nope", "", r"reconciler\.yaml:4:1: "
                            r"no environment 'nope'.*RC117"),
    "missing overlay path": ("environments:\n  st:\n    overlays: [envs/st, envs/gone]\n", "--env st", "",
                             r"reconciler\.yaml:6:25: environment 'st': overlay path 'envs/gone' does not exist"),
    "invalid project file": ("environments:\n  st:\n    overlay: [envs/st]\n", "--env st", "",
                             r"reconciler\.yaml:6:5: unknown field 'overlay'"),
    "invalid option": ("options: {max_deletes: -1}\n", "", "",
                       r"reconciler\.yaml:4:24: options\.max_deletes must be at least 0"),
    "project yaml syntax": ("environments: [\n", "", "", r"reconciler\.yaml:\d+:\d+: YAML syntax error"),
    "env without project": (None, "--env st", "", r"--env st: no reconciler\.yaml"),
    "overlay kind mismatch": ("environments: {st: {overlays: [envs/st]}}\n", "--env st",
                              "apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: proxy\nspec: {}\n",
                              r"envs/st/patch\.yaml:2:7: error RC118 the base defines 'proxy' as a Provider"),
    "removal of a missing name": ("environments: {st: {overlays: [envs/st]}}\n", "--env st",
                                  "apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: m9\n  annotations:\n"
                                  "    reconciler/remove: \"true\"\n",
                                  r"envs/st/patch\.yaml:4:9: error RC119 reconciler/remove names Model 'm9'"),
    "the same object twice": ("environments: {st: {overlays: [envs/st]}}\n", "--env st",
                              "apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: m1\n---\n"
                              "apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: m1\n",
                              r"envs/st/patch\.yaml:9:9: error RC120"),
}


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_bad_input_is_refused_at_file_and_line_touching_no_store(tmp_path: Path, case: str, command: str) -> None:
    body, args, overlay, expected = BAD[case]
    root = base_repo(tmp_path / "proj")
    write(root / "envs" / "st" / "patch.yaml", overlay or "apiVersion: reconciler/v1\nkind: Model\n"
          "metadata:\n  name: m1\n")
    if body is not None:
        project(root, body)
    store = tmp_path / "store.db"
    at = [] if command == "validate" else ["--store", f"sqlite:///{store}"]
    done = run_cli(command, *args.split(), *at, env=SECRETS, cwd=root)
    assert done.returncode == 1, done.stderr
    said = done.stdout + done.stderr  # validate's text diagnostics are on stdout, plan's and apply's on stderr
    assert re.search(expected, said), said
    assert "Traceback" not in said
    assert not store.exists() and not (root / ".reconciler").exists()


# --- envs diff -----------------------------------------------------------------------------------


def test_the_example_environments_validate() -> None:
    for env in ("staging", "prod"):
        done = run_cli("validate", "--env", env, "--strict", cwd=EXAMPLES / "environments")
        assert done.returncode == 0, done.stderr


def test_envs_diff_object_by_object_field_by_field_secrets_by_reference() -> None:
    canary = "sk-ant-CANARY-0123456789abcdef"
    env = {"ACME_STAGING_ANTHROPIC_API_KEY": canary, "ACME_PROD_ANTHROPIC_API_KEY": canary}
    text = run_cli("envs", "diff", "staging", "prod", env=env, cwd=EXAMPLES / "environments")
    assert text.returncode == 0, text.stderr
    as_json = run_cli("envs", "diff", "staging", "prod", "--format", "json", env=env,
                      cwd=EXAMPLES / "environments")
    assert canary not in text.stdout + text.stderr + as_json.stdout + as_json.stderr
    diff = {(d["kind"], d["key"]): d for d in json.loads(as_json.stdout)["differences"]}
    assert diff[("Model", "default/anthropic/claude-haiku-4-5")]["only_in"] == "staging"
    assert diff[("Model", "default/openai/gpt-5")]["only_in"] == "prod"
    sonnet = diff[("Model", "default/anthropic/claude-sonnet-4-5")]["fields"]
    assert sonnet == [{"path": "config.reasoning_effort.max", "a": "max", "b": "high"}]
    keys = diff[("Provider", "anthropic")]["fields"]
    assert keys == [{"path": "api_keys", "a": [{"$secret": "env:ACME_STAGING_ANTHROPIC_API_KEY"}],
                     "b": [{"$secret": "env:ACME_PROD_ANTHROPIC_API_KEY"},
                           {"$secret": "env:ACME_PROD_ANTHROPIC_API_KEY_SECONDARY"}]}]
    assert "~ Model default/anthropic/claude-sonnet-4-5\n    config.reasoning_effort.max: \"max\" → \"high\"" \
        in text.stdout
    assert "secret env:ACME_PROD_ANTHROPIC_API_KEY" in text.stdout
    same = run_cli("envs", "diff", "prod", "prod", cwd=EXAMPLES / "environments")
    assert same.stdout == "prod and prod ask for the same state.\n"


def test_envs_diff_refuses_an_unknown_environment(tmp_path: Path) -> None:
    done = run_cli("envs", "diff", "staging", "qa", cwd=EXAMPLES / "environments")
    assert done.returncode == 1
    assert "reconciler.yaml:18:1: no environment 'qa'" in done.stderr


# --- init ----------------------------------------------------------------------------------------

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


def modelines_resolve(root: Path) -> int:
    count = 0
    for path in root.rglob("*.yaml"):
        for ref in MODELINE.findall(path.read_text()):
            assert (path.parent / ref).is_file(), (path, ref)
            count += 1
    return count


def test_init_on_an_empty_directory(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    done = run_cli("init", str(root))
    assert done.returncode == 0, done.stderr
    for name in ("reconciler.yaml", ".gitignore", ".github/workflows/reconciler.yml", ".gitlab-ci.yml",
                 ".pre-commit-config.yaml", "schemas/project.schema.json", "schemas/model.schema.json"):
        assert (root / name).is_file(), name
    assert ".reconciler/" in (root / ".gitignore").read_text().splitlines()
    assert (root / ".gitlab-ci.yml").read_text() == (EXAMPLES / ".gitlab-ci.yml").read_text()
    assert modelines_resolve(root) >= 2
    valid = run_cli("validate", "--strict", cwd=root)
    assert valid.returncode == 0, valid.stderr
    (root / ".gitignore").write_text("mine\n")
    again = run_cli("init", str(root))
    assert again.returncode == 1 and "--force" in again.stderr
    assert (root / ".gitignore").read_text() == "mine\n"  # nothing written
    forced = run_cli("init", str(root), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (root / ".gitignore").read_text().endswith(".reconciler/\n")


def test_init_from_a_sqlite_store_gives_an_empty_first_plan(tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    applied = run_cli("apply", str(manifests.path), "--store", url, env=manifests.env)
    assert applied.returncode == 0, applied.stderr
    root = tmp_path / "repo"
    done = run_cli("init", str(root), "--from", url, env={"PYTHONPATH": manifests.env["PYTHONPATH"]})
    assert done.returncode == 0, done.stderr
    assert (root / "providers").is_dir() and (root / "models").is_dir()
    assert modelines_resolve(root) > 10
    planned = run_cli("plan", "--detailed-exitcode", cwd=root)  # the store comes from the project file
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert planned.stdout.startswith("No changes.")


def test_init_from_the_fake_coder_gives_an_empty_first_plan(fake_coder: FakeCoder, tmp_path: Path) -> None:
    manifests = example_manifests(tmp_path)
    env = {"CODER_SESSION_TOKEN": fake_coder.token, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    url = "coder+" + fake_coder.url
    applied = run_cli("apply", str(manifests.path), "--store", url, env={**manifests.env, **env})
    assert applied.returncode == 0, applied.stderr
    root = tmp_path / "repo"
    done = run_cli("init", str(root), "--from", url, env=env)
    assert done.returncode == 0, done.stderr
    assert fake_coder.token not in "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    planned = run_cli("plan", "--detailed-exitcode", env=env, cwd=root)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert planned.stdout.startswith("No changes.")


def test_init_never_writes_a_store_password(tmp_path: Path) -> None:
    from reconciler.scaffold import scaffold

    text = scaffold("postgresql://app:hunter2-secret@db.example/x", None).files["reconciler.yaml"]
    assert "hunter2" not in text and "RECONCILER_STORE" in text


# --- exclude -------------------------------------------------------------------------------------


def test_exclude_from_the_command_line_the_environment_and_the_project(tmp_path: Path) -> None:
    root = base_repo(tmp_path)
    write(root / "base" / "docker-compose.yml", "services:\n  db:\n    image: postgres\n")
    write(root / "base" / "ci" / "pipeline.yaml", "stages: [test]\n")
    assert run_cli("validate", "base", cwd=root).returncode == 1
    flags = run_cli("validate", "base", "--exclude", "docker-compose.yml", "--exclude", "ci/**", cwd=root)
    assert flags.returncode == 0, flags.stderr
    variable = run_cli("validate", "base", env={"RECONCILER_EXCLUDE": "base/docker-compose.yml base/ci"}, cwd=root)
    assert variable.returncode == 0, variable.stderr
    project(root, "exclude: [docker-compose.yml, 'base/ci/**']\n")
    assert run_cli("validate", cwd=root).returncode == 0
    replaced = run_cli("validate", "--exclude", "ci", cwd=root)  # the flag replaces the project's list
    assert replaced.returncode == 1 and "docker-compose.yml" in replaced.stdout + replaced.stderr


def test_a_saved_plan_applies_in_a_project_whose_options_shaped_it(tmp_path: Path) -> None:
    root = base_repo(tmp_path / "proj")
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    project(root, f"environments:\n  prod:\n    store: {url}\n    options: {{prune: true, max_deletes: 3}}\n")
    env = {"RECONCILER_ENCRYPTION_KEY": new_encryption_key(), "RECONCILER_PLAN_KEY": new_encryption_key(), **SECRETS}
    planned = run_cli("plan", "--env", "prod", "--out", str(tmp_path / "p.plan"), env=env, cwd=root)
    assert planned.returncode == 0, planned.stderr
    applied = run_cli("apply", str(tmp_path / "p.plan"), "--env", "prod", env=env, cwd=root)
    assert applied.returncode == 0, applied.stderr
    again = run_cli("plan", "--env", "prod", "--detailed-exitcode", env=env, cwd=root)
    assert again.returncode == 0 and again.stdout.startswith("No changes."), again.stdout + again.stderr
    given = run_cli("apply", str(tmp_path / "p.plan"), "--env", "prod", "--prune", env=env, cwd=root)
    assert given.returncode == 1 and "--prune cannot be given with a saved plan" in given.stderr  # a flag still does


def test_the_project_schema_is_valid_and_accepts_the_examples() -> None:
    import yaml
    from jsonschema import Draft202012Validator

    from reconciler.validate.schema import schema_dir

    schema = json.loads((schema_dir() / "project.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for example in [*schema["examples"], yaml.safe_load((EXAMPLES / "environments" / "reconciler.yaml").read_text())]:
        assert not list(validator.iter_errors(example))


def test_explain_and_cost_read_the_environment(tmp_path: Path) -> None:
    base_repo(tmp_path)
    write(tmp_path / "envs" / "prod" / "default.yaml", textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: Model
        metadata: {name: m2}
        spec: {default: true}
        ---
        apiVersion: reconciler/v1
        kind: Model
        metadata: {name: m1}
        spec: {default: false}
        """))
    project(tmp_path, "environments:\n  prod:\n    overlays: [envs/prod]\n")

    def default_model(*args: str) -> str:
        done = run_cli("explain", "--format", "json", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        root = next(c for c in json.loads(done.stdout)["explanations"][0]["contexts"] if c["context"] == "root")
        return str(root["model"])

    assert default_model("base").startswith("m1 ")
    assert default_model("--env", "prod").startswith("m2 ")
    done = run_cli("cost", "--env", "prod", "--store", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert done.returncode == 0 and "only a Coder store" in done.stdout and "Traceback" not in done.stderr
