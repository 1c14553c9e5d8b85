"""Faults and tampering: a publisher SIGKILLed at 20 points, a failed validation, two publishers
at once, retries, tampered releases and hostile HTML.

After every fault the releases folder must still be trustworthy: latest.json
names a complete release whose SHA256SUMS verify, armsledger.load works, and
the next publish completes. The killed and racing publishers are processes
forked from tests/fixtures/faults/publisher_server.py (imports paid once).
"""
from __future__ import annotations

import json
import linecache
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import armsledger
import armsledger.publish as publish_module
import armsledger.releases as releases_module
from armsledger import schema
from armsledger.publish import ReleaseLockedError, release_lock
from armsledger.releases import latest_version, list_releases
from test_publish import changed_tables, publish, sample_tables

TESTS_DIR = Path(__file__).resolve().parent
PROJECT = TESTS_DIR.parent
SERVER = TESTS_DIR / "fixtures" / "faults" / "publisher_server.py"
N_KILL_POINTS = 20
FIRST, SECOND = "2024.06.20", "2024.06.20.1"
SOURCES = {"publish.py": publish_module.__file__, "releases.py": releases_module.__file__}

# Moments that must be among the kill points (function, words of the line, which occurrence: 0 first, -1 last).
MUST_KILL_AT = [
    ("release_lock", "yield lock_path", 0),              # lock held, nothing done yet
    ("remove_leftovers", "for entry in releases_dir.iterdir()", 0),
    ("write", "self._handle.write(data)", 0),          # first file of the new release half made
    ("write_durably", "os.fsync(handle.fileno())", -1),  # last file written, not yet flushed
    ("validate_package", "report = frictionless.validate", 0),
    ("build_release", "os.rename(temp, final)", 0),      # the release folder is complete, not yet in place
    ("build_release", "fsync_dir(releases_dir)", 0),     # in place, the indexes not yet updated
    ("write_atomically", "os.replace(temp_name, path)", 0),   # catalog.json's temporary file written
    ("replace_if_changed", "write_atomically(path, data)", -1),  # catalog.json moved, latest.json not yet
    ("write_atomically", "os.replace(temp_name, path)", -1),  # latest.json's temporary file written
    ("write_atomically", "fsync_dir(path.parent)", -1),  # latest.json moved, not yet flushed
]
# Functions whose lines are worth dying at: those that touch the releases folder.
IO_FUNCTIONS = {
    "publish_release", "release_lock", "remove_leftovers", "build_release", "write_release_files",
    "write_durably", "write", "validate_package", "write_indexes", "catalog_entry", "replace_if_changed",
    "write_atomically", "fsync_dir",
}


def source_line(file: str, line: int) -> str:
    return linecache.getline(SOURCES[file], line).strip()


def choose_kill_points(events: list[list]) -> list[int]:
    """N_KILL_POINTS distinct 1-based event numbers: the MUST_KILL_AT moments, then evenly spread I/O lines."""
    chosen: set[int] = set()
    for function, words, which in MUST_KILL_AT:
        hits = [i for i, (f, fn, ln) in enumerate(events, 1) if fn == function and words in source_line(f, ln)]
        assert hits, f"no traced line {words!r} in {function}: has publish.py changed?"
        chosen.add(hits[which])
    candidates = [i for i, (_f, fn, _ln) in enumerate(events, 1) if fn in IO_FUNCTIONS and i not in chosen]
    spare = N_KILL_POINTS - len(chosen)
    step = len(candidates) / spare
    chosen.update(candidates[int(k * step + step / 2)] for k in range(spare))
    assert len(chosen) == N_KILL_POINTS
    return sorted(chosen)


def verify_release(folder: Path) -> None:
    """A complete release: every file is listed in SHA256SUMS and `sha256sum -c` accepts them all."""
    run = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert run.returncode == 0, f"{folder}: {run.stdout}{run.stderr}"
    listed = {line.split("  ", 1)[1] for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert listed == {p.name for p in folder.iterdir()} - {"SHA256SUMS"}
    assert listed >= {f"{t}.{ext}" for t in schema.TABLES for ext in ("parquet", "csv")}


def check_after_kill(releases_dir: Path) -> str:
    """What a user and the next run see after a kill. Returns the release latest.json named after the kill."""
    latest = latest_version(releases_dir)
    assert latest in (FIRST, SECOND)
    for version in list_releases(releases_dir):  # no half-made release is visible under a release name
        verify_release(releases_dir / version)
    for table in schema.TABLES:
        assert len(armsledger.load(table, source=releases_dir)) > 0
    catalog = releases_dir / "catalog.json"
    assert {e["version"] for e in json.loads(catalog.read_text())["releases"]} <= set(list_releases(releases_dir))

    result = publish(changed_tables(), releases_dir)  # the next run
    assert result.published or result.reason.startswith("no change"), result.reason
    assert list_releases(releases_dir) == [FIRST, SECOND]
    assert latest_version(releases_dir) == SECOND
    verify_release(releases_dir / SECOND)
    assert "act_shoigu" in set(armsledger.load("actors", source=releases_dir)["actor_id"])
    assert [e["version"] for e in json.loads(catalog.read_text())["releases"]] == [FIRST, SECOND]
    assert not [p.name for p in releases_dir.iterdir() if p.name.startswith(".tmp-")]
    return latest


@pytest.fixture(scope="module")
def first_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    releases_dir = tmp_path_factory.mktemp("first") / "releases"
    publish(sample_tables(), releases_dir)
    return releases_dir


class PublisherServer:
    """tests/fixtures/faults/publisher_server.py in a subprocess: publishers forked from it, killed or racing."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(SERVER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=PROJECT)

    def ask(self, command: dict):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the publisher server died (exit {self.process.poll()})"
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    started = PublisherServer()
    yield started
    started.close()


@pytest.mark.slow
def test_publisher_killed_at_20_points_leaves_a_complete_release(server, first_release: Path, tmp_path: Path) -> None:
    recorded = shutil.copytree(first_release, tmp_path / "recorded")
    assert server.ask({"record": [str(recorded), str(tmp_path / "events.json")]}) == {"ok": True}
    events = json.loads((tmp_path / "events.json").read_text())
    points = choose_kill_points(events)
    outcomes = []
    for n in points:
        releases_dir = shutil.copytree(first_release, tmp_path / f"kill-{n}")
        answer = server.ask({"kill": [str(releases_dir), n]})
        file, function, line = events[n - 1]
        where = f"#{n} {file}:{line} {function}: {source_line(file, line)}"
        assert answer["killed"], f"not killed at {where}: {answer}"
        outcomes.append((where, check_after_kill(releases_dir)))

    survived = len(outcomes)
    summary = "\n".join(f"{where} -> latest {latest}" for where, latest in outcomes)
    print(f"\n{survived} of {len(points)} kill points survived:\n{summary}")
    assert survived == N_KILL_POINTS
    # Both sides of the switch were hit: kills before latest.json moved and after it.
    assert {latest for _, latest in outcomes} == {FIRST, SECOND}


# --- validation failure, without Prefect ---------------------------------------------------


@pytest.mark.slow
def test_failed_validation_in_run_pipeline_keeps_the_release_and_names_each_failure(
    copy_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    import armsledger.pipeline as pipeline
    from armsledger.config import load_settings
    from flows.extract import get_extractor
    from test_flow import NEW_TEXT, snapshot

    real = pipeline.normalise

    def broken(documents, extractions):
        tables = real(documents, extractions)
        actors = tables["actors"].copy()
        actors.loc[actors.index[0], "type"] = "alien"
        actors.loc[actors.index[1], "country"] = "XX"
        tables["actors"] = actors
        return tables

    monkeypatch.setattr(pipeline, "normalise", broken)
    raw, processed = copy_run()
    (raw / "extra.txt").write_text(NEW_TEXT, encoding="utf-8")
    before = snapshot(processed / "releases")
    settings = load_settings(raw, processed)
    with pytest.raises(pipeline.ValidationFailed) as caught:
        pipeline.run_pipeline(settings, extractor=get_extractor(settings))
    message = str(caught.value)
    failures = caught.value.report.failures
    assert len(failures) >= 2
    for failure in failures:  # each failed expectation is listed, one line each
        assert f"  - {failure['table']}: {failure['expectation']}" in message
    assert "alien" in message and "XX" in message
    assert snapshot(processed / "releases") == before


# --- two publishers at once -------------------------------------------------------------

@pytest.mark.slow
def test_two_publishers_at_once_one_waits_one_gives_up_nothing_corrupted(server, tmp_path: Path) -> None:
    """Two processes start together; whichever gets the lock holds it 1 s longer than it needs.
    A waits (up to 30 s, backing off); B does not wait."""
    releases_dir = tmp_path / "releases"
    a, b = server.ask({"race": [[str(releases_dir), "sample", 30, 1.0], [str(releases_dir), "changed", 0, 1.0]]})
    assert a["exit_code"] == 0 and a["locked"], a
    if not b["locked"]:  # A held the lock: B gave up at once with a clear message
        assert b["exit_code"] == 3 and b["version"] is None
        assert "another publisher holds" in b["error"] and ".lock" in b["error"], b
        assert a["version"] == FIRST and list_releases(releases_dir) == [FIRST]
    else:  # B held the lock and published; A waited for it (backing off), then published after it
        assert b["exit_code"] == 0 and b["version"] == FIRST, b
        assert a["version"] == SECOND and list_releases(releases_dir) == [FIRST, SECOND]
    for version in list_releases(releases_dir):
        verify_release(releases_dir / version)
    assert latest_version(releases_dir) == list_releases(releases_dir)[-1]
    assert not [p.name for p in releases_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_two_waiting_publishers_both_publish_in_turn(server, tmp_path: Path) -> None:
    releases_dir = tmp_path / "releases"
    answers = server.ask({"race": [[str(releases_dir), "sample", 30, 0.5], [str(releases_dir), "changed", 30, 0.5]]})
    assert [a["exit_code"] for a in answers] == [0, 0], answers
    assert sorted(a["version"] for a in answers) == [FIRST, SECOND]
    assert list_releases(releases_dir) == [FIRST, SECOND]
    for version in (FIRST, SECOND):
        verify_release(releases_dir / version)
    assert latest_version(releases_dir) == SECOND
    catalog = json.loads((releases_dir / "catalog.json").read_text())
    assert [e["version"] for e in catalog["releases"]] == [FIRST, SECOND]


@pytest.mark.slow
def test_two_pipeline_runs_at_once_on_the_same_processed(copy_run, seed_release) -> None:
    """Two whole runs (the plain pipeline, no Prefect) start together: both finish, one release, intact."""
    from concurrent.futures import ThreadPoolExecutor

    from armsledger.config import load_settings
    from armsledger.pipeline import run_pipeline
    from flows.extract import get_extractor

    raw, processed = copy_run(with_releases=False)
    settings = load_settings(raw, processed)
    extractor = get_extractor(settings)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run_pipeline, settings, extractor=extractor) for _ in range(2)]
        summaries = [f.result(timeout=300) for f in futures]
    assert sorted(s.published for s in summaries) == [False, True]
    assert any(s.reason.startswith("no change") for s in summaries)
    releases = processed / "releases"
    (version,) = list_releases(releases)
    verify_release(releases / version)
    assert latest_version(releases) == version
    for name in schema.TABLES:
        assert (releases / version / f"{name}.parquet").read_bytes() == (
            seed_release.release / f"{name}.parquet"
        ).read_bytes()


# --- the lock's back-off and retries ------------------------------------------------------


def test_lock_wait_backs_off_and_gives_up_with_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    tmp_path.joinpath("releases").mkdir()
    sleeps: list[float] = []
    now = [1000.0]  # a fake clock that moves only when the publisher sleeps
    monkeypatch.setattr(publish_module.time, "monotonic", lambda: now[0])

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(publish_module.time, "sleep", sleep)
    with release_lock(tmp_path / "releases"):
        with pytest.raises(ReleaseLockedError, match=r"after waiting 3 s; try again"):
            with release_lock(tmp_path / "releases", timeout=3):
                pass
    assert sleeps[0] == publish_module.LOCK_RETRY_FIRST_DELAY
    assert sleeps[:-1] == sorted(sleeps[:-1]) and sleeps[1] == 2 * sleeps[0]  # growing
    assert max(sleeps) <= publish_module.LOCK_RETRY_MAX_DELAY
    assert sum(sleeps) == pytest.approx(3)  # the last sleep is cut to the deadline
    assert len(sleeps) < 3 / publish_module.LOCK_RETRY_FIRST_DELAY / 2


def test_a_briefly_held_lock_is_waited_for(tmp_path: Path) -> None:
    """Transient: another process holds the lock for a moment; a publisher with a timeout waits for it."""
    import threading

    releases_dir = tmp_path / "releases"
    releases_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, sys
        with open({str(releases_dir / '.lock')!r}, "a+b") as h:
            fcntl.flock(h.fileno(), fcntl.LOCK_EX)
            print("held", flush=True)
            sys.stdin.readline()  # hold until told to let go
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ReleaseLockedError, match="another publisher holds"):  # a caller that does not wait
        publish(sample_tables(), releases_dir)

    def let_go() -> None:
        holder.stdin.write("go\n")
        holder.stdin.flush()

    threading.Timer(0.4, let_go).start()
    started = time.monotonic()
    result = publish(sample_tables(), releases_dir, lock_timeout=30)
    assert result.published and 0.4 <= time.monotonic() - started < 25
    assert holder.wait(timeout=10) == 0


def test_ingest_task_retries_transient_io_errors_only() -> None:
    """The Prefect ingest task retries an OSError that can pass, and not a missing folder or a bug."""
    from flows.ingest import _transient_io_error, ingest_documents

    class State:
        def __init__(self, error: BaseException | None) -> None:
            self.error = error

        def result(self):
            if self.error:
                raise self.error
            return "ok"

    assert _transient_io_error(None, None, State(TimeoutError("share timed out")))
    assert _transient_io_error(None, None, State(OSError(5, "Input/output error")))
    assert not _transient_io_error(None, None, State(FileNotFoundError(2, "raw folder missing")))
    assert not _transient_io_error(None, None, State(PermissionError(13, "denied")))
    assert not _transient_io_error(None, None, State(ValueError("a bug")))
    assert not _transient_io_error(None, None, State(None))
    assert ingest_documents.retries >= 1 and ingest_documents.retry_delay_seconds


@pytest.mark.slow
def test_a_source_read_that_fails_once_is_retried(prefect_server, tmp_path: Path, monkeypatch) -> None:
    from prefect import flow

    import armsledger.pipeline as pipeline
    from armsledger.config import load_settings
    from flows.ingest import ingest_documents

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("Kim Jong Un met Vladimir Putin.\n", encoding="utf-8")
    calls: list[int] = []
    real = pipeline.read_raw

    def flaky(settings):
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("the network share timed out")
        return real(settings)

    monkeypatch.setattr(pipeline, "read_raw", flaky)

    @flow
    def just_ingest(settings):
        return ingest_documents.with_options(retry_delay_seconds=0)(settings)

    result = just_ingest(load_settings(raw, tmp_path / "processed"))
    assert [d.path for d in result.documents] == ["a.txt"] and len(calls) == 2

    calls.clear()
    monkeypatch.setattr(pipeline, "read_raw", lambda settings: (calls.append(1), real(settings))[1])
    with pytest.raises(FileNotFoundError):  # permanent: tried once, reported
        just_ingest(load_settings(tmp_path / "missing", tmp_path / "processed"))
    assert len(calls) == 1


# --- tampering and hostile pages --------------------------------------------------------------


@pytest.fixture()
def published(first_release: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(first_release, tmp_path / "releases"))


def test_a_table_missing_from_sha256sums_is_refused(published: Path) -> None:
    sums = published / FIRST / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "actors.parquet" not in line))
    with pytest.raises(releases_module.IntegrityError, match="actors.parquet is not listed"):
        armsledger.load("actors", source=published)
    assert len(armsledger.load("events", source=published)) == 3  # the other tables still verify


def test_a_swapped_table_is_refused(published: Path) -> None:
    """Another table's valid Parquet under this table's name: the hash, not the format, decides."""
    release = published / FIRST
    shutil.copyfile(release / "events.parquet", release / "actors.parquet")
    with pytest.raises(releases_module.IntegrityError, match="actors.parquet: SHA-256 is"):
        armsledger.load("actors", source=published)


def test_a_catalog_entry_that_is_not_a_release_name_is_refused(published: Path) -> None:
    catalog = published / "catalog.json"
    entries = json.loads(catalog.read_text())
    entries["releases"].append({"version": "../../etc", "path": "../../etc"})
    catalog.write_text(json.dumps(entries))
    # The catalog is read when a release is not found, to list the ones there are.
    with pytest.raises(releases_module.InvalidReleaseNameError, match="etc"):
        armsledger.load("actors", version="2030.01.01", source=published)
    assert len(armsledger.load("actors", source=published)) == 5


def test_codebook_says_csv_cells_are_escaped(published: Path) -> None:
    package = json.loads((published / FIRST / "datapackage.json").read_text())
    for resource in package["resources"]:
        assert "prefixed with a single quote" in resource["description"]
        assert "Parquet file keeps the true value" in resource["description"]


HOSTILE_PAGE = """<!DOCTYPE html><html><head>
<title>Shells for satellites</title>
<meta http-equiv="refresh" content="0; url=http://evil.example/redirect">
<link rel="stylesheet" href="http://evil.example/style.css">
<script src="http://evil.example/tracker.js"></script>
<script>fetch("http://evil.example/beacon"); document.write("INJECTED BY SCRIPT");</script>
<base href="http://evil.example/">
</head><body onload="new Image().src='http://evil.example/onload'">
<article>
<p>North Korea has sent artillery shells to Russia, officials said on Thursday.</p>
<img src="http://evil.example/pixel.png" onerror="fetch('http://evil.example/err')">
<iframe src="http://evil.example/frame.html"></iframe>
<object data="http://evil.example/object.swf"></object>
<p>In return Moscow is expected to help with satellite technology.</p>
<noscript><img src="http://evil.example/noscript.png"></noscript>
</article></body></html>
"""


def test_html_ingestion_never_executes_scripts_or_fetches(tmp_path: Path, monkeypatch) -> None:
    import socket
    import urllib.request

    from armsledger.config import Settings
    from armsledger.ingest import ingest

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text(HOSTILE_PAGE, encoding="utf-8")
    attempts: list[str] = []

    def refuse(name: str):
        def blocked(*args, **kwargs):
            attempts.append(f"{name}{args[:2]}")
            raise AssertionError(f"ingest tried the network or a program: {name}{args[:2]}")
        return blocked

    monkeypatch.setattr(socket, "socket", refuse("socket.socket"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse("urllib.request.urlopen"))
    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess.Popen"))

    result = ingest(raw, Settings(raw_dir=raw, processed_dir=tmp_path / "processed", expectations_dir=tmp_path))
    assert attempts == []
    (document,) = result.documents
    assert "North Korea has sent artillery shells to Russia" in document.text
    assert "satellite technology" in document.text
    for trace in ("INJECTED", "fetch", "evil.example", "document.write", "tracker"):
        assert trace not in document.text
    assert document.title == "Shells for satellites"


def test_malloc_arena_cap_is_set_unless_the_environment_chose(monkeypatch):
    import platform

    from armsledger.runtime import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert limit_malloc_arenas() is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def _resident_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_heap_thresholds_are_raised_only_when_the_environment_lowered_them(monkeypatch):
    from armsledger.runtime import HEAP_TRIM_THRESHOLD, keep_heap_between_batches

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert keep_heap_between_batches() is False
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", str(HEAP_TRIM_THRESHOLD))
    assert keep_heap_between_batches() is False
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # what Dask's nanny gives its workers
    assert keep_heap_between_batches() is glibc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_pages_go_back_to_the_system():
    from armsledger.runtime import release_free_heap

    # 200 MiB in blocks of 1 KiB (too large for Python's own allocator, too small for mmap), one in 64
    # kept: what is freed lies in holes of 63 KiB between blocks in use, which glibc does not give back
    # by shrinking its heap.
    blocks = [bytes(1024) for _ in range(200 * 1024)]
    kept = blocks[::64]
    del blocks
    before = _resident_mib()
    assert release_free_heap() is True
    assert before - _resident_mib() > 100, "the freed blocks stayed resident"
    del kept
