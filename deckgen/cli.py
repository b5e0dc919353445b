"""The command line: reads settings, calls the build, prints what came out. Nothing else."""
from __future__ import annotations

import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import click

from deckgen import __version__
from deckgen.config import ConfigError, Settings, find_project_file, load_settings

# Problems the user fixes (a path, a setting, a file): one line, exit 2, no traceback.
USAGE_EXIT = 2
CONTENT_EXIT = 1


class UserError(Exception):
    """Something about the invocation or the environment the user must fix."""


def _project_file(ctx: click.Context) -> Path | None:
    """The pyproject.toml given with --config, else the nearest one."""
    project = ctx.obj.get("project") if ctx.obj else None
    return project if project is not None else find_project_file(Path.cwd())


def _settings(ctx: click.Context, sources: tuple[Path, ...], **overrides: object) -> Settings:
    settings = load_settings(_project_file(ctx))
    changes = {k: v for k, v in overrides.items() if v is not None}
    if sources:
        changes["sources"] = tuple(sources)
    settings = replace(settings, **changes)
    missing = [s for s in settings.sources if not s.exists()]
    if missing:
        raise UserError(
            f"source path not found: {missing[0]} (give the folder or .md file to build, "
            "e.g. `deckgen build source/`)"
        )
    return settings


def _run(debug: bool, action):  # noqa: ANN001, ANN202 - a thunk
    from deckgen.ids import LockError
    from deckgen.notetypes import TemplateError
    from deckgen.package import PackageError
    from deckgen.preview import PreviewError

    try:
        return action()
    except (UserError, ConfigError, LockError, TemplateError, PackageError, PreviewError, OSError) as exc:
        if debug:
            traceback.print_exc()
        message = str(exc) if not isinstance(exc, OSError) else _os_message(exc)
        click.echo(f"deckgen: error: {message}", err=True)
        sys.exit(USAGE_EXIT)


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"output folder {output} is a file; choose a folder with -o/--output")
    try:
        output.mkdir(parents=True, exist_ok=True)
        # a probe of its own: builds running at once must not remove each other's
        with tempfile.TemporaryFile(prefix=".deckgen-write-test-", dir=output):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to output folder {output}: {exc.strerror or exc}; "
            "choose another with -o/--output"
        ) from None


class _LazyProgress:
    """A progress bar on a terminal, shown only once a build has taken more than a second."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.bar = None
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.started < 1.0 or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=total, label="rendering", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deckgen")
@click.option("--config", "project", type=click.Path(path_type=Path, dir_okay=False),
              help="pyproject.toml to read [tool.deckgen] from (default: the nearest one).")
@click.pass_context
def main(ctx: click.Context, project: Path | None) -> None:
    """Turn Markdown articles of interview questions into Anki decks."""
    ctx.obj = {"project": project}


_sources = click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
_no_run = click.option("--no-run", is_flag=True, help="Do not run code examples (code notes say skipped).")
_debug = click.option("--debug", is_flag=True, help="Show a traceback for errors.")
_offline = click.option("--offline", is_flag=True,
                        help="Do not download remote images (those cached by earlier builds are still packed).")
_templates = click.option("--templates", type=click.Path(path_type=Path, file_okay=False, exists=True),
                          help="Folder of note-type templates overriding the shipped ones.")


def _build_options(command):  # noqa: ANN001, ANN202 - what a command that builds packages is told
    for option in reversed((
        click.option("-o", "--output", type=click.Path(path_type=Path), help="Output folder (default: build/)."),
        click.option("--root", help="Name of the parent deck (default: 三年面试五年模拟)."),
        click.option("--lock", type=click.Path(path_type=Path, dir_okay=False),
                     help="Lock file keeping note identities (default: deckgen.lock)."),
        _templates,
        click.option("--timeout", type=float, help="Seconds a code example may run (default: 10)."),
    )):
        command = option(command)
    return command


@main.command()
@_sources
@_build_options
@_no_run
@_offline
@_debug
@click.pass_context
def build(ctx: click.Context, sources: tuple[Path, ...], output: Path | None, root: str | None,
          lock: Path | None, templates: Path | None, timeout: float | None, no_run: bool,
          offline: bool, debug: bool) -> None:
    """Build one .apkg per section, and one with them all, from SOURCES (default: source/)."""
    from deckgen.build import build as run_build

    def action():  # noqa: ANN202
        settings = _settings(ctx, sources, output=output, root=root, lock=lock, templates=templates,
                             timeout=timeout, run_code=False if no_run else None, offline=True if offline else None)
        return _build_with_progress(settings, run_build)

    report = _run(debug, action)
    _print_diagnostics(report.diagnostics)
    if report.errors:
        click.echo(f"deckgen: {len(report.errors)} error(s): nothing was written; "
                   "the previous build is unchanged", err=True)
        sys.exit(CONTENT_EXIT)
    _print_summary(report)


@main.command()
@_sources
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@_no_run
@_offline
@_debug
@click.pass_context
def check(ctx: click.Context, sources: tuple[Path, ...], strict: bool, no_run: bool,
          offline: bool, debug: bool) -> None:
    """Report every problem in SOURCES as file:line: level: message, writing nothing."""
    from deckgen.build import build as run_build

    def action():  # noqa: ANN202
        settings = _settings(ctx, sources, run_code=False if no_run else None, offline=True if offline else None)
        return run_build(settings, write=False)

    report = _run(debug, action)
    _print_diagnostics(report.diagnostics)
    warnings = len(report.diagnostics) - len(report.errors)
    click.echo(f"{len(report.errors)} error(s), {warnings} warning(s)", err=True)
    if report.errors or (strict and warnings):
        sys.exit(CONTENT_EXIT)


@main.command()
@_sources
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where the build writes (default: build/): its package is what removed notes ship as.")
@click.option("--root", help="Name of the parent deck, as the build has it (default: 三年面试五年模拟).")
@click.option("--lock", type=click.Path(path_type=Path, dir_okay=False),
              help="Lock file to compare with (default: deckgen.lock).")
@_no_run
@_offline
@_debug
@click.pass_context
def status(ctx: click.Context, sources: tuple[Path, ...], output: Path | None, root: str | None,
           lock: Path | None, no_run: bool, offline: bool, debug: bool) -> None:
    """Show what `deckgen build` would add, update, rename, move and remove, writing nothing."""
    from deckgen.build import status as build_status

    def action():  # noqa: ANN202
        settings = _settings(ctx, sources, output=output, root=root, lock=lock,
                             run_code=False if no_run else None, offline=True if offline else None)
        return build_status(settings)

    report = _run(debug, action)
    _print_diagnostics(report.diagnostics)
    if report.errors:
        click.echo(f"deckgen: {len(report.errors)} error(s): a build would stop here", err=True)
        sys.exit(CONTENT_EXIT)
    _print_summary(report, would=True)


@main.command()
@_sources
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), default=Path("preview"),
              show_default=True, help="Folder for index.html, the media and the source pages.")
@click.option("--mathjax", type=click.Path(path_type=Path, exists=True),
              help="A local MathJax 3 (tex-chtml-full.js, or the mathjax package's folder); "
                   "default: MathJax from the jsDelivr CDN.")
@_templates
@_no_run
@_debug
@click.pass_context
def preview(ctx: click.Context, sources: tuple[Path, ...], output: Path, mathjax: Path | None,
            templates: Path | None, no_run: bool, debug: bool) -> None:
    """Write every card's front and back, as Anki shows them, to one page (OUTPUT/index.html)."""
    from deckgen import preview as cards_preview

    def action():  # noqa: ANN202
        settings = _settings(ctx, sources, templates=templates, run_code=False if no_run else None)
        _check_output(output)
        shown = cards_preview.collect(settings)
        return shown, cards_preview.write(shown, output, mathjax)

    shown, index = _run(debug, action)
    _print_diagnostics(shown.diagnostics)
    click.echo(f"wrote {_shown(index)}: {len(shown.cards)} cards; open it in a browser")


@main.command()
@_sources
@_build_options
@_no_run
@click.option("--url", help="AnkiConnect's address (default: http://127.0.0.1:8765).")
@click.option("--key", envvar="DECKGEN_ANKICONNECT_KEY",
              help="AnkiConnect's apiKey, if you set one (or $DECKGEN_ANKICONNECT_KEY).")
@click.option("--collection", is_flag=False, flag_value="", default=None, metavar="[PATH]",
              help="Push into this closed collection file instead of a running Anki "
                   "(no PATH: your only Anki profile's). Needs pip install 'deckgen[anki]'.")
@click.option("--prune", is_flag=True, help="Delete the notes tagged deckgen::removed, after asking.")
@click.option("--yes", "-y", is_flag=True, help="With --prune: delete without asking.")
@_debug
@click.pass_context
def push(ctx: click.Context, sources: tuple[Path, ...], output: Path | None, root: str | None,
         lock: Path | None, templates: Path | None, timeout: float | None, no_run: bool,
         url: str | None, key: str | None, collection: str | None, prune: bool, yes: bool,
         debug: bool) -> None:
    """Build if needed, then update Anki with the result (AnkiConnect, or a closed collection)."""
    from deckgen.build import build as run_build
    from deckgen.build import combined_package
    from deckgen.collection import default_collection
    from deckgen.config import load_push_settings
    from deckgen.push import PUSH_ERRORS, describe, open_target

    def connect():  # noqa: ANN202 - first, so that an unreachable Anki costs no build
        settings = _settings(ctx, sources, output=output, root=root, lock=lock, templates=templates,
                             timeout=timeout, run_code=False if no_run else None)
        where = load_push_settings(_project_file(ctx))
        try:
            target_file = where.collection if collection is None else (
                Path(collection) if collection else default_collection())
            return settings, open_target(root=settings.root, collection=target_file,
                                         url=url or where.url, key=key or where.key)
        except PUSH_ERRORS as exc:
            raise UserError(str(exc)) from None

    settings, target = _run(debug, connect)
    try:
        report = _run(debug, lambda: _build_with_progress(settings, run_build))
        _print_diagnostics(report.diagnostics)
        if report.errors:
            click.echo(f"deckgen: {len(report.errors)} error(s): nothing was written or pushed", err=True)
            sys.exit(CONTENT_EXIT)
        _print_summary(report)
        package = combined_package(settings)

        def update():  # noqa: ANN202
            try:
                click.echo(describe(target.import_package(package), settings.root))
                if prune and _prune(target, yes, settings):
                    # The lock changed: the packages in build/ must stop shipping the pruned notes.
                    _build_with_progress(settings, run_build)
                    click.echo(f"rebuilt {_shown(settings.output)} without them")
            except PUSH_ERRORS as exc:
                raise UserError(str(exc)) from None

        _run(debug, update)
    finally:
        target.close()


def _build_with_progress(settings: Settings, run_build):  # noqa: ANN001, ANN202
    _check_output(settings.output)
    progress = _LazyProgress()
    try:
        return run_build(settings, progress=progress)
    finally:
        progress.close()


def _prune(target, yes: bool, settings: Settings) -> bool:  # noqa: ANN001 - push.Target
    """Delete the removed notes the user confirms; True when the lock file changed."""
    from deckgen.push import forget_pruned

    removed = sorted(target.removed_notes(), key=lambda n: (n.deck, n.question, n.note_type != "qa"))
    if not removed:
        click.echo("no notes tagged deckgen::removed: nothing to prune")
        return False
    click.echo(f"{len(removed)} notes tagged deckgen::removed:")
    for note in removed:
        kind = "code example of: " if note.note_type == "code" else ""
        click.echo(f"  {kind}{note.question} ({note.deck})")
    if not yes and not click.confirm(f"Delete these {len(removed)} notes from Anki?", default=False):
        click.echo("nothing deleted")
        return False
    target.delete([note.note_id for note in removed])
    forgotten = forget_pruned(settings.lock, removed)
    click.echo(f"deleted {len(removed)} notes; {_shown(settings.lock)} forgets them")
    return forgotten > 0


def _print_diagnostics(diagnostics) -> None:  # noqa: ANN001
    for diagnostic in diagnostics:
        click.echo(str(diagnostic), err=True)


def _print_summary(report, *, would: bool = False) -> None:  # noqa: ANN001 - BuildReport
    from deckgen import summary

    if report.up_to_date:
        click.echo("nothing changed since the last build: the packages are up to date")
    for line in summary.note_lines(report) + summary.failure_lines(report) + summary.section_lines(report):
        click.echo(line)
    if report.sandbox:
        click.echo(f"code examples ran in {report.sandbox}")
    if not report.up_to_date:
        click.echo(summary.import_line(report, would=would))
    for path in report.written:
        click.echo(f"wrote {_shown(path)}")
    kept = len(report.packages) - len(report.written)
    if kept and not report.up_to_date:
        click.echo(f"{summary.count(kept, 'package')} unchanged, not rewritten")


def _shown(path: Path) -> str:
    """A path as short as it is clear: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
