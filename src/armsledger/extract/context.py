"""Where and when: dates and places found in a document's sentences and paragraphs."""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

from spacy.tokens import Doc, Span, Token

from armsledger.extract.dates import resolve_date
from armsledger.extract.records import DateValue
from armsledger.extract.resources import Resources

NO_DATE = DateValue(None, None, None, None)


@dataclass(frozen=True)
class DateMention:
    token_start: int
    token_end: int
    value: DateValue


@dataclass(frozen=True)
class PlaceValue:
    name: str
    country: str | None
    lat: float | None
    lon: float | None


class DocumentContext:
    """The dates of each sentence and the paragraph each sentence belongs to."""

    def __init__(self, doc: Doc, resources: Resources, published: dt.date | None, precision: str | None):
        self.doc = doc
        self.resources = resources
        self.paragraph_starts = [0] + [i + 1 for i, c in enumerate(doc.text) if c == "\n"]
        self.dates: list[DateMention] = []
        for ent in doc.ents:
            if ent.label_ != "DATE":
                continue
            value = resolve_date(ent.text, published, precision)
            if value is not None:
                self.dates.append(DateMention(ent.start, ent.end, value))

    def paragraph(self, char: int) -> int:
        return bisect.bisect_right(self.paragraph_starts, char) - 1

    def date_for(self, trigger: Token) -> DateValue:
        """The date nearest the trigger in its sentence; else the latest one earlier in its paragraph."""
        sent = trigger.sent
        in_sentence = [d for d in self.dates if sent.start <= d.token_start < sent.end]
        if in_sentence:
            return min(in_sentence, key=lambda d: abs(d.token_start - trigger.i)).value
        paragraph = self.paragraph(sent.start_char)
        earlier = [
            d for d in self.dates
            if d.token_start < sent.start and self.paragraph(self.doc[d.token_start].idx) == paragraph
        ]
        return earlier[-1].value if earlier else NO_DATE

    def place_for(self, trigger: Token) -> PlaceValue | None:
        """The place the trigger's own phrase names (in/at/to ...), else the first in its sentence."""
        # the trigger's own "in/at/near" phrase first: "met officials in Vladivostok"
        located = [o for o in trigger.children if o.dep_ == "prep" and o.lower_ in {"in", "at", "near", "outside"} for o in o.children if o.dep_ == "pobj"]
        candidates = located + [t for t in trigger.subtree] + [t for t in trigger.head.subtree if t.dep_ == "pobj" and t.head.dep_ == "prep" and t.head.head == trigger.head]
        for token in candidates:
            place = self._place_at(token)
            if place is not None:
                return place
        for ent in trigger.sent.ents:
            if ent.label_ in {"LOC", "FAC"}:
                place = self._place_at(ent[0])
                if place is not None:
                    return place
        return None

    def _place_at(self, token: Token) -> PlaceValue | None:
        if token.ent_type_ not in {"GPE", "LOC", "FAC"}:
            return None
        ent = next((e for e in token.sent.ents if e.start <= token.i < e.end), None)
        if ent is None:
            return None
        text = _strip_article(ent)
        place = self.resources.place(text)
        if place is not None:
            return PlaceValue(place.name, place.country, place.lat, place.lon)
        if ent.label_ == "GPE":
            known = self.resources.actor_by_alias.get(text)
            if known is not None and known.type == "state":
                return PlaceValue(known.name, known.country, None, None)
        return None


def _strip_article(ent: Span) -> str:
    text = ent.text
    if text.lower().startswith("the "):
        text = text[4:]
    return text
