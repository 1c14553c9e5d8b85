"""Stage 2: documents -> DocumentExtraction, in batches, cached per document.

The extractor (spaCy pipeline + gazetteers + rules) is loaded once per process
by `get_extractor`, only when a document has to be parsed, and never passed to a
task: tasks receive documents and the extractor's fingerprint, a string computed
without loading spaCy (armsledger.extract.document.fingerprint_of).

Two layers of cache, both in Prefect's result storage
(PREFECT_LOCAL_STORAGE_PATH, `processed/cache/prefect` by default):

- `extract_batch` has a cache key made of its documents' keys (and a digest of
  this file): a batch whose documents are all unchanged is not run at all (its
  task run is `Cached`, and its one stored record holds every extraction of the
  batch). Batches are cut where the documents themselves say
  (armsledger.pipeline.batches), so one new document changes one batch.
- Inside a batch that does run, each document's extraction is stored under the
  document's own key, so an unchanged document in a changed batch is read back
  rather than parsed by spaCy again; the others are parsed together by
  `Extractor.extract_many` (spaCy's nlp.pipe).

A document's key (armsledger.pipeline.document_key) is the SHA-256 of the
extractor fingerprint (model, gazetteers, rule modules), CACHE_VERSION, and the
document's row: doc_id (from the text), the file's sha256 and the sidecar
metadata (a new `published` date changes how relative dates resolve).
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.logging import get_run_logger
from prefect.results import get_result_store

from armsledger import pipeline
from armsledger.config import Settings
from armsledger.ingest import Document
from armsledger.pipeline import document_key
from armsledger.progress import document_progress

_KEY_PREFIX = "armsledger-extract"
# A batch's stored result is a BatchExtraction defined here: any edit of this file starts new batch
# records (the per-document records hold only extractions and stay valid).
_MODULE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]

_load_lock = threading.Lock()
_extractors: dict[str, Any] = {}
# Every parse runs on this one thread. spaCy pipelines are not documented as thread-safe, the GIL gives
# nothing to overlap, and each thread that runs nlp.pipe grows a malloc arena of its own: parsing on
# Prefect's pool of task threads took a 2,000-document run's peak memory from 1.0 GiB to 3.3 GiB.
_parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="armsledger-parse")

__all__ = ["document_key", "extract_documents", "get_extractor", "task_runner"]


def get_extractor(settings: Settings) -> Any:
    """The process's extractor for this spaCy model, loaded on first use (about 2 s) and kept."""
    with _load_lock:
        extractor = _extractors.get(settings.spacy_model)
        if extractor is None:
            extractor = _extractors[settings.spacy_model] = pipeline.load_extractor(settings)
        return extractor


def batch_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache key of an extract_batch run: its documents' keys, in order."""
    keys = [_MODULE_DIGEST] + [document_key(d, parameters["fingerprint"]) for d in parameters["documents"]]
    digest = hashlib.sha256("\n".join(keys).encode("ascii")).hexdigest()
    return f"{_KEY_PREFIX}-batch-{digest}"


@dataclass(frozen=True)
class BatchExtraction:
    """One batch's extractions (in the batch's order) and how many spaCy actually read."""

    extractions: list[Any]
    read: int
    reused: int


@task(name="extractor-fingerprint", cache_policy=NO_CACHE, persist_result=False)
def extractor_fingerprint(settings: Settings) -> str:
    """The fingerprint of the extractor for settings.spacy_model, without loading spaCy's model."""
    from armsledger.extract.document import fingerprint_of

    return fingerprint_of(settings.spacy_model)


@task(name="extract-batch", cache_key_fn=batch_cache_key, persist_result=True)
def extract_batch(documents: list[Document], fingerprint: str, settings: Settings) -> BatchExtraction:
    """Extractions of a batch of documents; each document parsed only if its key is not stored yet."""
    # The body is a module-level function: a Dask worker receives this task's function pickled by value, and
    # its globals must not include the module's locks (they cannot be pickled); `_extract_batch` travels
    # by reference and runs with the worker's own locks and extractor.
    return _extract_batch(documents, fingerprint, settings)


def _extract_batch(documents: list[Document], fingerprint: str, settings: Settings) -> BatchExtraction:
    store = get_result_store()
    keys = [f"{_KEY_PREFIX}-doc-{document_key(document, fingerprint)}" for document in documents]
    extractions = [_stored(store, key) for key in keys]
    missing = [i for i, extraction in enumerate(extractions) if extraction is None]
    if missing:
        extractor = get_extractor(settings)
        if extractor.fingerprint != fingerprint:
            raise RuntimeError(
                f"extractor fingerprint changed during the run ({fingerprint} -> {extractor.fingerprint})"
            )
        parsed = _parser.submit(_extract_all, extractor, [documents[i] for i in missing]).result()
        for i, extraction in zip(missing, parsed):
            store.write(extraction, key=keys[i])
            extractions[i] = extraction
    read = len(missing)
    get_run_logger().info("%d documents: %d parsed, %d from the cache", len(documents), read, len(documents) - read)
    return BatchExtraction(extractions=extractions, read=read, reused=len(documents) - read)


def _extract_all(extractor: Any, documents: list[Document]) -> list[Any]:
    return list(pipeline.extract_documents(extractor, documents))


def _stored(store: Any, key: str) -> Any | None:
    try:
        if not store.exists(key):
            return None
        return store.read(key).result
    except Exception:  # an unreadable record (a half-written file, an old format): parse again
        return None


def task_runner(dask_address: str | None = None) -> Any:
    """The task runner for a flow that maps extract_batch: DaskTaskRunner against `dask_address` (a scheduler
    such as tcp://10.0.0.5:8786), or Prefect's default in-process thread pool when it is None.

    Every task of the flow then runs on the Dask workers, in their own processes: they need armsledger
    installed, the same raw/ and processed/ paths, the same PREFECT_API_URL (a real Prefect server, not a
    temporary one) and the same PREFECT_LOCAL_STORAGE_PATH (the extraction cache lives there).
    """
    if not dask_address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=dask_address)


@dataclass(frozen=True)
class Extracted:
    """Every document's extraction, in doc_id order, with the cache's share."""

    documents: list[Document]
    extractions: list[Any]
    read: int
    cached: int


def extract_documents(
    documents: Sequence[Document], fingerprint: str, settings: Settings, progress: bool = False
) -> Extracted:
    """Maps extract_batch over the batches (flow-level orchestration, called from a flow).

    `progress`: show a bar of documents done on stderr (when it is a terminal) as batches finish.
    """
    groups = pipeline.batches(documents)
    if not groups:
        return Extracted([], [], 0, 0)
    futures = extract_batch.map(groups, fingerprint=unmapped(fingerprint), settings=unmapped(settings))
    sizes = {future: len(group) for future, group in zip(futures, groups)}
    with document_progress(sum(sizes.values()), enabled=progress) as advance:
        for future in as_completed(list(futures)):
            advance(sizes[future])
    ordered, extractions, read, cached = [], [], 0, 0
    for group, future in zip(groups, futures):
        batch = future.result()
        ordered += group
        extractions += batch.extractions
        if future.state.name == "Cached":  # the whole batch came from the cache: spaCy read nothing
            cached += len(group)
        else:
            read += batch.read
            cached += batch.reused
    return Extracted(ordered, extractions, read, cached)
