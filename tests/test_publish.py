"""Publishing releases: files, determinism, versions, CHANGES.md, frictionless, atomicity and the lock."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from armsledger import schema
from armsledger.ids import stable_id
from armsledger.publish import (
    PackageInvalidError,
    ReleaseLockedError,
    csv_chunks,
    file_facts,
    parquet_writer,
    publish_release,
    release_lock,
    tables_to_arrow,
    write_durably,
)
from armsledger.releases import diff_releases, latest_version, list_releases

DAY = dt.date(2024, 6, 20)
FORMULA_TITLE = '=HYPERLINK("http://evil.example/","Read more")'

DOC_A = stable_id("doc", "seeds/putin-pyongyang.txt")
DOC_B = stable_id("doc", "seeds/munitions-analysis.md")
KIM = stable_id("act", "Kim Jong Un", "person")
PUTIN = stable_id("act", "Vladimir Putin", "person")
RUSSIA = stable_id("act", "Russia", "state")
NORTH_KOREA = stable_id("act", "North Korea", "state")
OFFICIALS = stable_id("act", "US officials", "group")
SUMMIT = stable_id("evt", "meeting", PUTIN, KIM, "2024-06-19")
DEAL = stable_id("evt", "agreement", RUSSIA, NORTH_KOREA, None)
STATEMENT = stable_id("evt", "statement", OFFICIALS, "2024-06")
SHELLS = stable_id("trf", NORTH_KOREA, RUSSIA, "munitions", "artillery shells")
SPACE = stable_id("trf", RUSSIA, NORTH_KOREA, "space_technology", "satellite technology")


def sample_tables() -> dict[str, pd.DataFrame]:
    """Six small tables with foreign keys that resolve, list columns, null dates and a formula-like title."""
    documents = pd.DataFrame({
        "doc_id": [DOC_A, DOC_B],
        "path": ["seeds/putin-pyongyang.txt", "seeds/munitions-analysis.md"],
        "sha256": ["a" * 64, "b" * 64],
        "title": [FORMULA_TITLE, "-- Shells for satellites: an analysis"],
        "publisher": ["Example Wire", None],
        "author": [None, "J. Analyst"],
        "url": ["https://example.org/putin-pyongyang", None],
        "license": ["CC-BY-4.0", None],
        "language": ["en", "en"],
        "published": [dt.date(2024, 6, 19), None],
        "published_precision": ["day", None],
        "n_chars": [5120, 3300],
        "n_words": [860, 540],
    })
    actors = pd.DataFrame({
        "actor_id": [KIM, PUTIN, RUSSIA, NORTH_KOREA, OFFICIALS],
        "name": ["Kim Jong Un", "Vladimir Putin", "Russia", "North Korea", "US officials"],
        "type": ["person", "person", "state", "state", "group"],
        "country": ["PRK", "RUS", "RUS", "PRK", None],
        "role": ["leader of North Korea", "President of Russia", None, None, None],
        "aliases": [["Kim", "Ким Чен Ын"], ["Putin"], ["Russian Federation", "Moscow"], ["DPRK", "Pyongyang"], []],
        "wikidata_id": ["Q56226", "Q7747", "Q159", "Q423", None],
        "n_mentions": [3, 2, 2, 2, 1],
        "n_documents": [2, 1, 2, 2, 1],
    })
    mention_rows = [
        (DOC_A, PUTIN, 0, 14, "Vladimir Putin"),
        (DOC_A, KIM, 35, 46, "Kim Jong Un"),
        (DOC_A, RUSSIA, 120, 126, "Russia"),
        (DOC_B, NORTH_KOREA, 10, 21, "North Korea"),
        (DOC_B, KIM, 300, 303, "Kim"),
        (DOC_B, OFFICIALS, 410, 422, "US officials"),
    ]
    mentions = pd.DataFrame(
        [(stable_id("men", d, s, e, a), d, a, s, e, t) for d, a, s, e, t in mention_rows],
        columns=["mention_id", "doc_id", "actor_id", "char_start", "char_end", "text"],
    )
    events = pd.DataFrame({
        "event_id": [SUMMIT, DEAL, STATEMENT],
        "event_type": ["meeting", "agreement", "statement"],
        "plover_type": ["CONSULT", "AGREE", None],
        "initiator_id": [PUTIN, None, OFFICIALS],
        "actor_ids": [[PUTIN, KIM], [RUSSIA, NORTH_KOREA], [OFFICIALS]],
        "date_start": [dt.date(2024, 6, 19), None, dt.date(2024, 6, 1)],
        "date_end": [dt.date(2024, 6, 19), None, dt.date(2024, 6, 30)],
        "date_precision": ["day", None, "month"],
        "date_text": ["on Wednesday", "is expected to", "this month"],
        "place": ["Pyongyang", None, "Washington"],
        "place_country": ["PRK", None, "USA"],
        "latitude": [39.0392, None, 38.9072],
        "longitude": [125.7625, None, -77.0369],
        "status": ["occurred", "expected", "occurred"],
        "summary": [
            "Vladimir Putin met Kim Jong Un in Pyongyang on Wednesday.",
            "Russia is expected to sign a defence pact with North Korea.",
            "US officials said this month that shells keep arriving.",
        ],
        "confidence": [0.95, 0.4, 0.7],
        "n_documents": [1, 1, 1],
    })
    transfers = pd.DataFrame({
        "transfer_id": [SHELLS, SPACE],
        "supplier_id": [NORTH_KOREA, RUSSIA],
        "recipient_id": [RUSSIA, NORTH_KOREA],
        "category": ["munitions", "space_technology"],
        "item": ["artillery shells", "satellite technology"],
        "quantity_text": ["more than a million shells", None],
        # object columns: schema.to_arrow does not yet treat pd.NA (nullable Int64) as missing
        "quantity_low": pd.Series([1_000_000, None], dtype=object),
        "quantity_high": pd.Series([None, None], dtype=object),
        "unit": ["shells", None],
        "status": ["reported", "speculated"],
        "exchange_for": [SPACE, SHELLS],
        "event_id": [None, DEAL],
        "date_start": [None, None],
        "date_precision": [None, None],
        "confidence": [0.8, 0.3],
        "n_documents": [1, 1],
    })
    citation_rows = [
        (DOC_A, "evidence", "events", SUMMIT, None, None, None, None, None,
         "Vladimir Putin met Kim Jong Un in Pyongyang on Wednesday.", 0, 58),
        (DOC_A, "quote", None, None, None, PUTIN, "Putin said", "=a new level of partnership", None,
         'Putin said: "=a new level of partnership".', 200, 243),
        (DOC_B, "evidence", "transfers", SHELLS, "[citation 2]", OFFICIALS, "US officials say", None, "reportedly",
         "North Korea has reportedly sent more than a million shells [citation 2].", 10, 82),
        (DOC_B, "evidence", "transfers", SPACE, None, None, None, None, "may",
         "Russia may help with satellite technology in return.", 90, 142),
    ]
    citations = pd.DataFrame(
        [(stable_id("cit", r[0], r[1], r[10], r[11], r[3]), *r) for r in citation_rows],
        columns=["citation_id", "doc_id", "kind", "target_table", "target_id", "marker", "source_actor_id",
                 "source_text", "quote", "hedge", "sentence", "char_start", "char_end"],
    )
    citations["status"] = citations["target_table"].map({"events": "occurred", "transfers": "reported"})
    return {"documents": documents, "actors": actors, "mentions": mentions, "events": events,
            "transfers": transfers, "citations": citations}


VALIDATION = {"success": True, "suites": {"documents": {"success": True, "evaluated": 12}}, "run": "test"}
REJECTED = [{"path": "empty.txt", "reason": "empty file"}, {"path": "blob.bin", "reason": "not text"}]


def publish(tables: dict[str, pd.DataFrame], releases_dir: Path, day: dt.date = DAY, **kwargs):
    return publish_release(tables, releases_dir, validation=VALIDATION, rejected=REJECTED, today=day, **kwargs)


def changed_tables() -> dict[str, pd.DataFrame]:
    """The sample with one actor added, one mention removed and one event's status changed."""
    tables = sample_tables()
    new_actor = {"actor_id": "act_shoigu", "name": "Sergei Shoigu", "type": "person", "country": "RUS",
                 "role": "Secretary of the Security Council", "aliases": ["Shoigu"], "wikidata_id": None,
                 "n_mentions": 1, "n_documents": 1}
    tables["actors"] = pd.concat([tables["actors"], pd.DataFrame([new_actor])], ignore_index=True)
    tables["mentions"] = tables["mentions"].iloc[1:].reset_index(drop=True)
    tables["events"].loc[tables["events"]["event_id"] == DEAL, "status"] = "occurred"
    return tables


@pytest.fixture()
def releases_dir(tmp_path: Path) -> Path:
    return tmp_path / "processed" / "releases"


@pytest.fixture(scope="module")
def published_once(tmp_path_factory: pytest.TempPathFactory):
    return publish(sample_tables(), tmp_path_factory.mktemp("published") / "releases")


@pytest.fixture()
def first(published_once, releases_dir: Path):
    """The first release of the sample, in a fresh copy of its releases folder that a test may change."""
    shutil.copytree(published_once.path.parent, releases_dir)
    return dataclasses.replace(published_once, path=releases_dir / published_once.version)


def test_first_release_has_every_file(first, releases_dir: Path) -> None:
    assert first.published and first.version == "2024.06.20"
    assert first.path == releases_dir / "2024.06.20"
    names = {p.name for p in first.path.iterdir()}
    tables = {f"{t}.{ext}" for t in schema.TABLES for ext in ("parquet", "csv")}
    assert names == tables | {"datapackage.json", "SHA256SUMS", "CHANGES.md", "validation.json", "rejected.json", "index.html"}
    assert first.changes["actors"] == {"added": 5, "removed": 0, "changed": 0}
    assert "First release" in (first.path / "CHANGES.md").read_text()
    assert (first.path / "validation.json").read_text() == json.dumps(VALIDATION, indent=2, sort_keys=True) + "\n"
    assert [r["path"] for r in json.loads((first.path / "rejected.json").read_text())] == ["blob.bin", "empty.txt"]
    assert json.loads((releases_dir / "latest.json").read_text()) == {"version": "2024.06.20", "path": "2024.06.20"}
    catalog = json.loads((releases_dir / "catalog.json").read_text())
    assert catalog["releases"] == [{"version": "2024.06.20", "created": "2024-06-20", "path": "2024.06.20",
                                    "rows": {"documents": 2, "actors": 5, "mentions": 6, "events": 3,
                                             "transfers": 2, "citations": 4}}]
    assert not [p for p in releases_dir.iterdir() if p.name.startswith(".tmp-")]
    for public in (first.path, releases_dir / "latest.json", releases_dir / "catalog.json", first.path / "SHA256SUMS"):
        assert public.stat().st_mode & 0o004, f"{public} is not readable by a web server"


def test_csv_escapes_formulas_and_parquet_keeps_true_values(first) -> None:
    rows = list(csv.DictReader((first.path / "documents.csv").open(encoding="utf-8", newline="")))
    titles = {row["doc_id"]: row["title"] for row in rows}
    assert titles[DOC_A] == "'" + FORMULA_TITLE
    assert titles[DOC_B] == "'-- Shells for satellites: an analysis"
    assert {row["doc_id"]: row["published"] for row in rows} == {DOC_A: "2024-06-19", DOC_B: ""}
    parquet = pq.read_table(first.path / "documents.parquet").to_pylist()
    assert {row["doc_id"]: row["title"] for row in parquet}[DOC_A] == FORMULA_TITLE
    events = {row["event_id"]: row for row in csv.DictReader((first.path / "events.csv").open(encoding="utf-8"))}
    assert events[STATEMENT]["longitude"] == "-77.0369"  # numbers are never escaped
    actors = {row["actor_id"]: row for row in csv.DictReader((first.path / "actors.csv").open(encoding="utf-8"))}
    assert json.loads(actors[KIM]["aliases"]) == ["Kim", "Ким Чен Ын"]
    assert "Ким Чен Ын" in (first.path / "actors.csv").read_text(encoding="utf-8")
    package = json.loads((first.path / "datapackage.json").read_text())
    assert "single quote" in next(r for r in package["resources"] if r["name"] == "documents")["description"]


def test_republishing_elsewhere_gives_identical_bytes(first, tmp_path: Path) -> None:
    again = publish(sample_tables(), tmp_path / "elsewhere")
    for name in schema.TABLES:
        for ext in ("parquet", "csv"):
            assert (first.path / f"{name}.{ext}").read_bytes() == (again.path / f"{name}.{ext}").read_bytes()
    for name in ("datapackage.json", "SHA256SUMS", "CHANGES.md"):
        assert (first.path / name).read_bytes() == (again.path / name).read_bytes()


def test_arrow_tables_publish_the_same_release_as_frames(first, tmp_path: Path) -> None:
    again = publish(tables_to_arrow(sample_tables()), tmp_path / "arrow")
    for name in [f"{t}.{ext}" for t in schema.TABLES for ext in ("parquet", "csv")] + ["SHA256SUMS", "index.html"]:
        assert (first.path / name).read_bytes() == (again.path / name).read_bytes(), name
    wrong = tables_to_arrow(sample_tables())
    wrong["actors"] = wrong["actors"].drop_columns(["wikidata_id"])
    with pytest.raises(ValueError, match="contract's schema"):
        publish(wrong, tmp_path / "wrong")


def test_csv_cells_keep_empty_texts_nulls_lists_and_numbers_apart() -> None:
    table = pa.table({
        "text": pa.array(["plain", "", None, "=SUM(A1)", "-5 shells", 'say "no"', "two\nlines"]),
        "names": pa.array([["Putin", "Ким"], [], None, ["=x"], None, None, None], pa.list_(pa.string())),
        "share": pa.array([0.95, 1.0, None, -77.0369, 2.5e-07, 0.1, 3.0]),
        "count": pa.array([1, None, 0, -2, 3, 4, 5], pa.int64()),
        "day": pa.array([dt.date(2024, 6, 19), None] + [dt.date(2023, 9, 13)] * 5, pa.date32()),
    })
    written = b"".join(csv_chunks(table, rows_per_chunk=3)).decode("utf-8")
    assert written.splitlines()[:5] == [
        '"text","names","share","count","day"',
        '"plain","[""Putin"", ""Ким""]",0.95,1,2024-06-19',
        '"","[]",1,,',
        ',,,0,2023-09-13',
        '"\'=SUM(A1)","[""=x""]",-77.0369,-2,2023-09-13',
    ]
    rows = list(csv.reader(written.splitlines(keepends=True)))
    assert rows[5][0] == "'-5 shells" and rows[6][0] == 'say "no"' and rows[7][0] == "two\nlines"
    assert [float(r[2]) for r in rows[1:] if r[2]] == [v for v in table.column("share").to_pylist() if v is not None]
    assert b"".join(csv_chunks(table.slice(0, 0))) == b'"text","names","share","count","day"\n'


def test_files_written_in_chunks_match_their_whole_bytes_and_facts(first, tmp_path: Path) -> None:
    # A CSV a few rows at a time reads as one; the size and hash taken while writing are the file's.
    for name, table in tables_to_arrow(sample_tables()).items():
        small = b"".join(csv_chunks(table, rows_per_chunk=2))
        assert small == (first.path / f"{name}.csv").read_bytes()
        assert len(list(csv_chunks(table, rows_per_chunk=2))) >= table.num_rows // 2
        facts = write_durably(tmp_path / f"{name}.parquet", parquet_writer(table))
        assert (tmp_path / f"{name}.parquet").read_bytes() == (first.path / f"{name}.parquet").read_bytes()
        assert facts == file_facts((first.path / f"{name}.parquet").read_bytes())


def test_same_tables_publish_nothing(first, releases_dir: Path) -> None:
    latest_before = (releases_dir / "latest.json").read_bytes()
    shuffled = {name: frame.iloc[::-1].reset_index(drop=True) for name, frame in sample_tables().items()}
    result = publish(shuffled, releases_dir)
    assert not result.published and result.version is None and result.path is None
    assert "2024.06.20" in result.reason
    assert all(counts == {"added": 0, "removed": 0, "changed": 0} for counts in result.changes.values())
    assert list_releases(releases_dir) == ["2024.06.20"]
    assert (releases_dir / "latest.json").read_bytes() == latest_before


def test_changed_tables_make_a_dot_one_release_with_changes(first, releases_dir: Path) -> None:
    result = publish(changed_tables(), releases_dir)
    assert result.published and result.version == "2024.06.20.1"
    assert latest_version(releases_dir) == "2024.06.20.1"
    assert result.changes["actors"] == {"added": 1, "removed": 0, "changed": 0}
    assert result.changes["mentions"] == {"added": 0, "removed": 1, "changed": 0}
    assert result.changes["events"] == {"added": 0, "removed": 0, "changed": 1}
    assert result.changes["documents"] == {"added": 0, "removed": 0, "changed": 0}
    changes = (result.path / "CHANGES.md").read_text()
    removed_mention = sample_tables()["mentions"]["mention_id"].iloc[0]
    assert "Compared with release 2024.06.20" in changes
    assert "| actors | 6 | 1 | 0 | 0 |" in changes
    assert "- Added (1): `act_shoigu`" in changes
    assert f"- Removed (1): `{removed_mention}`" in changes
    assert f"- Changed (1): `{DEAL}`" in changes
    assert "## documents" not in changes
    diff = diff_releases(releases_dir, "2024.06.20", "2024.06.20.1")
    assert diff["actors"] == {"added": ["act_shoigu"], "removed": [], "changed": []}
    assert diff["events"]["changed"] == [DEAL]
    catalog = json.loads((releases_dir / "catalog.json").read_text())
    assert [entry["version"] for entry in catalog["releases"]] == ["2024.06.20", "2024.06.20.1"]
    assert publish(sample_tables(), releases_dir).version == "2024.06.20.2"
    assert publish(changed_tables(), releases_dir, day=dt.date(2024, 6, 21)).version == "2024.06.21"


def test_frictionless_accepts_the_package(first) -> None:
    import frictionless

    report = frictionless.validate(str(first.path / "datapackage.json"))
    assert report.valid, report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])
    assert {task.name for task in report.tasks} == set(schema.TABLES)
    cli = Path(sys.executable).parent / "frictionless"
    run = subprocess.run([str(cli), "validate", "datapackage.json"], cwd=first.path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    package = json.loads((first.path / "datapackage.json").read_text())
    assert package["profile"] == "tabular-data-package" and package["version"] == "2024.06.20"
    parquet = {item["path"]: item for item in package["parquetFiles"]}
    assert parquet["actors.parquet"]["bytes"] == (first.path / "actors.parquet").stat().st_size
    assert parquet["actors.parquet"]["hash"].startswith("sha256:")


def test_frictionless_rejects_a_corrupted_csv(first) -> None:
    import frictionless

    path = first.path / "actors.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("Vladimir Putin", "Wladimir Putin"), encoding="utf-8")
    report = frictionless.validate(str(first.path / "datapackage.json"))
    assert not report.valid
    assert "hash-count" in {error[0] for error in report.flatten(["type"])}


@pytest.mark.parametrize(("file", "good", "bad", "error"), [
    ("mentions.csv", OFFICIALS, "act_nobody", "foreign-key"),
    ("transfers.csv", f'"{SHELLS}","{NORTH_KOREA}"', f'"{SHELLS}","act_nobody"', "foreign-key"),
    ("actors.csv", '"[""Putin""]"', "Putin", "type-error"),
    ("events.csv", ",0.95,", ",1.5,", "constraint-error"),
])
def test_frictionless_checks_keys_lists_and_constraints(first, file: str, good: str, bad: str, error: str) -> None:
    import frictionless

    path = first.path / file
    text = path.read_text(encoding="utf-8")
    assert good in text
    path.write_text(text.replace(good, bad), encoding="utf-8")
    package = json.loads((first.path / "datapackage.json").read_text())
    for resource in package["resources"]:  # no recorded size or hash, so that only the content can fail
        if resource["path"] == file:
            resource.pop("bytes")
            resource.pop("hash")
    (first.path / "datapackage.json").write_text(json.dumps(package))
    report = frictionless.validate(str(first.path / "datapackage.json"))
    assert {found[0] for found in report.flatten(["type"])} == {error}


def test_a_release_that_fails_frictionless_is_not_published(releases_dir: Path) -> None:
    tables = sample_tables()
    tables["mentions"].loc[0, "actor_id"] = "act_nobody"
    with pytest.raises(PackageInvalidError, match="foreign-key"):
        publish(tables, releases_dir)
    assert list_releases(releases_dir) == []
    assert not [p for p in releases_dir.iterdir() if p.name.startswith(".tmp-")]


def test_sha256sum_accepts_sha256sums(first) -> None:
    run = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=first.path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    listed = {line.split("  ", 1)[1] for line in (first.path / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.name for p in first.path.iterdir()} - {"SHA256SUMS"}


def test_leftovers_of_a_killed_run_are_removed(first, releases_dir: Path) -> None:
    leftover = releases_dir / ".tmp-release-k1ll3d"
    leftover.mkdir()
    (leftover / "actors.parquet").write_bytes(b"half a file")
    (releases_dir / ".tmp-latest.json-abc").write_text("{")
    result = publish(changed_tables(), releases_dir)
    assert result.published
    assert not leftover.exists() and not (releases_dir / ".tmp-latest.json-abc").exists()
    assert (releases_dir / ".lock").exists()


def test_indexes_catch_up_after_a_run_killed_before_them(first, releases_dir: Path) -> None:
    second = publish(changed_tables(), releases_dir)
    (releases_dir / "latest.json").write_text(json.dumps({"version": first.version, "path": first.version}))
    result = publish(changed_tables(), releases_dir)
    assert not result.published
    assert latest_version(releases_dir) == second.version


def test_the_lock_keeps_a_second_publisher_out(releases_dir: Path) -> None:
    releases_dir.mkdir(parents=True)
    with release_lock(releases_dir):
        with pytest.raises(ReleaseLockedError, match=r"\.lock"):
            publish(sample_tables(), releases_dir)
    assert list_releases(releases_dir) == []


def test_a_publisher_waits_for_the_lock_when_asked(releases_dir: Path) -> None:
    releases_dir.mkdir(parents=True)
    held = threading.Event()

    def hold_lock_briefly() -> None:
        with release_lock(releases_dir):
            held.set()
            time.sleep(0.3)

    holder = threading.Thread(target=hold_lock_briefly)
    holder.start()
    held.wait()
    result = publish(sample_tables(), releases_dir, lock_timeout=10)
    holder.join()
    assert result.published


def test_bad_inputs_are_refused(releases_dir: Path) -> None:
    tables = sample_tables()
    del tables["citations"]
    with pytest.raises(ValueError, match="citations"):
        publish(tables, releases_dir)
    with pytest.raises(ValueError, match="reason"):
        publish_release(sample_tables(), releases_dir, validation={}, rejected=[{"path": "x.txt"}], today=DAY)
    publish(sample_tables(), releases_dir)
    with pytest.raises(ValueError, match="clock"):
        publish(changed_tables(), releases_dir, day=dt.date(2024, 6, 19))
