"""The `armsledger` command line: help texts, exit codes, and each command against the session release."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import armsledger
from armsledger import schema
from armsledger.cli import app
from armsledger.publish import publish_release

COMMANDS = ("run", "serve", "validate", "releases", "diff", "eval")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# --- fast: no Prefect server ------------------------------------------------------------


def test_help_lists_every_command_and_the_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
    assert "Exit codes" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Exit codes" in result.stdout
    assert f"Usage: armsledger {command}" in " ".join(result.stdout.split())


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    assert result.exit_code in (0, 2)  # click prints help and exits with "usage"


def test_bad_usage_exits_2(tmp_path):
    assert invoke("run", "--raw", tmp_path / "nowhere").exit_code == 2
    assert invoke("run", "--no-such-option").exit_code == 2
    assert invoke("eval", "--raw", tmp_path).exit_code == 2  # --gold is required
    assert invoke("diff", "2024.01.01").exit_code == 2


def test_serve_refuses_without_a_server(monkeypatch, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # Whatever the session has started (the test harness sets an API URL), this command sees none.
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = invoke("serve", "--raw", tmp_path, "--processed", tmp_path / "out")
    assert result.exit_code == 2
    assert "prefect server start" in " ".join(result.stderr.split())
    assert invoke("serve", "--timezone", "Mars/Olympus_Mons").exit_code == 2
    bad_cron = invoke("serve", "--cron", "every morning", "--raw", tmp_path)
    assert bad_cron.exit_code == 2 and "Invalid cron string" in bad_cron.stderr


def test_releases_when_nothing_is_published(tmp_path):
    result = invoke("releases", "--processed", tmp_path)
    assert result.exit_code == 0
    assert "no releases" in result.stdout


# --- against the session release ----------------------------------------------------------


@pytest.mark.slow
def test_releases_lists_versions_and_marks_latest(seed_release):
    result = invoke("releases", "--processed", seed_release.processed)
    assert result.exit_code == 0, result.output
    line = next(l for l in result.stdout.splitlines() if seed_release.version in l)
    assert "*" in line
    assert str(seed_release.summary.rows["mentions"]) in line

    data = json.loads(invoke("releases", "--processed", seed_release.processed, "--json").stdout)
    assert data["latest"] == seed_release.version
    assert data["releases"][0]["rows"] == seed_release.summary.rows


@pytest.mark.slow
def test_releases_via_the_console_script(seed_release):
    script = Path(sys.executable).with_name("armsledger")
    done = subprocess.run(
        [str(script), "releases", "--processed", str(seed_release.processed), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["latest"] == seed_release.version


@pytest.mark.slow
def test_diff_counts_rows_added_removed_changed(seed_release, tmp_path):
    processed = tmp_path / "processed"
    shutil.copytree(seed_release.releases, processed / "releases")
    tables = {name: armsledger.load(name, source=processed / "releases") for name in schema.TABLES}
    marker_rows = tables["citations"]["kind"] != "evidence"
    dropped = tables["citations"][marker_rows]["citation_id"].iloc[0]
    tables["citations"] = tables["citations"][tables["citations"]["citation_id"] != dropped]
    second = publish_release(tables, processed / "releases", validation={}, rejected=[])
    assert second.published

    result = invoke("diff", seed_release.version, second.version, "--processed", processed)
    assert result.exit_code == 0, result.output
    citations = next(l for l in result.stdout.splitlines() if "citations" in l)
    assert [cell for cell in citations.split() if cell.isdigit()] == ["0", "1", "0"]

    data = json.loads(invoke("diff", seed_release.version, "latest", "--processed", processed, "--json").stdout)
    assert data["to"] == second.version
    assert data["tables"]["citations"] == {"added": [], "removed": [dropped], "changed": []}
    assert all(not any(v.values()) for t, v in data["tables"].items() if t != "citations")

    assert invoke("diff", seed_release.version, "2001.01.01", "--processed", processed).exit_code == 2
    assert invoke("diff", "../etc", "latest", "--processed", processed).exit_code == 2


# --- commands that run a flow ----------------------------------------------------------------


@pytest.mark.slow
def test_eval_json_scores_every_table(seed_release, gold_dir, eval_floors):
    result = invoke("eval", "--gold", gold_dir, "--raw", seed_release.raw, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    for table, floor in eval_floors.items():
        assert summary[table]["f1"] >= floor, (table, summary[table])


@pytest.mark.slow
def test_eval_prints_the_table(seed_release, gold_dir):
    result = invoke("eval", "--gold", gold_dir, "--raw", seed_release.raw)
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["table", "precision", "recall", "F1"]


@pytest.mark.slow
def test_run_with_no_change_exits_0(copy_run, seed_release):
    raw, processed = copy_run()
    result = invoke("run", "--raw", raw, "--processed", processed)
    assert result.exit_code == 0, result.output
    assert "no change" in result.stdout
    assert seed_release.version in result.stdout

    data = json.loads(invoke("run", "--raw", raw, "--processed", processed, "--json").stdout)
    assert data["published"] is False and data["latest_version"] == seed_release.version


def test_run_with_no_change_starts_no_flow(copy_run, seed_release, monkeypatch):
    from flows import pipeline as flows_pipeline

    def no_flow(*args, **kwargs):
        raise AssertionError("the flow ran although the inputs are those of the latest release")

    monkeypatch.setattr(flows_pipeline, "build_release", no_flow)
    raw, processed = copy_run()
    data = json.loads(invoke("run", "--raw", raw, "--processed", processed, "--json").stdout)
    assert data["published"] is False and data["tables_built"] is False
    assert data["latest_version"] == seed_release.version

    (raw / "added.txt").write_text("North Korea shipped more artillery shells to Russia, officials said.", encoding="utf-8")
    result = runner.invoke(app, ["run", "--raw", str(raw), "--processed", str(processed), "--json"])
    assert result.exit_code == 3 and "the flow ran" in result.output  # something new: the flow is called


def test_the_flow_remembers_how_raw_looked_for_its_release(seed_release):
    from armsledger.ingest import folder_snapshot

    record = json.loads((seed_release.processed / "state" / "raw.json").read_text(encoding="utf-8"))
    assert record == {"raw_dir": str(seed_release.raw.resolve()), "snapshot": folder_snapshot(seed_release.raw),
                      "version": seed_release.version}


def test_run_skips_the_no_change_test_when_raw_has_changed(copy_run, seed_release, monkeypatch):
    from armsledger import pipeline
    from flows import pipeline as flows_pipeline

    tested = []
    real_preflight = pipeline.preflight
    monkeypatch.setattr(pipeline, "preflight", lambda settings: tested.append(settings) or real_preflight(settings))

    def no_flow(*args, **kwargs):
        raise AssertionError("the flow ran")

    monkeypatch.setattr(flows_pipeline, "build_release", no_flow)
    raw, processed = copy_run()
    data = json.loads(invoke("run", "--raw", raw, "--processed", processed, "--json").stdout)
    assert data["tables_built"] is False and len(tested) == 1  # nothing recorded yet: raw/ is read to find out
    record = json.loads((processed / "state" / "raw.json").read_text(encoding="utf-8"))
    assert record["version"] == seed_release.version

    again = json.loads(invoke("run", "--raw", raw, "--processed", processed, "--json").stdout)
    assert again["tables_built"] is False and len(tested) == 2  # as recorded: raw/ is read to be sure

    (raw / "added.txt").write_text("Russia sent fuel to North Korea in March, officials said.", encoding="utf-8")
    result = runner.invoke(app, ["run", "--raw", str(raw), "--processed", str(processed), "--json"])
    assert result.exit_code == 3 and "the flow ran" in result.output
    assert len(tested) == 2  # raw/ changed: straight to the flow, which reads it


@pytest.mark.slow
def test_run_failing_a_stricter_suite_exits_1_and_publishes_nothing(copy_run, suites_with):
    raw, processed = copy_run()
    (raw / "more.txt").write_text(
        "Russia delivered two air defence systems to North Korea in May, officials in Seoul said.\n",
        encoding="utf-8",
    )
    suites_with("events", {"max_value": 1}, "stricter than the contract: at most one event")
    before = sorted(p.name for p in (processed / "releases").iterdir())

    result = invoke("run", "--raw", raw, "--processed", processed)
    assert result.exit_code == 1, result.output
    assert "expect_table_row_count_to_be_between" in result.stderr
    assert "nothing published" in result.stdout + result.stderr
    assert sorted(p.name for p in (processed / "releases").iterdir()) == before

    checked = invoke("validate", "--raw", raw, "--processed", processed)
    assert checked.exit_code == 1
    assert "failed" in checked.stdout


@pytest.mark.slow
def test_validate_passes_on_the_seeds(seed_release, tmp_path):
    result = invoke("validate", "--raw", seed_release.raw, "--processed", tmp_path / "processed")
    assert result.exit_code == 0, result.output
    for name in schema.TABLES:
        assert name in result.stdout
    assert not (tmp_path / "processed" / "releases").exists()


def test_progress_bar_only_when_asked_and_on_a_terminal(monkeypatch, capsys):
    from armsledger.progress import document_progress

    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # stderr is not a terminal
    with document_progress(3, enabled=True) as advance:
        advance(3)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with document_progress(3, enabled=False) as advance:  # --json
        advance(3)
    assert capsys.readouterr().err == ""
    with document_progress(3, enabled=True) as advance:
        advance(1)
        advance(2)
    err = capsys.readouterr()
    assert "3/3" in err.err and "docs/s" in err.err and "extracting" in err.err
    assert err.out == ""


@pytest.mark.slow
def test_run_shows_progress_on_a_terminal_and_json_stays_clean(copy_run, tmp_path):
    raw, _ = copy_run(with_releases=False)
    terminal = {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color", "COLUMNS": "120"}

    as_json = runner.invoke(app, ["run", "--raw", str(raw), "--processed", str(tmp_path / "a"), "--json"],
                            env=terminal, catch_exceptions=False)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)  # nothing but the JSON on stdout
    assert data["published"] and data["tables_built"] and data["documents"] == 2
    assert "extracting" not in as_json.stderr

    shown = runner.invoke(app, ["run", "--raw", str(raw), "--processed", str(tmp_path / "b")],
                          env=terminal, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "extracting" in shown.stderr and "2/2" in shown.stderr and "docs/s" in shown.stderr
    assert "published" in shown.stdout and "extracting" not in shown.stdout

    again = runner.invoke(app, ["run", "--raw", str(raw), "--processed", str(tmp_path / "b")],
                          env=terminal, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "no change" in again.stdout and "not needed" in again.stdout
    assert "extracting" not in again.stderr


@pytest.mark.slow
def test_run_as_a_command_starts_and_stops_its_own_prefect_server(copy_run, tmp_path):
    raw, _ = copy_run(with_releases=False)
    script = Path(sys.executable).with_name("armsledger")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [str(script), "run", "--raw", str(raw), "--processed", str(tmp_path / "processed"), "--json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"]
    # The server was this run's (armsledger.prefect_server), not one Prefect started at the flow's first call,
    # and every log reached it before it stopped.
    assert "Starting temporary server" not in done.stderr
    assert "Error logging to API" not in done.stderr


def test_flow_runs_send_no_heartbeats_to_a_server_that_ends_with_the_run() -> None:
    from prefect.settings import get_current_settings

    from armsledger.cli import _heartbeats

    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None
    with _heartbeats(False):
        assert get_current_settings().flows.heartbeat_frequency is None
    with _heartbeats(True):
        assert get_current_settings().flows.heartbeat_frequency == default
    assert get_current_settings().flows.heartbeat_frequency == default
