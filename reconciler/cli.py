"""The command line. The only module that imports click or writes to the terminal.

Heavy modules (jsonschema, httpx, psycopg, cryptography) are imported inside
the commands that need them, so `reconciler --help` starts fast.

Exit codes (SPEC §7): 0 success; 1 any error, usage errors included; 2 only
for `plan --detailed-exitcode` when the plan has changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from reconciler import __version__

if TYPE_CHECKING:
    from reconciler.render import Style
    from reconciler.stores.base import Store

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
DEFAULT_STORE = "sqlite:///.reconciler/store.db"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _style(stream: Any) -> Style:
    from reconciler.render import Style

    enabled = hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ
    return Style(enabled and os.environ.get("TERM") != "dumb")


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _fail(message: str) -> NoReturn:
    _err(f"{_style(sys.stderr)('Error:', 'red')} {message}\n")
    raise SystemExit(EXIT_ERROR)


def _select(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not of the form label=value", param_hint="--select")
        pairs.append((key.strip(), wanted.strip()))
    return tuple(pairs)


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


def plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--prune", is_flag=True, envvar="RECONCILER_PRUNE", show_envvar=True,
                     help="Delete store objects that no manifest names (protected ones excepted)."),
        click.option("--max-deletes", type=click.IntRange(min=0), default=10, show_default=True,
                     envvar="RECONCILER_MAX_DELETES", show_envvar=True,
                     help="Refuse a plan that deletes or replaces more objects than this."),
        click.option("--select", "select", multiple=True, metavar="LABEL=VALUE",
                     envvar="RECONCILER_SELECT", show_envvar=True,
                     help="Only manifests whose labels match (repeatable; all must match)."),
        click.option("--rotate-secrets", is_flag=True, envvar="RECONCILER_ROTATE_SECRETS", show_envvar=True,
                     help="Resend every secret, even where the store shows no change."),
        click.option("--strict", is_flag=True, envvar="RECONCILER_STRICT", show_envvar=True,
                     help="Treat validation warnings as errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _open(store_url: str) -> Store:
    from reconciler.stores import open_store

    return open_store(store_url)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="reconciler")
def cli() -> None:
    """Keep an AI gateway's providers, models, prices and overrides in git.

    \b
      reconciler validate manifests/                 check manifests (CI, pre-commit)
      reconciler plan manifests/ --store URL         show what would change
      reconciler apply manifests/ --store URL        make the store match
      reconciler schema --out schemas/               the JSON Schemas, for editors

    Every option can also be set from the environment variable shown in its
    command's --help. Exit codes: 0 success, 1 any error, 2 only for
    `plan --detailed-exitcode` when there are changes.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, envvar="RECONCILER_VALIDATE_FORMAT", show_envvar=True,
              help="text for people, json for machines (stdout), github for workflow annotations.")
@click.option("--strict", is_flag=True, envvar="RECONCILER_STRICT", show_envvar=True,
              help="Treat warnings as errors.")
def validate(paths: tuple[str, ...], fmt: str, strict: bool) -> int:
    """Check manifests against the JSON Schemas and the semantic rules.

    PATHS are files or directories (default: the current directory); every
    .yaml/.yml file below a directory is read, hidden directories skipped.
    Exit 0 when valid, 1 when not.
    """
    from reconciler.validate import validate_paths

    result = validate_paths(list(paths) or ["."])
    if fmt == "json":
        from reconciler.plan import FORMAT_VERSION
        from reconciler.render import to_json_text

        _out(to_json_text({
            "format_version": FORMAT_VERSION,
            "valid": result.ok(strict),
            "files": result.files,
            "documents": len(result.documents),
            "summary": {"errors": result.errors, "warnings": result.warnings},
            "diagnostics": [d.to_dict() for d in result.diagnostics],
        }))
    elif fmt == "github":
        from reconciler.render.github import render_annotations

        _out(render_annotations(result.diagnostics))
    else:
        from reconciler.render.text import diagnostics_summary, render_diagnostics

        style = _style(sys.stderr)
        _err(render_diagnostics(result.diagnostics, style))
        _err(diagnostics_summary(result.errors, result.warnings, result.files))
    return EXIT_OK if result.ok(strict) else EXIT_ERROR


def _report_invalid(exc: Any) -> NoReturn:
    from reconciler.render.text import diagnostics_summary, render_diagnostics

    result = exc.result
    _err(render_diagnostics(result.diagnostics, _style(sys.stderr)))
    _err(diagnostics_summary(result.errors, result.warnings, result.files))
    _fail(str(exc))


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@store_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False), envvar="RECONCILER_PLAN_OUT",
              show_envvar=True, help="Save the plan, for `reconciler apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, envvar="RECONCILER_PLAN_FORMAT", show_envvar=True,
              help="text for people, json for machines, markdown for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, envvar="RECONCILER_DETAILED_EXITCODE", show_envvar=True,
              help="Exit 2 when the plan has changes, 0 when it has none (a drift alarm).")
@plan_options
def plan(paths: tuple[str, ...], store_url: str, out_file: str | None, fmt: str, detailed_exitcode: bool,
         prune: bool, max_deletes: int, select: tuple[str, ...], rotate_secrets: bool, strict: bool) -> int:
    """Show what apply would change in the store. Needs no secret values.

    Secrets that are not available are shown as not verifiable and planned as
    unchanged. Writes nothing to the store.
    """
    from reconciler.plan import PlanOptions
    from reconciler.planfile import save_plan
    from reconciler.run import InvalidManifests, make_plan
    from reconciler.secrets import SecretResolver

    options = PlanOptions(prune, max_deletes, _select(select), rotate_secrets)
    store = _open(store_url)
    try:
        outcome = make_plan(list(paths) or ["."], store, options, SecretResolver(), strict)
    except InvalidManifests as exc:
        _report_invalid(exc)
    finally:
        store.close()
    result = outcome.plan
    if outcome.validation and outcome.validation.diagnostics:
        from reconciler.render.text import render_diagnostics

        _err(render_diagnostics(outcome.validation.diagnostics, _style(sys.stderr)))
    if out_file:
        save_plan(result, store.url, out_file)
    if fmt == "json":
        from reconciler.render import to_json_text

        _out(to_json_text(result.to_dict()))
    elif fmt == "markdown":
        from reconciler.render.markdown import render_plan_markdown

        _out(render_plan_markdown(result))
    else:
        from reconciler.render.text import render_plan

        _out(render_plan(result, _style(sys.stdout)))
        if out_file:
            _out(f"\nSaved the plan to {out_file}; apply it with: reconciler apply {out_file}\n")
    if result.refusal:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and not result.empty else EXIT_OK


@cli.command(context_settings=CONTEXT)
@click.argument("paths", nargs=-1, type=click.Path())
@store_option
@plan_options
@click.option("--report", "report_file", type=click.Path(dir_okay=False), envvar="RECONCILER_REPORT",
              show_envvar=True, help="Write the apply report as JSON (each change's status).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              envvar="RECONCILER_LOCK_TIMEOUT", show_envvar=True,
              help="Seconds to wait for another apply holding the store's lock.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="RECONCILER_APPLY_FORMAT", show_envvar=True,
              help="The report on stdout: text for people, json for machines.")
def apply(paths: tuple[str, ...], store_url: str, prune: bool, max_deletes: int, select: tuple[str, ...],
          rotate_secrets: bool, strict: bool, report_file: str | None, lock_timeout: float, fmt: str) -> int:
    """Make the store match the manifests, or apply a saved plan FILE exactly.

    Secrets are read from their references before the first write; a missing
    one fails the apply with nothing written. Re-running with nothing changed
    writes nothing.
    """
    from reconciler.plan import PlanOptions
    from reconciler.planfile import is_plan_file, write_atomic
    from reconciler.render import to_json_text
    from reconciler.render.text import render_plan, render_report
    from reconciler.run import InvalidManifests, apply_manifests, apply_saved
    from reconciler.secrets import SecretResolver

    resolver = SecretResolver()
    store = _open(store_url)
    progress = _progress_printer() if sys.stderr.isatty() else None
    try:
        if len(paths) == 1 and is_plan_file(paths[0]):
            plan_, report = apply_saved(paths[0], store, resolver, lock_timeout, progress)
        else:
            options = PlanOptions(prune, max_deletes, _select(select), rotate_secrets)
            try:
                outcome, report = apply_manifests(list(paths) or ["."], store, options, resolver,
                                                  lock_timeout, progress, strict)
            except InvalidManifests as exc:
                _report_invalid(exc)
            plan_ = outcome.plan
    finally:
        store.close()
    if report_file:
        write_atomic(report_file, to_json_text(report.to_dict()))
    if fmt == "json":
        _out(to_json_text(report.to_dict()))
    else:
        if not plan_.empty:
            _out(render_plan(plan_, _style(sys.stdout)) + "\n")
        _out(render_report(report, _style(sys.stdout)))
    if report.error:
        _err(f"Error: {report.error}\n")
    return EXIT_OK if report.ok else EXIT_ERROR


def _progress_printer() -> Callable[[Any], None]:
    done = [0]

    def show(result: Any) -> None:
        done[0] += 1
        _err(f"\r\x1b[K[{done[0]}] {result.status} {result.change.action} {result.change.id}")

    return show


@cli.command(context_settings=CONTEXT)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write the schemas into DIR.")
@click.option("--kind", type=click.Choice(["Provider", "Model", "PriceCatalog", "Overrides", "Settings"]),
              help="Print only this kind's schema.")
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
    _err(f"Wrote {len(KINDS) + 1} schemas to {out_dir}\n")
    return EXIT_OK


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: expected failures are one line on stderr and exit 1, never a traceback."""
    from reconciler.errors import ReconcilerError

    try:
        code = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        _fail("aborted")
    except click.ClickException as exc:  # usage errors too: exit 1, never 2 (SPEC §7)
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
