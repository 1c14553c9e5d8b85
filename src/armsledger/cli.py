"""The `armsledger` command line: run the pipeline, serve it on a schedule, inspect and score releases.

Exit codes (every command): 0 success (for `run`: a release was published or
nothing changed), 1 the tables failed validation (nothing was published),
2 bad usage (unknown option, a path or release that does not exist, a bad cron
string), 3 any other failure (a stage crashed, the releases folder is locked).

Prefect is imported only by the commands that run a flow, after
armsledger.runtime has set its environment defaults.
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# pyarrow (through armsledger.schema and the flows) is imported inside the commands, after
# runtime.configure_environment has set its allocator's options: see armsledger.runtime.


EXIT_OK = 0
EXIT_VALIDATION_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3

EXIT_CODES_HELP = (
    "Exit codes: 0 success, 1 validation failed (nothing published), "
    "2 bad usage, 3 other failure."
)

app = typer.Typer(
    name="armsledger",
    help=(
        "armsledger: build, publish, inspect and score the dataset of actors, events, transfers and "
        "citations in texts about the Russia–North Korea military relationship.\n\n"
        "The pipeline reads raw/ and publishes validated, versioned releases to "
        "processed/releases/VERSION/. Paths default to the project folder (or ARMSLEDGER_RAW, "
        f"ARMSLEDGER_PROCESSED, ARMSLEDGER_EXPECTATIONS).\n\n{EXIT_CODES_HELP}"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Piped output (CI logs, files) is not cut at 80 columns: paths and release names stay whole.
_PIPE_WIDTH = 140
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)

RAW_OPTION = typer.Option(
    None, "--raw", help="Folder of raw texts (.txt, .md, .html). Default: the project's raw/.",
    exists=True, file_okay=False, dir_okay=True, resolve_path=True,
)
PROCESSED_OPTION = typer.Option(
    None, "--processed", help="Output folder holding releases/ and cache/. Default: the project's processed/.",
    file_okay=False, dir_okay=True, resolve_path=True,
)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON on stdout instead of tables.")
DASK_OPTION = typer.Option(
    None, "--dask-address",
    help="Run the flow's tasks (the extraction batches above all) on this Dask scheduler (tcp://HOST:8786) "
    "through DaskTaskRunner; the workers need the same paths and a real Prefect server (PREFECT_API_URL). "
    "Default: ARMSLEDGER_DASK_ADDRESS, else in-process.",
)


def _with_dask(settings, address: str | None):
    from dataclasses import replace

    return settings if not address else replace(settings, dask_address=address.strip())


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _settings(raw: Path | None, processed: Path | None):
    from armsledger.config import load_settings

    try:
        settings = load_settings(raw, processed)
    except RuntimeError as exc:  # no project folder and no paths
        _fail(str(exc), EXIT_USAGE)
    if not settings.raw_dir.is_dir():
        _fail(f"raw folder {settings.raw_dir} does not exist", EXIT_USAGE)
    return settings


def _prepare_prefect(processed_dir: Path | None) -> None:
    """Environment defaults for Prefect, before anything imports it."""
    from armsledger.runtime import configure_environment, limit_malloc_arenas

    configure_environment(processed_dir)
    limit_malloc_arenas()


# --- run ------------------------------------------------------------------------


@app.command()
def run(
    raw: Optional[Path] = RAW_OPTION,
    processed: Optional[Path] = PROCESSED_OPTION,
    as_json: bool = JSON_OPTION,
    dask_address: Optional[str] = DASK_OPTION,
) -> None:
    """Run the whole pipeline once: ingest raw/, extract, normalise, validate, publish.

    The flow runs on a temporary local Prefect server that the run starts and
    stops (or on the server that PREFECT_API_URL names). A new release appears
    in processed/releases/VERSION/ only when every expectation holds and the
    tables differ from the latest release. When the documents, the extractor,
    the code and the expectations are those the latest release was built from,
    the run stops after ingest ("no change") without running the flow, so such
    a run leaves no flow run behind (a scheduled deployment makes the same test
    inside its flow, and so does this run when files under raw/ were added,
    removed or rewritten since the latest release, even if the texts came out
    the same). Files that cannot be used are listed in the release's
    rejected.json. On a terminal, a progress bar of the documents extracted is
    shown on stderr (never with --json).

    Exit codes: 0 published or no change, 1 validation failed (nothing
    published; the failed expectations are printed), 2 bad usage, 3 other failure.
    """
    settings = _with_dask(_settings(raw, processed), dask_address)
    _prepare_prefect(settings.processed_dir)
    from armsledger.runtime import collector_paused

    # The temporary server takes longer to start than all of a run with nothing new to do, so the test for
    # "nothing new" runs while it starts; when nothing is new, the server is stopped unused and Prefect is
    # never imported. Otherwise this process imports what the flow needs while the server comes up.
    # When a look at raw/'s file sizes and times shows it changed since the latest release, the test is
    # skipped: the flow reads raw/ anyway, and reading it twice cost 2 s at 5,000 documents.
    with _prefect_api() as server:
        # Before the flow, the run imports its libraries and loads spaCy's model: the collections their
        # allocations set off took 0.75 s of about 6.5 s.
        with collector_paused():
            before = None if _raw_changed(settings) else _preflight(settings)
            summary = before.unchanged if before is not None else None
            if summary is None:
                _load_ahead(settings, parse=before is None or before.unparsed > 0)
        if summary is None:
            if server is not None:
                _wait_for(server)
            summary = _run_flow("build_release", settings, as_json, _print_run, progress=not as_json,
                                temporary_api=server is not None)
    if as_json:
        typer.echo(summary.to_json(), nl=False)
    else:
        _print_run(summary)
        _print_release_line(summary)


def _raw_changed(settings) -> bool:
    from armsledger.pipeline import raw_changed_since_latest

    return raw_changed_since_latest(settings)


def _preflight(settings):
    from armsledger.pipeline import preflight

    try:
        return preflight(settings)
    except Exception as exc:  # an unreadable release or raw/ here is the flow's to report, with its context
        err.print(f"[yellow]could not compare the inputs with the latest release ({escape(str(exc))}); running the flow[/]")
        return None


@contextmanager
def _prefect_api():
    """Yields the TemporaryServer this run starts (armsledger.prefect_server), or None when PREFECT_API_URL
    names a server or Prefect is imported already (it has read its settings: it starts its own)."""
    from armsledger.runtime import prefect_imported

    if os.environ.get("PREFECT_API_URL") or prefect_imported():
        yield None
        return
    from armsledger.prefect_server import TemporaryServer

    server = TemporaryServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _wait_for(server) -> None:
    from armsledger.prefect_server import ServerStartError

    try:
        server.wait_ready(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 90))
    except ServerStartError as exc:
        _fail(str(exc), EXIT_ERROR)


def _load_ahead(settings, parse: bool) -> None:
    """Imports the flows (about 1.5 s with Prefect) and Great Expectations (about 1.5 s, see
    armsledger.deferred_imports) and, when documents are to be parsed here rather than on Dask workers,
    loads spaCy's model (about 1 s), so that the flow finds them ready."""
    from armsledger.deferred_imports import import_great_expectations

    import_great_expectations()  # the quality gate's import, done now

    from flows import pipeline  # noqa: F401
    from flows.extract import get_extractor

    # What the imports made lives as long as the process. Frozen, it is no longer walked by every full
    # collection: the one that lets spaCy's model go after extraction took 0.24 s, 0.03 s this way.
    # The model is loaded after this, so that it can go when extraction is done.
    gc.freeze()

    if parse and not settings.dask_address:
        try:
            get_extractor(settings)
        except Exception:  # the extraction task loads it again and reports the error in its context
            pass


def _print_run(summary) -> None:
    _print_summary(summary, "armsledger run")


def _run_flow(name: str, settings, as_json: bool, render=None, storage_dir: Path | None = None,
              progress: bool = False, temporary_api: bool = False):
    """Runs flows.pipeline.<name> and turns its failures into exit codes.

    `render(summary)` prints the summary of a run that failed validation (JSON
    instead with as_json). `storage_dir`: the processed/ folder whose cache/
    holds Prefect's results (default: the run's own processed/). `progress`:
    the flow shows a progress bar on stderr when that is a terminal.
    `temporary_api`: PREFECT_API_URL names a server that this run started and stops.
    """
    _prepare_prefect(storage_dir or settings.processed_dir)
    from armsledger.pipeline import ValidationFailed
    from flows import pipeline as flows_pipeline

    flow = flows_pipeline.with_task_runner(getattr(flows_pipeline, name), settings.dask_address)
    lasting_api = bool(os.environ.get("PREFECT_API_URL")) and not temporary_api
    try:
        with _heartbeats(lasting_api):
            return flow(raw=settings.raw_dir, processed=settings.processed_dir, progress=progress)
    except ValidationFailed as exc:
        if as_json and exc.summary is not None:
            typer.echo(exc.summary.to_json(), nl=False)
        elif exc.summary is not None and render is not None:
            render(exc.summary)
        err.print(f"[bold red]{escape(str(exc))}[/]")
        raise typer.Exit(EXIT_VALIDATION_FAILED)
    except typer.Exit:
        raise
    except Exception as exc:  # a crashed stage, a held lock: reported, not a traceback wall
        _fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)


@contextmanager
def _heartbeats(wanted: bool):
    """Prefect's flow-run heartbeats, or none while the block runs.

    Heartbeats let a lasting server mark a run whose process died as crashed. A server that lives only as
    long as this run (the temporary one, or the one Prefect starts itself) has no use for them, and ending
    each flow run waits for their thread to wake from a one-second sleep: 0.5 s on average, 1 s at worst.
    """
    if wanted:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _print_summary(summary, title: str, release_row: bool = True) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("raw", escape(summary.raw_dir))
    table.add_row("documents read", str(summary.documents))
    table.add_row("documents rejected", f"{summary.rejected} (and {summary.warnings} warnings)")
    if not summary.tables_built:
        table.add_row("extraction", "not needed: the inputs are those of the latest release")
    elif summary.extracted is not None:
        table.add_row("extraction", f"{summary.extracted} parsed, {summary.extraction_cached} from the cache")
    from armsledger.schema import TABLES
    for name in TABLES:
        if name in summary.rows:
            table.add_row(f"rows: {name}", str(summary.rows[name]))
    n_failed = len(summary.failed_expectations)
    outcome = (
        "not run: the tables were not rebuilt"
        if not summary.tables_built
        else f"[green]passed[/] ({summary.expectations} expectations)"
        if summary.validation_success
        else f"[red]FAILED[/] ({n_failed} of {summary.expectations} expectations)"
    )
    table.add_row("validation", outcome)
    if release_row:
        table.add_row("release", _release_cell(summary))
    out.print(table)
    for item in summary.rejected_files:
        out.print(escape(f"  {item['kind']}: {item['path']}: {item['reason']}"))


def _latest_path(summary) -> str | None:
    latest = summary.latest_version
    return str(Path(summary.processed_dir) / "releases" / latest) if latest else None


def _release_cell(summary) -> str:
    if summary.published:
        return f"[green]{summary.version}[/] (new): {escape(summary.release_path)}"
    if not summary.validation_success:
        return "[red]nothing published[/]"
    latest = summary.latest_version
    return escape(f"no change (latest release {latest}: {_latest_path(summary)})") if latest else "no change"


def _print_release_line(summary) -> None:
    if summary.published:
        out.print(f"[bold green]published[/] release {summary.version}: {escape(summary.release_path)}")
    else:
        where = escape(f"{summary.latest_version} at {_latest_path(summary)}")
        out.print(f"[bold]no change[/]: no new release; the latest is {where}")


# --- fetch ------------------------------------------------------------------------


@app.command()
def fetch(
    raw: Optional[Path] = RAW_OPTION,
    processed: Optional[Path] = PROCESSED_OPTION,
    sources_file: Optional[Path] = typer.Option(
        None, "--sources", help="sources.yaml to fetch (default: ARMSLEDGER_SOURCES, else the project's).",
        exists=True, dir_okay=False, resolve_path=True,
    ),
    only: Optional[list[str]] = typer.Option(None, "--source", help="Fetch only this source (repeatable)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download what is new from the feeds and pages of sources.yaml into raw/SOURCE/YYYY-MM-DD/.

    Feeds are asked with conditional requests (ETag, Last-Modified); an article
    already fetched is never fetched again; each page is stored once, read-only,
    with a NAME.meta.yaml sidecar. State is kept in processed/fetch/state.json.
    This is the only command that uses the network; `armsledger run` afterwards
    builds the release. Network errors are listed, not fatal.

    Exit codes: 0 done (errors, if any, are listed), 2 bad usage (bad sources file, unknown source).
    """
    from dataclasses import replace

    from armsledger import sources

    settings = _settings(raw, processed)
    path = sources_file or settings.sources_file
    try:
        loaded = sources.load_sources(path)
    except sources.SourcesError as exc:
        _fail(str(exc), EXIT_USAGE)
    unknown = sorted(set(only or []) - {s.name for s in loaded.sources})
    if unknown:
        _fail(f"no such source in {path}: {', '.join(unknown)}", EXIT_USAGE)
    settings = replace(settings, sources_file=path)
    summary = sources.fetch_all(loaded, settings.raw_dir, settings.processed_dir, only=only)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    table = Table(title=f"armsledger fetch ({escape(str(path))})", title_justify="left")
    for column in ("source", "feeds", "unchanged (304)", "entries", "stored", "known", "not matching", "errors"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for r in summary.sources:
        table.add_row(r.source, str(r.feeds_checked), str(r.feeds_unchanged), str(r.entries_seen),
                      str(len(r.stored)), str(r.skipped_known), str(r.skipped_unmatched), str(len(r.errors)))
    out.print(table)
    for stored in summary.stored:
        out.print(escape(f"  new: {stored}"))
    for error in summary.errors:
        err.print(escape(f"  error: {error}"))
    out.print(f"{len(summary.stored)} new documents in {escape(str(settings.raw_dir))}; `armsledger run` publishes them")


# --- serve ------------------------------------------------------------------------


@app.command()
def serve(
    cron: str = typer.Option("0 6 * * *", "--cron", help="When to run, as a cron string (default: daily at 06:00)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone of the cron string."),
    raw: Optional[Path] = RAW_OPTION,
    processed: Optional[Path] = PROCESSED_OPTION,
    name: str = typer.Option("daily", "--name", help="Deployment name."),
    flow_name: str = typer.Option(
        "fetch-and-publish", "--flow",
        help="fetch-and-publish (fetch sources.yaml into raw/, then build the release) or build-release "
        "(raw/ as it is, no network).",
    ),
    sources_file: Optional[Path] = typer.Option(
        None, "--sources", help="sources.yaml to fetch (default: ARMSLEDGER_SOURCES, else the project's).",
        exists=True, dir_okay=False, resolve_path=True,
    ),
    dask_address: Optional[str] = DASK_OPTION,
) -> None:
    """Serve the pipeline as a Prefect deployment that runs on a cron schedule.

    By default the deployment is fetch-and-publish: each run downloads what is
    new from the sources (armsledger fetch), then builds and publishes a release.

    Scheduled runs are created by a real Prefect server: start one with
    `prefect server start` and export PREFECT_API_URL (for a local server,
    http://127.0.0.1:4200/api) before `armsledger serve`. Without an API URL
    (from the environment or the Prefect profile) this command refuses to start. It blocks until stopped;
    stopping it pauses the schedule. Trigger a run by hand with
    `prefect deployment run fetch-and-publish/daily`.

    Exit codes: 0 stopped, 2 bad usage (bad cron string or time zone, no PREFECT_API_URL), 3 other failure.
    """
    import os
    import zoneinfo

    if flow_name not in ("fetch-and-publish", "build-release"):
        _fail(f"unknown flow {flow_name!r} (fetch-and-publish or build-release)", EXIT_USAGE)

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        _fail(f"unknown time zone {timezone!r} (use an IANA name such as UTC or Europe/Berlin)", EXIT_USAGE)
    settings = _settings(raw, processed)
    _prepare_prefect(settings.processed_dir)
    from prefect.schedules import Cron
    from prefect.settings import get_current_settings

    try:
        Cron(cron, timezone=timezone)
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not get_current_settings().api.url:  # PREFECT_API_URL, from the environment or a Prefect profile
        _fail(
            "scheduled runs need a Prefect server: run `prefect server start` in another shell, then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` and run `armsledger serve` again",
            EXIT_USAGE,
        )
    if dask_address:  # the flow-run processes that the runner starts read it from their environment
        os.environ["ARMSLEDGER_DASK_ADDRESS"] = dask_address.strip()
    from flows.pipeline import serve as serve_flow

    try:
        serve_flow(cron, timezone, raw=raw, processed=processed, name=name, flow_name=flow_name,
                   sources_file=sources_file)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)


# --- validate ------------------------------------------------------------------------


@app.command()
def validate(
    raw: Optional[Path] = RAW_OPTION,
    processed: Optional[Path] = PROCESSED_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Build the tables from raw/ and check them against every expectation, without publishing.

    Runs ingest, extract, normalise and the Great Expectations checkpoints (the
    same stages as `run`, sharing its extraction cache) and prints each table's
    results and every failed expectation.

    Exit codes: 0 every expectation holds, 1 at least one failed, 2 bad usage, 3 other failure.
    """
    settings = _settings(raw, processed)
    summary = _run_flow("check_tables", settings, as_json, _print_validation, progress=not as_json)
    if as_json:
        typer.echo(summary.to_json(), nl=False)
    else:
        _print_validation(summary)


def _print_validation(summary) -> None:
    _print_summary(summary, "armsledger validate", release_row=False)
    table = Table(title="expectations per table", title_justify="left")
    for column in ("table", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "table" else "right")
    from armsledger.schema import TABLES
    for name in TABLES:
        counts = summary.validation_by_table.get(name, {})
        table.add_row(name, *(str(counts.get(k, 0)) for k in ("passed", "failed", "skipped")))
    out.print(table)
    for line in summary.failed_expectations:
        out.print(f"[red]failed:[/] {escape(line)}")


# --- releases ------------------------------------------------------------------------


@app.command()
def releases(
    processed: Optional[Path] = PROCESSED_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the published releases with their row counts; the latest is marked with *.

    Reads processed/releases/catalog.json (or the release folders when there is
    no catalog).

    Exit codes: 0 success (also when nothing is published yet), 2 bad usage.
    """
    from armsledger.releases import latest_version, list_releases

    settings = _settings_processed(processed)
    folder = settings.releases_dir
    catalog_file = folder / "catalog.json"
    if catalog_file.is_file():
        entries = json.loads(catalog_file.read_text(encoding="utf-8"))["releases"]
    else:
        from armsledger.publish import catalog_entry

        entries = [catalog_entry(folder, v) for v in list_releases(folder)]
    latest = latest_version(folder) if entries else None
    if as_json:
        typer.echo(json.dumps({"latest": latest, "releases": entries}, indent=2))
        return
    if not entries:
        out.print(escape(f"no releases in {folder}"))
        return
    table = Table(title=escape(f"releases in {folder}"), title_justify="left")
    table.add_column("version", no_wrap=True)
    table.add_column("latest", justify="center")
    from armsledger.schema import TABLES
    for name in TABLES:
        table.add_column(name, justify="right")
    for entry in entries:
        rows = entry.get("rows", {})
        table.add_row(
            entry["version"], "*" if entry["version"] == latest else "", *(str(rows.get(n, "")) for n in TABLES)
        )
    out.print(table)


def _settings_processed(processed: Path | None):
    """Settings for commands that only read processed/ (raw/ need not exist)."""
    from armsledger.config import Settings, load_settings

    try:
        return load_settings(processed=processed)
    except RuntimeError as exc:  # outside a checkout: fine when --processed says where
        if processed is None:
            _fail(str(exc), EXIT_USAGE)
        return Settings(raw_dir=processed / "raw", processed_dir=processed, expectations_dir=processed / "expectations")


# --- diff ------------------------------------------------------------------------


@app.command()
def diff(
    a: str = typer.Argument(..., help="The older release (YYYY.MM.DD[.N], or 'latest')."),
    b: str = typer.Argument(..., help="The newer release (YYYY.MM.DD[.N], or 'latest')."),
    processed: Optional[Path] = PROCESSED_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per table, the rows added, removed and changed from release A to release B (by primary key).

    With --json, the keys themselves are printed.

    Exit codes: 0 success, 2 bad usage (a release name that is not one, or that does not exist).
    """
    from armsledger.releases import InvalidReleaseNameError, ReleaseNotFoundError, diff_releases, latest_version

    settings = _settings_processed(processed)
    folder = settings.releases_dir
    names = []
    for version in (a, b):
        if version == "latest":
            version = latest_version(folder)
            if version is None:
                _fail(f"nothing published in {folder}", EXIT_USAGE)
        names.append(version)
    try:
        changes = diff_releases(folder, names[0], names[1])
    except (InvalidReleaseNameError, ReleaseNotFoundError) as exc:
        _fail(str(exc), EXIT_USAGE)
    if as_json:
        typer.echo(json.dumps({"from": names[0], "to": names[1], "tables": changes}, indent=2))
        return
    table = Table(title=f"{names[0]} -> {names[1]}", title_justify="left")
    for column in ("table", "added", "removed", "changed"):
        table.add_column(column, justify="left" if column == "table" else "right")
    from armsledger.schema import TABLES
    for name in TABLES:
        table.add_row(name, *(str(len(changes[name][k])) for k in ("added", "removed", "changed")))
    out.print(table)


# --- eval ------------------------------------------------------------------------


@app.command(name="eval")
def eval_(
    gold: Path = typer.Option(
        ..., "--gold", help="Folder of gold answer keys (NAME.yaml, paired with raw file NAME.*).",
        exists=True, file_okay=False, dir_okay=True, resolve_path=True,
    ),
    raw: Optional[Path] = RAW_OPTION,
    as_json: bool = JSON_OPTION,
    details: bool = typer.Option(False, "--details", help="Also list what each document missed or added."),
) -> None:
    """Score extraction against gold files: precision, recall and F1 per table.

    Runs the pipeline on the texts in --raw (default: the project's raw/) into a
    temporary processed folder, then scores that release against the gold YAML
    files with the matching rules of the gold README (status and quantity
    accuracy too). The project's extraction cache (processed/cache) is reused.

    Exit codes: 0 scored, 1 the tables failed validation (nothing to score),
    2 bad usage, 3 other failure.
    """
    with tempfile.TemporaryDirectory(prefix="armsledger-eval-") as temp:
        settings = _settings(raw, Path(temp) / "processed")
        # The cache is keyed by content, so the project's cache serves eval runs too.
        summary = _run_flow("build_release", settings, as_json, storage_dir=_default_processed(),
                            progress=not as_json)
        if summary.latest_version is None:
            _fail("the run published no release to score", EXIT_ERROR)
        from armsledger.evaluate import format_report, score_release

        release = summary.release_path or str(settings.releases_dir / summary.latest_version)
        report = score_release(gold, Path(release))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        out.print(format_report(report, details=details), markup=False)


def _default_processed() -> Path | None:
    from armsledger.config import load_settings

    try:
        return load_settings().processed_dir
    except RuntimeError:
        return None


# --- codebook ------------------------------------------------------------------------


@app.command()
def codebook(
    output: Optional[Path] = typer.Option(
        None, "--output", help="Where to write it (default: the project's docs/codebook.md; '-' for stdout).",
        dir_okay=False,
    ),
    check: bool = typer.Option(False, "--check", help="Write nothing; fail if the file differs from the schema."),
) -> None:
    """Write the codebook (docs/codebook.md) from the table contract, src/armsledger/data/schema.yaml.

    The codebook lists every table's columns with their types, nullability,
    meanings and allowed values, and the vocabularies. It is generated, never
    edited by hand; a test checks that the committed file is up to date.

    Exit codes: 0 written (or up to date), 1 with --check: the file is out of date.
    """
    from armsledger.site import write_codebook

    code = write_codebook(output, check=check)
    if code:
        raise typer.Exit(code)


def main() -> NoReturn:
    """The `armsledger` console command: the CLI, then an exit without the interpreter's teardown.

    Tearing down a process that has run the pipeline frees every document,
    table and module one object at a time: about 1.5 s after a run on 5,000
    documents, for nothing, since every file is written and closed by then.
    The exit handlers (Prefect's, logging's) still run first.
    """
    try:
        app()
        code: object = EXIT_OK
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()  # what interpreter shutdown would run, and all of it that matters here
    os._exit(code or EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
