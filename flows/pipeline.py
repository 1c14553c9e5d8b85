"""The flows: raw/ -> validated, versioned release. Orchestration only; the work is in armsledger."""

# No `from __future__ import annotations` here: Prefect validates flow parameters
# against the annotations, and a flow pickled into a flow-run process (as
# `Flow.serve` does) cannot resolve string annotations such as "Path | None".
from pathlib import Path

from prefect import flow
from prefect.utilities.annotations import quote

from armsledger import pipeline
from armsledger.config import dask_address, load_settings
from armsledger.pipeline import RunSummary
from armsledger.sources import FetchSummary
from flows.extract import extract_documents, extractor_fingerprint, task_runner
from flows.fetch import fetch_all_sources
from flows.ingest import ingest_documents
from flows.inputs import describe_inputs, find_unchanged_release, remember_raw_folder
from flows.normalise import normalise_tables
from flows.publish import publish_release, release_form
from flows.validate import quality_gate

DEPLOYMENT_NAME = "daily"


# The task runner is read from ARMSLEDGER_DASK_ADDRESS when this module is imported, so a deployment's
# flow-run process picks it up from its environment; `with_task_runner` chooses one for a single run.
# Large values go to tasks inside `quote`: Prefect otherwise walks every parameter, field by field, looking
# for futures, which takes seconds through thousands of documents and extractions.
@flow(
    name="build-release",
    description="raw/ -> ingest -> (inputs unchanged? stop) -> extract -> normalise -> validate -> publish",
    task_runner=task_runner(dask_address()),
)
def build_release(raw: Path | None = None, processed: Path | None = None, progress: bool = False) -> RunSummary:
    """Builds the tables from every document under `raw` and publishes them as a release under
    `processed/releases/` if they pass every expectation and differ from the latest release.

    When the inputs (documents, extractor, code, expectations) are those the
    latest release was built from, stops after ingest and reports no change.
    `progress`: show a bar of documents extracted on stderr (when it is a terminal).
    Raises ValidationFailed (and publishes nothing) when an expectation fails.
    """
    settings = load_settings(raw, processed)
    ingested = ingest_documents(settings)
    fingerprint = extractor_fingerprint(settings)
    inputs = describe_inputs(quote(ingested.documents), fingerprint, settings)
    unchanged = find_unchanged_release(inputs, settings)
    if unchanged is not None:
        remember_raw_folder(ingested.snapshot, settings)
        return pipeline.unchanged_summary(settings, ingested, unchanged)
    extracted = extract_documents(ingested.documents, fingerprint, settings, progress=progress)
    tables = normalise_tables(quote(ingested.documents), quote(extracted.keys), fingerprint, settings)
    report = quality_gate(quote(tables), quote(ingested), settings)
    # From here on the tables are Arrow's (typed, compact); the pandas frames, which validation needed, are
    # the largest thing the run holds and go before the release files are written. Emptied, not just
    # deleted: Prefect keeps each task's return value (the dict itself) until the flow run ends.
    release_tables = release_form(quote(tables))
    tables.clear()
    result = publish_release(quote(release_tables), report, pipeline.rejected_items(ingested), inputs, settings)
    remember_raw_folder(ingested.snapshot, settings)
    return pipeline.summarise(
        settings, ingested, release_tables, report, result,
        extracted=extracted.read, extraction_cached=extracted.cached,
    )


@flow(
    name="check-tables",
    description="raw/ -> ingest -> extract -> normalise -> validate; publishes nothing",
    task_runner=task_runner(dask_address()),
)
def check_tables(raw: Path | None = None, processed: Path | None = None, progress: bool = False) -> RunSummary:
    """The same stages as build_release up to the quality gate, without publishing (and always
    building the tables: checking them is the point).

    Raises ValidationFailed when an expectation fails.
    """
    settings = load_settings(raw, processed)
    ingested = ingest_documents(settings)
    fingerprint = extractor_fingerprint(settings)
    extracted = extract_documents(ingested.documents, fingerprint, settings, progress=progress)
    tables = normalise_tables(quote(ingested.documents), quote(extracted.keys), fingerprint, settings)
    report = quality_gate(quote(tables), quote(ingested), settings)
    return pipeline.summarise(
        settings, ingested, tables, report, None, extracted=extracted.read, extraction_cached=extracted.cached
    )


@flow(name="fetch-sources", description="sources.yaml -> new snapshots under raw/ (nothing else)")
def fetch_sources(
    raw: Path | None = None, processed: Path | None = None, sources_file: Path | None = None
) -> FetchSummary:
    """Downloads what is new from every source of sources.yaml into raw/SOURCE/YYYY-MM-DD/.

    Network errors are listed in the summary (and logged), not raised: an outlet
    that is down must not stop the others, nor the release that follows.
    """
    settings = _with_sources(load_settings(raw, processed), sources_file)
    return fetch_all_sources(settings)


@flow(name="fetch-and-publish", description="fetch new texts from sources.yaml, then build-release")
def fetch_and_publish(
    raw: Path | None = None, processed: Path | None = None, sources_file: Path | None = None
) -> RunSummary:
    """fetch-sources, then build-release (as subflows) on the same raw/ and processed/."""
    settings = _with_sources(load_settings(raw, processed), sources_file)
    fetched = fetch_sources(settings.raw_dir, settings.processed_dir, settings.sources_file)
    if fetched.errors:
        from prefect.logging import get_run_logger

        get_run_logger().warning("fetch: %d errors (the release is built from what arrived)", len(fetched.errors))
    build = with_task_runner(build_release, settings.dask_address)
    return build(raw=settings.raw_dir, processed=settings.processed_dir)


def _with_sources(settings, sources_file: Path | None):
    from dataclasses import replace

    return settings if sources_file is None else replace(settings, sources_file=Path(sources_file).resolve())


def with_task_runner(flow_object, address: str | None):
    """`flow_object` with its extraction on Dask at `address`; unchanged when `address` is None."""
    return flow_object if not address else flow_object.with_options(task_runner=task_runner(address))


FLOWS = {"build-release": build_release, "fetch-and-publish": fetch_and_publish}


def deployment(
    cron: str,
    timezone: str = "UTC",
    raw: Path | None = None,
    processed: Path | None = None,
    name: str = DEPLOYMENT_NAME,
    flow_name: str = "build-release",
    sources_file: Path | None = None,
):
    """build_release (or fetch_and_publish, by `flow_name`) as a deployment (a RunnerDeployment) on a cron schedule.

    Its entrypoint is the module path `flows.pipeline:build_release` (or
    `:fetch_and_publish`), so a worker process finds it wherever it starts, as
    long as armsledger is installed.
    """
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    given = [("raw", raw), ("processed", processed)]
    if flow_name == "fetch-and-publish":
        given.append(("sources_file", sources_file))
    parameters = {k: str(v) for k, v in given if v is not None}
    return FLOWS[flow_name].to_deployment(
        name=name,
        schedule=Cron(cron, timezone=timezone),
        parameters=parameters,
        entrypoint_type=EntrypointType.MODULE_PATH,
        tags=["armsledger"],
    )


def serve(
    cron: str,
    timezone: str = "UTC",
    raw: Path | None = None,
    processed: Path | None = None,
    name: str = DEPLOYMENT_NAME,
    flow_name: str = "build-release",
    sources_file: Path | None = None,
) -> None:
    """Registers the deployment with the Prefect server and runs its flow runs when they are due.

    Scheduled runs are created by a Prefect server's scheduler: start one with
    `prefect server start` and point PREFECT_API_URL at it. Blocks until stopped;
    stopping pauses the schedule.
    """
    from prefect import serve as prefect_serve

    prefect_serve(deployment(cron, timezone, raw, processed, name, flow_name, sources_file))
