"""The per-document extraction cache: entries by key, written whole or not at all, damage read as absence."""
from __future__ import annotations

from armsledger.extract.records import ActorInfo, DocumentExtraction, Mention
from armsledger.extraction_store import ExtractionStore

KEY = "ab" + "0" * 62


def extraction(doc_id: str = "doc-1") -> DocumentExtraction:
    actor = ActorInfo(name="Russia", type="state", country="RUS")
    return DocumentExtraction(doc_id=doc_id, actors={actor.key: actor}, mentions=[Mention(0, 6, "Russia", actor.key)],
                              events=[], transfers=[], citations=[])


def test_an_entry_reads_back_equal_and_leaves_no_temporary_file(tmp_path):
    store = ExtractionStore.under(tmp_path)
    assert store.missing([KEY]) == {KEY} and store.read(KEY) is None
    store.write(KEY, extraction())
    assert store.read(KEY) == extraction()
    assert store.missing([KEY]) == set()
    assert [p.name for p in (tmp_path / "extractions").rglob("*") if p.is_file()] == [KEY]


def test_rewriting_a_key_replaces_its_entry(tmp_path):
    store = ExtractionStore.under(tmp_path)
    store.write(KEY, extraction("first"))
    store.write(KEY, extraction("second"))
    assert store.read(KEY).doc_id == "second"


def test_a_damaged_entry_reads_as_none(tmp_path):
    store = ExtractionStore.under(tmp_path)
    store.write(KEY, extraction())
    store.path_of(KEY).write_bytes(b"not a pickle")
    assert store.read(KEY) is None
