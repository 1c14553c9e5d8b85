"""Scale-out: the same flow with its extraction on a local Dask cluster of two worker processes.

The workers run the Prefect tasks in their own processes, so they must reach the
session's real Prefect server (a temporary server per worker costs about 19 s:
see TOOLCHAIN.md) and the same result storage. Both are passed through the
environment, which the worker processes inherit when the cluster starts.
"""
from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest

from armsledger import schema


def release_tables(release: Path) -> dict[str, bytes]:
    return {
        f"{name}.{ext}": (release / f"{name}.{ext}").read_bytes()
        for name in schema.TABLES
        for ext in ("parquet", "csv")
    }


def test_task_runner_follows_the_setting(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from armsledger.config import load_settings
    from flows.extract import task_runner
    from flows.pipeline import build_release, with_task_runner

    assert isinstance(task_runner(None), ThreadPoolTaskRunner)
    runner = task_runner("tcp://127.0.0.1:8786")
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://127.0.0.1:8786"
    assert with_task_runner(build_release, None) is build_release
    assert isinstance(with_task_runner(build_release, "tcp://10.0.0.5:8786").task_runner, DaskTaskRunner)
    monkeypatch.setenv("ARMSLEDGER_DASK_ADDRESS", " tcp://10.0.0.5:8786 ")
    assert load_settings().dask_address == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("ARMSLEDGER_DASK_ADDRESS", "")
    assert load_settings().dask_address is None


@pytest.mark.slow
def test_two_dask_workers_give_the_release_of_the_default_runner(seed_release, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    import armsledger.pipeline
    from flows.pipeline import build_release, with_task_runner

    api_url = PREFECT_API_URL.value()  # the session's test server (a real one, in its own process)
    assert api_url
    storage = tmp_path / "storage"  # empty: no extraction comes from the cache, the workers parse
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    monkeypatch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(storage))
    # One document per batch, so that each of the two workers has a batch to run.
    monkeypatch.setattr(armsledger.pipeline, "batches", functools.partial(armsledger.pipeline.batches, largest=1, smallest=1))

    started = time.monotonic()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster, Client(cluster) as client:
        with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: storage}):
            flow = with_task_runner(build_release, cluster.scheduler_address)
            summary = flow(raw=seed_release.raw, processed=tmp_path / "processed")
        loaded = client.run(_extractor_loaded)  # worker address -> did it load spaCy?
    elapsed = time.monotonic() - started

    assert summary.published and summary.extracted == seed_release.summary.documents
    assert release_tables(Path(summary.release_path)) == release_tables(seed_release.release)
    assert len(loaded) == 2 and any(loaded.values()), loaded
    assert elapsed < 120, f"the Dask run took {elapsed:.0f} s"


def _extractor_loaded() -> bool:
    import sys

    module = sys.modules.get("flows.extract")
    return bool(module is not None and module._extractors)
