"""One document's extraction -> its share of the tables, with what needs no other document done already.

The tables are merged from every document's extraction on every run, and a
run that adds one document to 5,000 reads the other 5,000 back from the
extraction cache. Kept as records (a dataclass object per mention, citation
and piece of evidence), 5,000 documents were 270,000 objects to unpickle
(1.07 s) before the ids of their 137,000 mentions were hashed again. Here the
work that depends on the document alone is done once, when it is parsed: the
actor and mention ids, the mentions' rows, the citations' rows that wait for
the ids of the facts they support, and what the evidence of each event and
transfer adds to the merged row. Rows are columns of plain values, which pickle
as they are. Events and transfers stay records: merging them across documents
is normalise's work.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from armsledger.extract.records import DocumentExtraction, EventRecord, TransferRecord
from armsledger.ids import stable_id

# The columns of DocumentRows.mentions and .citations (normalise's MENTION_SCHEMA and PENDING_CITATION_SCHEMA).
MENTION_FIELDS = ("mention_id", "doc_id", "actor_id", "char_start", "char_end", "text")
PENDING_CITATION_FIELDS = ("doc_id", "kind", "char_start", "char_end", "hedge", "sentence", "marker",
                           "source_actor", "source_text", "quote", "targets")

# An actor as the document names it: (key, name, type, country, role, wikidata_id, aliases).
ActorRow = tuple[str, str, str, Any, Any, Any, tuple[str, ...]]
# What a fact's evidence adds to its merged row: the first sentence (its summary) and, per sentence,
# (char_start, hedged).
Support = tuple[Any, tuple[tuple[int, bool], ...]]


class DocumentRows:
    """A document's actors, its mention and pending citation rows (as columns), and its events and transfers
    (records whose evidence is in `event_support` / `transfer_support`, by position). Built by rows_of."""

    __slots__ = ("doc_id", "actors", "mentions", "events", "event_support", "transfers", "transfer_support",
                 "citations")

    def __init__(self, doc_id: str, actors: tuple[ActorRow, ...], mentions: tuple[tuple, ...],
                 events: tuple[EventRecord, ...], event_support: tuple[Support, ...],
                 transfers: tuple[TransferRecord, ...], transfer_support: tuple[Support, ...],
                 citations: tuple[tuple, ...]) -> None:
        self.doc_id = doc_id
        self.actors = actors
        self.mentions = mentions
        self.events = events
        self.event_support = event_support
        self.transfers = transfers
        self.transfer_support = transfer_support
        self.citations = citations

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __reduce__(self) -> tuple:
        return (DocumentRows, self._fields())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DocumentRows) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return (f"DocumentRows({self.doc_id!r}: {len(self.actors)} actors, {len(self.mentions[0])} mentions, "
                f"{len(self.events)} events, {len(self.transfers)} transfers, {len(self.citations[0])} citations)")


def actor_id_of(key: str) -> str:
    """The table id of an actor key (type:name), the same in every document."""
    return stable_id("actor", *key.split(":", 1))


def rows_of(e: DocumentExtraction) -> DocumentRows:
    """A document's extraction -> its DocumentRows."""
    ids: dict[str, str] = {}

    def actor_id(key: str) -> str:
        aid = ids.get(key)
        if aid is None:
            aid = ids[key] = actor_id_of(key)
        return aid

    actors = tuple(
        (key, info.name, info.type, info.country, info.role, info.wikidata_id, tuple(sorted(info.aliases)))
        for key, info in e.actors.items()
    )
    mentions: dict[str, tuple] = {}
    for m in e.mentions:
        aid = actor_id(m.actor)
        mid = stable_id("mention", e.doc_id, m.char_start, m.char_end, aid)
        mentions.setdefault(mid, (mid, e.doc_id, aid, m.char_start, m.char_end, m.text))
    return DocumentRows(
        e.doc_id,
        actors,
        _columns(list(mentions.values()), len(MENTION_FIELDS)),
        tuple(replace(r, evidence=[]) for r in e.events),
        tuple(_support(r.evidence) for r in e.events),
        tuple(replace(r, evidence=[]) for r in e.transfers),
        tuple(_support(r.evidence) for r in e.transfers),
        _columns(_pending_citations(e), len(PENDING_CITATION_FIELDS)),
    )


def _support(evidence: list) -> Support:
    return (evidence[0].sentence if evidence else None,
            tuple((ev.char_start, bool(ev.hedge)) for ev in evidence))


def _pending_citations(e: DocumentExtraction) -> list[tuple]:
    """Citation rows waiting for the ids of what they support. targets: (table, index in the document, that
    document's status), the first that resolves wins; each document's own reading of the status, which a
    merged row may not share."""
    local_status = {("events", i): r.status for i, r in enumerate(e.events)}
    local_status.update({("transfers", i): r.status for i, r in enumerate(e.transfers)})
    rows = []
    for table, records in (("events", e.events), ("transfers", e.transfers)):
        for index, record in enumerate(records):
            target = [(table, index, record.status)]
            for ev in record.evidence:
                rows.append((e.doc_id, "evidence", ev.char_start, ev.char_end, ev.hedge, ev.sentence,
                             None, None, None, None, target))
    for c in e.citations:
        targets = [(table, index, local_status[(table, index)]) for table, index in c.targets]
        rows.append((e.doc_id, c.kind, c.char_start, c.char_end, c.hedge, c.sentence,
                     c.marker, c.source, c.source_text, c.quote, targets))
    return rows


def _columns(rows: list[tuple], width: int) -> tuple[tuple, ...]:
    return tuple(zip(*rows)) if rows else ((),) * width
