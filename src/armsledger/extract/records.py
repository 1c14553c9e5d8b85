"""What the extractor finds in one document, before ids are assigned across documents."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class ActorInfo:
    name: str
    type: str
    country: str | None = None
    role: str | None = None
    wikidata_id: str | None = None
    aliases: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return actor_key(self.name, self.type)


def actor_key(name: str, type_: str) -> str:
    return f"{type_}:{name}"


@dataclass(frozen=True)
class Mention:
    char_start: int
    char_end: int
    text: str
    actor: str


@dataclass(frozen=True)
class DateValue:
    start: dt.date | None
    end: dt.date | None
    precision: str | None
    text: str | None


@dataclass
class Evidence:
    sentence: str
    char_start: int
    char_end: int
    hedge: str | None
    cue: bool  # the status comes from the sentence's own words, not a default


@dataclass
class EventRecord:
    event_type: str
    plover_type: str | None
    actors: list[str]
    date: DateValue
    place: str | None
    place_country: str | None
    latitude: float | None
    longitude: float | None
    status: str
    evidence: list[Evidence]
    trigger_start: int
    anaphoric: bool = False  # "the meeting": refers back to an event already reported


@dataclass
class TransferRecord:
    supplier: str | None
    recipient: str | None
    category: str
    item: str
    quantity_text: str | None
    quantity_low: int | None
    quantity_high: int | None
    unit: str | None
    status: str
    evidence: list[Evidence]
    date: DateValue
    exchange_for: int | None = None  # index into the document's transfers
    prior_used: bool = False  # a side was filled from the relationship's usual direction


@dataclass
class CitationRecord:
    kind: str  # marker | attribution | quote
    sentence: str
    char_start: int
    char_end: int
    marker: str | None = None
    source: str | None = None
    source_text: str | None = None
    quote: str | None = None
    hedge: str | None = None
    targets: list[tuple[str, int]] = field(default_factory=list)  # (table, index in document)


@dataclass
class DocumentExtraction:
    doc_id: str
    actors: dict[str, ActorInfo]
    mentions: list[Mention]
    events: list[EventRecord]
    transfers: list[TransferRecord]
    citations: list[CitationRecord]
