"""Extraction on short sentences of the field's language (invented actors included)."""
from __future__ import annotations

import datetime as dt

import pytest

from armsledger.config import load_settings
from armsledger.extract import Extractor, load_extractor


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return load_extractor(load_settings().spacy_model)


def names(extraction, keys):
    return [extraction.actors[k].name for k in keys]


def transfers(extractor, text, published=None):
    e = extractor.extract("doc_test", text, published, "day" if published else None)
    return e, [(e.actors[t.supplier].name, e.actors[t.recipient].name, t.category, t.status) for t in e.transfers]


def test_supply_verb_with_recipient(extractor):
    _, found = transfers(extractor, "North Korea has shipped artillery shells to Russia, US officials said.")
    assert ("North Korea", "Russia", "munitions", "reported") in found


def test_hedged_offer_is_expected(extractor):
    _, found = transfers(extractor, "Moscow is expected to provide food aid to Pyongyang.")
    assert found == [("Russia", "North Korea", "food", "expected")]


def test_quid_pro_quo_links_both_sides(extractor):
    e, found = transfers(extractor, "In exchange for ammunition, Russia will give North Korea fuel.")
    cats = {(s, r, c) for s, r, c, _ in found}
    assert ("North Korea", "Russia", "munitions") in cats and ("Russia", "North Korea", "fuel") in cats
    linked = [t for t in e.transfers if t.exchange_for is not None]
    assert len(linked) == 2


def test_request_reverses_roles(extractor):
    _, found = transfers(extractor, "Kim Jong Un may ask Moscow to hand over nuclear submarine technology.")
    assert found and found[0][:3] == ("Russia", "North Korea", "nuclear_technology")
    assert found[0][3] == "requested"


def test_stockpile_is_not_a_transfer_quantity(extractor):
    e, _ = transfers(extractor, "North Korea is thought to have millions of shells. It sold shells to Russia.")
    assert all(t.quantity_text is None for t in e.transfers)


def test_stated_quantity_and_bounds(extractor):
    e, _ = transfers(extractor, "North Korea sent up to 4,000 containers of munitions to Russia.")
    assert e.transfers and e.transfers[0].quantity_high == 4000 and e.transfers[0].quantity_low is None


def test_denial(extractor):
    _, found = transfers(extractor, "Russia denied that it had received missiles from North Korea.")
    assert found and found[0][3] == "denied"


def test_unknown_person_gets_country_and_is_not_split(extractor):
    e = extractor.extract("d", "North Korean Defence Minister Pak Chol Min met Russian officials in Vladivostok.")
    people = [a for a in e.actors.values() if a.type == "person"]
    assert [p.name for p in people] == ["Pak Chol Min"]
    assert people[0].country == "PRK"


def test_leader_description_resolves_to_person(extractor):
    e = extractor.extract("d", "Putin met Kim. The North Korean leader thanked him.")
    kim = [m for m in e.mentions if e.actors[m.actor].name == "Kim Jong Un"]
    assert any(m.text == "North Korean leader" for m in kim)


def test_capital_speaks_for_state(extractor):
    e = extractor.extract("d", "Washington said on Friday that Pyongyang had sent troops.")
    assert {e.actors[m.actor].name for m in e.mentions} >= {"United States", "North Korea"}


def test_relative_date_resolves_against_document_date(extractor):
    e = extractor.extract("d", "Kim Jong Un travelled to Vladivostok late last month.", dt.date(2024, 2, 27), "day")
    travel = [ev for ev in e.events if ev.event_type == "travel"]
    assert travel and travel[0].date.start == dt.date(2024, 1, 1) and travel[0].date.precision == "month"
    assert travel[0].place == "Vladivostok" and travel[0].latitude is not None


def test_relative_date_without_document_date_keeps_words(extractor):
    e = extractor.extract("d", "Kim Jong Un travelled to Vladivostok last week.")
    travel = [ev for ev in e.events if ev.event_type == "travel"]
    assert travel and travel[0].date.start is None and travel[0].date.text == "last week"


def test_planned_meeting(extractor):
    e = extractor.extract("d", "Putin plans to meet Kim Jong Un in Pyongyang next month.")
    meetings = [ev for ev in e.events if ev.event_type == "meeting"]
    assert meetings and meetings[0].status == "planned"


def test_attribution_to_group_and_marker(extractor):
    e = extractor.extract("d", "Western diplomats said that the deal was close [3].")
    kinds = {(c.kind, c.marker or (e.actors[c.source].name.lower() if c.source else None)) for c in e.citations}
    assert ("marker", "[3]") in kinds
    assert ("attribution", "western diplomats") in kinds


def test_quote_with_pronoun_speaker(extractor):
    e = extractor.extract("d", 'Sergei Lavrov arrived in Pyongyang. "Our cooperation is not directed against anyone," he said.')
    quotes = [c for c in e.citations if c.kind == "quote"]
    assert quotes and e.actors[quotes[0].source].name == "Sergei Lavrov"


def test_scare_quotes_are_not_quotes(extractor):
    e = extractor.extract("d", 'Russia faced a "shell hunger" on the front.')
    assert not [c for c in e.citations if c.kind == "quote"]


def test_offsets_index_the_text(extractor):
    text = "Kim Jong Un met Vladimir Putin at the Vostochny Cosmodrome [citation 1]."
    e = extractor.extract("d", text)
    assert e.mentions
    for m in e.mentions:
        assert text[m.char_start : m.char_end] == m.text
    for c in e.citations:
        assert text[c.char_start : c.char_end] == c.sentence


def test_batched_extraction_equals_one_document_at_a_time(extractor):
    from pathlib import Path

    import yaml

    sentences = yaml.safe_load((Path(__file__).parent / "sentences.yaml").read_text(encoding="utf-8"))
    published = [dt.date(2024, 3, 15), None]
    items = [(f"doc{i}", s["text"], published[i % 2], "day" if i % 2 == 0 else None) for i, s in enumerate(sentences)]
    items.append(("empty", "", None, None))
    batched = list(extractor.extract_many(iter(items)))
    assert [e.doc_id for e in batched] == [i[0] for i in items]
    assert batched == [extractor.extract(*item) for item in items]


def test_the_tokenizer_splits_reference_markers_and_keeps_the_surname_im(extractor):
    import spacy

    words = [t.text for t in extractor.nlp.tokenizer("Shells left in 2024.[4][5] Im Chon Il met officials (I'm told).")]
    assert words[:12] == ["Shells", "left", "in", "2024", ".", "[", "4", "]", "[", "5", "]", "Im"]
    assert words[-5:] == ["I", "'m", "told", ")", "."]
    # Otherwise it tokenizes as the model does: URLs, abbreviations and contractions included.
    model = spacy.load(load_settings().spacy_model)
    text = "Mr. Shoigu didn't visit https://example.org/a?b=1 on Oct. 3; U.S. officials said so."
    assert [t.text for t in extractor.nlp.tokenizer(text)] == [t.text for t in model.tokenizer(text)]
