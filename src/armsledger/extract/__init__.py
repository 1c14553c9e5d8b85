"""Extraction: a parsed document's actors, events, transfers and citations."""
from armsledger.extract.records import DocumentExtraction

__all__ = ["Extractor", "DocumentExtraction", "load_extractor"]


def __getattr__(name: str):
    # spaCy is imported only when the extractor itself is asked for: the fingerprint and the records need
    # none of it, and importing it costs about a second.
    if name in ("Extractor", "load_extractor"):
        from armsledger.extract import document

        return getattr(document, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
