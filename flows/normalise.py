"""Stage 3: cached per-document extractions -> the six contract tables (ids, merging across documents)."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import Document
from flows.extract import extractions_of


@task(name="normalise-tables", cache_policy=NO_CACHE, persist_result=False)
def normalise_tables(
    documents: Sequence[Document], keys: Sequence[str], fingerprint: str, settings: Settings
) -> dict[str, pd.DataFrame]:
    """documents, actors, mentions, events, transfers and citations as DataFrames, reading each
    document's extraction from the cache in doc_id order (one in memory at a time)."""
    return pipeline.normalise(documents, extractions_of(documents, keys, fingerprint, settings))
