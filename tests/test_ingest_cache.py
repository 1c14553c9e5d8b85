"""What ingest read, kept between runs: used only for files the file system reports unchanged."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from armsledger import ingest as ingest_module
from armsledger.config import Settings
from armsledger.ingest import ingest
from armsledger.ingest_cache import IngestCache, reader_digest

LIBRARIES = {"trafilatura": "2.0.0"}
DIGEST = reader_digest("code", LIBRARIES, 1_000_000, 1_000_000)


def settings_for(raw: Path) -> Settings:
    return Settings(raw_dir=raw, processed_dir=raw.parent / "processed", expectations_dir=raw.parent / "expectations")


def write(raw: Path, rel: str, text: str) -> Path:
    path = raw / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    folder = tmp_path / "raw"
    write(folder, "a/first.txt", "Russia shipped shells to North Korea.\n")
    write(folder, "a/first.meta.yaml", "title: First\npublisher: Example Wire\n")
    write(folder, "b/second.txt", "North Korea sent troops to Kursk.\n")
    write(folder, "b/empty.txt", "")
    return folder


class CountingReads:
    """Counts the files read_document opens, by relative path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = ingest_module.read_document

        def counting(path, raw_dir, *args, **kwargs):
            self.paths.append(path.relative_to(raw_dir).as_posix())
            return real(path, raw_dir, *args, **kwargs)

        monkeypatch.setattr(ingest_module, "read_document", counting)


def run(raw: Path, cache_dir: Path, racy_nanoseconds: int = 0, digest: str = DIGEST):
    """One ingest through the cache under cache_dir, saved as a run saves it."""
    cache = IngestCache.under(cache_dir, digest)
    cache.racy_nanoseconds = racy_nanoseconds
    result = ingest(raw, settings_for(raw), cache)
    cache.save()
    return result


def tick() -> None:
    """Long enough for the file system's clock to move on (its timestamps are coarser than ns)."""
    time.sleep(0.05)


def test_a_second_run_reads_no_unchanged_file_and_gives_the_same_result(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uncached = ingest(raw, settings_for(raw))
    reads = CountingReads(monkeypatch)
    first = run(raw, tmp_path / "cache")
    assert sorted(reads.paths) == ["a/first.txt", "b/empty.txt", "b/second.txt"]
    reads.paths.clear()
    second = run(raw, tmp_path / "cache")
    assert reads.paths == []
    assert first == second == uncached
    assert [r.path for r in second.rejected] == ["b/empty.txt"]
    assert second.documents[0].title == "First"


def test_a_file_rewritten_with_its_size_and_time_restored_is_read_again(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(raw, tmp_path / "cache")
    path = raw / "b" / "second.txt"
    before = os.stat(path)
    tick()
    path.write_text("North Korea sent troops to Kyiv!!\n", encoding="utf-8")  # same length
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns
    reads = CountingReads(monkeypatch)
    result = run(raw, tmp_path / "cache")
    assert reads.paths == ["b/second.txt"]
    assert "Kyiv" in next(d.text for d in result.documents if d.path == "b/second.txt")


def test_a_changed_added_or_removed_sidecar_rereads_its_document(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(raw, tmp_path / "cache")
    reads = CountingReads(monkeypatch)
    tick()
    write(raw, "a/first.meta.yaml", "title: First, corrected\npublisher: Example Wire\n")
    write(raw, "b/second.meta.yaml", "title: Second\n")
    result = run(raw, tmp_path / "cache")
    assert sorted(reads.paths) == ["a/first.txt", "b/second.txt"]
    assert {d.path: d.title for d in result.documents} == {"a/first.txt": "First, corrected", "b/second.txt": "Second"}
    reads.paths.clear()
    (raw / "b" / "second.meta.yaml").unlink()
    result = run(raw, tmp_path / "cache")
    assert reads.paths == ["b/second.txt"]
    assert {d.path: d.title for d in result.documents}["b/second.txt"] is None


def test_a_removed_file_leaves_the_cache_and_comes_back_read(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(raw, tmp_path / "cache")
    text = (raw / "b" / "second.txt").read_text(encoding="utf-8")
    (raw / "b" / "second.txt").unlink()
    assert [d.path for d in run(raw, tmp_path / "cache").documents] == ["a/first.txt"]
    write(raw, "b/second.txt", text)
    reads = CountingReads(monkeypatch)
    assert [d.path for d in run(raw, tmp_path / "cache").documents] == ["a/first.txt", "b/second.txt"]
    assert reads.paths == ["b/second.txt"]


def test_other_code_libraries_or_limits_read_every_file(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(raw, tmp_path / "cache")
    reads = CountingReads(monkeypatch)
    for digest in (reader_digest("other code", LIBRARIES, 1_000_000, 1_000_000),
                   reader_digest("other code", {"trafilatura": "2.0.1"}, 1_000_000, 1_000_000),
                   reader_digest("other code", {"trafilatura": "2.0.1"}, 1_000_000, 999)):
        reads.paths.clear()
        run(raw, tmp_path / "cache", digest=digest)
        assert len(reads.paths) == 3


def test_a_file_changed_just_before_it_was_read_is_not_trusted(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(raw, tmp_path / "cache", racy_nanoseconds=60 * 10**9)  # every file here changed within the minute
    reads = CountingReads(monkeypatch)
    run(raw, tmp_path / "cache")
    assert len(reads.paths) == 3


def test_a_symlinked_document_is_always_read(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (raw / "c").mkdir()
    (raw / "c" / "link.txt").symlink_to(raw / "b" / "second.txt")
    run(raw, tmp_path / "cache")
    reads = CountingReads(monkeypatch)
    run(raw, tmp_path / "cache")
    assert reads.paths == ["c/link.txt"]


def test_a_damaged_cache_file_means_reading_every_file(
    raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(raw, tmp_path / "cache")
    cache_file = IngestCache.under(tmp_path / "cache", DIGEST).path
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    reads = CountingReads(monkeypatch)
    result = run(raw, tmp_path / "cache")
    assert len(reads.paths) == 3 and len(result.documents) == 2


def test_a_pickled_document_comes_back_equal_and_its_text_is_not_doubled(raw: Path) -> None:
    import pickle
    import sys

    document = ingest(raw, settings_for(raw)).documents[0]
    surrogate = type(document)(**{**document.__dict__, "text": "Lone \udcff surrogate."})
    assert pickle.loads(pickle.dumps(surrogate)) == surrogate
    text = "".join(["Kim Jong Un — “Putin” ", "déjà vu. "]) * 50  # made at run time, as a read text is
    document = type(document)(**{**document.__dict__, "text": text})
    size = sys.getsizeof(text)
    copy = pickle.loads(pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    assert copy == document and copy.text == text
    # Pickling a str makes CPython keep a UTF-8 copy inside it for its life; a Document's text must not get one.
    assert sys.getsizeof(text) == size


def test_a_run_that_reads_nothing_new_leaves_the_cache_file_alone(raw: Path, tmp_path: Path) -> None:
    run(raw, tmp_path / "cache")
    cache_file = IngestCache.under(tmp_path / "cache", DIGEST).path
    written = cache_file.stat().st_mtime_ns
    tick()
    run(raw, tmp_path / "cache")
    assert cache_file.stat().st_mtime_ns == written
    (raw / "b" / "second.txt").unlink()
    run(raw, tmp_path / "cache")
    assert cache_file.stat().st_mtime_ns != written  # a file gone is a change to record


def test_a_cache_that_cannot_be_written_costs_the_run_nothing(
    raw: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from armsledger.pipeline import read_raw

    settings = settings_for(raw)
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / "ingest").write_text("a file where the cache's folder should be")
    result = read_raw(settings)
    assert [d.path for d in result.documents] == ["a/first.txt", "b/second.txt"]
    assert "ingest cache not saved" in caplog.text
