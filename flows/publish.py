"""Stage 5: write the release (atomic; nothing when the tables equal the latest release)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.publish import PublishResult


@task(name="publish-release", cache_policy=NO_CACHE, persist_result=False)
def publish_release(
    tables: Mapping[str, pd.DataFrame],
    report,
    rejected: list[dict[str, str]],
    inputs: dict[str, Any],
    settings: Settings,
) -> PublishResult:
    """Parquet + CSV per table, datapackage.json, SHA256SUMS, CHANGES.md, validation.json,
    rejected.json and inputs.json in processed/releases/VERSION/, then catalog.json and latest.json."""
    result = pipeline.publish(tables, report, rejected, settings, inputs=inputs)
    get_run_logger().info("%s", result.reason)
    return result
