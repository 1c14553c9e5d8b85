"""Reproducibility: the same raw/ gives the same bytes; a removed document's rows leave the next release.

Plain pipeline (run_pipeline: no Prefect, no extraction cache), each build in a
fresh processed/ as on a fresh clone, with raw/ copied to a different place each time.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import armsledger
from armsledger import schema
from armsledger.config import load_settings
from armsledger.pipeline import run_pipeline
from armsledger.releases import parse_sha256sums

PROJECT_RAW = Path(__file__).resolve().parents[1] / "raw"
TABLE_FILES = [f"{name}.{ext}" for name in schema.TABLES for ext in ("parquet", "csv")]


@pytest.fixture(scope="module")
def extractor():
    from armsledger.pipeline import load_extractor

    return load_extractor(load_settings())


def build(where: Path, extractor, raw: Path | None = None):
    """Copies the project's raw/ to where/raw (unless raw is given) and builds into where/processed."""
    if raw is None:
        raw = Path(shutil.copytree(PROJECT_RAW, where / "raw"))
    summary = run_pipeline(load_settings(raw, where / "processed"), extractor=extractor)
    assert summary.published, summary.reason
    return raw, summary


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory, extractor):
    first = build(tmp_path_factory.mktemp("clone-a"), extractor)
    second = build(tmp_path_factory.mktemp("clone-b") / "elsewhere", extractor)
    return first, second


@pytest.mark.slow
def test_rebuild_gives_byte_identical_tables_and_sums(two_builds) -> None:
    (_, a), (_, b) = two_builds
    assert a.version == b.version
    release_a, release_b = Path(a.release_path), Path(b.release_path)
    for name in TABLE_FILES:
        assert (release_a / name).read_bytes() == (release_b / name).read_bytes(), name
    sums_a = parse_sha256sums((release_a / "SHA256SUMS").read_text())
    sums_b = parse_sha256sums((release_b / "SHA256SUMS").read_text())
    assert {n: sums_a[n] for n in TABLE_FILES} == {n: sums_b[n] for n in TABLE_FILES}
    # The rest of the release is the same too: datapackage.json, CHANGES.md, validation and rejected reports.
    assert sums_a == sums_b, {n for n in sums_a if sums_a[n] != sums_b.get(n)}
    assert (release_a / "SHA256SUMS").read_bytes() == (release_b / "SHA256SUMS").read_bytes()


@pytest.mark.slow
def test_a_removed_document_leaves_the_next_release(two_builds, extractor, tmp_path: Path) -> None:
    (built_raw, first), _ = two_builds
    raw = Path(shutil.copytree(built_raw, tmp_path / "raw"))  # copies: the module's builds stay as built
    processed = Path(shutil.copytree(first.processed_dir, tmp_path / "processed"))
    releases = processed / "releases"
    documents = armsledger.load("documents", source=releases)
    gone_path = sorted(documents["path"])[0]
    gone = documents.loc[documents["path"] == gone_path, "doc_id"].item()
    before = {name: armsledger.load(name, source=releases) for name in schema.TABLES}

    (raw / gone_path).unlink()
    (raw / gone_path).with_suffix(".meta.yaml").unlink(missing_ok=True)
    summary = run_pipeline(load_settings(raw, processed), extractor=extractor)
    assert summary.published and summary.version != first.version
    after = {name: armsledger.load(name, source=releases) for name in schema.TABLES}

    for name in ("documents", "mentions", "citations"):
        assert gone not in set(after[name]["doc_id"]), name
    # Facts supported only by the removed document are gone; those with evidence elsewhere stay.
    for name, key in (("events", "event_id"), ("transfers", "transfer_id")):
        cited = before["citations"].loc[before["citations"]["target_table"] == name]
        only_gone = set(cited["target_id"]) - set(cited.loc[cited["doc_id"] != gone, "target_id"])
        assert not only_gone & set(after[name][key]), name

    changes = (releases / summary.version / "CHANGES.md").read_text(encoding="utf-8")
    assert f"Compared with release {first.version}" in changes
    assert f"- Removed (1): `{gone}`" in changes
    assert summary.changes["documents"] == {"added": 0, "removed": 1, "changed": 0}
    removed_mentions = before["mentions"].loc[before["mentions"]["doc_id"] == gone, "mention_id"]
    assert summary.changes["mentions"]["removed"] == len(removed_mentions) > 0
    assert f"- Removed ({len(removed_mentions)}): " in changes
    # The earlier release is still there, whole, with the document's rows.
    old = armsledger.load("documents", version=first.version, source=releases)
    pd.testing.assert_frame_equal(old, before["documents"])
