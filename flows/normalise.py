"""Stage 3: per-document extractions -> the six contract tables (ids, merging across documents)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from armsledger import pipeline
from armsledger.ingest import Document


@task(name="normalise-tables", cache_policy=NO_CACHE, persist_result=False)
def normalise_tables(documents: Sequence[Document], extractions: Sequence[Any]) -> dict[str, pd.DataFrame]:
    """documents, actors, mentions, events, transfers and citations as DataFrames."""
    return pipeline.normalise(documents, extractions)
