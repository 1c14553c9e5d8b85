"""Stage 3: cached per-document extractions -> the six contract tables (ids, merging across documents)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import Document
from flows.extract import extractions_of


@task(name="normalise-tables", cache_policy=NO_CACHE, persist_result=False)
def normalise_tables(
    documents: Sequence[Document], keys: Mapping[str, str], fingerprint: str, settings: Settings
) -> dict[str, pd.DataFrame]:
    """documents, actors, mentions, events, transfers and citations as DataFrames, reading each
    document's extraction from the cache (`keys`: doc_id -> its key) in doc_id order (one in memory at
    a time)."""
    ordered = sorted(documents, key=lambda d: d.doc_id)
    in_order = [keys[d.doc_id] for d in ordered]
    return pipeline.normalise(ordered, extractions_of(ordered, in_order, fingerprint, settings))
