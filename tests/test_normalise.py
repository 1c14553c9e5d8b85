"""Facts merged across documents, content-derived ids, and the documented confidence."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from armsledger import schema
from armsledger.config import load_settings
from armsledger.extract import Extractor, load_extractor
from armsledger.ingest import Document, document_id
from armsledger.normalise import EVENT_BASE, TRANSFER_BASE, build_tables, confidence

SUMMIT_A = "Kim Jong Un met Vladimir Putin at the Vostochny Cosmodrome in September 2023."
SUMMIT_B = "In September 2023, Putin hosted Kim Jong Un at the Vostochny Cosmodrome, officials said."
SHELLS = "North Korea shipped artillery shells to Russia in October 2023, according to US officials."


def make_document(text: str, name: str, published: dt.date | None = None) -> Document:
    return Document(
        doc_id=document_id(text), path=f"{name}.txt", sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
        title=None, publisher=None, author=None, url=None, license=None, language=None,
        published=published, published_precision="day" if published else None,
        n_chars=len(text), n_words=len(text.split()),
    )


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return load_extractor(load_settings().spacy_model)


def tables_for(extractor: Extractor, documents: list[Document]):
    extractions = [extractor.extract(d.doc_id, d.text, d.published, d.published_precision) for d in documents]
    return build_tables(documents, extractions)


def test_same_summit_in_two_documents_is_one_event(extractor):
    tables = tables_for(extractor, [make_document(SUMMIT_A, "a"), make_document(SUMMIT_B, "b")])
    meetings = tables["events"][tables["events"]["event_type"] == "meeting"]
    assert len(meetings) == 1
    assert meetings["n_documents"].iloc[0] == 2
    cited_in = tables["citations"][tables["citations"]["target_id"] == meetings["event_id"].iloc[0]]["doc_id"]
    assert cited_in.nunique() == 2


SHELLS_EXPECTED = "North Korea is expected to send artillery shells to Russia, analysts say."
SHELLS_DENIED = "Pyongyang denied that it had sent artillery shells to Moscow."


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0)])
def test_transfer_read_differently_merges_into_the_furthest_stage(extractor, order):
    texts = [(SHELLS_EXPECTED, "expected"), (SHELLS, "reported"), (SHELLS_DENIED, "denied")]
    documents = [make_document(texts[i][0], f"d{i}") for i in order]
    tables = tables_for(extractor, documents)
    shells = tables["transfers"][tables["transfers"]["category"] == "munitions"]
    assert len(shells) == 1 and shells["n_documents"].iloc[0] == 3
    assert shells["status"].iloc[0] == "reported"
    evidence = tables["citations"][(tables["citations"]["target_id"] == shells["transfer_id"].iloc[0]) & (tables["citations"]["kind"] == "evidence")]
    text_of = {d.doc_id: d.text for d in documents}
    assert {text_of[doc_id]: status for doc_id, status in zip(evidence["doc_id"], evidence["status"])} == dict(texts)


def test_transfer_denied_everywhere_stays_denied(extractor):
    tables = tables_for(extractor, [make_document(SHELLS_DENIED, "a")])
    assert list(tables["transfers"]["status"]) == ["denied"]


def test_ids_do_not_depend_on_order_or_unrelated_documents(extractor):
    a, b, c = make_document(SUMMIT_A, "a"), make_document(SUMMIT_B, "b"), make_document(SHELLS, "c")
    first = tables_for(extractor, [a, c])
    second = tables_for(extractor, [c, b, a])
    shells_first = set(first["transfers"]["transfer_id"])
    assert shells_first and shells_first <= set(second["transfers"]["transfer_id"])
    assert set(first["mentions"]["mention_id"]) <= set(second["mentions"]["mention_id"])


def test_normalising_twice_gives_the_same_tables(extractor):
    documents = [make_document(SUMMIT_A, "a"), make_document(SHELLS, "c")]
    extractions = [extractor.extract(d.doc_id, d.text) for d in documents]
    first, second = build_tables(documents, extractions), build_tables(documents, extractions)
    for name in schema.TABLES:
        assert first[name].equals(second[name]), name


def test_every_fact_has_evidence_and_tables_fit_the_contract(extractor):
    tables = tables_for(extractor, [make_document(SUMMIT_A, "a"), make_document(SHELLS, "c")])
    evidence = tables["citations"][tables["citations"]["kind"] == "evidence"]
    assert set(tables["events"]["event_id"]) <= set(evidence["target_id"])
    assert set(tables["transfers"]["transfer_id"]) <= set(evidence["target_id"])
    for name in schema.TABLES:
        schema.to_arrow(name, tables[name])  # raises on a column or type outside the contract


def test_confidence_rises_with_sources_and_falls_with_hedges():
    one = confidence(TRANSFER_BASE["reported"], 1, False, False)
    assert confidence(TRANSFER_BASE["reported"], 3, False, False) > one
    assert confidence(TRANSFER_BASE["reported"], 1, True, False) < one
    assert confidence(TRANSFER_BASE["reported"], 1, False, True) < one
    assert confidence(EVENT_BASE["occurred"], 1, False, False) > confidence(EVENT_BASE["speculated"], 1, False, False)


def test_codebook_states_the_confidence_bases_in_use():
    for table_name, bases in (("events", EVENT_BASE), ("transfers", TRANSFER_BASE)):
        description = schema.table(table_name).field("confidence").description
        for status, base in bases.items():
            assert f"{status} {base}" in description, (table_name, status)


def test_a_stream_of_extractions_gives_the_tables_of_a_list(extractor):
    documents = [make_document(SUMMIT_A, "a"), make_document(SUMMIT_B, "b"), make_document(SHELLS, "c")]
    extractions = [extractor.extract(d.doc_id, d.text, d.published, d.published_precision) for d in documents]
    from_list = build_tables(documents, list(reversed(extractions)))
    in_order = sorted(extractions, key=lambda e: e.doc_id)
    from_stream = build_tables(documents, (e for e in in_order))
    for name in schema.TABLES:
        assert from_stream[name].equals(from_list[name]), name
    with pytest.raises(ValueError, match="increasing doc_id order"):
        build_tables(documents, (e for e in reversed(in_order)))


def _transfer_extraction(doc_id: str, items: list[str]):
    from armsledger.extract.records import ActorInfo, DateValue, DocumentExtraction, Evidence, TransferRecord

    sentence = "North Korea sent it to Russia."
    actors = {key: ActorInfo(name=name, type="state", country=code, role=None, aliases=[], wikidata_id=None)
              for key, name, code in (("state:PRK", "North Korea", "PRK"), ("state:RUS", "Russia", "RUS"))}
    transfers = [TransferRecord(supplier="state:PRK", recipient="state:RUS", category="munitions", item=item,
                                quantity_text=None, quantity_low=None, quantity_high=None, unit=None, status="reported",
                                evidence=[Evidence(sentence, 0, len(sentence), None, True)],
                                date=DateValue(None, None, None, None))
                 for item in items]
    return DocumentExtraction(doc_id=doc_id, actors=actors, mentions=[], events=[], transfers=transfers, citations=[])


def test_a_merged_transfer_lists_each_item_once_in_order_of_first_report():
    documents = [make_document(f"Text {n}.", f"d{n}") for n in range(3)]
    first, second, third = sorted(d.doc_id for d in documents)
    alone = build_tables(documents[:1], [_transfer_extraction(first, ["shells; shells"])])
    assert alone["transfers"]["item"].tolist() == ["shells; shells"]  # one report is kept as written
    merged = build_tables(documents, [
        _transfer_extraction(first, ["artillery shells"]),
        _transfer_extraction(second, ["rockets; artillery shells", "artillery shells"]),
        _transfer_extraction(third, ["missiles", "rockets"]),
    ])
    assert merged["transfers"]["item"].tolist() == ["artillery shells; rockets; missiles"]
    assert merged["transfers"]["n_documents"].tolist() == [3]
