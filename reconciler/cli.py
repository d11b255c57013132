"""The command line. The only module that imports click or writes to the terminal.

Heavy modules (jsonschema, httpx, psycopg, cryptography) are imported inside
the commands that need them, so `reconciler --help` starts fast.

Exit codes: 0 success; 1 any error, usage errors included; 2 only
for `plan --detailed-exitcode` when there is drift.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.metrics import RunRecord
    from reconciler.progress import ObservedStore
    from reconciler.render import Style
    from reconciler.stores.base import Store

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
FULL_PLAN_IN_APPLY = 100  # apply prints the per-field plan up to this many changes (all with -v)
DEFAULT_STORE = "sqlite:///.reconciler/store.db"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# One instance of each path type: click looks up a translation each time it builds one (~0.5 ms),
# which `reconciler --help` would pay 16 times.
ANY_PATH, FILE_PATH, DIR_PATH = click.Path(), click.Path(dir_okay=False), click.Path(file_okay=False)


_SGR = re.compile(r"\x1b\[[0-9;]*m|\r\x1b\[K")  # colour codes, and progress's clear-line
# an SGR colour code as a whole, else any C0/C1 control but tab and newline, and the bidi overrides
_CONTROL = re.compile("\x1b\\[[0-9;]*m|\r\x1b\\[K|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _style(stream: Any) -> Style:
    from reconciler.render import Style
    from reconciler.terminal import color_enabled

    ctx = click.get_current_context(silent=True)
    chosen = ctx.meta.get("reconciler.color") if ctx is not None else None
    return Style(color_enabled(chosen[0] if chosen else None, stream, os.environ))


def _out(text: str) -> None:
    sys.stdout.write(_terminal_safe(text))
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(_terminal_safe(text))
    sys.stderr.flush()


def _terminal_safe(text: str) -> str:
    """Control characters from data (a file name, a store key, a server's message, a saved plan)
    shown as escapes, so that none can move the cursor, rewrite a line or retitle the terminal.
    Kept: newlines, tabs, and what this tool writes itself: colour codes (`ESC [ digits m`) and the
    progress line's clear-line (`CR ESC [ K`)."""
    def shown(match: re.Match[str]) -> str:
        if _SGR.fullmatch(match.group(0)):
            return match.group(0)
        return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" for c in match.group(0))

    return _CONTROL.sub(shown, text) if _CONTROL.search(text) else text


def _fail(message: str) -> NoReturn:
    _err(f"{_style(sys.stderr)('Error:', 'red')} {message}\n")
    raise SystemExit(EXIT_ERROR)


class SelectorType(click.ParamType):
    """A kubectl label selector (see selector.py); malformed is a usage error. In the environment
    variable, selectors are separated by `;` (a selector may hold spaces: `team in (a,b)`)."""

    name = "selector"
    envvar_list_splitter = ";"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from reconciler.selector import SelectorError, parse

        try:
            return parse(str(value)).text()
        except SelectorError as exc:
            self.fail(str(exc), param, ctx)


class TargetType(click.ParamType):
    name = "target"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from reconciler.targeting import TargetError, parse_target

        try:
            return "/".join(parse_target(str(value)))
        except TargetError as exc:
            self.fail(str(exc), param, ctx)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """-q/-v/--color may come before or after the command name: note them in the contexts' shared
    meta, with where they came from; the command line wins over a RECONCILER_* variable."""
    if value:
        from click.core import ParameterSource

        key = f"reconciler.{param.name}"
        from_cli = ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE
        earlier = ctx.meta.get(key)
        if from_cli or earlier is None or earlier[1] != "cli":
            ctx.meta[key] = (value, "cli" if from_cli else "env")
    return value


COMMON_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-q", "--quiet"), {"is_flag": True, "envvar": "RECONCILER_QUIET",
                         "help": "Only errors, for every command. Output asked for with --format, and files "
                                 "(--out, --report, --metrics-file), are still written."}),
    (("-v", "--verbose"), {"is_flag": True, "envvar": "RECONCILER_VERBOSE",
                           "help": "More detail on stderr: the store, timings per stage."}),
    (("--color",), {"type": click.Choice(["auto", "always", "never"]), "envvar": "RECONCILER_COLOR",
                    "help": "Colour: auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR or "
                            "CLICOLOR_FORCE force it), always, never.  [default: auto]"}),
)


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-q/--quiet, -v/--verbose and --color, on the group and on each command."""
    for decls, attrs in reversed(COMMON_OPTIONS):
        func = click.option(*decls, expose_value=False, callback=_remember, show_envvar=True, **attrs)(func)
    return func


class Group(click.Group):
    """The command group; a command that does not declare -q/-v gets them, so they work after any name."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "quiet" for p in cmd.params):
            cmd.params += [click.Option(list(decls), expose_value=False, callback=_remember, show_envvar=True,
                                        **attrs) for decls, attrs in COMMON_OPTIONS]
        super().add_command(cmd, name)


def _verbosity() -> int:
    """-1 quiet, 0 normal, 1 verbose. -q and -v from the same place are a usage error; from the
    command line and a variable, the command line wins."""
    meta = click.get_current_context().meta
    quiet, verbose = meta.get("reconciler.quiet"), meta.get("reconciler.verbose")
    if quiet and verbose:
        if quiet[1] != verbose[1]:
            return -1 if quiet[1] == "cli" else 1
        where = "" if quiet[1] == "cli" else " (RECONCILER_QUIET and RECONCILER_VERBOSE are both set)"
        raise click.UsageError(f"--quiet and --verbose cannot be used together{where}")
    return -1 if quiet else 1 if verbose else 0


def _note(text: str) -> None:
    """A warning or a note on stderr; -q leaves only errors."""
    if _verbosity() >= 0:
        _err(text)


def _outlive(value: Any) -> None:
    """Keep a run's large results alive until `main` ends the process: freeing them would cost
    ~0.1 s per 10k documents and achieve nothing. A no-op when the CLI is called in-process."""
    kept = click.get_current_context().obj
    if isinstance(kept, list):
        kept.append(value)


def _detail(text: str) -> None:
    """A -v line on stderr."""
    if _verbosity() > 0:
        _err(_style(sys.stderr)(text, "dim") + "\n")


class Seconds(click.FloatRange):
    """A finite, non-negative number of seconds: `nan` and `inf` would wait forever."""

    name = "seconds"

    def __init__(self, min_open: bool = False) -> None:
        super().__init__(min=0, min_open=min_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        "store_url",
        envvar="RECONCILER_STORE",
        show_envvar=True,
        default=DEFAULT_STORE,
        show_default=True,
        metavar="URL",
        help="sqlite:///path.db, postgresql://…, or coder+https://host.",
    )(func)


def cache_option(func: Callable[..., Any]) -> Callable[..., Any]:
    def switch(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if not value:
            from reconciler.cache import switch_off

            switch_off()
        return value

    return click.option("--cache/--no-cache", default=True, envvar="RECONCILER_CACHE", show_envvar=True,
                        expose_value=False, callback=switch,
                        help="--no-cache: parse and check every file and plan in full, without the cache "
                             "in .reconciler/cache/ (or $RECONCILER_CACHE_DIR); RECONCILER_CACHE=off.")(func)


def plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [cache_option,
        click.option("--prune", is_flag=True, envvar="RECONCILER_PRUNE", show_envvar=True,
                     help="Delete store objects that no manifest names (protected ones excepted)."),
        click.option("--max-deletes", type=click.IntRange(min=0), default=10, show_default=True,
                     envvar="RECONCILER_MAX_DELETES", show_envvar=True,
                     help="Refuse a plan that deletes or replaces more objects than this."),
        click.option("--select", "select", multiple=True, metavar="SELECTOR", type=SelectorType(),
                     envvar="RECONCILER_SELECT", show_envvar=True,
                     help="Only the manifests, and the store objects (by their stored labels), that a "
                          "kubectl label selector matches: a=b,c!=d, 'a in (x,y)', 'a notin (x)', a, !a "
                          "(repeatable; all must hold). With --prune, deletes only the selection's orphans."),
        click.option("--target", "target", multiple=True, metavar="KIND/NAME", type=TargetType(),
                     envvar="RECONCILER_TARGET", show_envvar=True,
                     help="Plan only this manifest (kind and metadata.name, e.g. Model/claude-sonnet) and "
                          "what it depends on (repeatable). A targeted plan is partial."),
        click.option("--rotate-secrets", is_flag=True, envvar="RECONCILER_ROTATE_SECRETS", show_envvar=True,
                     help="Resend every secret, even where the store shows no change."),
        click.option("--strict", is_flag=True, envvar="RECONCILER_STRICT", show_envvar=True,
                     help="Treat validation warnings as errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


CODER_OPTIONS = "reconciler.coder_options"


def coder_options(func: Callable[..., Any] | None = None, *, locking: bool = False) -> Any:
    """Options of the Coder store. Kept in the click context for `_open`, which passes them
    to coder+https:// stores only; the commands themselves never see them. `--lock-store` only
    on the command that takes the apply lock (`locking`)."""
    if func is None:
        return lambda f: coder_options(f, locking=locking)

    def keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and param.name:
            ctx.meta.setdefault(CODER_OPTIONS, {})[param.name] = value
        return value

    options = [
        click.option("--token-file", type=FILE_PATH, envvar="RECONCILER_TOKEN_FILE",
                     show_envvar=True, expose_value=False, callback=keep,
                     help="Coder store: read the session token from this file "
                          "(default: the CODER_SESSION_TOKEN environment variable)."),
        click.option("--parallelism", type=click.IntRange(min=1, max=64), default=8, show_default=True,
                     envvar="RECONCILER_PARALLELISM", show_envvar=True, expose_value=False, callback=keep,
                     help="Coder store: how many requests run at once."),
        click.option("--request-timeout", type=Seconds(min_open=True), default=30.0,
                     show_default=True, envvar="RECONCILER_REQUEST_TIMEOUT", show_envvar=True,
                     expose_value=False, callback=keep,
                     help="Coder store: seconds to wait for one answer before retrying."),
        click.option("--deadline", type=Seconds(min_open=True), default=600.0,
                     show_default=True, envvar="RECONCILER_DEADLINE", show_envvar=True,
                     expose_value=False, callback=keep,
                     help="Coder store: seconds a read or an apply may take, retries included."),
    ]
    if locking:
        options.append(click.option(
            "--lock-store", metavar="URL", envvar="RECONCILER_LOCK_STORE", show_envvar=True, expose_value=False,
            callback=keep, help="Coder store: take the apply lock in this SQL store (shared by every machine "
                                "that applies) instead of a lock file on this machine."))
    for option in reversed(options):
        func = option(func)
    return func


PRECEDENCE = ("Each option's value comes from, first to last: the command line, its RECONCILER_* variable, "
              "the --env environment's entry in reconciler.yaml, the project file's top level, the built-in default.")
PROJECT = "reconciler.project"


def _peek(args: list[str], name: str) -> str | None:
    """The value of `name` (`--env X` or `--env=X`) among a command's raw arguments, before click parses them."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


class ProjectCommand(click.Command):
    """A command that reads the project file before its options, so that the project's values become
    click's `default_map`: click takes a flag first, then its RECONCILER_* variable, then the map."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["epilog"] = kwargs.get("epilog") or PRECEDENCE
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from reconciler.errors import UsageError
        from reconciler.project import resolve

        env = _peek(args, "--env") or os.environ.get("RECONCILER_ENV") or None
        try:
            project = resolve(_peek(args, "--project") or os.environ.get("RECONCILER_PROJECT") or None, env)
        except UsageError:
            if any(a in ("-h", "--help") for a in args):
                project = None  # --help works in a broken project too
            else:
                raise
        if project is not None:
            ctx.default_map = {**(ctx.default_map or {}), **project.defaults(env)}
        ctx.meta[PROJECT] = (project, env)
        return super().parse_args(ctx, args)


EXCLUDE = "reconciler.exclude"


def _keep_exclude(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[EXCLUDE] = tuple(value or ())
    return value


def project_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--env", "env_name", metavar="NAME", envvar="RECONCILER_ENV", show_envvar=True,
                     expose_value=False, help="The environment of reconciler.yaml: its overlays, store and options."),
        click.option("--project", "project_file", metavar="PATH", envvar="RECONCILER_PROJECT", show_envvar=True,
                     expose_value=False, help="The project file (or its directory); default: the first "
                                              "reconciler.yaml from the working directory up."),
        click.option("--exclude", "exclude", multiple=True, metavar="GLOB", envvar="RECONCILER_EXCLUDE",
                     show_envvar=True, expose_value=False, callback=_keep_exclude,
                     help="Files not to read (repeatable; `**` any depth; a glob without / matches a name "
                          "anywhere). Replaces the project's `exclude`."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _layout(paths: tuple[str, ...]) -> Any:
    """The manifests to read: PATHS (else the project's, else .), the environment's overlays, the excludes."""
    from click.core import ParameterSource

    from reconciler.project import Layout

    ctx = click.get_current_context()
    project, env = ctx.meta.get(PROJECT, (None, None))
    exclude = tuple(ctx.meta.get(EXCLUDE, ()))
    if project is None:
        return Layout(tuple(paths) or (".",), exclude=exclude)
    from_project = ctx.get_parameter_source("exclude") == ParameterSource.DEFAULT_MAP
    return project.layout(env, paths, exclude, from_project)


def _open(store_url: str, read_only: bool = False) -> Store:
    """The store; `read_only` for the commands that only read (plan, export, …): a SQL store is then
    neither created nor migrated, and a PostgreSQL session refuses writes."""
    from reconciler.stores import open_store

    ctx = click.get_current_context(silent=True)
    if ctx is not None and store_url.lower().startswith("coder+"):
        return open_store(store_url, **ctx.meta.get(CODER_OPTIONS, {}))
    return open_store(store_url, read_only=True) if read_only else open_store(store_url)


def _open_observed(store_url: str, on_apply: Callable[[int], None] | None = None,
                   read_only: bool = False) -> ObservedStore:
    """The store, wrapped to time its reads and writes (and count an apply's changes for progress)."""
    import time

    from reconciler.progress import ObservedStore

    started = time.monotonic()
    store = ObservedStore(_open(store_url, read_only), on_apply)
    if read_only:
        from reconciler.stores import missing_store_note

        note = missing_store_note(store_url)
        if note:
            _note(f"Note: {note}\n")
    _detail(f"store: {store.url} (opened in {time.monotonic() - started:.2f} s)")
    return store


def _planned_in(store: ObservedStore, seconds: float, changes: int) -> None:
    read = store.seconds.get("read", 0.0)
    _detail(f"read the store in {read:.2f} s; validated and planned in {seconds - read:.2f} s: "
            f"{changes} change{'' if changes == 1 else 's'}")


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="reconciler")
@verbosity_options
def cli() -> None:
    """Keep an AI gateway's providers, models, prices and overrides in git.

    \b
      reconciler validate manifests/                 check manifests (CI, pre-commit)
      reconciler plan manifests/ --store URL         show what would change
      reconciler apply manifests/ --store URL        make the store match
      reconciler schema --out schemas/               the JSON Schemas, for editors
      reconciler export --store URL --out DIR        first manifests from an existing store
      reconciler verify manifests/                   prove every key and model id works upstream
      reconciler init [DIR] [--from URL]             a new manifest repository
      reconciler envs diff staging prod              how two environments differ

    Every option can also be set from the environment variable shown in its
    command's --help (RECONCILER_*); -q and -v work before or after the command.
    A reconciler.yaml project file (found from the working directory up, see
    `reconciler init`) gives the manifest paths, environments (--env NAME) and
    option defaults. An option's value comes from, first to last: the command
    line, its RECONCILER_* variable, the --env environment's entry in
    reconciler.yaml, the project file's top level, the built-in default.
    Exit codes: 0 success, 1 any error, 2 only for `plan --detailed-exitcode`
    when there are changes.
    """


@cli.command(cls=ProjectCommand, context_settings=CONTEXT)
@project_options
@click.argument("paths", nargs=-1, type=ANY_PATH)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif", "gitlab"]), default="text",
              show_default=True, envvar="RECONCILER_VALIDATE_FORMAT", show_envvar=True,
              help="text for people, json for machines, github for workflow annotations, sarif for "
                   "code scanning (SARIF 2.1.0), gitlab for a Code Quality report.")
@click.option("--strict", is_flag=True, envvar="RECONCILER_STRICT", show_envvar=True,
              help="Treat warnings as errors.")
@click.option("--jobs", type=click.IntRange(min=1, max=64), envvar="RECONCILER_JOBS", show_envvar=True,
              help="Processes that parse a large input (400+ files): default one per CPU; 1 for none. "
                   "The result is the same for any number.")
@cache_option
@verbosity_options
def validate(paths: tuple[str, ...], fmt: str, strict: bool, jobs: int | None) -> int:
    """Check manifests against the JSON Schemas and the semantic rules.

    PATHS are files or directories (default: the current directory); every
    .yaml/.yml file below a directory is read, hidden directories skipped.
    Exit 0 when valid, 1 when not.
    """
    import time

    started = time.monotonic()
    result = _layout(paths).validate(jobs)
    _outlive(result)
    _detail(f"validated {len(result.documents)} documents in {result.files} files "
            f"in {time.monotonic() - started:.2f} s")
    from reconciler.render.reports import render_validation
    from reconciler.render.text import diagnostics_summary

    quiet = _verbosity() < 0
    _out(render_validation(result, fmt, strict, quiet, _style(sys.stdout)))
    if not quiet or not result.ok(strict):
        _err(diagnostics_summary(result.errors, result.warnings, result.files))
    return EXIT_OK if result.ok(strict) else EXIT_ERROR


def _show_diagnostics(result: Any, strict: bool) -> None:
    """Diagnostics and their summary on stderr; with -q only those that fail the run."""
    from reconciler.render.text import diagnostics_summary, render_diagnostics

    quiet = _verbosity() < 0
    failing = [d for d in result.diagnostics if strict or d.severity == "error"]
    _err(render_diagnostics(failing if quiet else result.diagnostics, _style(sys.stderr), result.source_lookup()))
    if failing or not quiet:
        _err(diagnostics_summary(result.errors, result.warnings, result.files))


def _plan_diagnostics(outcome: Any) -> list[Any]:
    """Validation's diagnostics and the plan-time price checks against the store's price book."""
    from reconciler.noop import shown_diagnostics

    return shown_diagnostics(outcome)


def _report_invalid(exc: Any, strict: bool) -> NoReturn:
    _show_diagnostics(exc.result, strict)
    _fail(str(exc))


@cli.command(cls=ProjectCommand, context_settings=CONTEXT)
@project_options
@click.argument("paths", nargs=-1, type=ANY_PATH)
@store_option
@coder_options
@click.option("--out", "out_file", type=FILE_PATH, envvar="RECONCILER_PLAN_OUT",
              show_envvar=True, help="Save the plan, for `reconciler apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, envvar="RECONCILER_PLAN_FORMAT", show_envvar=True,
              help="text for people, json for machines, markdown for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, envvar="RECONCILER_DETAILED_EXITCODE", show_envvar=True,
              help="Exit 2 when the plan has changes or the store holds objects no manifest names, "
                   "0 otherwise (a drift alarm).")
@click.option("--ignore-unmanaged", is_flag=True, envvar="RECONCILER_IGNORE_UNMANAGED", show_envvar=True,
              help="With --detailed-exitcode: objects in the store that no manifest names are not drift "
                   "(a store shared on purpose). Without it they are: exit 2.")
@click.option("--cost", "with_cost", is_flag=True, envvar="RECONCILER_PLAN_COST", show_envvar=True,
              help="Coder store: append the last 30 days' usage re-priced under this plan (see `cost`).")
@plan_options
@verbosity_options
def plan(paths: tuple[str, ...], store_url: str, out_file: str | None, fmt: str, detailed_exitcode: bool,
         ignore_unmanaged: bool, with_cost: bool, prune: bool, max_deletes: int, select: tuple[str, ...],
         target: tuple[str, ...], rotate_secrets: bool, strict: bool) -> int:
    """Show what apply would change in the store. Needs no secret values.

    Secrets that are not available are shown as not verifiable and planned as
    unchanged. Writes nothing to the store. With -q and the text format,
    prints only errors (the exit code tells the rest).
    """
    import time

    from reconciler.lastwrite import last_writes
    from reconciler.plan import PlanOptions
    from reconciler.planfile import is_plan_file, save_plan
    from reconciler.run import InvalidManifests, make_plan
    from reconciler.secrets import SecretResolver

    if len(paths) == 1 and is_plan_file(paths[0]):
        raise click.UsageError(f"{paths[0]} is a saved plan: `reconciler show {paths[0]}` renders it "
                               "(plan reads manifests)")
    options = PlanOptions(prune, max_deletes, tuple(select), rotate_secrets, tuple(target))
    store = _open_observed(store_url, read_only=True)  # read-only: a SQL store is neither created nor migrated
    started = time.monotonic()
    try:
        outcome = make_plan(_layout(paths), store, options, SecretResolver(), strict,
                            reuse=not (out_file or with_cost))
        _outlive(outcome)
        last_writes(store, outcome.plan)
        cost_report = _plan_cost(outcome, store) if with_cost else None
    except InvalidManifests as exc:
        _report_invalid(exc, strict)
    finally:
        store.close()
    result = outcome.plan
    _planned_in(store, time.monotonic() - started, len(result.changes))
    diagnostics = _plan_diagnostics(outcome)
    result.warnings = [d for d in diagnostics if d.severity != "error"]  # kept in a saved plan, for `show`
    if diagnostics and _verbosity() >= 0:
        from reconciler.render.text import render_diagnostics

        _err(render_diagnostics(diagnostics, _style(sys.stderr)))
    if out_file and not save_plan(result, store.url, out_file):
        _note(f"Warning: {out_file} is not signed (no RECONCILER_PLAN_KEY or RECONCILER_ENCRYPTION_KEY): "
             "it can be read, but `apply` refuses it\n")
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(result.to_dict()))
    elif fmt == "markdown":
        from reconciler.render.markdown import render_plan_markdown

        _out(render_plan_markdown(result, diagnostics))
    elif _verbosity() >= 0:
        from reconciler.render.text import render_plan

        _out(render_plan(result, _style(sys.stdout)))
        if out_file:
            _out(f"\nSaved the plan to {out_file}; apply it with: reconciler apply {out_file}\n")
    elif result.refusal:
        _err(f"Error: {result.refusal}\n")
    if cost_report is not None and fmt != "json":
        _out("\n")
        _show_cost(cost_report, fmt)
    elif cost_report is not None:
        _note("Note: --cost is not part of the json plan; `reconciler cost --format json` prints it\n")
    if result.refusal:
        return EXIT_ERROR
    drift = not result.empty or (bool(result.unmanaged) and not ignore_unmanaged)
    return EXIT_CHANGES if detailed_exitcode and drift else EXIT_OK


def _validated(paths: tuple[str, ...], strict: bool) -> Any:
    """The manifests' validation; diagnostics and exit 1 when they are not valid."""
    from reconciler.run import InvalidManifests

    validation = _layout(paths).validate()
    if not validation.ok(strict):
        _report_invalid(InvalidManifests(validation), strict)
    _outlive(validation)
    return validation


def _plan_cost(outcome: Any, store: Any) -> Any:
    from reconciler.questions import Sides, cost_of_change, parse_since

    sides = Sides(outcome.actual, outcome.desired, {}, outcome.validation)
    return cost_of_change(sides, getattr(store, "_store", store), parse_since("30d"))  # the store ObservedStore wraps


@cli.command(cls=ProjectCommand, context_settings=CONTEXT)
@project_options
@click.argument("paths", nargs=-1, type=ANY_PATH)
@store_option
@coder_options(locking=True)
@plan_options
@click.option("--report", "report_file", type=FILE_PATH, envvar="RECONCILER_REPORT",
              show_envvar=True, help="Write the apply report as JSON (each change's status).")
@click.option("--lock-timeout", type=Seconds(), default=60.0, show_default=True,
              envvar="RECONCILER_LOCK_TIMEOUT", show_envvar=True,
              help="Seconds to wait for another apply holding the store's lock.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="RECONCILER_APPLY_FORMAT", show_envvar=True,
              help="The report on stdout: text for people, json for machines.")
@click.option("--metrics-file", type=FILE_PATH, envvar="RECONCILER_METRICS_FILE",
              show_envvar=True,
              help="Write Prometheus text-format metrics of the run, failed runs too (for "
                   "node-exporter's textfile collector: name it *.prom).")
@click.option("--progress-interval", type=Seconds(min_open=True), default=10.0, show_default=True,
              envvar="RECONCILER_PROGRESS_INTERVAL", show_envvar=True, expose_value=False,
              callback=lambda ctx, param, value: ctx.meta.__setitem__("reconciler.progress_interval", value),
              help="Off a terminal (CI logs): seconds between `Still applying...` lines.")
@click.option("--auto-approve", is_flag=True, envvar="RECONCILER_AUTO_APPROVE", show_envvar=True,
              help="On a terminal, apply without showing the plan and asking first (off a terminal, "
                   "and with a saved plan, apply never asks).")
@verbosity_options
def apply(paths: tuple[str, ...], store_url: str, prune: bool, max_deletes: int, select: tuple[str, ...],
          target: tuple[str, ...], rotate_secrets: bool, strict: bool, report_file: str | None,
          lock_timeout: float, fmt: str, metrics_file: str | None, auto_approve: bool) -> int:
    """Make the store match the manifests, or apply a saved plan FILE exactly.

    Secrets are read from their references before the first write; a missing
    one fails the apply with nothing written. Re-running with nothing changed
    writes nothing. On a terminal (stdin and stdout), the plan is shown first
    and only "yes" applies it (--auto-approve skips the question). Progress goes
    to stderr: on a terminal one line rewritten in place, in a log a line every
    --progress-interval seconds. With -q and the text format, nothing is printed
    unless the apply fails.
    """
    import time

    from reconciler.metrics import RunRecord

    record = RunRecord(started=time.time())
    try:
        asks = not auto_approve and sys.stdin.isatty() and sys.stdout.isatty() and _verbosity() >= 0
        code = _apply(record, paths, store_url, (prune, max_deletes, select, rotate_secrets, target), strict,
                      report_file, lock_timeout, fmt, _approve if asks else None)
    except BaseException:
        if metrics_file:
            _write_metrics(metrics_file, record, EXIT_ERROR, failing=True)
        raise
    if metrics_file:
        _write_metrics(metrics_file, record, code, failing=False)
    return code


PLAN_SHAPING = ("prune", "max_deletes", "select", "target", "rotate_secrets", "strict")


def _refuse_plan_options(path: str) -> None:
    """A saved plan was shaped when it was made: options that would shape it again are usage errors
    (as in Terraform), not silently ignored."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = [name for name in PLAN_SHAPING  # the project file's defaults are not given: they shaped the plan too
             if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        them = "it" if len(given) == 1 else "them"
        raise click.UsageError(f"{flags} cannot be given with a saved plan: such options shape a plan when it is "
                               f"made, and {path} is applied exactly as it was made; give {them} to "
                               "`reconciler plan` instead")


def _approve(plan: Any) -> bool:
    """Terraform's question, at a terminal: the plan, then only "yes" proceeds."""
    from reconciler.render.text import render_plan

    _out(render_plan(plan, _style(sys.stdout)) + "\nDo you want to perform these actions?\n"
         "  reconciler will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n"
         "  Enter a value: ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    _out("\n")
    return answer.strip() == "yes"


def _apply(record: RunRecord, paths: tuple[str, ...], store_url: str, plan_args: tuple[Any, ...], strict: bool,
           report_file: str | None, lock_timeout: float, fmt: str, approve: Any = None) -> int:
    import time

    from reconciler.plan import PlanOptions
    from reconciler.planfile import is_plan_file, write_atomic
    from reconciler.progress import LogProgress, Progress
    from reconciler.render import to_json_text
    from reconciler.render.text import render_plan, render_report
    from reconciler.run import InvalidManifests, apply_manifests, apply_saved
    from reconciler.secrets import SecretResolver

    resolver = SecretResolver()
    asked: list[bool] = []

    def asking(plan: Any) -> bool:
        asked.append(True)
        return bool(approve(plan))

    progress: Progress | LogProgress | None = None
    if _verbosity() >= 0:
        interval = click.get_current_context().meta.get("reconciler.progress_interval", 10.0)
        progress = Progress(_err) if sys.stderr.isatty() else LogProgress(_err, interval)
    store = _open_observed(store_url, progress.start if progress else None)  # no file or lock made yet
    started = time.monotonic()
    try:
        if len(paths) == 1 and is_plan_file(paths[0]):
            _refuse_plan_options(paths[0])
            plan_, report = apply_saved(paths[0], store, resolver, lock_timeout, progress)
        else:
            if approve is not None and fmt == "json":  # as Terraform's -json: the question would corrupt it
                raise click.UsageError("--format json at a terminal needs --auto-approve")
            prune, max_deletes, select, rotate_secrets, target = plan_args
            options = PlanOptions(prune, max_deletes, tuple(select), rotate_secrets, tuple(target))
            from reconciler.noop import unchanged

            layout = _layout(paths)  # a store the no-op shortcut holds for exists, with valid manifests
            manifests = layout if unchanged(layout, store, options, strict, resolver) else _validated(paths, strict)
            try:
                outcome, report = apply_manifests(manifests, store, options, resolver,
                                                  lock_timeout, progress, strict,
                                                  asking if approve is not None else None)
                _outlive(outcome)
            except InvalidManifests as exc:
                _report_invalid(exc, strict)
            plan_ = outcome.plan
    finally:
        if progress:
            progress.finish()
        store.close()
    record.plan, record.report = plan_, report
    applying = store.seconds.get("apply", 0.0)
    _planned_in(store, time.monotonic() - started - applying, len(plan_.changes))
    _detail(f"applied in {applying:.2f} s")
    if report_file:
        write_atomic(report_file, to_json_text(report.to_dict()))
    if fmt == "json":
        _out(to_json_text(report.to_dict()))
    elif _verbosity() >= 0 or not report.ok:
        if len(plan_.changes) <= FULL_PLAN_IN_APPLY or _verbosity() > 0:
            if not plan_.empty and not asked:  # an approved plan was shown already
                _out(render_plan(plan_, _style(sys.stdout)) + "\n")
        else:  # the report below names every change; thousands of per-field diffs only bury it
            _out(f"{len(plan_.changes)} changes (their per-field plan: -v, or `plan --out`).\n")
        _out(render_report(report, _style(sys.stdout)))
    if report.error:
        _err(f"Error: {report.error}\n")
    return EXIT_OK if report.ok else EXIT_ERROR


def _write_metrics(path: str, record: RunRecord, code: int, failing: bool) -> None:
    """The run's metrics file; when the run itself is failing, a failure to write is only reported."""
    import time

    from reconciler.errors import ReconcilerError
    from reconciler.metrics import write_metrics

    record.finished, record.success = time.time(), code == EXIT_OK
    try:
        write_metrics(path, record)
    except ReconcilerError as exc:
        if not failing:
            raise
        _err(f"Error: {exc}\n")


@cli.command(context_settings=CONTEXT)
@store_option
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              envvar="RECONCILER_HISTORY_LIMIT", show_envvar=True, help="How many applies to show.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="RECONCILER_HISTORY_FORMAT", show_envvar=True, help="text for people, json for machines.")
def history(store_url: str, limit: int, fmt: str) -> int:
    """Show the store's apply history, newest first (SQL stores keep one)."""
    from reconciler.errors import UsageError

    store = _open(store_url, read_only=True)
    try:
        read_history = getattr(store, "history", None)
        if read_history is None:
            raise UsageError(f"the store at {store.url} keeps no apply history")
        entries = read_history(limit)
    finally:
        store.close()
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text({"format_version": "1", "history": entries}))
        return EXIT_OK
    if not entries:
        _out("No applies recorded yet.\n")
    for entry in entries:
        statuses: dict[str, int] = {}
        for result in entry["results"]:
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "no changes"
        source = (f"  commit {entry['commit'][:12]}" if entry.get("commit") else "") + (
            f"  run {entry['run_url']}" if entry.get("run_url") else "")
        _out(f"#{entry['id']}  {entry['started_at']}  {entry['who']}  "
             f"reconciler {entry['tool_version']}  {counts}{source}\n")
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@store_option
def rekey(store_url: str) -> int:
    """Re-encrypt a SQL store's secrets with the first key of RECONCILER_ENCRYPTION_KEY.

    To rotate: set RECONCILER_ENCRYPTION_KEY to "NEW,OLD", run rekey, then drop
    OLD. All or nothing, in one transaction.
    """
    from reconciler.errors import UsageError

    store = _open(store_url)
    try:
        rekey_store = getattr(store, "rekey", None)
        if rekey_store is None:
            raise UsageError(f"the store at {store.url} keeps no secrets of its own to re-encrypt")
        moved = rekey_store()
    finally:
        store.close()
    _note(f"Re-encrypted {moved} secret(s) with the first key of RECONCILER_ENCRYPTION_KEY.\n")
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.option("--out", "out_dir", type=DIR_PATH, envvar="RECONCILER_SCHEMA_OUT",
              show_envvar=True, help="Write the schemas into DIR.")
@click.option("--kind", type=click.Choice(["Provider", "Model", "PriceCatalog", "Overrides", "Settings"]),
              envvar="RECONCILER_SCHEMA_KIND", show_envvar=True, help="Print only this kind's schema.")
@verbosity_options
def schema(out_dir: str | None, kind: str | None) -> int:
    """Print or write the JSON Schemas (Draft 2020-12) of the manifest kinds.

    With --out, writes one file per kind plus manifest.schema.json (all kinds),
    which editors can associate with manifest files.
    """
    import json

    from reconciler.manifest.loader import KINDS
    from reconciler.planfile import write_atomic
    from reconciler.validate.schema import SCHEMA_FILES, combined_schema, load_schema

    if kind:
        _out(json.dumps(load_schema(kind), indent=2) + "\n")
        return EXIT_OK
    if not out_dir:
        _out(json.dumps(combined_schema(), indent=2) + "\n")
        return EXIT_OK
    for k in KINDS:
        write_atomic(os.path.join(out_dir, SCHEMA_FILES[k]), json.dumps(load_schema(k), indent=2) + "\n")
    write_atomic(os.path.join(out_dir, "manifest.schema.json"), json.dumps(combined_schema(), indent=2) + "\n")
    if _verbosity() >= 0:
        _err(f"Wrote {len(KINDS) + 1} schemas to {out_dir}\n")
    return EXIT_OK


# --- adoption: export a store, import environment variables and price files (docs/ADOPTION.md) ---


def _emit_manifests(files: list[Any], out_dir: str | None) -> None:
    """Manifest files into OUT_DIR (with schemas beside them), or as one YAML stream on stdout."""
    from reconciler.export import render_stream, write_files

    if out_dir is None:
        _out(render_stream(files))
        return
    written = write_files(files, out_dir)
    if _verbosity() >= 0:
        _err(f"Wrote {len(written)} files to {out_dir}\n")


@cli.command(context_settings=CONTEXT)
@store_option
@coder_options
@click.option("--out", "out_dir", type=DIR_PATH, envvar="RECONCILER_EXPORT_OUT",
              show_envvar=True, help="Write the manifests into DIR (new or empty); default: stdout.")
@verbosity_options
def export(store_url: str, out_dir: str | None) -> int:
    """Write manifests for everything in the store, so that their first plan is empty.

    One file per provider, the models of each provider in one file, the prices
    that differ from the default price book, overrides and settings; defaults
    left out. Secrets become references: the one the store recorded, else
    {env: RECONCILER_<PROVIDER>_API_KEY_<N>} (values are never written).
    """
    from reconciler.export import export_store, write_export

    store = _open(store_url, read_only=True)
    try:
        result = export_store(store)
    finally:
        store.close()
    if out_dir is None:
        _emit_manifests(result.files, None)
    else:
        written = write_export(result, out_dir)
        if _verbosity() >= 0:
            counts = ", ".join(f"{n} {what}" for what, n in result.counts.items())
            _err(f"Wrote {len(written)} files to {out_dir} ({counts})\n")
    _export_notes(result)
    return EXIT_OK


def _export_notes(result: Any) -> None:
    """What an export could not carry over, and the variables it named for secrets (stderr)."""
    for note in result.notes:
        _note(f"Warning: {note}\n")
    if result.derived:
        _note("The store recorded no reference for these secrets; the manifests name these variables "
              "(set them before apply):\n" + "".join(f"  {d.env}  ({d.where})\n" for d in result.derived))


@cli.command("import-env", context_settings=CONTEXT)
@click.option("--env-file", type=FILE_PATH, envvar="RECONCILER_IMPORT_ENV_FILE",
              show_envvar=True, help="Read the variables from this .env file instead of the environment.")
@click.option("--out", "out_dir", type=DIR_PATH, envvar="RECONCILER_IMPORT_ENV_OUT",
              show_envvar=True, help="Write providers/<name>.yaml into DIR; default: stdout.")
@verbosity_options
def import_env_command(env_file: str | None, out_dir: str | None) -> int:
    """Provider manifests from CODER_AI_GATEWAY_PROVIDER_<N>_* variables (or CODER_AIBRIDGE_…).

    Applies Coder's rules and names the variable behind every problem. The
    manifests reference the variables that hold the keys; keys listed with
    commas in one variable are split into one variable each (the commands are
    printed). Values are never written.
    """
    from reconciler.importers.envvars import import_env, read_env_file

    result = import_env(read_env_file(env_file) if env_file else os.environ)
    _emit_manifests(result.files(), out_dir)
    for warning in result.warnings:
        _note(f"Warning: {warning}\n")
    commands = result.split_commands(env_file)
    if commands and _verbosity() >= 0:
        _err("Some keys are comma-separated lists in one variable; a secret reference names one key.\n"
             "Before `reconciler apply`, split them into the variables the manifests reference:\n\n")
        _err("".join(f"  {line}\n" for line in commands))
    return EXIT_OK


@cli.command("import-prices", context_settings=CONTEXT)
@click.argument("price_file", type=FILE_PATH)
@click.option("--out", "out_file", type=FILE_PATH, envvar="RECONCILER_IMPORT_PRICES_OUT",
              show_envvar=True, help="Write the PriceCatalog to FILE (replaced if it exists); default: stdout.")
@click.option("--name", default="litellm-prices", show_default=True, envvar="RECONCILER_IMPORT_PRICES_NAME",
              show_envvar=True, help="The PriceCatalog's metadata.name.")
@verbosity_options
def import_prices_command(price_file: str, out_file: str | None, name: str) -> int:
    """A PriceCatalog from a LiteLLM price file (model_prices_and_context_window.json).

    USD per token x 10^6 = USD per 1M tokens, in exact decimals. Chat models of
    the providers reconciler knows; what is skipped, and why, goes to stderr.
    """
    from reconciler.export import schema_id, slug, write_text
    from reconciler.importers.litellm import import_prices

    if slug(name) != name:
        raise click.BadParameter(f"{name!r} is not a valid name (try {slug(name)!r})", param_hint="--name")
    result = import_prices(price_file)
    text = result.catalog(name).text(schema_id("PriceCatalog"))
    if out_file:
        write_text(out_file, text)
    else:
        _out(text)
    if _verbosity() >= 0:
        _err("".join(f"{line}\n" for line in result.summary()))
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("plan_file", type=FILE_PATH)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, envvar="RECONCILER_SHOW_FORMAT", show_envvar=True,
              help="text for people, json for machines, markdown for a pull-request comment.")
@verbosity_options
def show(plan_file: str, fmt: str) -> int:
    """Render a saved plan (`plan --out FILE`) as plan prints it, and say whether it is signed.

    Reads no store and needs no key; with the plan key set, the signature is checked too
    (`apply` always checks it).
    """
    from reconciler.planfile import read_saved

    result, store_url, signature = read_saved(plan_file)
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(result.to_dict()))
    elif fmt == "markdown":
        from reconciler.render.markdown import render_plan_markdown

        _out(render_plan_markdown(result, result.warnings))
    else:
        from reconciler.render.text import render_plan

        _out(render_plan(result, _style(sys.stdout)))
    _note(f"{plan_file}: made for {store_url or 'no store'}; signature: {signature}\n")
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--through", "through_url", metavar="URL", envvar="RECONCILER_VERIFY_THROUGH", show_envvar=True,
              help="coder+https://host: check through the deployment's AI Gateway, with the keys Coder "
                   "holds (token: CODER_SESSION_TOKEN or --token-file); reconciler reads no provider key.")
@click.option("--token-file", type=click.Path(dir_okay=False), envvar="RECONCILER_TOKEN_FILE", show_envvar=True,
              help="With --through: read the Coder session token from this file.")
@click.option("--live", is_flag=True, envvar="RECONCILER_VERIFY_LIVE", show_envvar=True,
              help="Also send one minimal completion per model (BILLED by the upstream; off by default).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "markdown"]), default="text",
              show_default=True, envvar="RECONCILER_VERIFY_FORMAT", show_envvar=True,
              help="text, json (stdout), github (annotations on the lines), markdown (a PR comment).")
@click.option("--warn-only", is_flag=True, envvar="RECONCILER_VERIFY_WARN_ONLY", show_envvar=True,
              help="Report, but exit 0 even when a check fails.")
@click.option("--parallelism", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              envvar="RECONCILER_PARALLELISM", show_envvar=True, help="How many requests run at once.")
@click.option("--request-timeout", type=Seconds(min_open=True), default=10.0, show_default=True,
              envvar="RECONCILER_REQUEST_TIMEOUT", show_envvar=True,
              help="Seconds to wait for one answer (429/5xx are retried, honouring Retry-After).")
@click.option("--deadline", type=Seconds(min_open=True), default=120.0, show_default=True,
              envvar="RECONCILER_DEADLINE", show_envvar=True, help="Seconds the whole run may take.")
@click.option("--metrics-file", type=click.Path(dir_okay=False), envvar="RECONCILER_VERIFY_METRICS_FILE",
              show_envvar=True, help="Write Prometheus gauges of every provider's and key's verdict.")
@verbosity_options
def verify(paths: tuple[str, ...], through_url: str | None, token_file: str | None, live: bool, fmt: str,
           warn_only: bool, parallelism: int, request_timeout: float, deadline: float,
           metrics_file: str | None) -> int:
    """Prove that every key, base URL and model id works: ask each upstream for its model list.

    \b
    Each key of each enabled provider lists the upstream's models (an unbilled
    request); each Model's id is looked up in that list (did-you-mean on a typo),
    its context_limit and prices checked where the upstream states them. With
    --through, the same checks go through Coder's gateway. Writes to no store.
    Exit 0 when everything checked is ok, 1 otherwise (0 with --warn-only).
    """
    import time

    from reconciler.run import InvalidManifests
    from reconciler.verify import Options, through_coder, verify_paths

    report = None
    try:
        through = through_coder(through_url, token_file) if through_url else None
        options = Options(parallelism=parallelism, request_timeout=request_timeout, deadline=deadline, live=live)
        if live and _verbosity() >= 0:
            _err("Note: --live sends one billed completion per model.\n")
        report = verify_paths(list(paths) or ["."], options, through=through)
    except InvalidManifests as exc:
        _show_diagnostics(exc.result, False)
        _fail(f"{exc.result.errors} error(s) in the manifests; nothing was verified")
    finally:
        if metrics_file:
            from reconciler.metrics import write_verify_metrics

            write_verify_metrics(metrics_file, report, time.time(), report is not None and report.ok)
    assert report is not None
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(report.to_dict()))
    elif fmt == "github":
        from reconciler.render.github import render_annotations

        _out(render_annotations(report.diagnostics))
    elif fmt == "markdown":
        from reconciler.render.verify import render_verify_markdown

        _out(render_verify_markdown(report))
    else:
        from reconciler.render.text import render_diagnostics
        from reconciler.render.verify import render_verify_text

        if _verbosity() >= 0 or not report.ok:
            _out(render_verify_text(report, _style(sys.stdout)))
        _err(render_diagnostics(report.diagnostics, _style(sys.stderr)))
    return EXIT_OK if report.ok or warn_only else EXIT_ERROR


@cli.command(context_settings=CONTEXT)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL (commands, options, choices, paths).

    \b
      bash: echo 'eval "$(reconciler completion bash)"' >> ~/.bashrc
      zsh:  echo 'eval "$(reconciler completion zsh)"' >> ~/.zshrc
      fish: reconciler completion fish > ~/.config/fish/completions/reconciler.fish
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    if complete is None:  # click knows all three; kept for a click without one of them
        raise click.UsageError(f"no completion for {shell}")
    _out(complete(cli, {}, "reconciler", "_RECONCILER_COMPLETE").source())
    return EXIT_OK


EXPLAIN_FORMATS = click.Choice(["text", "json", "markdown"])


@cli.command(cls=ProjectCommand, context_settings=CONTEXT)
@project_options
@click.argument("paths", nargs=-1, type=ANY_PATH)
@click.option("--store", "store_url", envvar="RECONCILER_STORE", show_envvar=True, metavar="URL",
              help="Explain what happens now in this store (with PATHs: the manifests applied to it).")
@coder_options
@click.option("--org", "organization", metavar="NAME", envvar="RECONCILER_ORG", show_envvar=True,
              help="The organization (default: the default one).")
@click.option("--user", metavar="NAME", envvar="RECONCILER_EXPLAIN_USER", show_envvar=True,
              help="Coder store: a user's own overrides, groups and keys (read-only).")
@click.option("--context", "context", metavar="CONTEXT", envvar="RECONCILER_EXPLAIN_CONTEXT", show_envvar=True,
              help="Only this context: root, general, explore, title_generation, compaction, advisor.")
@click.option("--diff", is_flag=True, envvar="RECONCILER_EXPLAIN_DIFF", show_envvar=True,
              help="With PATHs and --store: the manifests' outcome and the store's, both.")
@click.option("--format", "fmt", type=EXPLAIN_FORMATS, default="text", show_default=True,
              envvar="RECONCILER_EXPLAIN_FORMAT", show_envvar=True, help="text, json, or markdown.")
@verbosity_options
def explain(paths: tuple[str, ...], store_url: str | None, organization: str | None, user: str | None,
            context: str | None, diff: bool, fmt: str) -> int:
    """Which model and which credentials a developer gets in each agent context, and why.

    \b
    From the manifests alone (PATHs: what the repository says will happen),
    from a store (--store: what happens now), or both with --diff. For each
    context the personal override, the organization's override and the chat's
    model are shown with what each held and why it was used or skipped; then
    each provider's credentials (masked, never values) and each model's price
    with where it comes from.
    """
    from reconciler.errors import UsageError
    from reconciler.questions import explain_sides, parse_contexts, read_sides
    from reconciler.run import InvalidManifests
    from reconciler.secrets import SecretResolver

    contexts = parse_contexts(context)
    _, env = click.get_current_context().meta.get(PROJECT, (None, None))
    manifests = _layout(paths) if paths or env else None  # --env: the environment's manifests
    if manifests is None and not store_url:
        raise UsageError("give manifest PATHs (or --env), a --store, or both")
    if diff and not (manifests and store_url):
        raise UsageError("--diff compares the manifests with a store: give both PATHs (or --env) and --store")
    store = _open(store_url, read_only=True) if store_url else None
    try:
        sides = read_sides(manifests or [], store, SecretResolver())
        view = None
        if user is not None:
            reader = getattr(store, "user_view", None)
            if reader is None:
                raise UsageError("--user needs a Coder store (--store coder+https://…): only Coder knows its users")
            assert sides.actual is not None
            view = reader(user, organization or sides.actual.default_organization)
        show_keys = store is None or store.capabilities.secret_view == "masked"
        answers = explain_sides(sides, organization=organization, user_view=view, contexts=contexts, diff=diff,
                                show_keys=show_keys)
    except InvalidManifests as exc:
        _report_invalid(exc, False)
    finally:
        if store is not None:
            store.close()
    if fmt == "json":
        from reconciler.explain import FORMAT_VERSION
        from reconciler.render import to_json_text

        _out(to_json_text({"format_version": FORMAT_VERSION, "explanations": [a.to_dict() for a in answers]}))
    elif fmt == "markdown":
        from reconciler.render.explain import render_explanation_markdown

        _out(render_explanation_markdown(answers))
    else:
        from reconciler.render.explain import render_explanation_text

        _out(render_explanation_text(answers, _style(sys.stdout)))
    return EXIT_OK


@cli.command(cls=ProjectCommand, context_settings=CONTEXT)
@project_options
@click.argument("paths", nargs=-1, type=ANY_PATH)
@store_option
@coder_options
@click.option("--since", default="30d", show_default=True, envvar="RECONCILER_COST_SINCE", show_envvar=True,
              help="The usage to re-price: a duration (30d, 12h, 2w) or a start date.")
@click.option("--format", "fmt", type=EXPLAIN_FORMATS, default="text", show_default=True,
              envvar="RECONCILER_COST_FORMAT", show_envvar=True, help="text, json, or markdown (a PR comment).")
@verbosity_options
def cost(paths: tuple[str, ...], store_url: str, since: str, fmt: str) -> int:
    """What the deployment's recorded usage costs at today's prices and under the manifests' prices.

    Reads the spend each organization recorded (Coder's AI spend export) and
    re-prices it exactly (micro-dollars, never floats): per model, per
    organization and in total, with the usage that has no price. Writes nothing.
    """
    from reconciler.questions import cost_of_change, parse_since, read_sides
    from reconciler.run import InvalidManifests
    from reconciler.secrets import SecretResolver

    start = parse_since(since)
    store = _open(store_url, read_only=True)
    try:
        sides = read_sides(_layout(paths), store, SecretResolver())
        report = cost_of_change(sides, store, start)
    except InvalidManifests as exc:
        _report_invalid(exc, False)
    finally:
        store.close()
    _show_cost(report, fmt)
    return EXIT_OK


def _show_cost(report: Any, fmt: str) -> None:
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(report.to_dict()))
    elif fmt == "markdown":
        from reconciler.render.explain import render_cost_markdown

        _out(render_cost_markdown(report))
    else:
        from reconciler.render.explain import render_cost_text

        _out(render_cost_text(report, _style(sys.stdout)))


@cli.command(context_settings=CONTEXT)
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--from", "from_url", metavar="URL", envvar="RECONCILER_INIT_FROM", show_envvar=True,
              help="Export the first manifests from this store, so that the first plan is empty.")
@coder_options
@click.option("--force", is_flag=True, envvar="RECONCILER_INIT_FORCE", show_envvar=True,
              help="Overwrite files that already exist (without it, init writes nothing when one does).")
@verbosity_options
def init(directory: str, from_url: str | None, force: bool) -> int:
    """Start a manifest repository in DIRECTORY (default: the current one).

    \b
    Writes reconciler.yaml (the project file), a .gitignore that keeps
    .reconciler/ out of git, the JSON Schemas under schemas/ (every file's
    modeline points at them), the GitHub Actions workflow, GitLab CI file and
    pre-commit config, and a first manifest. With --from, the manifests are
    exported from that store instead (as `export` does) and the project file
    names it, so that the first `reconciler plan` shows no changes.
    """
    from reconciler.scaffold import scaffold, write_scaffold

    export = None
    if from_url:
        from reconciler.export import export_store

        store = _open(from_url, read_only=True)
        try:
            export = export_store(store)
        finally:
            store.close()
    written = write_scaffold(scaffold(from_url, export), directory, force)
    if _verbosity() >= 0:
        _err(f"Wrote {len(written)} files to {directory}. Next: cd {directory} && reconciler validate\n")
    if export is not None:
        _export_notes(export)
    return EXIT_OK


@cli.group(cls=Group, context_settings=CONTEXT)
def envs() -> None:
    """The environments of the project file (reconciler.yaml)."""


@envs.command("diff", context_settings=CONTEXT)
@click.argument("env_a", metavar="A")
@click.argument("env_b", metavar="B")
@click.option("--project", "project_file", metavar="PATH", envvar="RECONCILER_PROJECT", show_envvar=True,
              help="The project file (or its directory); default: the first reconciler.yaml from the "
                   "working directory up.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="RECONCILER_ENVS_DIFF_FORMAT", show_envvar=True, help="text for people, json for machines.")
@verbosity_options
def envs_diff(env_a: str, env_b: str, project_file: str | None, fmt: str) -> int:
    """How environments A and B differ: their desired states, object by object and field by field.

    For reviewing a promotion (staging -> prod). Reads no store and no secret:
    secrets compare by their references.
    """
    from reconciler.envdiff import desired_of, diff_states, render_text
    from reconciler.errors import UsageError
    from reconciler.project import resolve
    from reconciler.run import InvalidManifests

    project = resolve(project_file, env_a)
    if project is None:
        raise UsageError("envs diff compares the environments of a project file: no reconciler.yaml here or above")
    resolve(project_file, env_b)
    states = []
    for env in (env_a, env_b):
        validation, state = desired_of(project, env)
        if state is None:
            _report_invalid(InvalidManifests(validation), False)
        states.append(state)
    diff = diff_states(env_a, states[0], env_b, states[1])
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(diff.to_dict()))
    else:
        _out(render_text(diff))
    return EXIT_OK


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: expected failures are one line on stderr and exit 1, never a traceback."""
    import gc

    from reconciler.errors import ReconcilerError

    # One short run: reference counting frees what it builds, and the cyclic collector's passes
    # over a large plan's objects cost ~15% of an all-new apply of 10,000 models, for nothing.
    gc.disable()
    kept: list[Any] = []  # see _outlive
    try:
        code = cli.main(args=argv, prog_name="reconciler", standalone_mode=False, obj=kept)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:  # usage errors too: exit 1, never 2
        exc.show()
        code = EXIT_ERROR
    except ReconcilerError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted")
    except Exception as exc:  # a bug: say so plainly, without a traceback unless asked
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}); rerun with RECONCILER_DEBUG=1 and report it")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip tearing down the heap: freeing the node trees of a large run costs ~0.1 s per 10k
    # documents and achieves nothing at exit. Files and stores are closed by the commands.
    os._exit(code if isinstance(code, int) else EXIT_OK)
