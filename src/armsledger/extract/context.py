"""Where and when: dates and places found in a document's sentences and paragraphs."""
from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from spacy.tokens import Span, Token

from armsledger.extract.dates import resolve_date
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.records import DateValue
from armsledger.extract.resources import Resources

NO_DATE = DateValue(None, None, None, None)
LINE_BREAK = re.compile("\n")
LOCATING_PREPOSITIONS = {"in", "at", "near", "outside"}


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

    def __init__(
        self,
        parsed: ParsedDocument,
        resources: Resources,
        published: dt.date | None,
        precision: str | None,
        resolve: Callable[[str, dt.date | None, str | None], DateValue | None] = resolve_date,
    ):
        self.parsed = parsed
        self.resources = resources
        self.paragraph_starts = [0] + [m.end() for m in LINE_BREAK.finditer(parsed.text)]
        self.dates: list[DateMention] = []
        self._paragraph_of_date: list[int] = []
        for ent in parsed.ents:
            if ent.label_ != "DATE":
                continue
            value = resolve(ent.text, published, precision)
            if value is not None:
                self.dates.append(DateMention(ent.start, ent.end, value))
                self._paragraph_of_date.append(self.paragraph(ent.start_char))

    def paragraph(self, char: int) -> int:
        return bisect.bisect_right(self.paragraph_starts, char) - 1

    def date_for(self, trigger: Token) -> DateValue:
        """The date nearest the trigger in its sentence; else the latest one earlier in its paragraph."""
        sent = self.parsed.sent(trigger.i)
        in_sentence = [d for d in self.dates if sent.start <= d.token_start < sent.end]
        if in_sentence:
            return min(in_sentence, key=lambda d: abs(d.token_start - trigger.i)).value
        paragraph = self.paragraph(sent.start_char)
        earlier = [
            d for d, date_paragraph in zip(self.dates, self._paragraph_of_date)
            if d.token_start < sent.start and date_paragraph == paragraph
        ]
        return earlier[-1].value if earlier else NO_DATE

    def place_for(self, trigger: Token) -> PlaceValue | None:
        """The place the trigger's own phrase names (in/at/to ...), else the first in its sentence."""
        # the trigger's own "in/at/near" phrase first: "met officials in Vladivostok"
        located = [o for o in trigger.children if o.dep_ == "prep" and o.lower_ in LOCATING_PREPOSITIONS for o in o.children if o.dep_ == "pobj"]
        # read lazily: the first place found ends the search, and a head's subtree can be the whole sentence
        candidates = itertools.chain(
            located,
            trigger.subtree,
            (t for t in trigger.head.subtree if t.dep_ == "pobj" and t.head.dep_ == "prep" and t.head.head == trigger.head),
        )
        for token in candidates:
            place = self._place_at(token)
            if place is not None:
                return place
        for ent in self.parsed.ents_in_sentence_of(trigger.i):
            if ent.label_ in {"LOC", "FAC"}:
                place = self._place_at(ent[0])
                if place is not None:
                    return place
        return None

    def _place_at(self, token: Token) -> PlaceValue | None:
        if token.ent_type_ not in {"GPE", "LOC", "FAC"}:
            return None
        ent = self.parsed.ent_in_sentence_at(token.i)
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
