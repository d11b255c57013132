"""The project file, `reconciler.yaml`: where a repository's manifests are, its environments, and
the defaults of the commands' options.

    apiVersion: reconciler/v1
    kind: Project
    paths: [base]
    exclude: [".github/**", "docker-compose.yml"]
    environments:
      prod: {overlays: [envs/prod], store: "coder+https://coder.acme.example", options: {prune: true}}

Found by walking up from the working directory (or named with --project). An option's value comes
from, first to last: the command line, its RECONCILER_* variable, the environment's entry, the
project file's top level, the built-in default. The CLI feeds the last two project layers to click
as its `default_map`, which click consults after the command line and the variable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError
from reconciler.manifest.loader import API_VERSION, PROJECT_FILE, Document, quoted

OPTION_KEYS = ("prune", "max_deletes", "select", "strict", "rotate_secrets")  # options: as the commands name them


class ProjectError(UsageError):
    """The project file is invalid, or names an environment or overlay that is not there."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("\n".join(f"{d.file}:{d.line}:{d.column}: {d.message} [{d.code}]" for d in diagnostics))
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Layout:
    """What to validate: base paths, an environment's overlays, and the globs to leave out."""

    paths: tuple[str, ...]
    overlays: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    exclude_root: str = "."
    environment: str | None = None

    def validate(self, jobs: int | None = None, use_cache: bool = True) -> Any:
        from reconciler.validate import validate_paths

        return validate_paths(self.paths, jobs, self.overlays, self.exclude, self.exclude_root, use_cache)


@dataclass
class Project:
    file: str
    root: str
    data: dict[str, Any]
    doc: Document
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _rooted(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.root, path))

    def environment(self, name: str) -> dict[str, Any]:
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            where = ("environments",) if "environments" in self.data else ()
            raise ProjectError([self.doc.diagnostic(
                "RC117", f"no environment {quoted(name)} in {self.file} (it defines: {known})", where, key=True)])
        return self.environments[name]

    def defaults(self, env: str | None) -> dict[str, Any]:
        """The option defaults the project gives (an environment's over the top level), by parameter name."""
        entry = self.environment(env) if env else {}
        options = {**(self.data.get("options") or {}), **(entry.get("options") or {})}
        out: dict[str, Any] = {k: v for k, v in options.items() if k in OPTION_KEYS}
        if "select" in out:
            out["select"] = [f"{k}={v}" for k, v in out["select"].items()]
        store = entry.get("store") or self.data.get("store")
        if store:
            out["store_url"] = store
        if "exclude" in self.data:
            out["exclude"] = list(self.data["exclude"])
        return out

    def layout(self, env: str | None, paths: Sequence[str], exclude: Sequence[str], exclude_rooted: bool) -> Layout:
        """The layout of `env`: PATHS given on the command line replace the project's paths. Every
        environment's overlays are left out of the base, whichever paths it reads."""
        entry = self.environment(env) if env else {}
        overlays = []
        for index, overlay in enumerate(entry.get("overlays") or []):
            path = self._rooted(overlay)
            if not os.path.exists(path):
                message = (f"environment {quoted(env or '')}: overlay path {quoted(overlay)} does not exist "
                           f"(overlay paths are relative to {self.file}'s directory)")
                where = ("environments", env or "", "overlays", index)
                raise ProjectError([self.doc.diagnostic("RC117", message, where)])
            overlays.append(path)
        every_overlay = [os.path.relpath(self._rooted(o), self.root).replace(os.sep, "/")
                         for e in self.environments.values() for o in e.get("overlays") or []]
        base = tuple(paths) or tuple(self._rooted(p) for p in self.data.get("paths") or ["."])
        if exclude_rooted:  # the project's globs, relative to its root, with every overlay path
            return Layout(base, tuple(overlays), (*exclude, *every_overlay), self.root, env)
        # globs from the command line or RECONCILER_EXCLUDE: relative to the working directory
        rooted = tuple(os.path.relpath(self._rooted(o)).replace(os.sep, "/") for o in every_overlay)
        return Layout(base, tuple(overlays), (*exclude, *rooted), ".", env)


def find_project(explicit: str | None, start: str = ".") -> str | None:
    """The project file: `explicit` (a file, or a directory holding one), else the first
    reconciler.yaml from `start` up to the filesystem root; None when there is none."""
    if explicit:
        path = os.path.join(explicit, PROJECT_FILE) if os.path.isdir(explicit) else explicit
        if not os.path.isfile(path):
            raise UsageError(f"--project {explicit}: no project file there ({PROJECT_FILE})")
        return path
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, PROJECT_FILE)
        if os.path.isfile(candidate):
            return os.path.relpath(candidate) if candidate.startswith(os.getcwd() + os.sep) else candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def load_project(path: str) -> Project:
    """The project file, checked against schemas/project.schema.json; ProjectError names every problem."""
    from reconciler.manifest.loader import load_document

    doc, problems = load_document(path)
    if doc is None:
        raise ProjectError(problems or [Diagnostic(path, 1, 1, "error", "RC117", "the project file holds no document")])
    problems = _schema_problems(doc)
    if problems:
        raise ProjectError(problems)
    data = doc.data
    return Project(path, os.path.dirname(path) or ".", data, doc, dict(data.get("environments") or {}))


def _schema_problems(doc: Document) -> list[Diagnostic]:
    import json

    from jsonschema import Draft202012Validator

    from reconciler.validate.schema import describe, schema_dir

    if not isinstance(doc.data, dict):
        return [doc.diagnostic("RC117", "the project file must be a mapping")]
    if doc.data.get("apiVersion") != API_VERSION or doc.data.get("kind") != "Project":
        return [doc.diagnostic("RC117", f"a project file starts with apiVersion: {API_VERSION} and kind: Project",
                               ("kind",) if "kind" in doc.data else ())]
    with open(schema_dir() / "project.schema.json", encoding="utf-8") as fh:
        schema = json.load(fh)
    problems = []
    for error in Draft202012Validator(schema).iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                problems.append(doc.diagnostic("RC117", f"unknown field {quoted(extra)} (known: {', '.join(allowed)})",
                                               (*path, extra), key=True))
            continue
        if "propertyNames" in error.relative_schema_path:
            problems.append(doc.diagnostic("RC117", f"environment name {quoted(str(error.instance))} must be "
                                           "lower-case letters, digits, - and _", (*path, error.instance), key=True))
            continue
        problems.append(doc.diagnostic("RC117", describe(error), path, key=error.validator == "required"))
    return sorted(problems)


def resolve(explicit: str | None, env: str | None) -> Project | None:
    """The project (None without one); an environment named with no project file is an error."""
    path = find_project(explicit)
    if path is None:
        if env:
            raise UsageError(f"--env {env}: no {PROJECT_FILE} in this directory or above it (or give --project)")
        return None
    project = load_project(path)
    if env:
        project.layout(env, (), (), True)  # an unknown environment, a missing overlay path: refused now
    return project
