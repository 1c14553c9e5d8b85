"""Properties over arbitrary documents: extraction never raises, offsets index the text, ids are stable.

The extractor (spaCy and the curated data, about 2 s) is loaded once for the module.
Examples are few (the suite runs on two cores); hypothesis keeps the failing
ones in its database, so a failure found once is tried first next time.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from armsledger.config import load_settings
from armsledger.ingest import Document, document_id, normalise_text
from armsledger.normalise import build_tables

PROJECT_RAW = Path(__file__).resolve().parents[1] / "raw"
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
FEW = settings(PROPERTY_SETTINGS, max_examples=15)


def seed_sentences() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(PROJECT_RAW.glob("*.txt")))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?”\"])\s+", text) if len(s.strip()) > 3]
    return sorted(set(sentences))


SENTENCES = seed_sentences()
# Sentences in the language of the field that the seeds do not use: quantities, markers, hedges, denials, quotes.
FIELD_SENTENCES = [
    "North Korea has shipped a further 3,000 containers of artillery shells to Russia since August, "
    "South Korea's defence ministry said on Thursday.",
    "In return, Moscow is expected to supply Pyongyang with oil and food, according to officials in Seoul.",
    "The Kremlin has denied that any weapons changed hands [citation 2].",
    "\u201cWe will never abandon our comrades,\u201d Kim Jong Un said, according to KCNA.",
    "Russia reportedly delivered between 20 and 30 air defence systems to North Korea in May 2024.[3]",
    "Sergei Shoigu met Kim Jong Un in Pyongyang last month.",
    "U.S. officials said some 11,000 North Korean troops had been sent to Kursk.",
    "The UN Security Council panel of experts was vetoed by Russia in March last year.",
]
# Sentences about nothing in the gazetteers: a document made of them is unrelated to the seeds.
UNRELATED_SENTENCES = [
    "The village bakery opened a second shop on the high street on Monday.",
    "Heavy rain closed two mountain roads, the regional weather office said.",
    "A local football club signed a new goalkeeper for the coming season.",
    "The museum will show paintings of the coast from next spring.",
    "Farmers expect a good apple harvest after a warm summer.",
]
SEPARATORS = [" ", "  ", "\n", "\n\n", "\r\n", "\t", " \u200b", "\u00a0", "\u2028", " \ufeff"]

# Arbitrary Unicode, surrogates excluded (they cannot reach the extractor: text arrives decoded).
unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=400)
noise = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)


@st.composite
def news_like(draw, pool: list[str] = SENTENCES + FIELD_SENTENCES, max_sentences: int = 6) -> str:
    """Sentences of the field, recombined, with odd separators and a little noise between them."""
    sentences = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_sentences))
    parts = []
    for sentence in sentences:
        parts.append(sentence)
        parts.append(draw(st.sampled_from(SEPARATORS)))
        if draw(st.booleans()) and draw(st.booleans()):
            parts.append(draw(noise))
    return "".join(parts)


documents_text = st.one_of(unicode_text, news_like())


@pytest.fixture(scope="module")
def extractor():
    from armsledger.extract import load_extractor

    return load_extractor(load_settings().spacy_model)


def make_document(text: str, path: str) -> Document:
    return Document(
        doc_id=document_id(text), path=path, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text, title=None, publisher=None, author=None, url=None, license=None, language=None,
        published=None, published_precision=None, n_chars=len(text), n_words=len(text.split()),
    )


def check_offsets(text: str, extraction) -> None:
    for m in extraction.mentions:
        assert 0 <= m.char_start < m.char_end <= len(text)
        assert text[m.char_start:m.char_end] == m.text, m
    for c in extraction.citations:
        assert text[c.char_start:c.char_end] == c.sentence, c
    for record in [*extraction.events, *extraction.transfers]:
        for evidence in record.evidence:
            assert text[evidence.char_start:evidence.char_end] == evidence.sentence, evidence


@PROPERTY_SETTINGS
@given(text=documents_text)
def test_extraction_never_raises_and_offsets_index_the_text(extractor, text: str) -> None:
    extraction = extractor.extract(document_id(text), text)
    check_offsets(text, extraction)


@FEW
@given(text=documents_text)
def test_offsets_hold_on_the_text_ingest_gives(extractor, text: str) -> None:
    """The same through ingest's text normalisation and the tables (what a user slices)."""
    text = normalise_text(text)
    document = make_document(text, "doc.txt")
    extraction = extractor.extract(document.doc_id, text)
    check_offsets(text, extraction)
    tables = build_tables([document], [extraction])
    for row in tables["mentions"].itertuples():
        assert text[row.char_start:row.char_end] == row.text
    for row in tables["citations"].itertuples():
        assert text[row.char_start:row.char_end] == row.sentence


def ids(tables: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    keys = {"documents": "doc_id", "actors": "actor_id", "mentions": "mention_id", "events": "event_id",
            "transfers": "transfer_id", "citations": "citation_id"}
    return {name: set(tables[name][key]) for name, key in keys.items()}


@FEW
@given(
    texts=st.lists(news_like(), min_size=1, max_size=3, unique=True),
    unrelated=st.one_of(news_like(UNRELATED_SENTENCES, 4), unicode_text.filter(lambda t: t.strip())),
    order=st.randoms(use_true_random=False),
)
def test_ids_are_stable_across_order_and_unrelated_documents(extractor, texts, unrelated, order) -> None:
    if unrelated in texts:
        return
    documents = [make_document(t, f"doc{i}.txt") for i, t in enumerate(texts)]
    extractions = [extractor.extract(d.doc_id, d.text) for d in documents]
    base = build_tables(documents, extractions)

    # Input order does not matter: the same tables, row for row.
    pairs = list(zip(documents, extractions))
    order.shuffle(pairs)
    shuffled = build_tables([d for d, _ in pairs], [e for _, e in pairs])
    for name, frame in base.items():
        pd.testing.assert_frame_equal(shuffled[name], frame, obj=name)

    # An unrelated document adds rows; it changes no id of the rows already there.
    other = make_document(unrelated, "unrelated.txt")
    extra = extractor.extract(other.doc_id, other.text)
    grown = build_tables(documents + [other], extractions + [extra])
    before, after = ids(base), ids(grown)
    for name in ("documents", "actors", "mentions"):
        assert before[name] <= after[name], name
    if not (extra.events or extra.transfers):  # nothing that could merge with the existing facts
        for name in ("events", "transfers", "citations"):
            assert before[name] <= after[name], name
        old = base["citations"].set_index("citation_id")["target_id"]
        new = grown["citations"].set_index("citation_id")["target_id"]
        pd.testing.assert_series_equal(new.loc[old.index], old)


_ACTORS = ["state:RUS", "state:PRK", "person:Kim Jong Un"]  # few, so that facts meet often
_DATES = st.one_of(
    st.none(),
    st.tuples(st.sampled_from([2023, 2024]), st.integers(1, 12), st.integers(1, 28),
              st.sampled_from(["year", "month", "day"])),
)
_EVENTS = st.lists(
    st.tuples(st.lists(st.sampled_from(_ACTORS), min_size=1, max_size=2, unique=True), _DATES,
              st.sampled_from(["reported", "expected"])),
    min_size=1, max_size=8,
)


@PROPERTY_SETTINGS
@given(documents=st.lists(_EVENTS, min_size=1, max_size=6))
def test_events_merge_into_the_first_fact_they_match(documents) -> None:
    """The merger's index of candidate facts finds what trying every fact in the order first seen finds."""
    from armsledger.document_rows import rows_of
    from armsledger.extract.records import DateValue, DocumentExtraction, EventRecord
    from armsledger.normalise import _join_event, _same_event, _TableBuilder

    def record(actors, date, status) -> EventRecord:
        value = DateValue(None, None, None, None)
        if date is not None:
            year, month, day, precision = date
            value = DateValue(dt.date(year, month, day), None, precision, None)
        return EventRecord("meeting", None, list(actors), value, None, None, None, None, status, [], 0)

    builder = _TableBuilder()
    expected: list[EventRecord] = []  # every fact, tried in the order first seen
    for number, events in enumerate(documents):
        records = [record(*event) for event in events]
        builder._add_events(rows_of(DocumentExtraction(f"doc{number:02d}", {}, [], records, [], [])))
        for one in records:
            own = replace(one, actors=[builder.actor_id(a) for a in one.actors], evidence=[])
            match = next((fact for fact in expected if _same_event(fact, own)), None)
            if match is None:
                expected.append(own)
            else:
                _join_event(match, own)
    found = [(fact.record.actors, fact.record.date.start) for fact in builder.events]
    assert found == [(fact.actors, fact.date.start) for fact in expected]


_TIMELINE_EVENTS = st.lists(
    st.tuples(
        st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2023, 3, 31)),
        st.integers(min_value=0, max_value=40),
        st.sampled_from(["reported", "confirmed", "denied"]),
        st.sampled_from(["shipment", "meeting", "arms transfer agreement"]),
    ),
    min_size=1,
    max_size=60,
)


@PROPERTY_SETTINGS
@given(events=_TIMELINE_EVENTS)
def test_timeline_bars_and_labels_never_overlap_in_a_row(events) -> None:
    """Every dated event is drawn once, and within a lane's row no two bars with their labels overlap."""
    from types import SimpleNamespace

    from armsledger import site

    rows = [
        {"event_id": f"evt_{i:03d}", "event_type": kind, "status": status, "date_start": start,
         "date_end": start + dt.timedelta(days=days), "date_precision": "day", "summary": None}
        for i, (start, days, status, kind) in enumerate(events)
    ]
    svg, undated = site.timeline_svg(SimpleNamespace(rows={"events": rows}))
    assert undated == []
    marks = re.findall(
        r'<a href="#row/events/(evt_\d+)">.*?<rect class="mark" x="([-\d.]+)" y="(\d+)" width="([\d.]+)"'
        r'.*?<text x="([-\d.]+)" y="\d+" font-size="11" fill="#1d232a"( text-anchor="end")?>([^<]*)</text>', svg)
    assert sorted(m[0] for m in marks) == sorted(r["event_id"] for r in rows)
    by_row: dict[str, list[tuple[float, float]]] = {}
    for _, x, y, width, label_x, to_left, label in marks:
        x0, x1, label_w = float(x), float(x) + float(width), 6.4 * len(label) + 6
        span = (x0 - label_w, x1) if to_left else (x0, x1 + label_w)
        by_row.setdefault(y, []).append(span)
    for spans in by_row.values():
        spans.sort()
        # The layout keeps 4 px between items; the drawn figures are rounded to 0.1 px.
        assert all(a[1] + 4 - 0.2 < b[0] for a, b in zip(spans, spans[1:]))
