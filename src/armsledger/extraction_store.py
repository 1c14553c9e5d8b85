"""The extraction cache: one file per document under processed/cache/extractions/, named by the document's key.

A key (armsledger.pipeline.document_key) is a digest of everything a
document's extraction depends on, so an entry never goes stale: a changed text,
sidecar or extractor gives a new key, and the old entry is simply not asked for
again. Entries are plain pickles written atomically (a temporary file, then a
rename), so a reader never sees half an entry, and two writers of the same key
(two Dask workers, a retried task) write the same bytes.

Why not Prefect's result store: its cache is keyed per task run, and its
records wrap each pickle in JSON and base64. Reading 5,000 extractions back
through it took twice as long as reading these files, and a run needs every
document's extraction, one at a time, in doc_id order.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SUBDIR = "extractions"


class ExtractionStore:
    """Extractions by document key, in a folder shared by every process that parses (flow, Dask workers)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def under(cls, cache_dir: Path) -> ExtractionStore:
        """The store inside a run's cache folder (Settings.cache_dir)."""
        return cls(Path(cache_dir) / SUBDIR)

    def path_of(self, key: str) -> Path:
        # Two levels of fan-out keep folders small at hundreds of thousands of documents.
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def missing(self, keys: Iterable[str]) -> set[str]:
        """The keys that have no entry."""
        return {key for key in keys if not self.has(key)}

    def write(self, key: str, extraction: Any) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                pickle.dump(extraction, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> Any | None:
        """The entry under `key`; None when there is none or it cannot be read (then it is parsed again)."""
        try:
            return pickle.loads(self.path_of(key).read_bytes())
        except Exception:  # no entry, a damaged one, or one from an older shape of the records: not an answer
            return None
