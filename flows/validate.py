"""Stage 4: the quality gate. A failed expectation raises ValidationFailed and nothing is published."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import IngestResult


@task(name="quality-gate", cache_policy=NO_CACHE, persist_result=False)
def quality_gate(tables: Mapping[str, pd.DataFrame], ingested: IngestResult, settings: Settings):
    """Runs every table through its Great Expectations checkpoint (suites from expectations/).

    Returns the ValidationReport when every expectation holds; otherwise raises
    ValidationFailed, whose message names each failed expectation and which
    carries the report and the run's summary so far. The documents' texts are
    taken from `ingested` (pipeline.check): nothing after the gate reads them.
    """
    report = pipeline.check(tables, ingested, settings)
    logger = get_run_logger()
    if report.success:
        logger.info("validation passed: %d expectations", len(report.results))
        return report
    for line in pipeline.failed_expectations(report):
        logger.error("failed expectation: %s", line)
    raise pipeline.ValidationFailed(report, pipeline.summarise(settings, ingested, tables, report))
