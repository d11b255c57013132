"""The deprecated provider environment variables -> Provider manifests.

Coder seeds its providers once from `CODER_AI_GATEWAY_PROVIDER_<N>_<FIELD>`
(or the older alias prefix `CODER_AIBRIDGE_PROVIDER_<N>_<FIELD>`). This module
reads the same variables with Coder's rules, so that it accepts what Coder
accepts and refuses, naming the variable, what Coder refuses:

- indexes N are numbers, contiguous from 0 (sorted numerically: 10 after 2);
- the two prefixes are never mixed;
- TYPE is required and known; NAME defaults to TYPE and is unique;
- KEY and KEYS are mutually exclusive; a key list is comma-separated,
  trimmed, at most 5 keys, no empty or repeated key; no keys for copilot or
  bedrock;
- BEDROCK_* fields only on TYPE anthropic or bedrock; anthropic takes either
  KEY/KEYS or BEDROCK_* fields, not both; TYPE bedrock needs BEDROCK_REGION
  or access keys; as many access keys as secrets (and, for a manifest, one
  pair: the API holds one);
- CLAUDE_PLATFORM_REGION and CLAUDE_PLATFORM_WORKSPACE_ID (Claude Platform for
  AWS, `settings.claude_platform_aws`) only on TYPE anthropic, both or
  neither, not with BEDROCK_*; KEY/KEYS are allowed beside them. These two
  names follow Coder's naming but are not confirmed in Coder's source;
- field names are case-insensitive; an unknown field is a warning.

A manifest is written only if `reconciler validate` accepts it: what Coder
would fill in from deployment-level defaults that reconciler cannot read
(Bedrock's model and small_fast_model) and whatever else validation refuses
(an Azure BASE_URL without `/openai/v1`, a region that is no region, …) is an
import error naming the variable to set or fix.

The manifests reference the variables that hold the secrets. A variable that
holds exactly one key is referenced as it is; a comma list is split into one
variable per key, with a derived name (`secret_env_name`), and
`EnvImport.split_commands()` says how. Secret values are read only to check
the rules above; they never leave this module. An empty variable counts as
unset.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import UsageError
from reconciler.export import ManifestFile, file_stem, manifest, secret_env_name
from reconciler.manifest.model import OPENAI_SHAPED, bedrock_base_url, default_base_url
from reconciler.state import normalize_url

NEW_PREFIX, OLD_PREFIX = "CODER_AI_GATEWAY_PROVIDER_", "CODER_AIBRIDGE_PROVIDER_"
MAX_KEYS = 5
PROVIDER_TYPES = (*OPENAI_SHAPED, "anthropic", "bedrock", "copilot")
NO_KEYS = ("bedrock", "copilot")
BEDROCK_TYPES = ("anthropic", "bedrock")
CLAUDE_PLATFORM = {"CLAUDE_PLATFORM_REGION": "region", "CLAUDE_PLATFORM_WORKSPACE_ID": "workspace_id"}
BASE_URL_REQUIRED = ("azure", "openai-compat")
FIELDS = (
    "TYPE", "NAME", "KEY", "KEYS", "BASE_URL",
    "BEDROCK_REGION", "BEDROCK_MODEL", "BEDROCK_SMALL_FAST_MODEL", "BEDROCK_BASE_URL",
    "BEDROCK_ACCESS_KEY", "BEDROCK_ACCESS_KEYS", "BEDROCK_ACCESS_KEY_SECRET", "BEDROCK_ACCESS_KEY_SECRETS",
    *CLAUDE_PLATFORM,
)
BEDROCK_SETTINGS = {"BEDROCK_REGION": "region", "BEDROCK_MODEL": "model",
                    "BEDROCK_SMALL_FAST_MODEL": "small_fast_model"}
BEDROCK_AUTH = ("BEDROCK_REGION", "BEDROCK_ACCESS_KEY", "BEDROCK_ACCESS_KEYS",
                "BEDROCK_ACCESS_KEY_SECRET", "BEDROCK_ACCESS_KEY_SECRETS")
PAIRS = (("KEY", "KEYS"), ("BEDROCK_ACCESS_KEY", "BEDROCK_ACCESS_KEYS"),
         ("BEDROCK_ACCESS_KEY_SECRET", "BEDROCK_ACCESS_KEY_SECRETS"))
NAME_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_NAME = 63
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SecretSource:
    """Where one secret of a manifest comes from."""

    variable: str  # the Coder variable that holds it
    position: int  # its place in that variable's comma list, from 1
    env: str  # what the manifest references: `variable` itself, or a variable to split into

    @property
    def split(self) -> bool:
        return self.env != self.variable

    def command(self) -> str:
        """A POSIX shell line that sets `env` to this key alone, trimmed as Coder trims it."""
        return (f"export {self.env}=\"$(printf '%s' \"${self.variable}\" | cut -d, -f{self.position}"
                " | sed 's/^[[:space:]]*//;s/[[:space:]]*$//')\"")


@dataclass
class EnvProvider:
    index: int
    name: str
    type: str
    base_url: str | None  # None: the type's default
    api_keys: list[SecretSource]
    bedrock: dict[str, Any] | None  # region/model/small_fast_model, access_key/access_key_secret sources
    claude_platform: dict[str, str] | None = None  # region/workspace_id
    variables: dict[str, str] = field(default_factory=dict)  # FIELD -> the variable that set it

    def secrets(self) -> list[SecretSource]:
        found = list(self.api_keys)
        found += [v for v in (self.bedrock or {}).values() if isinstance(v, SecretSource)]
        return found

    def manifest_file(self, prefix: str) -> ManifestFile:
        spec: dict[str, Any] = {"type": self.type}
        if self.base_url:
            spec["base_url"] = self.base_url
        if self.api_keys:
            spec["api_keys"] = [{"env": s.env} for s in self.api_keys]
        if self.bedrock:
            spec["settings"] = {"bedrock": {k: {"env": v.env} if isinstance(v, SecretSource) else v
                                            for k, v in self.bedrock.items()}}
        if self.claude_platform:
            spec["settings"] = {"claude_platform_aws": dict(self.claude_platform)}
        header = [f"Provider `{self.name}`, imported from {prefix}{self.index}_* by `reconciler import-env`.",
                  "Secrets reference the variables that hold them; values are never written."]
        split = [s for s in self.secrets() if s.split]
        if split:
            header += ["", "These keys sit in a comma list; split them into their own variables",
                       "before `reconciler apply` (`reconciler import-env` prints the commands):"]
            header += [f"  {s.env} = key {s.position} of {s.variable}" for s in split]
        doc = manifest("Provider", self.name, spec)
        return ManifestFile(f"providers/{file_stem(self.name)}.yaml", "Provider", header, [doc])


@dataclass
class EnvImport:
    prefix: str
    providers: list[EnvProvider]
    warnings: list[str] = field(default_factory=list)

    def files(self) -> list[ManifestFile]:
        return [p.manifest_file(self.prefix) for p in self.providers]

    def split_commands(self, env_file: str | None = None) -> list[str]:
        """Shell lines that split comma-listed keys into the variables the manifests reference."""
        lines = [s.command() for p in self.providers for s in p.secrets() if s.split]
        if lines and env_file:
            lines.insert(0, f"set -a; . {shlex.quote(env_file)}; set +a")
        return lines


def read_env_file(path: str) -> dict[str, str]:
    """`KEY=VALUE` lines (blank lines, `#` comments, an `export ` prefix, '…' or "…" quotes).

    Errors name the file and line, never a value.
    """
    from reconciler.files import DATA_FILE_BYTES, read_regular

    try:
        text = read_regular(path, DATA_FILE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise UsageError(f"cannot read {path}: {reason}") from None
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not _ENV_NAME.fullmatch(name):
            raise UsageError(f"{path}:{number}: expected NAME=VALUE")
        found[name] = _env_value(value.strip(), f"{path}:{number}")
    return found


def _env_value(value: str, where: str) -> str:
    if not value or value[0] not in "'\"":
        return re.split(r"\s+#", value, maxsplit=1)[0].rstrip()  # an unquoted value ends at " #"
    quote, chars, i = value[0], [], 1
    while i < len(value) and value[i] != quote:
        if quote == '"' and value[i] == "\\" and i + 1 < len(value):
            i += 1
            chars.append({"n": "\n", "t": "\t"}.get(value[i], value[i]))
        else:
            chars.append(value[i])
        i += 1
    if i >= len(value):
        raise UsageError(f"{where}: the value's closing {quote} is missing (values are one line)")
    rest = value[i + 1:].strip()
    if rest and not rest.startswith("#"):
        raise UsageError(f"{where}: unexpected text after the closing {quote}")
    return "".join(chars)


def import_env(environ: Mapping[str, str]) -> EnvImport:
    """The providers the variables in `environ` describe; UsageError lists every rule they break."""
    new = sorted(v for v in environ if v.startswith(NEW_PREFIX))
    old = sorted(v for v in environ if v.startswith(OLD_PREFIX))
    if new and old:
        raise UsageError(f"cannot mix {OLD_PREFIX}* and {NEW_PREFIX}* environment variables, please "
                         f"consolidate onto {NEW_PREFIX}* (found {old[0]} and {new[0]})")
    if not new and not old:
        raise UsageError(f"no {NEW_PREFIX}* or {OLD_PREFIX}* variables found")
    prefix = NEW_PREFIX if new else OLD_PREFIX
    result = EnvImport(prefix, [])
    problems: list[str] = []
    groups = _group(prefix, new or old, problems, result.warnings)
    for position, index in enumerate(sorted(groups)):
        if index != position:
            first = min(groups[index].values())
            problems.append(f"{first}: provider index {index} skips index {position} "
                            "(indexes must be contiguous from 0)")
            break
    for index in sorted(groups):
        given = {f: var for f, var in groups[index].items() if environ[var] != ""}
        provider = _provider(prefix, index, given, environ, problems, result.warnings)
        if provider is not None:
            result.providers.append(provider)
    _check_names(prefix, result.providers, groups, problems)
    if problems:
        raise UsageError(f"{len(problems)} problem(s) in the provider environment variables:\n  - "
                         + "\n  - ".join(problems))
    return result


def _group(prefix: str, variables: list[str], problems: list[str], warnings: list[str]) -> dict[int, dict[str, str]]:
    """index -> FIELD -> variable name, for the variables of `prefix`."""
    groups: dict[int, dict[str, str]] = {}
    for var in variables:
        index, _, name = var[len(prefix):].partition("_")
        if not (index.isascii() and index.isdigit()) or not name:
            problems.append(f"{var}: expected {prefix}<N>_<FIELD>, N a number")
            continue
        fields = groups.setdefault(int(index), {})
        name = name.upper()
        if name in fields:
            problems.append(f"{fields[name]} and {var} both set {name}")
        elif name.startswith("WIF_"):
            problems.append(f"{var}: workload identity (WIF_*) variables are not converted; "
                            "write spec.settings.wif in the provider's manifest by hand")
        elif name not in FIELDS:
            warnings.append(f"{var}: unknown field {name}, ignored (check for typos)")
        else:
            fields[name] = var
    return groups


def _provider(prefix: str, index: int, given: dict[str, str], environ: Mapping[str, str],
              problems: list[str], warnings: list[str]) -> EnvProvider | None:
    ptype = environ[given["TYPE"]] if "TYPE" in given else ""
    if not ptype:
        problems.append(f"provider {index}: {prefix}{index}_TYPE is required")
        return None
    if ptype not in PROVIDER_TYPES:
        problems.append(f"{given['TYPE']}: unknown TYPE {ptype!r} (must be one of {', '.join(PROVIDER_TYPES)})")
        return None
    name = environ[given["NAME"]] if "NAME" in given else ptype
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        problems.append(f"{given.get('NAME', given['TYPE'])}: {name!r} is not a valid provider name "
                        f"(lowercase letters and digits, words joined by single hyphens, at most {MAX_NAME})")
    before = len(problems)
    for single, plural in PAIRS:
        if single in given and plural in given:
            problems.append(f"{given[single]} and {given[plural]}: {single} and {plural} are mutually "
                            "exclusive; set one")
    key_var = given.get("KEY") or given.get("KEYS")
    bedrock_vars = [given[f] for f in FIELDS if f.startswith("BEDROCK_") and f in given]
    if key_var and ptype in NO_KEYS:
        problems.append(f"{key_var}: KEY/KEYS are not supported for TYPE {ptype}")
    if bedrock_vars and ptype not in BEDROCK_TYPES:
        problems.append(f"{bedrock_vars[0]}: BEDROCK_* fields are only supported with TYPE anthropic or bedrock")
    if key_var and bedrock_vars and ptype == "anthropic":
        problems.append(f"{key_var} and {bedrock_vars[0]}: KEY/KEYS and BEDROCK_* fields are mutually exclusive")
    if ptype == "bedrock" and not any(f in given for f in BEDROCK_AUTH):
        problems.append(f"{given['TYPE']}: TYPE bedrock requires BEDROCK_* fields to be configured "
                        f"({prefix}{index}_BEDROCK_REGION, or BEDROCK_ACCESS_KEY and BEDROCK_ACCESS_KEY_SECRET)")
    platform_vars = [given[f] for f in CLAUDE_PLATFORM if f in given]
    if platform_vars and ptype != "anthropic":
        problems.append(f"{platform_vars[0]}: CLAUDE_PLATFORM_* fields are only supported with TYPE anthropic")
    if platform_vars and bedrock_vars:
        problems.append(f"{bedrock_vars[0]} and {platform_vars[0]}: BEDROCK_* and CLAUDE_PLATFORM_* fields are "
                        "mutually exclusive (a provider has one kind of settings)")
    if platform_vars and ptype == "anthropic":
        problems += [f"{prefix}{index}_{f} is not set: Claude Platform for AWS needs both CLAUDE_PLATFORM_REGION "
                     "and CLAUDE_PLATFORM_WORKSPACE_ID" for f in CLAUDE_PLATFORM if f not in given]
    if len(problems) > before:
        return None
    api_keys = _secrets(key_var, environ, problems, lambda n: secret_env_name(name, "api_keys", n)) or []
    bedrock = _bedrock(name, given, environ, problems) if bedrock_vars else None
    platform = {key: environ[given[f]] for f, key in CLAUDE_PLATFORM.items()} if platform_vars else None
    base_url = _base_url(prefix, index, ptype, given, environ, bedrock, platform, problems)
    if ptype == "bedrock" and bedrock is not None:
        _bedrock_complete(prefix, index, given, base_url, problems)
    if len(problems) > before:
        return None
    provider = EnvProvider(index, name, ptype, base_url, api_keys, bedrock, platform, dict(given))
    problems += _refused(provider, prefix)
    return provider


def _bedrock_complete(prefix: str, index: int, given: dict[str, str], base_url: str | None,
                      problems: list[str]) -> None:
    """What Coder's seeding fills from deployment-level defaults that reconciler cannot read."""
    for f, key in (("BEDROCK_MODEL", "model"), ("BEDROCK_SMALL_FAST_MODEL", "small_fast_model")):
        if f not in given:
            problems.append(f"{prefix}{index}_{f} is not set: Coder falls back to a deployment-level default that "
                            f"reconciler cannot read, and a manifest needs settings.bedrock.{key} (invoke-model "
                            "protocol); set it to the Bedrock model ID the deployment uses")
    if base_url is None and "BEDROCK_REGION" not in given:
        problems.append(f"{prefix}{index}_BEDROCK_REGION is not set: a bedrock provider's endpoint comes from its "
                        "region; set it (or BEDROCK_BASE_URL)")


# where a manifest field comes from: its path -> the FIELDs that may have set it, in order
_ORIGINS = {
    "metadata.name": ("NAME", "TYPE"),
    "spec.api_keys": ("KEY", "KEYS"),
    "spec.base_url": ("BEDROCK_BASE_URL", "BASE_URL", "BEDROCK_REGION", "CLAUDE_PLATFORM_REGION"),
    "spec.settings.bedrock.region": ("BEDROCK_REGION",),
    "spec.settings.bedrock.model": ("BEDROCK_MODEL",),
    "spec.settings.bedrock.small_fast_model": ("BEDROCK_SMALL_FAST_MODEL",),
    "spec.settings.bedrock.access_key_secret": ("BEDROCK_ACCESS_KEY_SECRET", "BEDROCK_ACCESS_KEY_SECRETS"),
    "spec.settings.bedrock.access_key": ("BEDROCK_ACCESS_KEY", "BEDROCK_ACCESS_KEYS"),
    "spec.settings.claude_platform_aws.region": ("CLAUDE_PLATFORM_REGION",),
    "spec.settings.claude_platform_aws.workspace_id": ("CLAUDE_PLATFORM_WORKSPACE_ID",),
}


def _refused(provider: EnvProvider, prefix: str) -> list[str]:
    """The errors `reconciler validate` would report in the provider's manifest, each naming the variable
    behind it: nothing is written that validation refuses."""
    from reconciler.diagnostics import ERROR
    from reconciler.manifest.loader import load_bytes
    from reconciler.manifest.model import build_manifests
    from reconciler.validate.rules import check_rules
    from reconciler.validate.schema import check_documents

    file = provider.manifest_file(prefix)
    documents, found = load_bytes(file.body().encode("utf-8"), file.path)
    valid, invalid = check_documents(documents)
    found += invalid + check_rules(build_manifests(valid))
    return [f"{_origin(provider, d.path)}: the manifest written from it would fail `reconciler validate` "
            f"({d.code}: {d.message}); fix the variable" for d in found if d.severity == ERROR]


def _origin(provider: EnvProvider, path: str) -> str:
    for prefix, fields in sorted(_ORIGINS.items(), key=lambda item: -len(item[0])):
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            found = [provider.variables[f] for f in fields if f in provider.variables]
            if found:
                return found[0]
    return provider.variables["TYPE"]


def _secrets(var: str | None, environ: Mapping[str, str], problems: list[str],
             derive: Callable[[int], str]) -> list[SecretSource] | None:
    """The keys of a (comma-listed) variable, by reference; None when it breaks a rule."""
    if var is None:
        return []
    raw = environ[var]
    items = [item.strip() for item in raw.split(",")]
    if len(items) > MAX_KEYS:
        problems.append(f"{var}: too many keys ({len(items)}), maximum is {MAX_KEYS}")
        return None
    for position, item in enumerate(items):
        if not item:
            problems.append(f"{var}: key at index {position} is empty")
            return None
        if item in items[:position]:
            problems.append(f"{var}: duplicate key at index {position}")
            return None
    if items == [raw]:
        return [SecretSource(var, 1, var)]
    return [SecretSource(var, n, derive(n)) for n in range(1, len(items) + 1)]


def _bedrock(name: str, given: dict[str, str], environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {key: environ[given[f]] for f, key in BEDROCK_SETTINGS.items() if f in given}
    access_var = given.get("BEDROCK_ACCESS_KEY") or given.get("BEDROCK_ACCESS_KEYS")
    secret_var = given.get("BEDROCK_ACCESS_KEY_SECRET") or given.get("BEDROCK_ACCESS_KEY_SECRETS")
    keys = _secrets(access_var, environ, problems, lambda n: secret_env_name(name, "access_key"))
    secrets = _secrets(secret_var, environ, problems, lambda n: secret_env_name(name, "access_key_secret"))
    if keys is None or secrets is None:
        return settings
    if len(keys) != len(secrets):
        named = " and ".join(v or f"{f} (unset)" for v, f in ((access_var, "BEDROCK_ACCESS_KEYS"),
                                                              (secret_var, "BEDROCK_ACCESS_KEY_SECRETS")))
        problems.append(f"{named}: BEDROCK_ACCESS_KEYS count ({len(keys)}) must match "
                        f"BEDROCK_ACCESS_KEY_SECRETS count ({len(secrets)})")
    elif len(keys) > 1:
        problems.append(f"{access_var}: {len(keys)} access key pairs, but a provider holds one pair in "
                        "Coder's API and in manifests; keep the pair the deployment should use")
    elif keys:
        settings["access_key"], settings["access_key_secret"] = keys[0], secrets[0]
    return settings


def _base_url(prefix: str, index: int, ptype: str, given: dict[str, str], environ: Mapping[str, str],
              bedrock: dict[str, Any] | None, platform: dict[str, str] | None, problems: list[str]) -> str | None:
    plain = environ[given["BASE_URL"]] if "BASE_URL" in given else None
    via_bedrock = environ[given["BEDROCK_BASE_URL"]] if "BEDROCK_BASE_URL" in given else None
    if plain and via_bedrock and normalize_url(plain) != normalize_url(via_bedrock):
        problems.append(f"{given['BASE_URL']} and {given['BEDROCK_BASE_URL']} name different URLs; keep one")
    url = via_bedrock or plain
    if url is not None and _has_credentials(url):
        var = given["BEDROCK_BASE_URL"] if via_bedrock else given["BASE_URL"]
        problems.append(f"{var} carries credentials (user or password in the URL): they are never copied into a "
                        "manifest; move them to the provider's keys and give the URL without them")
        return None
    if url is None and ptype in BASE_URL_REQUIRED:
        problems.append(f"{prefix}{index}_BASE_URL is required for TYPE {ptype}")
    if url is None and ptype == "anthropic" and bedrock:
        return bedrock_base_url({"bedrock": bedrock})  # Bedrock's endpoint, not api.anthropic.com
    default = default_base_url(ptype, {"bedrock": bedrock} if bedrock else
                               {"claude_platform_aws": platform} if platform else None)
    if url is not None and normalize_url(url) == normalize_url(default):
        return None  # the type's default: left out, like export leaves it out
    return url


def _has_credentials(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "@" in url
    return "@" in parts.netloc


def _check_names(prefix: str, providers: list[EnvProvider], groups: dict[int, dict[str, str]],
                 problems: list[str]) -> None:
    seen: dict[str, int] = {}
    for p in providers:
        if p.name in seen:
            var = groups[p.index].get("NAME") or groups[p.index]["TYPE"]
            problems.append(f"{var}: duplicate NAME {p.name!r} (also provider {seen[p.name]}); providers of the "
                            f"same type need explicit, distinct {prefix}<N>_NAME values")
        else:
            seen[p.name] = p.index
