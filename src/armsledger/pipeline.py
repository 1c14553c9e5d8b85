"""The pipeline's stages as plain Python, and what a run reports.

The Prefect flows in `flows/` call these functions, one task per stage; they add
orchestration (retries, the extraction cache, run history) and nothing else.
`run_pipeline` runs the same stages in order without Prefect and without any
cache: the reference for what a run must produce, and a way to debug a stage
without a Prefect server.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from armsledger.config import Settings
from armsledger.ingest import Document, IngestResult, ingest
from armsledger.schema import TABLES

# Documents per extraction task. Each task costs the flow, the Prefect server and a Dask worker about a
# tenth of a second of bookkeeping (its run, its states, its log lines), against spaCy's 0.05 s a document:
# at most EXTRACT_BATCH_MAX a task keeps that near 1 %. The batches shrink as the work runs out (see
# `batches`), down to EXTRACT_BATCH_MIN, so that workers that share them finish at about the same time.
EXTRACT_BATCH_MAX = 256
EXTRACT_BATCH_MIN = 16
# Each batch takes this share of the documents not yet in a batch (1/8), within the bounds above.
EXTRACT_BATCH_SHARES = 8
# Part of every document key: bump it when the stored shape of an extraction
# changes without the extractor's fingerprint changing.
CACHE_VERSION = "1"
# Part of every input manifest: bump it when what the manifest covers changes.
INPUTS_FORMAT = 1
# The libraries whose versions can change the tables or their checks without any file
# of this project changing (spaCy's model and rules are in the extractor fingerprint).
TABLE_LIBRARIES = ("pandas", "pyarrow", "numpy", "spacy", "great-expectations")
# The libraries that decide what a file of raw/ reads as (armsledger.ingest): the ingest cache is kept per
# their versions, as per the package's code.
INGEST_LIBRARIES = ("charset-normalizer", "pycountry", "pyyaml", "trafilatura")
# How long a publisher waits for another one (a scheduled run and a manual run
# can meet) before it gives up with ReleaseLockedError.
PUBLISH_LOCK_TIMEOUT_SECONDS = 60.0


class ValidationFailed(Exception):
    """The tables broke at least one expectation: nothing was published.

    `report` is the full ValidationReport; `summary` the RunSummary of the run
    up to the gate (documents read, rows per table) when the caller knows it.
    The message names every failed expectation.
    """

    def __init__(self, report: Any, summary: RunSummary | None = None) -> None:
        self.report = report
        self.summary = summary
        failed = failed_expectations(report)
        lines = "\n".join(f"  - {line}" for line in failed)
        super().__init__(
            f"validation failed, nothing published: {len(failed)} of {len(report.results)} "
            f"expectations failed\n{lines}"
        )

    def __reduce__(self):
        return (type(self), (self.report, self.summary))


@dataclass(frozen=True)
class RunSummary:
    """What one run did, in plain values (JSON-ready through to_dict)."""

    raw_dir: str
    processed_dir: str
    documents: int
    rejected: int
    warnings: int
    rows: dict[str, int]
    validation_success: bool
    expectations: int
    failed_expectations: list[str]
    # Per table: expectations passed, failed and skipped (skipped: needed texts that were not given).
    validation_by_table: dict[str, dict[str, int]]
    published: bool
    version: str | None
    release_path: str | None
    latest_version: str | None
    reason: str
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    rejected_files: list[dict[str, str]] = field(default_factory=list)
    # Documents that spaCy read in this run, and documents whose extraction came from the cache.
    extracted: int | None = None
    extraction_cached: int | None = None
    # False when the run stopped after ingest because the latest release was built from the same
    # inputs (documents, extractor, code, expectations): then rows are that release's.
    tables_built: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- stages -------------------------------------------------------------------


def read_raw(settings: Settings) -> IngestResult:
    """Every usable document under raw/, and every file that could not be used; files unchanged since
    an earlier run are taken from processed/cache/ingest/ (armsledger.ingest_cache) rather than read."""
    from armsledger.ingest_cache import IngestCache, reader_digest
    from armsledger.runtime import release_free_heap

    digest = reader_digest(code_digest(), library_versions(INGEST_LIBRARIES),
                           settings.max_file_bytes, settings.max_text_chars)
    cache = IngestCache.under(settings.cache_dir, digest)
    result = ingest(settings.raw_dir, settings, cache)
    try:
        cache.save()
    except OSError as exc:  # an unwritable cache costs the next run its reading, not this run its result
        logging.getLogger(__name__).warning("ingest cache not saved to %s (%s): the next run reads every file",
                                            cache.path, exc)
    del cache
    release_free_heap()  # what reading and saving the cache took, back before the run's larger stages
    return result


def rejected_items(ingested: IngestResult) -> list[dict[str, str]]:
    """Ingest rejections and warnings as the release's rejected.json items.

    `kind` says whether the file was skipped (`rejected`) or read with a
    problem noted (`warning`).
    """
    items = [{"path": r.path, "reason": r.reason, "kind": "rejected"} for r in ingested.rejected]
    items += [{"path": w.path, "reason": w.reason, "kind": "warning"} for w in ingested.warnings]
    return sorted(items, key=lambda item: (item["path"], item["kind"], item["reason"]))


def batches(
    documents: Iterable[Document], largest: int = EXTRACT_BATCH_MAX, smallest: int = EXTRACT_BATCH_MIN
) -> list[list[Document]]:
    """Documents in doc_id order, cut into batches that shrink from `largest` to `smallest` documents.

    Each batch takes an EXTRACT_BATCH_SHARES-th of the documents left (guided
    self-scheduling): the bulk of the work goes in few large tasks, and the last
    tasks are small, so that on several workers none waits long at the end for
    another's large batch. The cut depends only on how many documents there
    are: each document's extraction is cached on its own, so which batch it was
    parsed in does not matter afterwards.
    """
    if not 1 <= smallest <= largest:
        raise ValueError(f"batch sizes must satisfy 1 <= smallest <= largest (got {smallest}, {largest})")
    ordered = sorted(documents, key=lambda d: d.doc_id)
    groups: list[list[Document]] = []
    start = 0
    while start < len(ordered):
        left = len(ordered) - start
        size = min(largest, max(smallest, -(-left // EXTRACT_BATCH_SHARES)))
        groups.append(ordered[start : start + size])
        start += size
    return groups


def document_key(document: Document, fingerprint: str) -> str:
    """What one document's cached extraction depends on, as a digest: the extractor's fingerprint,
    CACHE_VERSION, the code that lays an extraction out as rows (stored_form_digest) and the document's row
    (doc_id from the text, the file's sha256, path and sidecar metadata: a new `published` date changes
    how relative dates resolve)."""
    payload = json.dumps([CACHE_VERSION, fingerprint, stored_form_digest(), document.row()], sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@functools.cache
def stored_form_digest() -> str:
    """SHA-256 of the modules that turn an extraction into the rows the cache holds (document_rows, and ids
    for the ids made there): changing either makes every entry stale."""
    from armsledger import document_rows, ids

    digest = hashlib.sha256()
    for module in (document_rows, ids):
        digest.update(Path(module.__file__).read_bytes() + b"\0")
    return digest.hexdigest()


def load_extractor(settings: Settings) -> Any:
    """The extractor (spaCy model, gazetteers, rules) for these settings: about 2 s, do it once."""
    from armsledger import extract

    parameters = inspect.signature(extract.load_extractor).parameters
    if "settings" in parameters:
        return extract.load_extractor(settings)
    if "max_chars" in parameters:
        return extract.load_extractor(settings.spacy_model, max_chars=settings.max_text_chars)
    return extract.load_extractor(settings.spacy_model)


def extract_documents(extractor: Any, documents: Sequence[Document]) -> Iterator[Any]:
    """Each document's DocumentExtraction, in order, the texts parsed in batches by spaCy (nlp.pipe)."""
    return extractor.extract_many((d.doc_id, d.text, d.published, d.published_precision) for d in documents)


def normalise(documents: Sequence[Document], extractions: Iterable[Any]) -> dict[str, pd.DataFrame]:
    """The six contract tables from the documents and their extractions."""
    from armsledger.normalise import build_tables
    from armsledger.runtime import release_free_heap

    tables = build_tables(documents, extractions)
    release_free_heap()  # what merging the extractions took, no longer needed
    return tables


def check(tables: Mapping[str, pd.DataFrame], ingested: IngestResult, settings: Settings):
    """The tables through the stored expectation suites (a real GX checkpoint per table).

    Takes the documents' texts from `ingested` (IngestResult.take_texts): nothing after the gate reads
    them, and they go once the checks that compare rows with them are derived, before the checkpoints.
    """
    from armsledger.validate import derive_text_checks, validate_tables

    text_checks = derive_text_checks(tables, ingested.take_texts())
    return validate_tables(dict(tables), settings.expectations_dir, text_checks)


def gate(report: Any, summary: RunSummary | None = None) -> Any:
    """The report if every expectation held; otherwise ValidationFailed naming what failed."""
    if not report.success:
        raise ValidationFailed(report, summary)
    return report


def describe_inputs(documents: Sequence[Document], fingerprint: str, settings: Settings) -> dict[str, Any]:
    """The input manifest of a run: a digest of everything the tables are made from and checked with.

    Its parts: every document's key (text, path, sidecar metadata and the
    extractor fingerprint: model, gazetteers, rules), the armsledger code that
    turns extractions into tables and checks them (every module and data file
    of the package, a superset that cannot miss one), the expectation suites in
    use, and the versions of the libraries that build and check the tables.
    Two runs with the same `digest` build the same tables and pass or fail the
    same expectations.
    """
    keys = sorted(document_key(d, fingerprint) for d in documents)
    parts = {
        "documents": {"count": len(keys), "keys_sha256": _sha256_lines(keys)},
        "extractor_fingerprint": fingerprint,
        "code_sha256": code_digest(),
        "expectations_sha256": expectations_digest(settings.expectations_dir),
        "libraries": library_versions(),
    }
    digest = hashlib.sha256(json.dumps([INPUTS_FORMAT, parts], sort_keys=True).encode("utf-8")).hexdigest()
    return {"format": INPUTS_FORMAT, "digest": digest, **parts}


def code_digest() -> str:
    """SHA-256 of every module and data file of the armsledger package (paths and bytes)."""
    from armsledger.config import PACKAGE_DIR

    files = sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                   and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def expectations_digest(expectations_dir: Path) -> str:
    """SHA-256 of the expectation suite of every table (a missing suite counts as its absence)."""
    from armsledger.expectation_suites import suite_path

    digest = hashlib.sha256()
    for name in TABLES:
        path = suite_path(expectations_dir, name)
        digest.update(name.encode("utf-8") + b"\0" + (path.read_bytes() if path.is_file() else b"(missing)") + b"\0")
    return digest.hexdigest()


def library_versions(names: Sequence[str] = TABLE_LIBRARIES) -> dict[str, str | None]:
    """The installed version of each of `names` (None when one is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _sha256_lines(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def unchanged_release(inputs: Mapping[str, Any], settings: Settings) -> str | None:
    """The latest release if it was built from these inputs (and is whole, its files matching
    its SHA256SUMS); None when anything differs, is missing or does not verify."""
    from armsledger.publish import release_built_from

    return release_built_from(settings.releases_dir, inputs["digest"], settings.inputs_state_file)


@dataclass(frozen=True)
class Preflight:
    """What a run will have to do, found before any orchestration starts."""

    # The no-change summary when raw/ and everything else that makes the tables are those of the latest
    # release; None when the run has tables to build.
    unchanged: RunSummary | None
    # Documents whose extraction is not in the cache: spaCy will have to read them.
    unparsed: int


def preflight(settings: Settings) -> Preflight:
    """The same test as the flow's first stages (is anything new?), and how many documents need spaCy."""
    from armsledger.extract.fingerprint import fingerprint_of
    from armsledger.extraction_store import ExtractionStore

    ingested = read_raw(settings)
    fingerprint = fingerprint_of(settings.spacy_model)
    inputs = describe_inputs(ingested.documents, fingerprint, settings)
    version = unchanged_release(inputs, settings)
    if version is not None:
        remember_raw_folder(settings, ingested.snapshot)
        return Preflight(unchanged_summary(settings, ingested, version), 0)
    keys = (document_key(d, fingerprint) for d in ingested.documents)
    return Preflight(None, len(ExtractionStore.under(settings.cache_dir).missing(keys)))


def remember_raw_folder(settings: Settings, snapshot: str | None) -> None:
    """Records that raw/, as `snapshot` (ingest.folder_snapshot) describes it, gave the inputs of the latest
    release: call it after a run that published, or found the tables or the inputs unchanged."""
    from armsledger.publish import json_bytes, replace_if_changed
    from armsledger.releases import latest_version

    version = latest_version(settings.releases_dir)
    if snapshot is None or version is None:
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    record = {"raw_dir": str(settings.raw_dir), "snapshot": snapshot, "version": version}
    replace_if_changed(settings.raw_state_file, json_bytes(record))


def raw_changed_since_latest(settings: Settings) -> bool:
    """True when raw/ has changed since the latest release was last built or confirmed from it, as far as the
    file system's sizes and times tell (ingest.folder_snapshot against remember_raw_folder's record).

    False when the snapshot matches, and when nothing is known: no record, a
    record of another release or folder, or an error. Only reading raw/ can
    tell whether the inputs are the same, so True may save that reading (the
    documents have to be read anyway), and False never decides anything.
    """
    from armsledger.ingest import folder_snapshot
    from armsledger.releases import latest_version

    try:
        record = json.loads(settings.raw_state_file.read_text(encoding="utf-8"))
        version = latest_version(settings.releases_dir)
        if not isinstance(record, dict) or version is None or record.get("version") != version:
            return False
        if record.get("raw_dir") != str(settings.raw_dir):
            return False
        return folder_snapshot(settings.raw_dir) != record.get("snapshot")
    except (OSError, ValueError):  # no record, a damaged one, a bad release name, raw/ unreadable
        return False


def _run_inputs(settings: Settings, ingested: IngestResult) -> dict[str, Any]:
    """The RunSummary fields that describe what a run read."""
    return {
        "raw_dir": str(settings.raw_dir), "processed_dir": str(settings.processed_dir),
        "documents": len(ingested.documents), "rejected": len(ingested.rejected), "warnings": len(ingested.warnings),
    }


def unchanged_summary(settings: Settings, ingested: IngestResult, version: str) -> RunSummary:
    """The RunSummary of a run that stopped after ingest: the latest release `version` stands, with its rows."""
    from armsledger.publish import catalog_entry

    return RunSummary(
        **_run_inputs(settings, ingested),
        rows=dict(catalog_entry(settings.releases_dir, version)["rows"]),
        validation_success=True,
        expectations=0,
        failed_expectations=[],
        validation_by_table={},
        published=False,
        version=None,
        release_path=None,
        latest_version=version,
        reason=f"no change: the inputs equal those of release {version} (tables not rebuilt)",
        rejected_files=rejected_items(ingested),
        extracted=0,
        extraction_cached=0,
        tables_built=False,
    )


def publish(
    tables: Mapping[str, Any],
    report: Any,
    rejected: list[dict[str, str]],
    settings: Settings,
    lock_timeout: float = PUBLISH_LOCK_TIMEOUT_SECONDS,
    inputs: Mapping[str, Any] | None = None,
):
    """A new release under processed/releases/ from `tables` (frames, or tables_to_arrow's Arrow tables), or
    none when the tables equal the latest one.

    `inputs` (describe_inputs) goes into the new release as inputs.json; when
    the tables equal the latest release, it is recorded as reproducing that
    release, so that the next run with the same inputs stops after ingest.
    """
    from armsledger.publish import publish_release
    from armsledger.runtime import release_free_heap

    release_free_heap()  # the frames that the tables' release form replaced are gone by now
    if not report.success:  # the gate comes first; this keeps a direct caller from skipping it
        raise ValidationFailed(report)
    return publish_release(
        tables,
        settings.releases_dir,
        validation=report.to_dict(),
        rejected=rejected,
        lock_timeout=lock_timeout,
        inputs=inputs,
        inputs_state_file=settings.inputs_state_file if inputs is not None else None,
    )


def failed_expectations(report: Any) -> list[str]:
    """One line per failed expectation: table, expectation, columns, how many rows, examples."""
    lines = []
    for r in report.failures:
        columns = f"({', '.join(r['columns'])})" if r.get("columns") else ""
        line = f"{r['table']}: {r['expectation']}{columns}"
        if r.get("description"):
            line += f" — {r['description']}"
        if r.get("unexpected_count"):
            line += f" [{r['unexpected_count']} unexpected"
            if r.get("unexpected_examples"):
                line += f", e.g. {json.dumps(r['unexpected_examples'][:3], ensure_ascii=False, default=str)}"
            line += "]"
        elif r.get("observed_value") is not None:
            line += f" [observed {json.dumps(r['observed_value'], ensure_ascii=False, default=str)}]"
        if r.get("note"):
            line += f" ({r['note']})"
        lines.append(line)
    return lines


def validation_counts(report: Any) -> dict[str, dict[str, int]]:
    """Per table, how many expectations passed, failed and were skipped."""
    counts: dict[str, dict[str, int]] = {}
    for r in report.results:
        entry = counts.setdefault(r["table"], {"passed": 0, "failed": 0, "skipped": 0})
        entry["skipped" if r["success"] is None else "passed" if r["success"] else "failed"] += 1
    return counts


def summarise(
    settings: Settings,
    ingested: IngestResult,
    tables: Mapping[str, Any],
    report: Any,
    result: Any = None,
    *,
    extracted: int | None = None,
    extraction_cached: int | None = None,
) -> RunSummary:
    """A RunSummary from the stages' outputs (`result`: the PublishResult, None if nothing was tried)."""
    from armsledger.releases import latest_version

    return RunSummary(
        **_run_inputs(settings, ingested),
        rows={name: int(len(tables[name])) for name in TABLES if name in tables},
        validation_success=bool(report.success),
        expectations=len(report.results),
        failed_expectations=failed_expectations(report),
        validation_by_table=validation_counts(report),
        published=bool(result is not None and result.published),
        version=None if result is None else result.version,
        release_path=None if result is None or result.path is None else str(result.path),
        latest_version=latest_version(settings.releases_dir),
        reason="validation failed: nothing published" if not report.success
        else ("not published (validation only)" if result is None else result.reason),
        changes={} if result is None else dict(result.changes),
        rejected_files=rejected_items(ingested),
        extracted=extracted,
        extraction_cached=extraction_cached,
    )


# --- without Prefect ------------------------------------------------------------------


def run_pipeline(
    settings: Settings,
    *,
    publish_tables: bool = True,
    extractor: Any = None,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """ingest -> extract -> normalise -> validate -> publish, in this process, no cache.

    Raises ValidationFailed (nothing published) when an expectation fails. With
    `publish_tables=False` it stops after validation.
    """
    say = progress or (lambda _message: None)
    ingested = read_raw(settings)
    say(f"ingested {len(ingested.documents)} documents, rejected {len(ingested.rejected)}")
    extractor = extractor or load_extractor(settings)
    ordered = [d for batch in batches(ingested.documents) for d in batch]
    extractions = list(extract_documents(extractor, ordered))
    say(f"extracted {len(extractions)} documents")
    tables = normalise(ordered, extractions)
    del ordered  # the gate takes the texts from ingested; this list would keep them
    inputs = describe_inputs(ingested.documents, extractor.fingerprint, settings)
    report = check(tables, ingested, settings)
    counts = {"extracted": len(extractions), "extraction_cached": 0}
    gate(report, summarise(settings, ingested, tables, report, **counts))
    say(f"validation passed ({len(report.results)} expectations)")
    result = publish(tables, report, rejected_items(ingested), settings, inputs=inputs) if publish_tables else None
    return summarise(settings, ingested, tables, report, result, **counts)


__all__ = [
    "EXTRACT_BATCH_MAX",
    "EXTRACT_BATCH_MIN",
    "PUBLISH_LOCK_TIMEOUT_SECONDS",
    "RunSummary",
    "ValidationFailed",
    "batches",
    "check",
    "describe_inputs",
    "document_key",
    "failed_expectations",
    "extract_documents",
    "gate",
    "load_extractor",
    "normalise",
    "preflight",
    "publish",
    "raw_changed_since_latest",
    "read_raw",
    "rejected_items",
    "remember_raw_folder",
    "run_pipeline",
    "summarise",
    "unchanged_release",
    "unchanged_summary",
    "validation_counts",
]
