"""Reading releases: typed load from a folder or over HTTP, hash checks, refused names, diffs."""
from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import armsledger
from armsledger import schema
from armsledger.releases import (
    IntegrityError,
    InvalidReleaseNameError,
    ReleaseNotFoundError,
    cache_dir_for,
    diff_releases,
    diff_tables,
    latest_version,
    list_releases,
    load,
    parse_sha256sums,
)
from test_publish import changed_tables, publish, sample_tables

DTYPES = {"string": "str", "int64": "int64", "float64": "float64", "date32": "datetime64[ms]", "list<string>": "object"}


def expected_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """What load() promises for an input frame: contract columns, primary-key order, documented dtypes."""
    contract = schema.table(name)
    frame = frame[contract.columns].sort_values(contract.primary_key).reset_index(drop=True)
    columns = {}
    for field in contract.fields:
        values = frame[field.name]
        if field.type == "int64" and field.nullable:
            columns[field.name] = values.astype("Int64")
        elif field.type == "date32":
            columns[field.name] = pd.to_datetime(values).astype("datetime64[ms]")
        elif field.type == "list<string>":
            columns[field.name] = values.map(list).astype(object)
        else:
            columns[field.name] = values.astype(DTYPES[field.type])
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def published_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    processed = tmp_path_factory.mktemp("published") / "processed"
    publish(sample_tables(), processed / "releases")
    return processed


@pytest.fixture()
def processed(published_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of one published release, for a test to change as it likes."""
    return Path(shutil.copytree(published_once, tmp_path / "processed"))


@pytest.fixture()
def releases_dir(processed: Path) -> Path:
    return processed / "releases"


@pytest.mark.parametrize("name", schema.TABLES)
def test_load_round_trips_values_and_types(processed: Path, name: str) -> None:
    loaded = load(name, source=processed)
    pd.testing.assert_frame_equal(loaded, expected_frame(name, sample_tables()[name]))


def test_load_gives_the_documented_dtypes(releases_dir: Path) -> None:
    transfers = load("transfers", source=releases_dir)
    assert str(transfers["quantity_low"].dtype) == "Int64" and str(transfers["n_documents"].dtype) == "int64"
    assert transfers["date_start"].isna().all() and str(transfers["date_start"].dtype) == "datetime64[ms]"
    actors = load("actors", version="2024.06.20", source=releases_dir)
    assert all(isinstance(aliases, list) for aliases in actors["aliases"])
    assert actors["name"].dtype == "str"


def test_load_without_source_reads_the_project_processed_dir(processed: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARMSLEDGER_PROCESSED", str(processed))
    assert len(armsledger.load("documents")) == 2


def test_load_reads_the_release_asked_for(releases_dir: Path) -> None:
    publish(changed_tables(), releases_dir)
    assert len(load("actors", source=releases_dir)) == 6
    assert len(load("actors", version="2024.06.20", source=releases_dir)) == 5
    with pytest.raises(ReleaseNotFoundError, match="2024.06.20.1"):
        load("actors", version="2030.01.01", source=releases_dir)


def test_a_tampered_parquet_is_refused(releases_dir: Path) -> None:
    path = releases_dir / "2024.06.20" / "events.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="events.parquet"):
        load("events", source=releases_dir)


@pytest.mark.parametrize("version", ["../x", "2024.06.20/../../x", "/etc", "2024.6.20", "latest/.."])
def test_versions_that_are_not_release_names_are_refused(releases_dir: Path, version: str) -> None:
    with pytest.raises(InvalidReleaseNameError):
        load("actors", version=version, source=releases_dir)


@pytest.mark.parametrize("pointer", [{"version": "../../etc", "path": "../../etc"},
                                     {"version": "2024.06.20", "path": "../../etc"},
                                     {"path": "2024.06.20"}])
def test_a_latest_json_pointing_elsewhere_is_refused(releases_dir: Path, pointer: dict) -> None:
    (releases_dir / "latest.json").write_text(json.dumps(pointer))
    with pytest.raises(InvalidReleaseNameError):
        load("actors", source=releases_dir)
    with pytest.raises(InvalidReleaseNameError):
        latest_version(releases_dir)


def test_unknown_tables_are_refused(releases_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        load("../SHA256SUMS", source=releases_dir)


def test_nothing_published_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReleaseNotFoundError, match="nothing published"):
        load("actors", source=tmp_path)


def test_releases_sort_by_number(tmp_path: Path) -> None:
    for name in ["2024.06.20.10", "2024.06.20", "2024.06.20.2", "2024.06.21", "not-a-release", ".tmp-release-x"]:
        (tmp_path / name).mkdir()
    assert list_releases(tmp_path) == ["2024.06.20", "2024.06.20.2", "2024.06.20.10", "2024.06.21"]
    assert latest_version(tmp_path) is None


def test_diff_releases_lists_keys_by_table(releases_dir: Path) -> None:
    publish(changed_tables(), releases_dir)
    diff = diff_releases(releases_dir, "2024.06.20", "2024.06.20.1")
    assert set(diff) == set(schema.TABLES)
    assert diff["actors"] == {"added": ["act_shoigu"], "removed": [], "changed": []}
    assert diff["mentions"]["removed"] == [sample_tables()["mentions"]["mention_id"].iloc[0]]
    assert diff_releases(releases_dir, "2024.06.20.1", "2024.06.20")["actors"]["removed"] == ["act_shoigu"]
    with pytest.raises(InvalidReleaseNameError):
        diff_releases(releases_dir, "2024.06.20", "../x")


def _diff_by_rows(old, new, key):
    """The definition diff_tables implements: whole rows as dicts, compared by key."""
    before = {row[key]: row for row in old.to_pylist()}
    after = {row[key]: row for row in new.to_pylist()}
    return (sorted(after.keys() - before.keys()), sorted(before.keys() - after.keys()),
            sorted(k for k in after.keys() & before.keys() if after[k] != before[k]))


def test_diff_tables_finds_every_kind_of_row_change() -> None:
    old = pa.table({
        "id": ["a", "b", "c", "d", "e", "f", "g"],
        "text": ["x", None, "y", "z", "same", "w", "v"],
        "n": [1, 2, None, 4, 5, 6, 7],
        "items": [["p"], [], None, ["q", "r"], ["s"], ["t,u"], ["k"]],
    })
    new = pa.table({
        "id": ["h", "g", "f", "e", "d", "c", "b"],  # a removed, h added, another row order
        "text": ["n", "v", "w", "same", "z", "y", "now"],  # b: null -> value
        "n": [0, 7, 6, 5, 4, 3, 2],  # c: null -> value
        "items": [[], ["k"], ["t", "u"], ["s"], ["q", "r"], None, []],  # f: one item -> two with the same text
    })
    diff = diff_tables(old, new, "id")
    assert (list(diff.added), list(diff.removed), list(diff.changed)) == _diff_by_rows(old, new, "id")
    assert diff.as_dict() == {"added": ["h"], "removed": ["a"], "changed": ["b", "c", "f"]}
    assert diff_tables(None, new, "id").added == tuple(sorted(new.column("id").to_pylist()))
    assert diff_tables(old, None, "id").removed == tuple(sorted(old.column("id").to_pylist()))
    # A column added between releases changes every row both have.
    assert diff_tables(old, old.append_column("extra", pa.array([1] * 7)), "id").changed == tuple("abcdefg")
    with pytest.raises(ValueError, match="duplicate primary key id='a'"):
        diff_tables(pa.table({"id": ["a", "a"]}), new.select(["id"]), "id")


def test_sha256sums_parse_text_and_binary_mode() -> None:
    assert parse_sha256sums("ab  a.csv\nCD *b.parquet\n\n") == {"a.csv": "ab", "b.parquet": "cd"}


class RecordingHandler(SimpleHTTPRequestHandler):
    """Serves a folder and records the paths asked for."""

    def log_message(self, format: str, *args) -> None:
        self.server.requested.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture()
def served(tmp_path: Path, releases_dir: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A copy of the releases folder behind http://127.0.0.1:PORT/data/releases/."""
    root = tmp_path / "site"
    shutil.copytree(releases_dir, root / "data" / "releases")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RecordingHandler, directory=str(root)))
    server.requested = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/data/releases/", root / "data" / "releases", server.requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_load_over_http_caches_and_reuses_checked_files(served, tmp_path: Path) -> None:
    url, served_dir, requested = served
    cache = tmp_path / "cache"
    first = load("events", source=url, cache_dir=cache)
    pd.testing.assert_frame_equal(first, expected_frame("events", sample_tables()["events"]))
    cached = cache_dir_for(url, cache) / "2024.06.20" / "events.parquet"
    port = url.split(":")[2].split("/")[0]
    assert cached == cache / f"127.0.0.1_{port}" / "data" / "releases" / "2024.06.20" / "events.parquet"
    assert cached.is_file()
    assert "/data/releases/2024.06.20/events.parquet" in requested

    requested.clear()
    (served_dir / "2024.06.20" / "events.parquet").unlink()
    pd.testing.assert_frame_equal(load("events", source=url, cache_dir=cache), first)
    assert not any(path.endswith(".parquet") for path in requested)


def test_load_over_http_replaces_a_bad_cached_file_and_refuses_a_bad_served_one(served, tmp_path: Path) -> None:
    url, served_dir, requested = served
    cache = tmp_path / "cache"
    cached = cache_dir_for(url, cache) / "2024.06.20" / "actors.parquet"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the release's bytes")
    assert len(load("actors", source=url, cache_dir=cache)) == 5
    assert cached.read_bytes() == (served_dir / "2024.06.20" / "actors.parquet").read_bytes()

    (served_dir / "2024.06.20" / "documents.parquet").write_bytes(b"tampered on the host")
    with pytest.raises(IntegrityError, match="documents.parquet"):
        load("documents", source=url, cache_dir=cache)
    assert not (cached.parent / "documents.parquet").exists()


def test_load_over_http_refuses_a_bad_latest_json(served, tmp_path: Path) -> None:
    url, served_dir, _ = served
    (served_dir / "latest.json").write_text(json.dumps({"version": "../../etc", "path": "../../etc"}))
    with pytest.raises(InvalidReleaseNameError):
        load("actors", source=url, cache_dir=tmp_path / "cache")
    with pytest.raises(ReleaseNotFoundError, match="2024.06.20"):
        load("actors", version="2031.01.01", source=url, cache_dir=tmp_path / "cache")


def test_cache_paths_stay_inside_the_cache(tmp_path: Path) -> None:
    folder = cache_dir_for("https://user@example.org:8443/a/../../b/./releases/", tmp_path)
    assert folder == tmp_path / "example.org_8443" / "a" / "b" / "releases"
    assert cache_dir_for("http://../../releases/", tmp_path) == tmp_path / "releases"
