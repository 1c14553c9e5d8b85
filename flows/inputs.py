"""Stage 1b: what the tables would be made from, and whether the latest release was made from just that.

A run whose inputs (documents, extractor, code, expectations: see
armsledger.pipeline.describe_inputs) equal those of the latest release stops
here: it reads no cached extraction and builds, checks and publishes nothing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import Document


@task(name="describe-inputs", cache_policy=NO_CACHE, persist_result=False)
def describe_inputs(documents: Sequence[Document], fingerprint: str, settings: Settings) -> dict[str, Any]:
    """The run's input manifest (with its digest), which a new release carries as inputs.json."""
    return pipeline.describe_inputs(documents, fingerprint, settings)


@task(name="remember-raw-folder", cache_policy=NO_CACHE, persist_result=False)
def remember_raw_folder(snapshot: str | None, settings: Settings) -> None:
    """Records how raw/ looked (its snapshot, taken before ingest read it) once the latest release is known to
    be built from it, so that the next `armsledger run` sees at a glance whether raw/ has changed since."""
    pipeline.remember_raw_folder(settings, snapshot)


@task(name="find-unchanged-release", cache_policy=NO_CACHE, persist_result=False)
def find_unchanged_release(inputs: dict[str, Any], settings: Settings) -> str | None:
    """The latest release if it was built from these very inputs and is whole; None otherwise."""
    version = pipeline.unchanged_release(inputs, settings)
    if version is not None:
        get_run_logger().info("inputs unchanged since release %s: nothing to build", version)
    return version
