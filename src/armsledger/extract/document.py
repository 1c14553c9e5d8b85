"""One document's text and date in, its actors, mentions, events, transfers and citations out."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from spacy.language import Language

from armsledger.extract.actors import find_actors
from armsledger.extract.citations import CitationFinder
from armsledger.extract.context import DocumentContext
from armsledger.extract.events import find_events
from armsledger.extract.nlp import load_pipeline
from armsledger.extract.records import CitationRecord, DocumentExtraction
from armsledger.extract.resources import Resources, load_resources
from armsledger.extract.transfers import TransferFinder

RULES_DIR = Path(__file__).resolve().parent


@dataclass
class Extractor:
    """The loaded model, gazetteers and rules; build once with load_extractor and pass it in."""

    nlp: Language
    resources: Resources
    fingerprint: str
    transfers: TransferFinder
    citations: CitationFinder

    def extract(self, doc_id: str, text: str, published=None, published_precision: str | None = None) -> DocumentExtraction:
        parsed = self.nlp(text)
        actors = find_actors(parsed, self.resources)
        context = DocumentContext(parsed, self.resources, published, published_precision)
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
        fingerprint=extractor_fingerprint(model, nlp.meta.get("version", ""), resources.fingerprint),
        transfers=TransferFinder(resources),
        citations=CitationFinder(resources),
    )


def extractor_fingerprint(model: str, model_version: str, resources_fingerprint: str) -> str:
    """Changes when the model, the curated data or any rule module changes."""
    digest = hashlib.sha256(f"{model}\0{model_version}\0{resources_fingerprint}".encode())
    for path in sorted(RULES_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


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
