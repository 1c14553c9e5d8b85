"""One document's text and date in, its actors, mentions, events, transfers and citations out."""
from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from spacy.language import Language
from spacy.tokens import Doc

from armsledger.extract.actors import find_actors
from armsledger.extract.citations import CitationFinder
from armsledger.extract.context import DocumentContext
from armsledger.extract.dates import cached_resolver
from armsledger.extract.events import find_events
from armsledger.extract.nlp import load_pipeline
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.records import CitationRecord, DateValue, DocumentExtraction
from armsledger.extract.fingerprint import extractor_fingerprint, model_version
from armsledger.extract.resources import Resources, load_resources
from armsledger.extract.transfers import TransferFinder

# nlp.pipe's batch: on news-length texts (about 260 words) 32 and 64 parse fastest, about 15 % faster than
# spaCy's default of 256; 32 holds fewer Docs at a time
PIPE_BATCH_SIZE = 32


@dataclass
class Extractor:
    """The loaded model, gazetteers and rules; build once with load_extractor and pass it in."""

    nlp: Language
    resources: Resources
    fingerprint: str
    transfers: TransferFinder
    citations: CitationFinder
    resolve_date: Callable[[str, dt.date | None, str | None], DateValue | None] = field(
        default_factory=cached_resolver, repr=False, compare=False
    )

    def extract(self, doc_id: str, text: str, published=None, published_precision: str | None = None) -> DocumentExtraction:
        return self._extract_parsed(doc_id, self.nlp(text), published, published_precision)

    def extract_many(self, items: Iterable[tuple[str, str, dt.date | None, str | None]]) -> Iterator[DocumentExtraction]:
        """extract() for each (doc_id, text, published, published_precision), in order, parsed in batches by nlp.pipe."""
        waiting: deque[tuple[str, dt.date | None, str | None]] = deque()

        def texts() -> Iterator[str]:
            for doc_id, text, published, published_precision in items:
                waiting.append((doc_id, published, published_precision))
                yield text

        for doc in self.nlp.pipe(texts(), batch_size=PIPE_BATCH_SIZE):
            doc_id, published, published_precision = waiting.popleft()
            extraction = self._extract_parsed(doc_id, doc, published, published_precision)
            # the consumer may hold this generator open for long: the Doc must not outlive its extraction
            del doc
            yield extraction

    def _extract_parsed(self, doc_id: str, doc: Doc, published, published_precision: str | None) -> DocumentExtraction:
        parsed = ParsedDocument(doc)
        actors = find_actors(parsed, self.resources)
        context = DocumentContext(parsed, self.resources, published, published_precision, self.resolve_date)
        events = find_events(parsed, actors, context, self.resources)
        transfers = self.transfers.find(parsed, actors, context)
        citations = self.citations.find(parsed, actors)
        _link_citations(citations, events, transfers, context)
        return DocumentExtraction(doc_id, actors.info, actors.mentions, events, transfers, citations)


def load_extractor(model: str, max_chars: int = 5_000_000) -> Extractor:
    """Loads the spaCy model and the curated data once; the fingerprint names model, data and rules."""
    resources = load_resources()
    nlp = load_pipeline(model, resources)
    nlp.max_length = max(nlp.max_length, max_chars + 1)
    return Extractor(
        nlp=nlp,
        resources=resources,
        fingerprint=extractor_fingerprint(model, model_version(model), resources.fingerprint),
        transfers=TransferFinder(resources),
        citations=CitationFinder(resources),
    )


def _link_citations(citations: list[CitationRecord], events, transfers, context: DocumentContext) -> None:
    """Each citation supports the rows reported in its sentence; a marker standing alone, those of the sentence before."""
    by_sentence: dict[int, list[tuple[str, int]]] = {}
    for index, event in enumerate(events):
        for ev in event.evidence:
            by_sentence.setdefault(ev.char_start, []).append(("events", index))
    for index, transfer in enumerate(transfers):
        for ev in transfer.evidence:
            by_sentence.setdefault(ev.char_start, []).append(("transfers", index))
    starts = sorted(by_sentence)
    for citation in citations:
        targets = by_sentence.get(citation.char_start)
        if not targets and citation.kind == "marker":
            paragraph = context.paragraph(citation.char_start)
            earlier = [s for s in starts if s < citation.char_start and context.paragraph(s) == paragraph]
            targets = by_sentence[earlier[-1]] if earlier else None
        citation.targets = list(dict.fromkeys(targets or []))
