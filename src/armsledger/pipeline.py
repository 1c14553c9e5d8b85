"""The pipeline's stages as plain Python, and what a run reports.

The Prefect flows in `flows/` call these functions, one task per stage; they add
orchestration (retries, the extraction cache, run history) and nothing else.
`run_pipeline` runs the same stages in order without Prefect and without any
cache: the reference for what a run must produce, and a way to debug a stage
without a Prefect server.
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from armsledger.config import Settings
from armsledger.ingest import Document, IngestResult, ingest
from armsledger.schema import TABLES

# Documents per extraction task: large enough that the task overhead (about
# 0.1-1 s each on a Prefect server) is small against spaCy's time, small enough
# that a scale-out runner has batches to spread.
EXTRACT_BATCH_SIZE = 16
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- stages -------------------------------------------------------------------


def read_raw(settings: Settings) -> IngestResult:
    """Every usable document under raw/, and every file that could not be used."""
    return ingest(settings.raw_dir, settings)


def rejected_items(ingested: IngestResult) -> list[dict[str, str]]:
    """Ingest rejections and warnings as the release's rejected.json items.

    `kind` says whether the file was skipped (`rejected`) or read with a
    problem noted (`warning`).
    """
    items = [{"path": r.path, "reason": r.reason, "kind": "rejected"} for r in ingested.rejected]
    items += [{"path": w.path, "reason": w.reason, "kind": "warning"} for w in ingested.warnings]
    return sorted(items, key=lambda item: (item["path"], item["kind"], item["reason"]))


def batches(documents: Sequence[Document], size: int = EXTRACT_BATCH_SIZE) -> list[list[Document]]:
    """Documents in doc_id order, cut into batches of at most `size`."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    ordered = sorted(documents, key=lambda d: d.doc_id)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def load_extractor(settings: Settings) -> Any:
    """The extractor (spaCy model, gazetteers, rules) for these settings: about 2 s, do it once."""
    from armsledger import extract

    parameters = inspect.signature(extract.load_extractor).parameters
    if "settings" in parameters:
        return extract.load_extractor(settings)
    if "max_chars" in parameters:
        return extract.load_extractor(settings.spacy_model, max_chars=settings.max_text_chars)
    return extract.load_extractor(settings.spacy_model)


def extract_document(extractor: Any, document: Document) -> Any:
    """One document's DocumentExtraction: a pure function of its text, its metadata and the extractor."""
    parameters = inspect.signature(extractor.extract).parameters
    if "text" not in parameters:
        return extractor.extract(document)
    return extractor.extract(document.doc_id, document.text, document.published, document.published_precision)


def normalise(documents: Sequence[Document], extractions: Sequence[Any]) -> dict[str, pd.DataFrame]:
    """The six contract tables from the documents and their extractions."""
    from armsledger.normalise import build_tables

    return build_tables(list(documents), list(extractions))


def check(tables: Mapping[str, pd.DataFrame], documents: Sequence[Document], settings: Settings):
    """The tables through the stored expectation suites (a real GX checkpoint per table)."""
    from armsledger.validate import validate_tables

    texts = {d.doc_id: d.text for d in documents}
    return validate_tables(dict(tables), settings.expectations_dir, texts)


def gate(report: Any, summary: RunSummary | None = None) -> Any:
    """The report if every expectation held; otherwise ValidationFailed naming what failed."""
    if not report.success:
        raise ValidationFailed(report, summary)
    return report


def publish(
    tables: Mapping[str, pd.DataFrame],
    report: Any,
    rejected: list[dict[str, str]],
    settings: Settings,
    lock_timeout: float = PUBLISH_LOCK_TIMEOUT_SECONDS,
):
    """A new release under processed/releases/, or none when the tables equal the latest one."""
    from armsledger.publish import publish_release

    if not report.success:  # the gate comes first; this keeps a direct caller from skipping it
        raise ValidationFailed(report)
    return publish_release(
        tables,
        settings.releases_dir,
        validation=report.to_dict(),
        rejected=rejected,
        lock_timeout=lock_timeout,
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
    tables: Mapping[str, pd.DataFrame],
    report: Any,
    result: Any = None,
    *,
    extracted: int | None = None,
    extraction_cached: int | None = None,
) -> RunSummary:
    """A RunSummary from the stages' outputs (`result`: the PublishResult, None if nothing was tried)."""
    from armsledger.releases import latest_version

    return RunSummary(
        raw_dir=str(settings.raw_dir),
        processed_dir=str(settings.processed_dir),
        documents=len(ingested.documents),
        rejected=len(ingested.rejected),
        warnings=len(ingested.warnings),
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
    extractions = [extract_document(extractor, d) for batch in batches(ingested.documents) for d in batch]
    say(f"extracted {len(extractions)} documents")
    tables = normalise(ingested.documents, extractions)
    report = check(tables, ingested.documents, settings)
    counts = {"extracted": len(extractions), "extraction_cached": 0}
    gate(report, summarise(settings, ingested, tables, report, **counts))
    say(f"validation passed ({len(report.results)} expectations)")
    result = publish(tables, report, rejected_items(ingested), settings) if publish_tables else None
    return summarise(settings, ingested, tables, report, result, **counts)


__all__ = [
    "EXTRACT_BATCH_SIZE",
    "PUBLISH_LOCK_TIMEOUT_SECONDS",
    "RunSummary",
    "ValidationFailed",
    "batches",
    "check",
    "failed_expectations",
    "extract_document",
    "gate",
    "load_extractor",
    "normalise",
    "publish",
    "read_raw",
    "rejected_items",
    "run_pipeline",
    "summarise",
    "validation_counts",
]
