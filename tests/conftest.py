"""Shared fixtures: one Prefect test server per session, and one real release built from the seeds.

Only the tests that run a flow ask for `prefect_server` (directly or through
`seed_release`); the rest of the suite never starts a server.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SEED_RAW = PROJECT / "raw"
GOLD_DIR = PROJECT / "tests" / "gold"

# The extraction floor: F1 of the seed release scored against tests/gold.
# Issue 3 asks for 0.9 (actors, citations) and 0.85 (events, transfers); raise them as extraction improves.
EVAL_F1_FLOORS: dict[str, float] = {
    "actors": 0.9,
    "events": 0.85,
    "transfers": 0.85,
    "citations": 0.9,
}

# Before anything imports Prefect (it reads its settings once): no telemetry, no
# real server, and nothing of the tests in the project's .prefect/ or processed/.
_PREFECT_TMP = Path(tempfile.mkdtemp(prefix="armsledger-tests-prefect-"))
atexit.register(shutil.rmtree, _PREFECT_TMP, True)
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = str(_PREFECT_TMP / "home")
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(_PREFECT_TMP / "storage")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)


@pytest.fixture(scope="session")
def eval_floors() -> dict[str, float]:
    return dict(EVAL_F1_FLOORS)


@pytest.fixture(scope="session")
def gold_dir() -> Path:
    return GOLD_DIR


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Prefect's test harness (a temporary server, about 9 s) for the whole session.

    Result storage goes to a fresh folder: the harness does not isolate it, and
    cached extractions must not leak between sessions. Yields that folder.
    """
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-storage")
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: storage}):
        with prefect_test_harness(server_startup_timeout=120):
            yield storage


@dataclass(frozen=True)
class SeedRun:
    """The session's first real run: the seeds in `raw`, the release in `processed`."""

    raw: Path
    processed: Path
    summary: object  # armsledger.pipeline.RunSummary

    @property
    def releases(self) -> Path:
        return self.processed / "releases"

    @property
    def release(self) -> Path:
        return Path(self.summary.release_path)

    @property
    def version(self) -> str:
        return self.summary.version


@pytest.fixture(scope="session")
def seed_release(prefect_server: Path, tmp_path_factory: pytest.TempPathFactory) -> SeedRun:
    """The real flow, once, on a copy of raw/ (the seeds) into a fresh processed/. Do not modify:
    tests that publish again work on copies (see `copy_run`)."""
    from flows.pipeline import build_release

    base = tmp_path_factory.mktemp("seed")
    raw = base / "raw"
    shutil.copytree(SEED_RAW, raw)
    processed = base / "processed"
    summary = build_release(raw=raw, processed=processed)
    assert summary.published, summary.reason
    return SeedRun(raw=raw, processed=processed, summary=summary)


@pytest.fixture
def copy_run(seed_release: SeedRun, tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """copy_run(with_releases=True) -> (raw, processed): writable copies of the seed run's folders
    (releases and extraction cache).

    With with_releases=False the processed folder is new and empty.
    """

    def make(with_releases: bool = True) -> tuple[Path, Path]:
        raw = tmp_path / "raw"
        shutil.copytree(seed_release.raw, raw)
        for path in raw.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        processed = tmp_path / "processed"
        if with_releases:
            shutil.copytree(seed_release.releases, processed / "releases")
            shutil.copytree(seed_release.processed / "cache" / "extractions", processed / "cache" / "extractions")
        else:
            processed.mkdir()
        return raw, processed

    return make


@pytest.fixture
def suites_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """suites_with(table, kwargs, description) -> a copy of the project's expectation suites with one more
    expect_table_row_count_to_be_between on `table`, in use through ARMSLEDGER_EXPECTATIONS."""

    def make(table: str, kwargs: dict, description: str) -> Path:
        suites = tmp_path / "expectations"
        shutil.copytree(Path(__file__).resolve().parents[1] / "expectations", suites)
        path = suites / f"{table}.json"
        suite = json.loads(path.read_text(encoding="utf-8"))
        suite["expectations"].append({
            "type": "expect_table_row_count_to_be_between", "kwargs": kwargs,
            "meta": {"description": description}, "severity": "critical",
        })
        path.write_text(json.dumps(suite), encoding="utf-8")
        monkeypatch.setenv("ARMSLEDGER_EXPECTATIONS", str(suites))
        return suites

    return make
