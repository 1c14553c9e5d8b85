"""Per-document extractions in, the six contract tables out: ids from content, facts merged across documents."""
from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from armsledger.document_rows import MENTION_FIELDS, PENDING_CITATION_FIELDS, DocumentRows, Support, actor_id_of, rows_of
from armsledger.extract.records import DateValue, DocumentExtraction, EventRecord, TransferRecord
from armsledger.ids import stable_id
from armsledger.ingest import Document
from armsledger.runtime import collector_paused

EVENT_BASE = {"occurred": 0.7, "planned": 0.6, "expected": 0.5, "speculated": 0.3, "denied": 0.2}
TRANSFER_BASE = {"confirmed": 0.85, "reported": 0.65, "negotiated": 0.55, "expected": 0.5, "requested": 0.35, "speculated": 0.3, "denied": 0.2}
# Stages of a transfer, least to furthest: documents that disagree merge into the furthest stage any reports.
TRANSFER_STAGES = ("denied", "speculated", "expected", "requested", "negotiated", "reported", "confirmed")
HEDGED_FACTOR = 0.85
USUAL_DIRECTION_FACTOR = 0.8
SUMMARY_CHARS = 300


def confidence(base: float, n_documents: int, all_hedged: bool, inferred: bool) -> float:
    """Base by status, raised by each further independent document, lowered by hedges and inferred sides."""
    value = 1 - (1 - base) ** (1 + 0.5 * (n_documents - 1))
    if all_hedged:
        value *= HEDGED_FACTOR
    if inferred:
        value *= USUAL_DIRECTION_FACTOR
    return round(min(max(value, 0.0), 1.0), 3)


@dataclass
class _Fact:
    """An event or transfer merged across documents, with where each document supports it."""

    record: EventRecord | TransferRecord
    # Per supporting sentence: (doc_id, its char_start, whether it is hedged). Only the first sentence's
    # text is kept (the row's summary): the texts of all of them are in the citations already.
    sources: list[tuple[str, int, bool]] = field(default_factory=list)
    local: list[tuple[str, int]] = field(default_factory=list)  # (doc_id, index in that document)
    summary: str | None = None
    # A transfer's items once a second document joined it, in order of first report; joined into its
    # record's `item` when the tables are built. Joining the text again at each merge grew with the items.
    items: dict[str, None] | None = None

    def add_sources(self, doc_id: str, support: Support) -> None:
        """`support`: what one document's evidence of the fact gives (DocumentRows.event_support)."""
        first_sentence, spans = support
        if self.summary is None and spans:
            self.summary = first_sentence
        self.sources += [(doc_id, char_start, hedged) for char_start, hedged in spans]


# Rows of the mentions and citations kept as Python values before they become an Arrow record batch.
ROWS_PER_CHUNK = 50_000


class _RowChunks:
    """Rows appended as Python values and kept as Arrow record batches, ROWS_PER_CHUNK at a time.

    A cell as a Python object (a str with its header, an int, a list slot) takes several times its
    bytes in Arrow: held as Python values until the end, the mentions and citations were most of a
    20,000-document run's memory.
    """

    def __init__(self, schema: pa.Schema, rows_per_chunk: int = ROWS_PER_CHUNK) -> None:
        self.schema = schema
        self.rows_per_chunk = rows_per_chunk
        self._columns: list[list] = [[] for _ in schema.names]
        self._batches: list[pa.RecordBatch] = []

    def extend(self, rows: list[tuple]) -> None:
        """Appends rows (a document's, say); a chunk is cut once it holds rows_per_chunk rows or more."""
        if rows:
            self.extend_columns(tuple(zip(*rows)))

    def extend_columns(self, columns: tuple[tuple, ...]) -> None:
        """Appends rows given as columns, one sequence of values per field of the schema."""
        if not columns[0]:
            return
        # Column by column: a call per column and document, where a row at a time made one per cell.
        for column, values in zip(self._columns, columns):
            column.extend(values)
        if len(self._columns[0]) >= self.rows_per_chunk:
            self._flush()

    def _flush(self) -> None:
        if self._columns[0]:
            arrays = [pa.array(values, type=f.type) for values, f in zip(self._columns, self.schema)]
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
            for values in self._columns:
                values.clear()

    def drain(self) -> Iterator[pa.RecordBatch]:
        """The rows as record batches, each one let go of here as it is handed out (the rows are then gone)."""
        self._flush()
        batches, self._batches = deque(self._batches), []
        while batches:
            yield batches.popleft()


def _in_key_order(batches: Iterable[pa.RecordBatch], schema: pa.Schema, key: str) -> pd.DataFrame:
    """Record batches -> one frame sorted by its (unique) key; the frame's strings stay in Arrow buffers.

    The columns are put in order one at a time, each unsorted column let go of once its sorted copy is
    made: sorting the whole table at once held two copies of it.
    """
    table = pa.Table.from_batches(list(batches), schema=schema)
    order = pc.sort_indices(table.column(key))
    columns = []
    for name in schema.names:
        columns.append(table.column(name).take(order))
        table = table.drop_columns([name])
    del table
    return pa.Table.from_arrays(columns, schema=schema).to_pandas()


def _sorted_by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def build_tables(
    documents: Iterable[Document], extractions: Iterable[DocumentExtraction | DocumentRows]
) -> dict[str, pd.DataFrame]:
    """The documents, actors, mentions, events, transfers and citations tables, each sorted by its key.

    `extractions` is read once, one document at a time, and nothing of an
    extraction is kept but what goes into a table: a list or tuple may come in
    any order (and a repeated doc_id counts once, the last given); any other
    iterable, such as a generator reading a cache, must come in increasing
    doc_id order. Memory then grows with the tables, not with the extractions.
    """
    builder = _TableBuilder()
    # Building keeps every row and fact alive, and the records hold no cycles: the collections took a
    # quarter of the time at 5,000 documents.
    with collector_paused():
        for extraction in _in_doc_order(extractions):
            builder.add(extraction)
        return builder.tables(documents)


def _in_doc_order(
    extractions: Iterable[DocumentExtraction | DocumentRows],
) -> Iterator[DocumentExtraction | DocumentRows]:
    if isinstance(extractions, (list, tuple)):
        yield from {e.doc_id: e for e in sorted(extractions, key=lambda e: e.doc_id)}.values()
        return
    previous = None
    for extraction in extractions:
        if previous is not None and extraction.doc_id <= previous:
            raise ValueError(f"extractions must come in increasing doc_id order: {extraction.doc_id} after {previous}")
        previous = extraction.doc_id
        yield extraction


MENTION_SCHEMA = pa.schema([
    ("mention_id", pa.string()), ("doc_id", pa.string()), ("actor_id", pa.string()),
    ("char_start", pa.int64()), ("char_end", pa.int64()), ("text", pa.string()),
])
MENTION_COLUMNS = MENTION_SCHEMA.names
assert tuple(MENTION_COLUMNS) == MENTION_FIELDS, "DocumentRows lays the mentions out as this schema"

# A citation row waiting for the ids of the facts it supports (known once every document is merged).
# targets: (table, index in the document, that document's status), the first that resolves wins;
# source_actor: an actor key, given an id only if some document names that actor.
PENDING_CITATION_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("kind", pa.string()), ("char_start", pa.int64()), ("char_end", pa.int64()),
    ("hedge", pa.string()), ("sentence", pa.string()), ("marker", pa.string()), ("source_actor", pa.string()),
    ("source_text", pa.string()), ("quote", pa.string()),
    ("targets", pa.list_(pa.struct([("table", pa.string()), ("index", pa.int64()), ("status", pa.string())]))),
])
assert tuple(PENDING_CITATION_SCHEMA.names) == PENDING_CITATION_FIELDS, "DocumentRows lays the citations out so"


class _TableBuilder:
    """Takes documents' extractions one at a time, in doc_id order, and keeps only rows and merged facts."""

    def __init__(self) -> None:
        self.actor_ids: dict[str, str] = {}
        self.actors: dict[str, dict] = {}  # actor_id -> merged row, in order of first appearance
        self.mentions = _RowChunks(MENTION_SCHEMA)
        self.events: list[_Fact] = []
        # Only facts of the same type and status that share a participant can merge: the facts indexed by
        # (type, status, participant) are the only candidates, tried in the order they were first seen.
        self.event_index: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        # The same, per year of the fact's date (None: no date yet). A dated event can only merge with a fact
        # of its own year or an undated one, so it looks in those two lists of each participant only: with
        # every fact of a busy pair of actors as candidates, normalising 20,000 documents took 27 s, 21 s without.
        self.event_year_index: dict[tuple[str, str, str, str | None], list[int]] = defaultdict(list)
        self.event_position: dict[int, int] = {}  # id(fact) -> its place in self.events
        self.transfers: dict[tuple, _Fact] = {}
        self.citations = _RowChunks(PENDING_CITATION_SCHEMA)

    def actor_id(self, key: str) -> str:
        aid = self.actor_ids.get(key)
        if aid is None:
            aid = self.actor_ids[key] = actor_id_of(key)
        return aid

    def add(self, e: DocumentExtraction | DocumentRows) -> None:
        if not isinstance(e, DocumentRows):
            e = rows_of(e)
        self._add_actors(e)
        self.mentions.extend_columns(e.mentions)
        self._add_events(e)
        self._add_transfers(e)
        self.citations.extend_columns(e.citations)

    def _add_actors(self, e: DocumentRows) -> None:
        for key, name, type_, country, role, wikidata_id, aliases in e.actors:
            aid = self.actor_id(key)
            row = self.actors.setdefault(aid, {"actor_id": aid, "name": name, "type": type_, "country": country, "role": role, "aliases": set(), "wikidata_id": wikidata_id})
            row["country"] = row["country"] or country
            row["role"] = row["role"] or role
            row["aliases"].update(a for a in aliases if a != name)

    def _add_events(self, e: DocumentRows) -> None:
        """The same event from several documents is one fact: same type and status, shared participants, dates that agree."""
        for index, (original, support) in enumerate(zip(e.events, e.event_support)):
            # a copy: the extraction may be a cached result that is normalised again
            record = replace(original, actors=[self.actor_id(a) for a in original.actors])
            target = self._matching_event(record)
            if target is None:
                target = _Fact(record)
                self.event_position[id(target)] = len(self.events)
                self.events.append(target)
                self._index_event(len(self.events) - 1, record.actors)
            else:
                known = set(target.record.actors)
                _join_event(target.record, record)
                self._index_event(self.event_position[id(target)], [a for a in target.record.actors if a not in known])
            target.add_sources(e.doc_id, support)
            target.local.append((e.doc_id, index))

    def _matching_event(self, record: EventRecord) -> _Fact | None:
        kind = (record.event_type, record.status)
        year = _year(record.date)
        if year is None:
            lists = [self.event_index.get((*kind, actor), ()) for actor in record.actors]
        else:
            lists = [self.event_year_index.get((*kind, actor, y), ()) for actor in record.actors for y in (year, None)]
        candidates = sorted(set().union(*lists))
        # Every candidate has the record's type and status and shares a participant with it (that is how it
        # was filed), so of _same_event only the dates are left to compare, here without a call per candidate.
        actors = set(record.actors)
        date = record.date
        for i in candidates:
            fact = self.events[i]
            other = fact.record.date
            if other.start is None or date.start is None:
                if (other.start is None) == (date.start is None) or actors == set(fact.record.actors):
                    return fact
            elif _dates_compatible(other, date):
                return fact
        return None

    def _index_event(self, position: int, actors: list[str]) -> None:
        """Files the fact at `position` under its new participants `actors`, and under the year its date has
        now. A fact dated later stays filed under None as well, which every dated event looks in too."""
        record = self.events[position].record
        year = _year(record.date)
        for actor in actors:
            self.event_index[(record.event_type, record.status, actor)].append(position)
            self.event_year_index[(record.event_type, record.status, actor, year)].append(position)

    def _add_transfers(self, e: DocumentRows) -> None:
        for index, (original, support) in enumerate(zip(e.transfers, e.transfer_support)):
            record = replace(original, supplier=self.actor_id(original.supplier), recipient=self.actor_id(original.recipient))
            key = (record.supplier, record.recipient, record.category)
            fact = self.transfers.get(key)
            if fact is None:
                fact = self.transfers[key] = _Fact(record)
            else:
                if fact.items is None:
                    fact.items = dict.fromkeys(fact.record.item.split("; "))
                _join_transfer(fact.record, record, fact.items)
            fact.add_sources(e.doc_id, support)
            fact.local.append((e.doc_id, index))

    def _named_actor_id(self, key: str | None) -> str | None:
        if not key:
            return None
        aid = self.actor_id(key)
        return aid if aid in self.actors else None

    def tables(self, documents: Iterable[Document]) -> dict[str, pd.DataFrame]:
        # Only merging looks facts up by participant.
        self.event_index.clear()
        self.event_year_index.clear()
        self.event_position.clear()
        events, transfers = self.events, list(self.transfers.values())
        for fact in transfers:
            if fact.items is not None:
                fact.record.item = "; ".join(fact.items)
        event_id_of = _assign_ids(events, lambda f: ("event", f.record.event_type, sorted(f.record.actors), f.record.date.start, f.record.date.precision, f.record.status))
        transfer_id_of = _assign_ids(transfers, lambda f: ("transfer", f.record.supplier, f.record.recipient, f.record.category))
        local_event = {(d, i): event_id_of[id(f)] for f in events for d, i in f.local}
        local_transfer = {(d, i): transfer_id_of[id(f)] for f in transfers for d, i in f.local}
        mentions = _in_key_order(self.mentions.drain(), MENTION_SCHEMA, "mention_id")
        tables = {
            "documents": pd.DataFrame([d.row() for d in sorted(documents, key=lambda d: d.doc_id)]),
            "mentions": mentions,
            "events": _sorted_by(_events_frame(events, event_id_of), "event_id"),
            "transfers": _sorted_by(_transfers_frame(transfers, transfer_id_of, local_transfer, _deal_events(events, event_id_of)), "transfer_id"),
        }
        citations = _resolved_citations(self.citations.drain(), local_event, local_transfer, self._named_actor_id)
        # Sorting the citations is the largest moment of building the tables: what resolved their
        # targets goes first.
        del local_event, local_transfer
        tables["citations"] = _in_key_order(citations.drain(), CITATION_SCHEMA, "citation_id")
        tables["actors"] = _sorted_by(_actors_frame(self.actors, mentions, tables), "actor_id")
        return tables


def _actors_frame(merged: dict[str, dict], mentions: pd.DataFrame, tables) -> pd.DataFrame:
    """The actors that some row refers to, with their merged details and mention counts."""
    # Whole columns as lists and the counts as dicts: a pandas lookup per actor and a walk of the
    # Arrow-backed columns value by value took 0.25 s at 5,000 documents.
    referenced = set(mentions["actor_id"].tolist())
    for column, table in (("actor_ids", "events"), ("supplier_id", "transfers"), ("recipient_id", "transfers"), ("source_actor_id", "citations")):
        for v in tables[table][column].tolist() if len(tables[table]) else []:
            if isinstance(v, str):
                referenced.add(v)
            elif isinstance(v, list):
                referenced.update(v)
    n_mentions: dict[str, int] = {}
    n_documents: dict[str, int] = {}
    if len(mentions):
        counts = mentions.groupby("actor_id").agg(n_mentions=("mention_id", "size"), n_documents=("doc_id", "nunique"))
        n_mentions, n_documents = counts["n_mentions"].to_dict(), counts["n_documents"].to_dict()
    rows = []
    for aid, merged_row in merged.items():
        if aid not in referenced:
            continue
        row = dict(merged_row, aliases=sorted(merged_row["aliases"]))
        row["n_mentions"] = int(n_mentions.get(aid, 0))
        row["n_documents"] = int(n_documents.get(aid, 0))
        rows.append(row)
    return pd.DataFrame(rows, columns=["actor_id", "name", "type", "country", "role", "aliases", "wikidata_id", "n_mentions", "n_documents"])


def _year(date: DateValue) -> str | None:
    """The year _dates_compatible compares first (every precision's prefix starts with it)."""
    return None if date.start is None else str(date.start)[:4]


def _dates_compatible(a: DateValue, b: DateValue) -> bool:
    """Whether two dates can be the same day, at the coarser of their precisions."""
    if a.start is None or b.start is None:
        return True
    if a.start.year != b.start.year:
        return False
    if "year" in (a.precision, b.precision):
        return True
    if a.start.month != b.start.month:
        return False
    return "month" in (a.precision, b.precision) or a.start.day == b.start.day


def _same_event(a: EventRecord, b: EventRecord) -> bool:
    """Whether `b` reports the fact `a` is: the rule _TableBuilder._matching_event applies to the facts its
    index gives (tests/test_properties.py holds it to this)."""
    if a.event_type != b.event_type or a.status != b.status:
        return False
    b_actors = set(b.actors)
    if b_actors.isdisjoint(a.actors):
        return False
    if (a.date.start is None) != (b.date.start is None):
        return b_actors == set(a.actors)
    return _dates_compatible(a.date, b.date)


def _join_event(target: EventRecord, other: EventRecord) -> None:
    target.actors = list(dict.fromkeys(target.actors + other.actors))
    if target.date.start is None and other.date.start is not None:
        target.date = other.date
    if target.place is None and other.place is not None:
        target.place, target.place_country, target.latitude, target.longitude = other.place, other.place_country, other.latitude, other.longitude


def _join_transfer(target: TransferRecord, other: TransferRecord, items: dict[str, None]) -> None:
    """Merges `other` into `target`; `other`'s items join `items` (target's, see _Fact.items)."""
    if target.quantity_text is None and other.quantity_text is not None:
        target.quantity_text, target.quantity_low, target.quantity_high, target.unit = other.quantity_text, other.quantity_low, other.quantity_high, other.unit
    if target.date.start is None and other.date.start is not None:
        target.date = other.date
    target.prior_used = target.prior_used and other.prior_used
    target.status = max(target.status, other.status, key=TRANSFER_STAGES.index)
    items.update(dict.fromkeys(other.item.split("; ")))


def _assign_ids(facts: list[_Fact], key) -> dict[int, str]:
    """Content-derived ids; a collision between two facts takes a counter in a stable order."""
    out: dict[int, str] = {}
    seen: Counter = Counter()
    for fact in sorted(facts, key=lambda f: (str(key(f)), min(f.local))):
        parts = key(fact)
        base = stable_id(parts[0], *[",".join(p) if isinstance(p, list) else p for p in parts[1:]])
        seen[base] += 1
        out[id(fact)] = base if seen[base] == 1 else stable_id(parts[0], base, seen[base])
    return out


def _events_frame(facts, id_of) -> pd.DataFrame:
    rows = []
    for f in facts:
        r: EventRecord = f.record
        docs = {d for d, _, _ in f.sources}
        rows.append({
            "event_id": id_of[id(f)], "event_type": r.event_type, "plover_type": r.plover_type,
            "initiator_id": r.actors[0] if r.actors else None, "actor_ids": list(r.actors),
            "date_start": r.date.start, "date_end": r.date.end, "date_precision": r.date.precision, "date_text": r.date.text,
            "place": r.place, "place_country": r.place_country, "latitude": r.latitude, "longitude": r.longitude,
            "status": r.status, "summary": _summary(f), "n_documents": len(docs),
            "confidence": confidence(EVENT_BASE[r.status], len(docs), all(hedged for _, _, hedged in f.sources), False),
        })
    return pd.DataFrame(rows, columns=["event_id", "event_type", "plover_type", "initiator_id", "actor_ids", "date_start", "date_end", "date_precision", "date_text", "place", "place_country", "latitude", "longitude", "status", "summary", "confidence", "n_documents"])


DEAL_EVENT_TYPES = ("agreement", "negotiation", "meeting")


def _deal_events(events: list[_Fact], id_of) -> dict[tuple[str, int], str]:
    """(doc_id, sentence start) to the deal reported in that sentence: an agreement before talks before a meeting."""
    out: dict[tuple[str, int], str] = {}
    for event_type in DEAL_EVENT_TYPES:
        for fact in sorted((f for f in events if f.record.event_type == event_type), key=lambda f: id_of[id(f)]):
            for doc_id, char_start, _ in fact.sources:
                out.setdefault((doc_id, char_start), id_of[id(fact)])
    return out


def _transfers_frame(facts, id_of, local_transfer, deal_events) -> pd.DataFrame:
    rows = []
    for f in facts:
        r: TransferRecord = f.record
        docs = {d for d, _, _ in f.sources}
        exchange = None
        for doc_id, index in f.local:
            if exchange is None and r.exchange_for is not None:
                exchange = local_transfer.get((doc_id, r.exchange_for))
        event_id = next((deal_events[(d, start)] for d, start, _ in f.sources if (d, start) in deal_events), None)
        rows.append({
            "transfer_id": id_of[id(f)], "supplier_id": r.supplier, "recipient_id": r.recipient, "category": r.category,
            "item": r.item, "quantity_text": r.quantity_text, "quantity_low": r.quantity_low, "quantity_high": r.quantity_high,
            "unit": r.unit, "status": r.status, "exchange_for": exchange if exchange != id_of[id(f)] else None, "event_id": event_id,
            "date_start": r.date.start, "date_precision": r.date.precision, "n_documents": len(docs),
            "confidence": confidence(TRANSFER_BASE[r.status], len(docs), all(hedged for _, _, hedged in f.sources), r.prior_used),
        })
    return pd.DataFrame(rows, columns=["transfer_id", "supplier_id", "recipient_id", "category", "item", "quantity_text", "quantity_low", "quantity_high", "unit", "status", "exchange_for", "event_id", "date_start", "date_precision", "confidence", "n_documents"]).astype({"quantity_low": "Int64", "quantity_high": "Int64"})


def _summary(fact: _Fact) -> str:
    sentence = " ".join(fact.summary.split())
    return sentence if len(sentence) <= SUMMARY_CHARS else sentence[: SUMMARY_CHARS - 1] + "…"


CITATION_SCHEMA = pa.schema([
    ("citation_id", pa.string()), ("doc_id", pa.string()), ("kind", pa.string()), ("target_table", pa.string()),
    ("target_id", pa.string()), ("marker", pa.string()), ("source_actor_id", pa.string()), ("source_text", pa.string()),
    ("quote", pa.string()), ("hedge", pa.string()), ("status", pa.string()), ("sentence", pa.string()),
    ("char_start", pa.int64()), ("char_end", pa.int64()),
])
CITATION_COLUMNS = CITATION_SCHEMA.names


RESOLVED_ROWS_PER_EXTEND = 1024


def _resolved_citations(pending: Iterable[pa.RecordBatch], local_event, local_transfer, actor_id_of) -> _RowChunks:
    """The pending citations with the ids of what they support (each citation once, in the order
    given), one record batch of them at a time."""
    out = _RowChunks(CITATION_SCHEMA)
    seen: set[str] = set()
    for batch in pending:
        columns = batch.to_pydict()
        rows = []
        for doc_id, kind, char_start, char_end, hedge, sentence, marker, source_actor, source_text, quote, targets in zip(
            *(columns[name] for name in PENDING_CITATION_SCHEMA.names)
        ):
            target_table = target_id = status = None
            for target in targets:
                table = target["table"]
                target_id = (local_event if table == "events" else local_transfer).get((doc_id, target["index"]))
                if target_id:
                    target_table, status = table, target["status"]
                    break
            source_actor_id = actor_id_of(source_actor)
            cid = stable_id("citation", doc_id, kind, char_start, char_end, target_table, target_id, marker, source_actor_id, quote)
            if cid in seen:
                continue
            seen.add(cid)
            rows.append((cid, doc_id, kind, target_table, target_id, marker, source_actor_id, source_text, quote,
                         hedge, status, sentence, char_start, char_end))
            # A few rows at a time as tuples: this is the run's largest moment, and a batch's worth would add to it.
            if len(rows) >= RESOLVED_ROWS_PER_EXTEND:
                out.extend(rows)
                rows.clear()
        out.extend(rows)
        del batch, columns, rows
    return out
