"""Stage 2: documents -> extractions in the cache, parsed in batches; the tables' stage reads them back.

The extractor (spaCy pipeline + gazetteers + rules) is loaded once per process
by `get_extractor`, only when a document has to be parsed, and never passed to a
task: tasks receive documents and the extractor's fingerprint, a string computed
without loading spaCy (armsledger.extract.fingerprint.fingerprint_of).

The cache is armsledger.extraction_store: one entry per document under
processed/cache/extractions/, named by the document's key
(armsledger.pipeline.document_key: the SHA-256 of the extractor fingerprint —
model, gazetteers, rule modules —, CACHE_VERSION, the code of the stored form, and the document's row:
doc_id from the text, the file's sha256 and the sidecar metadata, since a new
`published` date changes how relative dates resolve).

The flow looks up every key first, and only documents without an entry become
work: they are cut into batches that shrink as the work runs out
(armsledger.pipeline.batches) and `extract_batch` is mapped over the batches.
A batch task parses its documents together (spaCy's nlp.pipe), writes each
extraction to the cache, laid out as the tables take it
(armsledger.document_rows), and returns only a count, so nothing large travels back
from a Dask worker, and a run that adds one document runs one small task.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prefect import task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.logging import get_run_logger

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.document_rows import rows_of
from armsledger.extraction_store import ExtractionStore
from armsledger.ingest import Document
from armsledger.pipeline import document_key
from armsledger.progress import document_progress
from armsledger.runtime import keep_heap_between_batches, release_free_heap

_load_lock = threading.Lock()
_extractors: dict[str, Any] = {}
# Every parse runs on this one thread. spaCy pipelines are not documented as thread-safe, the GIL gives
# nothing to overlap, and each thread that runs nlp.pipe grows a malloc arena of its own: parsing on
# Prefect's pool of task threads took a 2,000-document run's peak memory from 1.0 GiB to 3.3 GiB.
_parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="armsledger-parse")

__all__ = ["document_key", "extract_documents", "extractions_of", "get_extractor", "release_extractors", "task_runner"]


def get_extractor(settings: Settings) -> Any:
    """The process's extractor for this spaCy model, loaded on first use (about 2 s) and kept until
    release_extractors (a Dask worker keeps its own for the worker's life)."""
    with _load_lock:
        extractor = _extractors.get(settings.spacy_model)
        if extractor is None:
            keep_heap_between_batches()
            extractor = _extractors[settings.spacy_model] = pipeline.load_extractor(settings)
        return extractor


def release_extractors() -> None:
    """Lets go of this process's extractors once every document has its extraction.

    The tables are built after that, and the model (about 70 MiB with its
    working memory) would otherwise sit under the run's peak, which comes then.
    """
    with _load_lock:
        if not _extractors:
            return
        _extractors.clear()
    gc.collect()  # the pipeline's objects refer to each other: without a collection they stay
    release_free_heap()


@task(name="extractor-fingerprint", cache_policy=NO_CACHE, persist_result=False)
def extractor_fingerprint(settings: Settings) -> str:
    """The fingerprint of the extractor for settings.spacy_model, without loading spaCy's model."""
    from armsledger.extract.fingerprint import fingerprint_of

    return fingerprint_of(settings.spacy_model)


@task(name="extract-batch", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=2)
def extract_batch(documents: list[Document], fingerprint: str, settings: Settings) -> int:
    """Parses a batch of documents and stores each extraction under its document's key; returns how many."""
    # The body is a module-level function: a Dask worker receives this task's function pickled by value, and
    # its globals must not include the module's locks (they cannot be pickled); `_extract_batch` travels
    # by reference and runs with the worker's own locks and extractor.
    return _extract_batch(documents, fingerprint, settings)


def _extract_batch(documents: list[Document], fingerprint: str, settings: Settings) -> int:
    store = ExtractionStore.under(settings.cache_dir)
    for document, extraction in zip(documents, _parse(documents, fingerprint, settings)):
        store.write(document_key(document, fingerprint), rows_of(extraction))
    # What spaCy freed while parsing the batch would otherwise stay with the process, and scattered
    # through the heap, it adds up over a long run.
    release_free_heap()
    get_run_logger().info("%d documents parsed", len(documents))
    return len(documents)


def _parse(documents: list[Document], fingerprint: str, settings: Settings) -> list[Any]:
    extractor = get_extractor(settings)
    if extractor.fingerprint != fingerprint:
        raise RuntimeError(f"extractor fingerprint changed during the run ({fingerprint} -> {extractor.fingerprint})")
    return _parser.submit(_extract_all, extractor, documents).result()


def _extract_all(extractor: Any, documents: list[Document]) -> list[Any]:
    return list(pipeline.extract_documents(extractor, documents))


def task_runner(dask_address: str | None = None) -> Any:
    """The task runner for a flow that maps extract_batch: DaskTaskRunner against `dask_address` (a scheduler
    such as tcp://10.0.0.5:8786), or Prefect's default in-process thread pool when it is None.

    Every task of the flow then runs on the Dask workers, in their own processes: they need armsledger
    installed, the same raw/ and processed/ paths (each worker writes the extractions it parses to
    processed/cache/extractions/) and the same PREFECT_API_URL (a real Prefect server, not a temporary one).
    """
    if not dask_address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=dask_address)


@dataclass(frozen=True)
class Extracted:
    """The cache key of every document's extraction (doc_id -> key), and the cache's share.

    Not the documents themselves: a list of them here would keep their texts, which the quality gate
    takes from the ingest result (IngestResult.take_texts), alive for the rest of the run.
    """

    keys: dict[str, str]
    read: int
    cached: int


def extract_documents(
    documents: Sequence[Document], fingerprint: str, settings: Settings, progress: bool = False
) -> Extracted:
    """Maps extract_batch over batches of the documents that have no cached extraction (flow-level
    orchestration, called from a flow); afterwards every document has one.

    `progress`: show a bar of documents done on stderr (when it is a terminal) as batches finish.
    """
    ordered = sorted(documents, key=lambda d: d.doc_id)
    keys = [document_key(d, fingerprint) for d in ordered]
    store = ExtractionStore.under(settings.cache_dir)
    missing = [d for d, key in zip(ordered, keys) if not store.has(key)]
    # Largest batches first (`batches` cuts them so): on several workers, the last ones to finish are then
    # small, and no worker waits long at the end for another's large batch.
    groups = pipeline.batches(missing)
    with document_progress(len(ordered), enabled=progress) as advance:
        advance(len(ordered) - len(missing))
        if groups:
            futures = extract_batch.map(groups, fingerprint=unmapped(fingerprint), settings=unmapped(settings))
            sizes = {future: len(group) for future, group in zip(futures, groups)}
            for future in as_completed(list(futures)):
                advance(sizes[future])
            futures.result()  # raises the first batch that failed
    release_extractors()
    return Extracted(dict(zip((d.doc_id for d in ordered), keys)), read=len(missing), cached=len(ordered) - len(missing))


def extractions_of(
    documents: Sequence[Document], keys: Sequence[str], fingerprint: str, settings: Settings
) -> Iterator[Any]:
    """Each document's extraction from the cache, one at a time, in the order given.

    An entry that has gone or cannot be read (a damaged file, a cache cleared
    during the run) is parsed again and stored, with a warning, rather than
    failing the run.
    """
    store = ExtractionStore.under(settings.cache_dir)
    for document, key in zip(documents, keys, strict=True):
        extraction = store.read(key)
        if extraction is None:
            get_run_logger().warning(
                "no readable cached extraction for %s (%s): parsing it again", document.path, document.doc_id
            )
            extraction = rows_of(_parse([document], fingerprint, settings)[0])
            store.write(key, extraction)
        yield extraction
