"""Stage 5: write the release (atomic; nothing when the tables equal the latest release)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.publish import PublishResult


@task(name="release-form", cache_policy=NO_CACHE, persist_result=False)
def release_form(tables: Mapping[str, pd.DataFrame]) -> dict[str, pa.Table]:
    """The six tables as Arrow tables of the contract's schema, rows in key order: what the release files hold."""
    from armsledger.publish import tables_to_arrow

    return tables_to_arrow(tables)


@task(name="publish-release", cache_policy=NO_CACHE, persist_result=False)
def publish_release(
    tables: Mapping[str, pd.DataFrame | pa.Table],
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
