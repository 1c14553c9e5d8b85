"""The README's loading examples run, verbatim, against the seed release.

The Python blocks of the README's "Loading" section are taken as they are
written and run in a folder that holds a copy of the seed run's `processed/`,
as a reader in the project folder would run them. (Loading over HTTP is tested
in tests/test_releases.py.)
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"


def loading_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Loading\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, "README.md has no '## Loading' section"
    return re.findall(r"^```python\n(.*?)^```", match.group(1), flags=re.S | re.M)


def test_the_loading_section_shows_pandas_and_duckdb() -> None:
    blocks = loading_blocks()
    assert len(blocks) == 2
    assert 'armsledger.load("transfers"' in blocks[0]
    assert "import duckdb" in blocks[1] and ".parquet" in blocks[1]


@pytest.fixture
def project_copy(seed_release, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(seed_release.releases, tmp_path / "processed" / "releases")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_pandas_example(project_copy: Path, seed_release, capsys) -> None:
    namespace: dict = {}
    exec(compile(loading_blocks()[0], "README.md (pandas)", "exec"), namespace)
    transfers = namespace["transfers"]
    expected = pd.read_parquet(seed_release.release / "transfers.parquet")
    assert len(transfers) == len(expected) > 0
    assert transfers["supplier"].notna().all() and transfers["recipient"].notna().all()
    evidence = namespace["evidence"]
    # Every transfer reaches at least one sentence, and each sentence its document.
    assert set(evidence["transfer_id"]) == set(expected["transfer_id"])
    assert evidence["sentence"].str.len().gt(0).all()
    assert "supplier" in capsys.readouterr().out


@pytest.mark.slow
def test_duckdb_example(project_copy: Path, seed_release, capsys) -> None:
    namespace: dict = {}
    exec(compile(loading_blocks()[1], "README.md (duckdb)", "exec"), namespace)
    rows = namespace["result"].fetchall()
    expected = pd.read_parquet(seed_release.release / "transfers.parquet")
    assert len(rows) == len(expected) > 0
    assert all(row[-1] >= 1 for row in rows), "every transfer has a citation"
    assert "supplier" in capsys.readouterr().out
