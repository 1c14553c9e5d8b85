"""The real flow end to end: Prefect's test server, spaCy, the GX checkpoints, files read back.

The session's seed release (conftest.seed_release) is built once; tests that
publish again work on copies of its folders.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import armsledger
from armsledger import schema
from armsledger.evaluate import score_release
from armsledger.pipeline import ValidationFailed

NEW_TEXT = """\
SEOUL — North Korea has shipped a further 3,000 containers of artillery shells to Russia \
since August, South Korea's defence ministry said on Thursday.

The ministry said the containers were loaded onto Russian cargo ships at the port of Rajin. \
In return, Moscow is expected to supply Pyongyang with oil and food, according to officials \
in Seoul. The Kremlin has denied that any weapons changed hands.
"""
NEW_SIDECAR = """\
title: Seoul says more shell shipments reached Russia
publisher: null
author: null
published: 2024-03-14
url: null
license: null
language: en
"""
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder -> SHA-256 of its bytes (what 'untouched' means)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def parquet_bytes(release: Path) -> dict[str, bytes]:
    return {name: (release / f"{name}.parquet").read_bytes() for name in schema.TABLES}


def build(raw: Path, processed: Path):
    from flows.pipeline import build_release

    return build_release(raw=raw, processed=processed)


# --- pieces, without a server ----------------------------------------------------------


def _document(text: str, published: str | None = None):
    import datetime as dt

    from armsledger.ingest import Document, document_id

    return Document(
        doc_id=document_id(text), path=f"{text[:8]}.txt", sha256=hashlib.sha256(text.encode()).hexdigest(),
        text=text, title=None, publisher=None, author=None, url=None, license=None, language=None,
        published=dt.date.fromisoformat(published) if published else None,
        published_precision="day" if published else None, n_chars=len(text), n_words=len(text.split()),
    )


def test_batches_are_in_doc_id_order_and_bounded():
    from armsledger.pipeline import batches

    docs = [_document(f"text number {i}") for i in range(400)]
    groups = batches(reversed(docs), largest=32, smallest=4)
    assert [d.doc_id for g in groups for d in g] == sorted(d.doc_id for d in docs)
    assert all(1 <= len(g) <= 32 for g in groups)
    assert all(len(g) >= 4 for g in groups[:-1])  # only the remainder may be smaller
    assert [len(g) for g in batches(docs[:5], largest=1, smallest=1)] == [1] * 5
    assert batches([], largest=3, smallest=1) == []
    with pytest.raises(ValueError):
        batches(docs, largest=0, smallest=0)
    with pytest.raises(ValueError):
        batches(docs, largest=4, smallest=8)


def test_batches_shrink_towards_the_end():
    """Most documents go in large batches; the last ones are small, so that workers finish together."""
    from armsledger.pipeline import EXTRACT_BATCH_MAX, EXTRACT_BATCH_MIN, batches

    docs = [_document(f"text number {i}") for i in range(8000)]
    sizes = [len(g) for g in batches(docs)]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == EXTRACT_BATCH_MAX
    assert min(sizes[:-1]) == EXTRACT_BATCH_MIN
    # Few tasks for the bookkeeping's sake: most documents in the largest batches.
    assert sum(s for s in sizes if s == EXTRACT_BATCH_MAX) >= len(docs) / 2
    assert len(sizes) < len(docs) / EXTRACT_BATCH_MAX * 3
    assert [len(g) for g in batches(docs[:1])] == [1]


@pytest.mark.slow
def test_fingerprint_without_spacy_is_the_loaded_extractors():
    from armsledger.config import load_settings
    from armsledger.extract.fingerprint import fingerprint_of
    from flows.extract import get_extractor

    settings = load_settings()
    assert fingerprint_of(settings.spacy_model) == get_extractor(settings).fingerprint
    with pytest.raises(OSError):
        fingerprint_of("no_such_spacy_model")


def test_input_manifest_follows_documents_code_and_expectations(tmp_path):
    from armsledger.config import Settings
    from armsledger.pipeline import describe_inputs

    suites = Path(__file__).resolve().parents[1] / "expectations"
    settings = Settings(raw_dir=tmp_path, processed_dir=tmp_path, expectations_dir=suites)
    docs = [_document("Russia sent fuel to North Korea."), _document("North Korea sent shells to Russia.")]
    digest = describe_inputs(docs, "fp1", settings)["digest"]
    assert describe_inputs(list(reversed(docs)), "fp1", settings)["digest"] == digest  # order does not count
    assert describe_inputs(docs[:1], "fp1", settings)["digest"] != digest
    assert describe_inputs(docs, "fp2", settings)["digest"] != digest
    dated = [docs[0], _document("North Korea sent shells to Russia.", published="2024-03-01")]
    assert describe_inputs(dated, "fp1", settings)["digest"] != digest
    changed = tmp_path / "expectations"
    shutil.copytree(suites, changed)
    (changed / "events.json").write_text((suites / "events.json").read_text().replace("}", "} ", 1))
    other = Settings(raw_dir=tmp_path, processed_dir=tmp_path, expectations_dir=changed)
    assert describe_inputs(docs, "fp1", other)["digest"] != digest


def test_cache_keys_follow_text_metadata_and_fingerprint():
    from flows.extract import document_key

    plain = _document("Russia sent fuel to North Korea.")
    dated = _document("Russia sent fuel to North Korea.", published="2024-03-01")
    other = _document("North Korea sent shells to Russia.")
    assert document_key(plain, "fp1") == document_key(_document("Russia sent fuel to North Korea."), "fp1")
    assert len({document_key(plain, "fp1"), document_key(dated, "fp1"), document_key(plain, "fp2"),
                document_key(other, "fp1")}) == 4


def test_validation_failed_names_failures_and_survives_pickling():
    import pickle

    from armsledger.validate import ValidationReport

    failure = {"table": "transfers", "expectation": "expect_column_values_to_be_in_set", "columns": ["category"],
               "description": "a vocabulary", "success": False, "unexpected_count": 1,
               "unexpected_examples": [{"category": "bananas"}], "observed_value": None, "note": None}
    report = ValidationReport(success=False, results=[failure, {**failure, "success": True}])
    error = pickle.loads(pickle.dumps(ValidationFailed(report)))
    assert "1 of 2 expectations failed" in str(error)
    assert "transfers: expect_column_values_to_be_in_set(category)" in str(error) and "bananas" in str(error)


# --- the seed release -----------------------------------------------------------------


@pytest.mark.slow
def test_seed_run_summary(seed_release):
    s = seed_release.summary
    assert s.documents == 2 and s.rejected == 0
    assert s.validation_success and not s.failed_expectations
    assert s.extracted == 2 and s.extraction_cached == 0
    assert s.latest_version == s.version
    assert json.loads((seed_release.releases / "latest.json").read_text())["version"] == s.version
    assert set(s.rows) == set(schema.TABLES)
    assert all(s.rows[t] > 0 for t in schema.TABLES)


@pytest.mark.slow
def test_release_holds_every_table_in_both_formats_with_contract_types(seed_release):
    release = seed_release.release
    for name in schema.TABLES:
        contract = schema.arrow_schema(name)
        columns = schema.table(name).columns
        stored = pq.read_schema(release / f"{name}.parquet")
        assert [(f.name, f.type) for f in stored] == [(f.name, f.type) for f in contract], name

        frame = pd.read_parquet(release / f"{name}.parquet")
        assert list(frame.columns) == columns
        assert len(frame) == seed_release.summary.rows[name]

        csv = pd.read_csv(release / f"{name}.csv", keep_default_na=False)
        assert list(csv.columns) == columns
        assert len(csv) == len(frame)

        typed = armsledger.load(name, source=seed_release.releases)
        assert list(typed.columns) == columns
        for field in schema.table(name).fields:
            dtype = typed[field.name].dtype
            if field.type == "string":
                assert pd.api.types.is_string_dtype(dtype), (name, field.name, dtype)
            elif field.type == "int64":
                assert str(dtype) == ("Int64" if field.nullable else "int64"), (name, field.name, dtype)
            elif field.type == "float64":
                assert str(dtype) == "float64", (name, field.name, dtype)
            elif field.type == "date32":
                assert pd.api.types.is_datetime64_dtype(dtype), (name, field.name, dtype)
            else:
                assert all(isinstance(v, list) for v in typed[field.name]), (name, field.name)


@pytest.mark.slow
def test_release_files(seed_release):
    names = {p.name for p in seed_release.release.iterdir()}
    expected = {f"{t}.{ext}" for t in schema.TABLES for ext in ("parquet", "csv")}
    expected |= {"datapackage.json", "SHA256SUMS", "CHANGES.md", "validation.json", "rejected.json", "index.html",
                 "inputs.json"}
    assert names == expected
    validation = json.loads((seed_release.release / "validation.json").read_text())
    assert validation["success"] is True and validation["n_failed"] == 0
    assert json.loads((seed_release.release / "rejected.json").read_text()) == []


@pytest.mark.slow
def test_frictionless_validate_accepts_the_datapackage(seed_release):
    frictionless = Path(sys.executable).with_name("frictionless")
    done = subprocess.run(
        [str(frictionless), "validate", "datapackage.json"],
        cwd=seed_release.release, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_sha256sums_check(seed_release):
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum is not installed")
    done = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=seed_release.release, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(list(seed_release.release.iterdir())) - 1


@pytest.mark.slow
def test_eval_floor_on_the_seeds(seed_release, gold_dir, eval_floors):
    report = score_release(gold_dir, seed_release.release)
    scores = {table: round(report.tables[table].f1, 3) for table in eval_floors}
    low = {t: (scores[t], floor) for t, floor in eval_floors.items() if scores[t] < floor}
    assert not low, f"F1 below the floor (score, floor): {low}; all scores: {scores}"


# --- runs after the first -------------------------------------------------------------


def build_with_task_runs(raw: Path, processed: Path):
    """build_release, and the names of the task runs Prefect recorded for that flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    from flows.pipeline import build_release

    state = build_release(raw=raw, processed=processed, return_state=True)
    summary = state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
            task_run_filter=TaskRunFilter(),
        )
    return summary, {run.name.rsplit("-", 1)[0] for run in runs}


def forbid_building(monkeypatch) -> None:
    """Any stage after ingest that a run with nothing new must not reach fails the test."""
    import armsledger.pipeline as pipeline

    for name in ("batches", "extract_documents", "normalise", "check", "publish"):
        def forbidden(*args, _name=name, **kwargs):
            raise AssertionError(f"pipeline.{_name} was called on a run with nothing new")

        monkeypatch.setattr(pipeline, name, forbidden)


@pytest.mark.slow
def test_second_run_stops_after_ingest(copy_run, seed_release, monkeypatch):
    raw, processed = copy_run()
    before = snapshot(processed / "releases")
    forbid_building(monkeypatch)
    summary, tasks = build_with_task_runs(raw, processed)
    assert not summary.published and summary.version is None
    assert not summary.tables_built
    assert summary.reason.startswith("no change") and seed_release.version in summary.reason
    assert summary.latest_version == seed_release.version
    assert summary.extracted == 0 and summary.extraction_cached == 0
    assert summary.rows == seed_release.summary.rows  # the latest release's rows
    assert tasks == {"ingest-documents", "extractor-fingerprint", "describe-inputs", "find-unchanged-release",
                     "remember-raw-folder"}
    assert snapshot(processed / "releases") == before


@pytest.mark.slow
def test_release_records_the_inputs_it_was_built_from(seed_release):
    from armsledger.config import load_settings
    from armsledger.extract.fingerprint import fingerprint_of
    from armsledger.pipeline import describe_inputs, read_raw

    recorded = json.loads((seed_release.release / "inputs.json").read_text())
    settings = load_settings(seed_release.raw, seed_release.processed)
    inputs = describe_inputs(read_raw(settings).documents, fingerprint_of(settings.spacy_model), settings)
    assert recorded == json.loads(json.dumps(inputs))
    assert recorded["documents"]["count"] == 2


@pytest.mark.slow
def test_a_changed_sidecar_is_rebuilt(copy_run, seed_release):
    raw, processed = copy_run()
    sidecar = sorted(raw.rglob("*.meta.yaml"))[0]
    lines = sidecar.read_text(encoding="utf-8").splitlines()
    sidecar.write_text("\n".join("title: A revised title" if line.startswith("title:") else line for line in lines)
                       + "\n", encoding="utf-8")
    summary, tasks = build_with_task_runs(raw, processed)
    assert summary.tables_built and summary.published
    assert summary.changes["documents"] == {"added": 0, "removed": 0, "changed": 1}
    assert {"normalise-tables", "quality-gate", "publish-release"} <= tasks
    assert summary.extracted == 1 and summary.extraction_cached == 1  # the other text's extraction is cached


@pytest.mark.slow
def test_a_removed_document_is_rebuilt(copy_run, seed_release):
    raw, processed = copy_run()
    text = sorted(p for p in raw.rglob("*") if p.suffix in (".txt", ".md", ".html"))[0]
    text.unlink()
    summary, tasks = build_with_task_runs(raw, processed)
    assert summary.tables_built and summary.published and summary.documents == 1
    assert summary.changes["documents"] == {"added": 0, "removed": 1, "changed": 0}
    assert "normalise-tables" in tasks
    assert "extract-batch" not in tasks  # the remaining document's extraction is cached: nothing to parse
    assert summary.extracted == 0 and summary.extraction_cached == 1


@pytest.mark.slow
def test_a_damaged_cache_entry_is_parsed_again(copy_run, seed_release):
    raw, processed = copy_run()
    entries = sorted(p for p in (processed / "cache" / "extractions").rglob("*") if p.is_file())
    assert len(entries) == seed_release.summary.documents
    for entry in entries:
        entry.write_bytes(b"\x80\x05 truncated")
    sidecar = sorted(raw.rglob("*.meta.yaml"))[0]  # a new title: the run must build the tables
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace("title:", "title: Revised", 1), encoding="utf-8")
    summary, _ = build_with_task_runs(raw, processed)
    assert summary.tables_built and summary.validation_success and summary.published
    assert summary.rows == seed_release.summary.rows
    assert summary.extracted == 1  # the changed document; the damaged entry of the other is found when read
    readable = [e for e in (processed / "cache" / "extractions").rglob("*") if e.is_file() and _unpickles(e)]
    assert len(readable) == 2  # the other document's entry written again, whole, and the changed document's


def _unpickles(path: Path) -> bool:
    try:
        pickle.loads(path.read_bytes())
    except Exception:
        return False
    return True


@pytest.mark.slow
def test_a_changed_expectation_suite_is_checked_then_remembered(copy_run, seed_release, suites_with):
    """New expectations that the tables pass: the run rebuilds and checks them, publishes nothing (same
    tables), and remembers that these inputs give the latest release: the run after stops after ingest."""
    raw, processed = copy_run()
    suites_with("events", {"min_value": 1}, "a new expectation that the seed tables meet")
    expectations = seed_release.summary.expectations

    summary, tasks = build_with_task_runs(raw, processed)
    assert summary.tables_built and summary.validation_success and summary.expectations == expectations + 1
    assert not summary.published and summary.reason.startswith("no change: the tables equal")
    assert "quality-gate" in tasks

    again, tasks = build_with_task_runs(raw, processed)
    assert not again.tables_built and again.latest_version == seed_release.version
    assert "quality-gate" not in tasks


@pytest.mark.slow
def test_a_tampered_or_missing_latest_release_is_rebuilt(copy_run, seed_release):
    raw, processed = copy_run()
    latest = processed / "releases" / seed_release.version
    inputs = latest / "inputs.json"
    inputs.write_text(inputs.read_text() + " ")  # no longer what SHA256SUMS says
    summary, _ = build_with_task_runs(raw, processed)
    assert summary.tables_built and not summary.published  # the tables themselves still verify and are equal

    shutil.rmtree(latest)  # latest.json now names a release that is not there
    summary, _ = build_with_task_runs(raw, processed)
    assert summary.tables_built and summary.published


@pytest.mark.slow
def test_a_new_text_publishes_a_further_release_with_its_changes(copy_run, seed_release):
    from armsledger.publish import utc_today

    raw, processed = copy_run()
    (raw / "wire").mkdir()
    (raw / "wire" / "seoul-shipments.txt").write_text(NEW_TEXT, encoding="utf-8")
    (raw / "wire" / "seoul-shipments.meta.yaml").write_text(NEW_SIDECAR, encoding="utf-8")
    old = seed_release.version
    summary = build(raw, processed)

    today = utc_today().strftime("%Y.%m.%d")
    assert summary.published
    assert summary.version == (f"{old}.1" if old == today else today)
    # Only the new document went through spaCy; the seeds came from the per-document cache.
    assert summary.extracted == 1 and summary.extraction_cached == 2
    assert summary.documents == 3
    assert summary.changes["documents"] == {"added": 1, "removed": 0, "changed": 0}
    assert summary.rows["mentions"] > seed_release.summary.rows["mentions"]

    release = processed / "releases" / summary.version
    changes = (release / "CHANGES.md").read_text(encoding="utf-8")
    assert f"Compared with release {old}" in changes
    documents = armsledger.load("documents", source=processed / "releases")
    new_id = documents.loc[documents["path"] == "wire/seoul-shipments.txt", "doc_id"].item()
    assert f"- Added (1): `{new_id}`" in changes
    assert documents.set_index("doc_id").loc[new_id, "published"] == pd.Timestamp("2024-03-14")
    assert json.loads((processed / "releases" / "latest.json").read_text())["version"] == summary.version
    catalog = json.loads((processed / "releases" / "catalog.json").read_text())
    assert [e["version"] for e in catalog["releases"]] == [old, summary.version]
    # The earlier release is kept as it was.
    assert snapshot(processed / "releases" / old) == snapshot(seed_release.release)


@pytest.mark.slow
def test_failed_validation_publishes_nothing_and_names_what_failed(copy_run, monkeypatch):
    import armsledger.pipeline as pipeline

    real = pipeline.normalise

    def broken(documents, extractions):
        tables = real(documents, extractions)
        transfers = tables["transfers"].copy()
        transfers.loc[transfers.index[0], "category"] = "bananas"
        tables["transfers"] = transfers
        first_event = tables["events"]["event_id"].iloc[0]
        citations = tables["citations"]
        tables["citations"] = citations[citations["target_id"] != first_event].reset_index(drop=True)
        return tables

    monkeypatch.setattr(pipeline, "normalise", broken)
    raw, processed = copy_run()
    # A new document too, so that a publish (if the gate let one through) would make a new release.
    (raw / "extra.txt").write_text(NEW_TEXT, encoding="utf-8")
    before = snapshot(processed / "releases")

    with pytest.raises(ValidationFailed) as caught:
        build(raw, processed)

    message = str(caught.value)
    assert "transfers: expect_column_values_to_be_in_set(category)" in message
    assert "bananas" in message
    assert "events: expect_column_values_to_be_between(check_n_citations)" in message
    assert caught.value.summary is not None and not caught.value.summary.published
    assert {f["table"] for f in caught.value.report.failures} == {"events", "transfers"}
    assert len(caught.value.summary.failed_expectations) == len(caught.value.report.failures) >= 2
    assert snapshot(processed / "releases") == before
    assert not [p for p in (processed / "releases").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_bad_files_are_listed_as_rejected_and_the_good_documents_publish(copy_run, seed_release):
    raw, processed = copy_run(with_releases=False)
    (raw / "empty.txt").write_bytes(b"")
    (raw / "scan.txt").write_bytes(PNG)
    (raw / "photo.png").write_bytes(PNG)
    summary = build(raw, processed)

    assert summary.published and summary.documents == 2
    assert summary.rejected == 2 and summary.warnings == 1
    rejected = json.loads((Path(summary.release_path) / "rejected.json").read_text())
    by_path = {item["path"]: item for item in rejected}
    assert set(by_path) == {"empty.txt", "scan.txt", "photo.png"}
    assert by_path["empty.txt"]["kind"] == "rejected" and "empty" in by_path["empty.txt"]["reason"]
    assert by_path["scan.txt"]["kind"] == "rejected" and "PNG" in by_path["scan.txt"]["reason"]
    assert by_path["photo.png"]["kind"] == "warning"
    # The bad files cost nothing else: the tables are those of the seed release.
    assert parquet_bytes(Path(summary.release_path)) == parquet_bytes(seed_release.release)


@pytest.mark.slow
def test_rebuild_without_cache_or_prefect_gives_byte_identical_tables(seed_release, tmp_path):
    """A fresh processed/ rebuilt by the plain pipeline (spaCy again, no cache) gives the same bytes."""
    from armsledger.config import load_settings
    from armsledger.pipeline import run_pipeline
    from flows.extract import get_extractor

    settings = load_settings(seed_release.raw, tmp_path / "processed")
    summary = run_pipeline(settings, extractor=get_extractor(settings))
    assert summary.published and summary.extracted == 2
    assert parquet_bytes(Path(summary.release_path)) == parquet_bytes(seed_release.release)
    for name in schema.TABLES:
        assert (Path(summary.release_path) / f"{name}.csv").read_bytes() == (
            seed_release.release / f"{name}.csv"
        ).read_bytes()



# Prefect 3.8 deprecates Runner.execute_flow_run in favour of private classes; the pin keeps it.
@pytest.mark.filterwarnings("ignore:Runner.execute_flow_run has been deprecated")
@pytest.mark.slow
def test_the_served_deployment_runs_in_its_own_process(copy_run, seed_release):
    """What `armsledger serve` does for each scheduled run: a flow run of the deployment, executed by a
    Prefect runner in a fresh `python -m prefect.engine` process that loads flows.pipeline:build_release."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.runner import Runner

    from flows.pipeline import deployment

    raw, processed = copy_run()
    runner = Runner(name="test-runner")  # what prefect.serve builds, without its polling loop
    deployment_id = runner.add_deployment(
        deployment("0 6 * * *", "Europe/Berlin", raw=raw, processed=processed, name="test-served")
    )
    flow_run = run_deployment(deployment_id, timeout=0)  # scheduled now; nothing polls the server
    asyncio.run(runner.execute_flow_run(flow_run.id))

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
        schedules = client.read_deployment(deployment_id).schedules
    assert state.is_completed(), state.message
    assert [(s.schedule.cron, s.schedule.timezone) for s in schedules] == [("0 6 * * *", "Europe/Berlin")]
    assert json.loads((processed / "releases" / "latest.json").read_text())["version"] == seed_release.version
