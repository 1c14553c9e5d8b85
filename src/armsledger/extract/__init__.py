"""Extraction: a parsed document's actors, events, transfers and citations."""
from armsledger.extract.document import Extractor, load_extractor
from armsledger.extract.records import DocumentExtraction

__all__ = ["Extractor", "DocumentExtraction", "load_extractor"]
