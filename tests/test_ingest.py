"""raw/ to documents: every hostile input ends read (with its exact text) or rejected (with its cause)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import os
import shutil
import time
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from armsledger import ingest as ingest_module
from armsledger import schema
from armsledger.config import Settings
from armsledger.ingest import (
    Document,
    IngestResult,
    RejectedFile,
    discover,
    document_id,
    folder_snapshot,
    ingest,
    parse_published,
    read_document,
)

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_RAW = TESTS_DIR.parent / "raw"
SEEDS = ("000_56b988e99734a4e3.txt", "001_84c509f025737b6d.txt")


def _load_generator() -> ModuleType:
    path = TESTS_DIR / "fixtures" / "bad_inputs" / "generate.py"
    spec = importlib.util.spec_from_file_location("bad_inputs_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def settings_for(raw: Path) -> Settings:
    return Settings(raw_dir=raw, processed_dir=raw.parent / "processed", expectations_dir=raw.parent / "expectations")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen.build(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture(scope="module")
def result(corpus: Path) -> IngestResult:
    return ingest(corpus, settings_for(corpus))


def doc(result: IngestResult, path: str) -> Document:
    matches = [d for d in result.documents if d.path == path]
    assert matches, f"{path!r} was not ingested; rejected: {[r for r in result.rejected if r.path == path]}"
    return matches[0]


def warnings_for(result: IngestResult, path: str) -> list[str]:
    return [w.reason for w in result.warnings if w.path == path]


def small_raw(tmp_path: Path, files: dict[str, str]) -> Path:
    raw = tmp_path / "raw"
    for rel, text in files.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_text(text, encoding="utf-8")
    return raw


REJECTED = {
    "bad/empty.txt": "empty file (0 bytes)",
    "bad/whitespace.txt": "no text other than whitespace",
    "bad/image.txt": "signature of a PNG image",
    "bad/archive.txt": "signature of a ZIP archive",
    "bad/nul.txt": "NUL byte at offset 4",
    "bad/huge.txt": "file too large: 52,428,800 bytes",
    "bad/one_line.txt": "text too long: 10,485,760 characters",
    "bad/pipe.txt": "not a regular file",
    "enc/undecodable.txt": "undecodable: not UTF-8",
    "enc/utf16_truncated.txt": "utf-16 byte-order mark but invalid utf-16",
    "html/script_only.html": "HTML has no main text",
    "html/deep.html": "HTML has no main text",
    "dup/b_copy.txt": "duplicate: same text as dup/a_first.txt",
    "dup/c_crlf.txt": "duplicate: same text as dup/a_first.txt",
    "links/inside.txt": "duplicate: same text as good/plain.txt",
    "links/outside.txt": "symlink resolves outside raw/",
    "links/broken.txt": "broken symlink",
    "links/loop.txt": "symlink cannot be resolved",
    "names/bad\\nname.txt": "file name contains a control character (U+000A)",
    "names/bad\\udcffbyte.txt": "file name is not valid UTF-8",
}


@pytest.mark.parametrize("path, cause", sorted(REJECTED.items()))
def test_rejected_with_its_cause(result: IngestResult, path: str, cause: str) -> None:
    reasons = [r.reason for r in result.rejected if r.path == path]
    assert len(reasons) == 1, f"{path!r}: {reasons}"
    assert cause in reasons[0]


def test_nothing_else_is_rejected(result: IngestResult) -> None:
    assert sorted(r.path for r in result.rejected) == sorted(REJECTED)


def test_good_documents_of_the_same_run_are_ingested(result: IngestResult) -> None:
    expected = {
        "good/plain.txt", "good/notes.md", "good/LOUD.TXT",
        "enc/latin1.txt", "enc/cp1252.txt", "enc/utf8_bom.txt", "enc/utf16.txt", "enc/utf32.txt",
        "enc/invalid_utf8.txt",
        "text/crlf.txt", "text/cr.txt", "text/controls.txt", "text/zero_width.txt",
        "lang/russian.txt", "lang/korean.txt", "lang/norwegian.txt",
        "names/with space.txt", "names/Пхеньян café.txt",
        "html/article.html", "html/short.htm", "html/malformed.html",
        "dup/a_first.txt",
        "side/not_yaml.txt", "side/not_mapping.txt", "side/bad_date.txt", "side/unknown_keys.txt",
        "side/month.txt", "side/year.txt", "side/tagged.txt", "side/wrong_types.txt",
    }  # fmt: skip
    assert {d.path for d in result.documents} == expected
    assert [d.path for d in result.documents] == sorted(expected)


def test_large_file_is_rejected_by_stat_without_opening(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never_open(self: Path, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{self} was opened")

    monkeypatch.setattr(Path, "open", never_open)
    started = time.perf_counter()
    with pytest.raises(RejectedFile, match="file too large"):
        read_document(corpus / "bad/huge.txt", corpus, settings_for(corpus))
    assert time.perf_counter() - started < 0.5
    assert (corpus / "bad/huge.txt").stat().st_size == gen.HUGE_BYTES


def test_limits_come_from_settings(tmp_path: Path) -> None:
    raw = small_raw(tmp_path, {"a.txt": "twelve chars"})
    tight = dataclasses.replace(settings_for(raw), max_file_bytes=11)
    with pytest.raises(RejectedFile, match="limit 11 "):
        read_document(raw / "a.txt", raw, tight)
    tight = dataclasses.replace(settings_for(raw), max_text_chars=11)
    with pytest.raises(RejectedFile, match="12 characters, limit 11"):
        read_document(raw / "a.txt", raw, tight)


def test_file_removed_after_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = small_raw(tmp_path, {"gone.txt": "Soon removed.\n", "kept.txt": "Still here.\n"})
    real_listing = ingest_module._visible_files

    def list_then_remove(raw_dir: Path) -> list[str]:
        files = real_listing(raw_dir)
        (raw_dir / "gone.txt").unlink()
        return files

    monkeypatch.setattr(ingest_module, "_visible_files", list_then_remove)
    outcome = ingest(raw, settings_for(raw))
    assert [d.path for d in outcome.documents] == ["kept.txt"]
    assert len(outcome.rejected) == 1 and outcome.rejected[0].path == "gone.txt"
    assert "removed after discovery" in outcome.rejected[0].reason


def test_file_replaced_by_a_folder_after_discovery(tmp_path: Path) -> None:
    raw = small_raw(tmp_path, {"turns_into_folder.txt": "Soon a folder.\n"})
    (path,) = discover(raw, settings_for(raw).extensions)
    path.unlink()
    path.mkdir()
    with pytest.raises(RejectedFile, match="not a regular file"):
        read_document(path, raw, settings_for(raw))


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop a read: the error is injected.
    raw = small_raw(tmp_path, {"locked.txt": "Locked away.\n", "open.txt": "Readable.\n"})
    real_open = Path.open

    def guarded_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    outcome = ingest(raw, settings_for(raw))
    assert [d.path for d in outcome.documents] == ["open.txt"]
    (rejection,) = outcome.rejected
    assert rejection.path == "locked.txt"
    assert "PermissionError: Permission denied" in rejection.reason


def test_html_parser_crash_costs_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = small_raw(tmp_path, {"page.html": "<html><body><p>Kim met Putin.</p></body></html>", "b.txt": "Plain.\n"})

    def explode(*args: object, **kwargs: object) -> str:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(ingest_module.trafilatura, "extract", explode)
    outcome = ingest(raw, settings_for(raw))
    assert [d.path for d in outcome.documents] == ["b.txt"]
    assert outcome.rejected[0].path == "page.html"
    assert "HTML could not be parsed: RecursionError" in outcome.rejected[0].reason


def test_missing_raw_folder_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="raw folder"):
        ingest(tmp_path / "nowhere", settings_for(tmp_path / "nowhere"))


def test_latin1_text(result: IngestResult) -> None:
    d = doc(result, "enc/latin1.txt")
    assert d.text == gen.LATIN1
    assert "é" in d.text and "à" in d.text and "ï" in d.text
    assert "not UTF-8: decoded as Windows-1252" in warnings_for(result, "enc/latin1.txt")


def test_windows_1252_text(result: IngestResult) -> None:
    d = doc(result, "enc/cp1252.txt")
    assert d.text == gen.CP1252
    assert "\u201cthe deal is done\u201d" in d.text and "€5m" in d.text and "café" in d.text


def test_utf8_bom_is_stripped(result: IngestResult) -> None:
    assert doc(result, "enc/utf8_bom.txt").text == "Café au lait.\n"


def test_utf16_and_utf32_with_bom(result: IngestResult) -> None:
    assert doc(result, "enc/utf16.txt").text == "UTF-16 text: café, “quotes”, €.\n"
    assert doc(result, "enc/utf32.txt").text == "UTF-32 text: naïve.\n"


def test_invalid_utf8_bytes_are_replaced_and_the_text_kept(result: IngestResult) -> None:
    good = "Kim Jong Un — the “supreme leader” — met Putin in café Bolshoi. "
    d = doc(result, "enc/invalid_utf8.txt")
    assert d.text == good + "\ufffd\ufffd" + good
    assert d.n_chars == 2 * len(good) + 2
    assert d.text.index("\ufffd") == len(good)
    (warning,) = warnings_for(result, "enc/invalid_utf8.txt")
    assert f"U+FFFD (first at byte {len(good.encode('utf-8'))})" in warning


def test_crlf_and_cr_become_lf_as_text_mode_reads_them(corpus: Path, result: IngestResult) -> None:
    for path, expected in (("text/crlf.txt", "First line.\nSecond line.\n"), ("text/cr.txt", "Old Mac line.\nAnother one.\n")):
        d = doc(result, path)
        assert d.text == expected and "\r" not in d.text
        with open(corpus / path, encoding="utf-8") as handle:
            assert handle.read() == d.text


def test_control_characters_removed_breaks_and_tabs_kept(result: IngestResult) -> None:
    d = doc(result, "text/controls.txt")
    assert d.text == "Kim met Putin.\nPage two\tafter a tab.\n"
    assert d.text[d.text.index("Putin") : d.text.index("Putin") + 5] == "Putin"


def test_zero_width_characters_are_text(result: IngestResult) -> None:
    original = "Kim\u200bJong\u200dUn and\ufeffPutin \u2060met.\n"
    d = doc(result, "text/zero_width.txt")
    assert d.text == original
    assert d.n_chars == len(original)
    assert d.n_words == len(original.split())


def test_offsets_index_the_text(result: IngestResult) -> None:
    for d in result.documents:
        assert d.n_chars == len(d.text)
        assert d.n_words == len(d.text.split())
        assert "\r" not in d.text


def test_markdown_is_kept_as_written(result: IngestResult) -> None:
    assert doc(result, "good/notes.md").text == "# Notes\n\n*Kim* met **Putin**.\n\n- shells\n- rockets\n"


def test_upper_case_extension_is_a_document(result: IngestResult) -> None:
    assert doc(result, "good/LOUD.TXT").text.startswith("An upper-case extension")


def test_other_languages_are_kept_language_from_sidecar_only(result: IngestResult) -> None:
    russian = doc(result, "lang/russian.txt")
    assert russian.text == gen.RUSSIAN and russian.language is None
    korean = doc(result, "lang/korean.txt")
    assert korean.text == gen.KOREAN and korean.language == "ko"
    assert doc(result, "lang/norwegian.txt").language == "no"


def test_names_with_spaces_and_non_ascii(result: IngestResult) -> None:
    assert doc(result, "names/with space.txt").text == "A file name with spaces.\n"
    assert doc(result, "names/Пхеньян café.txt").text.startswith("A file name in Cyrillic")


def test_html_main_text_and_page_metadata_under_the_sidecar(result: IngestResult) -> None:
    d = doc(result, "html/article.html")
    assert "Kim Jong Un met Vladimir Putin at the Vostochny Cosmodrome on Wednesday." in d.text
    for boilerplate in ("tracking", "color", "fake news", "Home", "Copyright"):
        assert boilerplate not in d.text
    assert d.title == "Sidecar title"  # the sidecar wins
    assert d.author == "Jane Doe"  # the page fills what the sidecar leaves out
    assert (d.published, d.published_precision) == (dt.date(2023, 9, 13), "day")
    assert d.publisher is None  # the sidecar's explicit null overrides the page's site name


def test_short_html_page_is_not_emptied(result: IngestResult) -> None:
    assert doc(result, "html/short.htm").text == "Kim met Putin."


def test_malformed_html_is_read(result: IngestResult) -> None:
    assert "Russia and North Korea signed an arms deal." in doc(result, "html/malformed.html").text


def test_full_sidecar(result: IngestResult) -> None:
    row = doc(result, "good/plain.txt").row()
    assert row["title"] == "Summit at Vostochny"
    assert row["publisher"] == "Example News"
    assert row["author"] == "Jane Doe"
    assert row["url"] == "https://example.org/summit"
    assert row["license"] == "CC-BY-4.0"
    assert row["language"] == "en"
    assert (row["published"], row["published_precision"]) == (dt.date(2023, 9, 13), "day")
    assert warnings_for(result, "good/plain.meta.yaml") == []


def test_sidecar_that_is_not_yaml(result: IngestResult) -> None:
    d = doc(result, "side/not_yaml.txt")
    assert d.title is None and d.text == "Document with the not_yaml sidecar.\n"
    (warning,) = warnings_for(result, "side/not_yaml.meta.yaml")
    assert warning.startswith("sidecar ignored: not valid YAML")


def test_sidecar_that_is_not_a_mapping(result: IngestResult) -> None:
    doc(result, "side/not_mapping.txt")
    assert warnings_for(result, "side/not_mapping.meta.yaml") == ["sidecar ignored: not a mapping of keys (it is a list)"]


def test_sidecar_with_an_impossible_date_keeps_its_other_fields(result: IngestResult) -> None:
    d = doc(result, "side/bad_date.txt")
    assert d.title == "Kept title"
    assert d.published is None and d.published_precision is None
    (warning,) = warnings_for(result, "side/bad_date.meta.yaml")
    assert "'published'" in warning and "2024-02-30" in warning


def test_sidecar_with_unknown_keys(result: IngestResult) -> None:
    assert doc(result, "side/unknown_keys.txt").title == "Kept title"
    assert warnings_for(result, "side/unknown_keys.meta.yaml") == ["unknown sidecar keys ignored: colour, tags"]


def test_partial_dates(result: IngestResult) -> None:
    month = doc(result, "side/month.txt")
    assert (month.published, month.published_precision) == (dt.date(2024, 2, 1), "month")
    year = doc(result, "side/year.txt")
    assert (year.published, year.published_precision) == (dt.date(2024, 1, 1), "year")


def test_yaml_typed_values(result: IngestResult) -> None:
    d = doc(result, "side/tagged.txt")
    assert (d.published, d.published_precision) == (dt.date(2023, 9, 13), "day")
    assert d.title == "1984"


def test_sidecar_fields_of_the_wrong_kind(result: IngestResult) -> None:
    d = doc(result, "side/wrong_types.txt")
    assert (d.title, d.language, d.published) == (None, None, None)
    reasons = warnings_for(result, "side/wrong_types.meta.yaml")
    assert len(reasons) == 3
    assert any("'title'" in r and "got list" in r for r in reasons)
    assert any("'language'" in r and "klingonese" in r for r in reasons)
    assert any("'published'" in r and "13/09/2023" in r for r in reasons)


def test_sidecar_without_its_document(result: IngestResult) -> None:
    assert warnings_for(result, "side/orphan.meta.yaml") == ["sidecar without a document of the same stem"]


def test_files_that_are_not_documents_are_reported(result: IngestResult) -> None:
    for path in ("other/report.pdf", "other/archive.zip"):
        (warning,) = warnings_for(result, path)
        assert warning.startswith("not a document")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024", (dt.date(2024, 1, 1), "year")),
        ("2024-02", (dt.date(2024, 2, 1), "month")),
        ("2024-02-29", (dt.date(2024, 2, 29), "day")),
        (2024, (dt.date(2024, 1, 1), "year")),
        (dt.date(2023, 9, 13), (dt.date(2023, 9, 13), "day")),
        (dt.datetime(2023, 9, 13, 23, 59), (dt.date(2023, 9, 13), "day")),
        ("2023-09-13T08:00:00+00:00", (dt.date(2023, 9, 13), "day")),
    ],
)
def test_parse_published(value: object, expected: tuple[dt.date, str]) -> None:
    parsed = parse_published(value)
    assert (parsed.date, parsed.precision) == expected


@pytest.mark.parametrize("value", ["2023-02-29", "2024-13", "13/09/2023", "September 2023", True, 1.5])
def test_parse_published_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        parse_published(value)


def test_discover_skips_sidecars_hidden_files_and_other_types(corpus: Path) -> None:
    found = [p.relative_to(corpus).as_posix() for p in discover(corpus, settings_for(corpus).extensions)]
    assert found == sorted(found)  # code-point order, whatever the locale
    assert ".hidden.txt" not in found and ".git/HEAD.txt" not in found
    assert not any(p.endswith(".meta.yaml") or p.endswith((".pdf", ".zip")) for p in found)
    assert "names/bad\nname.txt" in found  # discovered, then rejected by name
    assert not any(p.startswith("links/outside_dir") for p in found)  # symlinked folders are not entered


def test_doc_id_depends_on_the_text_only(corpus: Path, tmp_path: Path, result: IngestResult) -> None:
    original = doc(result, "good/plain.txt")
    raw = tmp_path / "raw"
    (raw / "elsewhere").mkdir(parents=True)
    shutil.copy(corpus / "good/plain.txt", raw / "elsewhere/renamed.md")
    moved = read_document(raw / "elsewhere/renamed.md", raw, settings_for(raw))
    assert moved.path == "elsewhere/renamed.md"
    assert moved.doc_id == original.doc_id == document_id(original.text)
    assert moved.title is None  # the sidecar did not move with it
    crlf = read_document(corpus / "dup/c_crlf.txt", corpus, settings_for(corpus))
    first = doc(result, "dup/a_first.txt")
    assert crlf.doc_id == first.doc_id and crlf.sha256 != first.sha256


def test_independent_of_discovery_order(corpus: Path, result: IngestResult, monkeypatch: pytest.MonkeyPatch) -> None:
    real_discover = ingest_module.discover
    monkeypatch.setattr(ingest_module, "discover", lambda raw_dir, ext: list(reversed(real_discover(raw_dir, ext))))
    again = ingest(corpus, settings_for(corpus))
    assert [d.row() for d in again.documents] == [d.row() for d in result.documents]
    assert again.rejected == result.rejected
    assert again.warnings == result.warnings


def test_ingest_never_writes_to_raw(corpus: Path) -> None:
    def snapshot() -> list[tuple[str, int, int]]:
        entries = []
        for folder, _, files in os.walk(corpus):
            for name in files:
                info = os.lstat(os.path.join(folder, name))
                entries.append((os.path.join(folder, name), info.st_size, info.st_mtime_ns))
        return sorted(entries)

    before = snapshot()
    ingest(corpus, settings_for(corpus))
    assert snapshot() == before


def test_rows_fit_the_contract(result: IngestResult) -> None:
    rows = [d.row() for d in result.documents]
    assert all(list(row) == schema.table("documents").columns for row in rows)
    table = schema.to_arrow("documents", pd.DataFrame(rows))
    assert table.num_rows == len(rows)
    assert table.schema == schema.arrow_schema("documents")


def test_seed_texts_ingest_with_their_sidecars() -> None:
    outcome = ingest(PROJECT_RAW, settings_for(PROJECT_RAW))
    assert outcome.rejected == [] and outcome.warnings == []
    assert [d.path for d in outcome.documents] == list(SEEDS)
    first, second = outcome.documents
    assert first.publisher == "Reaction"
    assert (first.published, first.published_precision) == (None, None)
    for d in outcome.documents:
        with open(PROJECT_RAW / d.path, encoding="utf-8") as handle:
            assert d.text == handle.read()  # offsets index the file as text mode reads it
    assert {k: v for k, v in second.row().items() if k not in ("doc_id", "path", "sha256", "n_chars", "n_words")} == {
        key: None for key in ("title", "publisher", "author", "url", "license", "language", "published", "published_precision")
    }


def test_folder_snapshot_changes_with_what_raw_holds_and_only_then(tmp_path: Path) -> None:
    raw = small_raw(tmp_path, {"a.txt": "Shells went north.\n", "b/c.txt": "Fuel went south.\n", ".hidden": "x"})
    first = folder_snapshot(raw)
    assert folder_snapshot(raw) == first
    assert ingest(raw, settings_for(raw)).snapshot == first  # what ingest reports of the folder it read

    (raw / ".hidden").write_text("ignored, as ingest ignores it", encoding="utf-8")
    assert folder_snapshot(raw) == first

    seen = {first}
    (raw / "d.txt").write_text("Missiles went east.\n", encoding="utf-8")  # added
    seen.add(folder_snapshot(raw))
    (raw / "a.txt").write_text("Shells went north again.\n", encoding="utf-8")  # rewritten
    seen.add(folder_snapshot(raw))
    (raw / "b/c.txt").rename(raw / "b/e.txt")  # renamed
    seen.add(folder_snapshot(raw))
    (raw / "d.txt").unlink()  # removed
    seen.add(folder_snapshot(raw))
    assert len(seen) == 5


def test_take_texts_hands_the_texts_over_once() -> None:
    import pickle

    outcome = ingest(PROJECT_RAW, settings_for(PROJECT_RAW))
    before = list(outcome.documents)
    texts = outcome.take_texts()
    assert texts == {d.doc_id: d.text for d in before} and all(texts.values())
    # The same documents in the same list, each without its text and otherwise unchanged.
    assert [d.text for d in outcome.documents] == [None] * len(before)
    assert [dataclasses.replace(d, text=None) for d in before] == outcome.documents
    assert [d.row() for d in before] == [d.row() for d in outcome.documents]
    assert pickle.loads(pickle.dumps(outcome.documents)) == outcome.documents
    with pytest.raises(ingest_module.TextsTakenError):
        outcome.take_texts()


@pytest.mark.parametrize("rel", ["a.txt", "b/a.tar.gz", ".hidden", "a.", "dir.d/file", "dir.d/file.TXT", "noext",
                                 "x/.profile", "x/..txt", "x/a..html", "2024-06-01/item.meta.json"])
def test_suffix_and_stem_are_those_of_a_posix_path(rel: str) -> None:
    from pathlib import PurePosixPath

    assert ingest_module._suffix(rel) == PurePosixPath(rel).suffix
    assert ingest_module._document_stem(rel) == PurePosixPath(rel).with_suffix("").as_posix()
