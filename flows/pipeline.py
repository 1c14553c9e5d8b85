"""The flows: raw/ -> validated, versioned release. Orchestration only; the work is in armsledger."""

# No `from __future__ import annotations` here: Prefect validates flow parameters
# against the annotations, and a flow pickled into a flow-run process (as
# `Flow.serve` does) cannot resolve string annotations such as "Path | None".
from pathlib import Path

from prefect import flow

from armsledger import pipeline
from armsledger.config import load_settings
from armsledger.pipeline import RunSummary
from flows.extract import extract_documents
from flows.ingest import ingest_documents
from flows.normalise import normalise_tables
from flows.publish import publish_release
from flows.validate import quality_gate

DEPLOYMENT_NAME = "daily"


@flow(name="build-release", description="raw/ -> ingest -> extract -> normalise -> validate -> publish")
def build_release(raw: Path | None = None, processed: Path | None = None) -> RunSummary:
    """Builds the tables from every document under `raw` and publishes them as a release under
    `processed/releases/` if they pass every expectation and differ from the latest release.

    Raises ValidationFailed (and publishes nothing) when an expectation fails.
    """
    settings = load_settings(raw, processed)
    ingested = ingest_documents(settings)
    extracted = extract_documents(ingested.documents, settings)
    tables = normalise_tables(extracted.documents, extracted.extractions)
    report = quality_gate(tables, ingested, settings)
    result = publish_release(tables, report, pipeline.rejected_items(ingested), settings)
    return pipeline.summarise(
        settings, ingested, tables, report, result, extracted=extracted.read, extraction_cached=extracted.cached
    )


@flow(name="check-tables", description="raw/ -> ingest -> extract -> normalise -> validate; publishes nothing")
def check_tables(raw: Path | None = None, processed: Path | None = None) -> RunSummary:
    """The same stages as build_release up to the quality gate, without publishing.

    Raises ValidationFailed when an expectation fails.
    """
    settings = load_settings(raw, processed)
    ingested = ingest_documents(settings)
    extracted = extract_documents(ingested.documents, settings)
    tables = normalise_tables(extracted.documents, extracted.extractions)
    report = quality_gate(tables, ingested, settings)
    return pipeline.summarise(
        settings, ingested, tables, report, None, extracted=extracted.read, extraction_cached=extracted.cached
    )


def deployment(
    cron: str,
    timezone: str = "UTC",
    raw: Path | None = None,
    processed: Path | None = None,
    name: str = DEPLOYMENT_NAME,
):
    """build_release as a deployment (a RunnerDeployment) on a cron schedule.

    Its entrypoint is the module path `flows.pipeline:build_release`, so a
    worker process finds it wherever it starts, as long as armsledger is installed.
    """
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    parameters = {k: str(v) for k, v in (("raw", raw), ("processed", processed)) if v is not None}
    return build_release.to_deployment(
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
) -> None:
    """Registers the deployment with the Prefect server and runs its flow runs when they are due.

    Scheduled runs are created by a Prefect server's scheduler: start one with
    `prefect server start` and point PREFECT_API_URL at it. Blocks until stopped;
    stopping pauses the schedule.
    """
    from prefect import serve as prefect_serve

    prefect_serve(deployment(cron, timezone, raw, processed, name))
