"""`reconciler init`: a new manifest repository, ready for validate, plan and CI.

It writes the project file, a .gitignore that keeps `.reconciler/` (the local store, caches) out of
git, the JSON Schemas under `schemas/` with modelines that resolve from where each file is, and the
GitHub Actions workflow, GitLab CI file and pre-commit config of the examples. With a store, the
first manifests are exported from it (reconciler/export.py), so that the first plan is empty.
Existing files are never overwritten unless `force`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.errors import UsageError
from reconciler.export import Export, ManifestFile, local_schema_ref, manifest, write_text
from reconciler.manifest.loader import KINDS, PROJECT_FILE
from reconciler.validate.schema import SCHEMA_FILES, load_schema, schema_dir

CI_FILES = (".github/workflows/reconciler.yml", ".gitlab-ci.yml", ".pre-commit-config.yaml")
GITIGNORE = "# reconciler's local state: the default SQLite store, caches. Never commit it.\n.reconciler/\n"
PROJECT_SCHEMA = "project.schema.json"


@dataclass
class Scaffold:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    export: Export | None = None


def templates_dir() -> Path:
    """The CI files of examples/: `reconciler/templates` inside an installed wheel, else the repository's."""
    packaged = Path(str(resources.files("reconciler"))) / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "examples"


def shareable_store(url: str) -> str | None:
    """The store URL as a project file may hold it: never one that carries a password."""
    try:
        return None if urlsplit(url).password else url
    except ValueError:
        return None


def scaffold(store_url: str | None, export: Export | None) -> Scaffold:
    out = Scaffold(export=export)
    store_line = ""
    if store_url:
        shared = shareable_store(store_url)
        store_line = (f"store: {json.dumps(shared)}\n" if shared else
                      "# store: the URL carries a password: set RECONCILER_STORE instead of writing it here\n")
    out.files[PROJECT_FILE] = (
        f"# yaml-language-server: $schema=schemas/{PROJECT_SCHEMA}\n"
        "# The project file: where the manifests are, the environments, and option defaults.\n"
        "# An option's value comes from, first to last: the command line, its RECONCILER_* variable,\n"
        "# the --env environment's entry below, this file's top level, the built-in default.\n"
        "# See docs/ENVIRONMENTS.md in reconciler's repository.\n"
        "apiVersion: reconciler/v1\n"
        "kind: Project\n"
        "paths: [.]\n"
        f"{store_line}"
        "# environments:\n"
        "#   staging:\n"
        "#     overlays: [envs/staging]\n"
        "#     store: coder+https://coder-staging.example.com\n"
        "#   prod:\n"
        "#     overlays: [envs/prod]\n"
        "#     store: coder+https://coder.example.com\n"
        "#     options: {max_deletes: 3, prune: true}\n"
    )
    out.files[".gitignore"] = GITIGNORE
    templates = templates_dir()
    for name in CI_FILES:
        out.files[name] = (templates / name).read_text(encoding="utf-8")
    for kind in KINDS:
        out.files[f"schemas/{SCHEMA_FILES[kind]}"] = json.dumps(load_schema(kind), indent=2) + "\n"
    out.files[f"schemas/{PROJECT_SCHEMA}"] = (schema_dir() / PROJECT_SCHEMA).read_text(encoding="utf-8")
    files = export.files if export is not None else [_starter_settings()]
    for f in files:
        out.files[f.path] = f.text(local_schema_ref(f.path, f.kind))
    return out


def _starter_settings() -> ManifestFile:
    """A first manifest, so that `validate` has something to read: the gateway's default settings."""
    doc = manifest("Settings", "deployment", {"personal_model_overrides": {"allow_users": False}})
    header = ["Deployment-wide settings. Add providers/ and models/ beside this file",
              "(or start from a live store: `reconciler init --from URL`)."]
    return ManifestFile("settings.yaml", "Settings", header, [doc])


def write_scaffold(plan: Scaffold, directory: str, force: bool) -> list[str]:
    """Write every file under `directory`; refuses (writing nothing) when one exists, unless `force`."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"{directory} exists and is not a directory")
    existing = sorted(p for p in plan.files if os.path.lexists(os.path.join(directory, p)))
    if existing and not force:
        shown = ", ".join(existing[:4]) + (f" and {len(existing) - 4} more" if len(existing) > 4 else "")
        raise UsageError(f"{directory} already holds {shown}: nothing was written; move them, or give --force "
                         "to overwrite them")
    written = []
    for path, text in plan.files.items():
        target = os.path.join(directory, *path.split("/"))
        write_text(target, text)
        written.append(target)
    return written
