"""Stage 0: sources.yaml -> new snapshots under raw/ (the only stage that uses the network).

One task per source, run one after another: a source's requests keep their
per-host interval, and the fetch state file has one writer at a time. What to
fetch, and how politely, is armsledger.sources.
"""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from armsledger import sources
from armsledger.config import Settings


@task(name="fetch-source", cache_policy=NO_CACHE, persist_result=False)
def fetch_source(source: sources.Source, config: sources.FetchConfig, settings: Settings) -> sources.SourceReport:
    """Downloads what is new for one source; network errors are reported in its SourceReport, not raised."""
    logger = get_run_logger()
    with sources.Fetcher(config) as fetcher:
        report = sources.fetch_source(
            source, settings.raw_dir, sources.state_path_for(settings.processed_dir), fetcher
        )
    logger.info(
        "%s: %d feeds (%d unchanged), %d entries, %d stored, %d already fetched, %d not matching",
        source.name, report.feeds_checked, report.feeds_unchanged, report.entries_seen, len(report.stored),
        report.skipped_known, report.skipped_unmatched,
    )
    for error in report.errors:
        logger.warning("%s: %s", source.name, error)
    return report


def fetch_all_sources(settings: Settings, only: list[str] | None = None) -> sources.FetchSummary:
    """Every source of settings.sources_file (or those named in `only`), one task each (called from a flow)."""
    if settings.sources_file is None:
        raise sources.SourcesError("no sources file configured (ARMSLEDGER_SOURCES)")
    loaded = sources.load_sources(settings.sources_file)
    unknown = sorted(set(only or []) - {s.name for s in loaded.sources})
    if unknown:
        raise sources.SourcesError(f"no such source in {settings.sources_file}: {', '.join(unknown)}")
    reports = []
    for source in loaded.sources:
        if only and source.name not in only:
            continue
        reports.append(fetch_source(source, loaded.config, settings))
    return sources.FetchSummary(reports)
