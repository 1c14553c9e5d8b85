"""Quality gate: small consistent tables pass the stored GX suites; each kind of break is reported."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from armsledger import schema
from armsledger.expectation_suites import suite_path, write_suites
from armsledger.ids import stable_id
from armsledger.schema import TABLES
from armsledger.validate import SuiteError, ValidationReport, derive_text_checks, validate_tables

ROOT = Path(__file__).resolve().parents[1]
EXPECTATIONS = ROOT / "expectations"

TEXTS = {
    "doc_a": (
        "Kim Jong Un travelled to the Vostochny Cosmodrome on 13 September 2023 to meet Vladimir Putin. "
        "North Korea is expected to supply between 500,000 and 1 million artillery shells to Russia, "
        "according to US officials."
    ),
    "doc_b": (
        "Russia reportedly sent food aid to North Korea in exchange for munitions. "
        "Putin met Kim at the cosmodrome."
    ),
}
KIM, PUTIN, RUS, PRK, USOFF = "actor_kim", "actor_putin", "actor_rus", "actor_prk", "actor_usoff"
MEETING, SHELLS, FOOD = "event_meeting", "transfer_shells", "transfer_food"


def _span(doc: str, words: str) -> tuple[int, int]:
    start = TEXTS[doc].index(words)
    return start, start + len(words)


def _sentence(doc: str, index: int) -> str:
    return TEXTS[doc].split(". ")[index].rstrip(".") + "."


def build_tables() -> dict[str, pd.DataFrame]:
    """Six small tables with consistent keys, offsets, counts and citations, typed as the contract says."""
    documents = [
        {"doc_id": doc, "path": f"news/{doc}.txt", "sha256": stable_id("sha", doc)[4:] * 4,
         "title": None, "publisher": "Example News", "author": None, "url": None, "license": None,
         "language": "en", "published": dt.date(2023, 9, 14), "published_precision": "day",
         "n_chars": len(text), "n_words": len(text.split())}
        for doc, text in TEXTS.items()
    ]
    said = [
        ("doc_a", KIM, "Kim Jong Un"), ("doc_a", PUTIN, "Vladimir Putin"), ("doc_a", PRK, "North Korea"),
        ("doc_a", RUS, "Russia"), ("doc_a", USOFF, "US officials"),
        ("doc_b", RUS, "Russia"), ("doc_b", PRK, "North Korea"), ("doc_b", PUTIN, "Putin"), ("doc_b", KIM, "Kim"),
    ]
    mentions = []
    for doc, actor, words in said:
        start, end = _span(doc, words)
        mentions.append({"mention_id": stable_id("m", doc, start, end, actor), "doc_id": doc, "actor_id": actor,
                         "char_start": start, "char_end": end, "text": words})
    people = [
        (KIM, "Kim Jong Un", "person", "PRK", "Supreme Leader", ["Kim"], "Q56226"),
        (PUTIN, "Vladimir Putin", "person", "RUS", "President", ["Putin"], "Q7747"),
        (RUS, "Russia", "state", "RUS", None, [], "Q159"),
        (PRK, "North Korea", "state", "PRK", None, ["DPRK"], "Q423"),
        (USOFF, "US officials", "group", "USA", None, [], None),
    ]
    actors = [
        {"actor_id": a, "name": n, "type": t, "country": c, "role": r, "aliases": al, "wikidata_id": q,
         "n_mentions": sum(m["actor_id"] == a for m in mentions),
         "n_documents": len({m["doc_id"] for m in mentions if m["actor_id"] == a})}
        for a, n, t, c, r, al, q in people
    ]
    events = [
        {"event_id": MEETING, "event_type": "meeting", "plover_type": "CONSULT", "initiator_id": KIM,
         "actor_ids": [KIM, PUTIN], "date_start": dt.date(2023, 9, 13), "date_end": dt.date(2023, 9, 13),
         "date_precision": "day", "date_text": "on 13 September 2023", "place": "Vostochny Cosmodrome",
         "place_country": "RUS", "latitude": 51.88, "longitude": 128.33, "status": "occurred",
         "summary": _sentence("doc_a", 0), "confidence": 0.9, "n_documents": 2},
    ]
    transfers = [
        {"transfer_id": SHELLS, "supplier_id": PRK, "recipient_id": RUS, "category": "munitions",
         "item": "artillery shells", "quantity_text": "between 500,000 and 1 million", "quantity_low": 500_000,
         "quantity_high": 1_000_000, "unit": "shells", "status": "expected", "exchange_for": None,
         "event_id": MEETING, "date_start": None, "date_precision": None, "confidence": 0.6, "n_documents": 2},
        {"transfer_id": FOOD, "supplier_id": RUS, "recipient_id": PRK, "category": "food", "item": "food aid",
         "quantity_text": None, "quantity_low": None, "quantity_high": None, "unit": None, "status": "reported",
         "exchange_for": SHELLS, "event_id": None, "date_start": None, "date_precision": None,
         "confidence": 0.5, "n_documents": 1},
    ]
    supports = [
        ("doc_a", 0, "evidence", "events", MEETING, {}),
        ("doc_a", 1, "attribution", "transfers", SHELLS,
         {"source_actor_id": USOFF, "source_text": "US officials", "hedge": "is expected to", "status": "expected"}),
        ("doc_b", 0, "evidence", "transfers", FOOD, {"hedge": "reportedly", "status": "reported"}),
        ("doc_b", 0, "evidence", "transfers", SHELLS, {}),
        ("doc_b", 1, "evidence", "events", MEETING, {}),
    ]
    citations = []
    for doc, index, kind, target_table, target_id, extra in supports:
        sentence = _sentence(doc, index)
        start, end = _span(doc, sentence)
        row = {"citation_id": stable_id("c", doc, kind, start, end, target_id), "doc_id": doc, "kind": kind,
               "target_table": target_table, "target_id": target_id, "marker": None, "source_actor_id": None,
               "source_text": None, "quote": None, "hedge": None, "status": None, "sentence": sentence,
               "char_start": start, "char_end": end}
        citations.append({**row, **extra})
    rows = {"documents": documents, "actors": actors, "mentions": mentions, "events": events,
            "transfers": transfers, "citations": citations}
    return {name: _typed(name, pd.DataFrame(rows[name])) for name in TABLES}


def _typed(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the pipeline hands it over: through the contract's Arrow schema and back."""
    return schema.to_arrow(name, frame).to_pandas()


def _edit(tables: dict[str, pd.DataFrame], name: str, key: str, column: str, value) -> dict[str, pd.DataFrame]:
    frame = tables[name].copy()
    pk = schema.table(name).primary_key
    frame.loc[frame[pk] == key, column] = value
    return {**tables, name: frame}


def _validate(tables: dict[str, pd.DataFrame]) -> ValidationReport:
    return validate_tables(tables, EXPECTATIONS, derive_text_checks(tables, TEXTS))


def _failed(report: ValidationReport) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(f["table"], f["expectation"], tuple(f["columns"])) for f in report.failures}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return build_tables()


@pytest.fixture(scope="module")
def valid_report(tables) -> ValidationReport:
    return _validate(tables)


def test_valid_tables_pass(valid_report):
    assert valid_report.failures == []
    assert valid_report.success
    assert {r["table"] for r in valid_report.results} == set(TABLES)
    assert all(r["success"] is True and r["description"] for r in valid_report.results)


def test_report_is_stable_json(tables, valid_report, capfd):
    # Same rows in another order, through a second GX context: the same bytes, and nothing on stderr.
    shuffled = {name: frame.iloc[::-1].reset_index(drop=True) for name, frame in tables.items()}
    again = _validate(shuffled)
    assert again.to_json() == valid_report.to_json()
    assert json.loads(again.to_json())["n_failed"] == 0
    assert capfd.readouterr().err == ""


def test_list_columns_as_python_lists(tables):
    # Arrow hands list columns over as numpy arrays; frames built by hand hold lists.
    as_lists = {name: frame.copy() for name, frame in tables.items()}
    as_lists["events"]["actor_ids"] = [list(v) for v in as_lists["events"]["actor_ids"]]
    as_lists["actors"]["aliases"] = [list(v) for v in as_lists["actors"]["aliases"]]
    assert _validate(as_lists).success


def test_without_texts_the_slice_checks_are_skipped(tables):
    report = validate_tables(tables, EXPECTATIONS)
    skipped = [r for r in report.results if r["success"] is None]
    assert report.success
    assert {(r["table"], tuple(r["columns"])) for r in skipped} == {
        ("documents", ("n_chars", "check_text_n_chars")),
        ("mentions", ("text", "check_doc_slice")),
        ("citations", ("sentence", "check_doc_slice")),
    }
    assert all(r["note"].startswith("skipped") for r in skipped)


def _duplicate_actor(t):
    return {**t, "actors": pd.concat([t["actors"], t["actors"].iloc[[0]]], ignore_index=True)}


def _uncited_event(t):
    extra = t["events"].iloc[[0]].copy()
    extra["event_id"] = "event_uncited"
    extra["event_type"] = "statement"
    return {**t, "events": pd.concat([t["events"], extra], ignore_index=True)}


def _mention_past_end(t):
    m = t["mentions"]
    key = m.loc[m["doc_id"] == "doc_b", "mention_id"].iloc[0]
    return _edit(t, "mentions", key, "char_end", len(TEXTS["doc_b"]) + 5)


def _mention_wrong_text(t):
    m = t["mentions"]
    key = m.loc[m["text"] == "Kim Jong Un", "mention_id"].iloc[0]
    return _edit(t, "mentions", key, "text", "Kim Jong-un")


BREAKS = {
    "duplicate primary key": (
        _duplicate_actor,
        {("actors", "expect_column_values_to_be_unique", ("actor_id",))},
    ),
    "event_type outside the vocabulary": (
        lambda t: _edit(t, "events", MEETING, "event_type", "summit"),
        {("events", "expect_column_values_to_be_in_set", ("event_type",))},
    ),
    "country XX": (
        lambda t: _edit(t, "actors", PUTIN, "country", "XX"),
        {("actors", "expect_column_values_to_match_regex", ("country",))},
    ),
    "mention past the end of its document": (
        _mention_past_end,
        {
            ("mentions", "expect_column_pair_values_a_to_be_greater_than_b", ("check_doc_n_chars", "char_end")),
            # Python's slice stops at the end of the text, so the words differ too.
            ("mentions", "expect_column_pair_values_to_be_equal", ("text", "check_doc_slice")),
        },
    ),
    "mention text not the document slice": (
        _mention_wrong_text,
        {("mentions", "expect_column_pair_values_to_be_equal", ("text", "check_doc_slice"))},
    ),
    "supplier that is not an actor": (
        lambda t: _edit(t, "transfers", FOOD, "supplier_id", "actor_nobody"),
        {("transfers", "expect_column_values_to_be_null", ("check_unknown_supplier_id",))},
    ),
    "event without a citation": (
        _uncited_event,
        {
            ("events", "expect_column_values_to_be_between", ("check_n_citations",)),
            # It claims two reporting documents and has none.
            ("events", "expect_column_pair_values_to_be_equal", ("n_documents", "check_n_citing_documents")),
        },
    ),
    "confidence 1.5": (
        lambda t: _edit(t, "transfers", SHELLS, "confidence", 1.5),
        {("transfers", "expect_column_values_to_be_between", ("confidence",))},
    ),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_break_is_reported(tables, case):
    breaker, expected = BREAKS[case]
    report = _validate(breaker(tables))
    assert not report.success
    assert _failed(report) == expected
    for failure in report.failures:
        assert failure["unexpected_count"] >= 1
        assert 1 <= len(failure["unexpected_examples"]) <= 5
        assert failure["description"]
    if case == "supplier that is not an actor":
        # Examples name the offending row by its key, beside the offending value.
        (failure,) = report.failures
        assert failure["unexpected_examples"] == [{"check_unknown_supplier_id": "actor_nobody", "transfer_id": FOOD}]
        assert failure["description"] == "Every transfers.supplier_id is found in actors.actor_id."


def test_a_failing_table_is_checked_again_for_keyed_examples_and_reports_the_rest_alike(tables, valid_report):
    # A table that fails is run again with GX's SUMMARY format (its examples named by key); every other
    # expectation of that table reads as it did in the faster first run that the passing tables keep.
    broken = _validate(_edit(tables, "transfers", SHELLS, "supplier_id", "actor_nobody"))
    (failure,) = broken.failures
    assert failure["unexpected_examples"] == [{"check_unknown_supplier_id": "actor_nobody", "transfer_id": SHELLS}]
    unchanged = [r for r in broken.results if r["table"] == "transfers" and r is not failure]
    before = {(r["expectation"], tuple(r["columns"])): r for r in valid_report.results if r["table"] == "transfers"}
    assert len(unchanged) == len(before) - 1
    for entry in unchanged:
        assert entry == before[(entry["expectation"], tuple(entry["columns"]))], entry


def test_other_row_and_cross_table_rules(tables):
    # One run, one break per rule, each in a different row or table, so they cannot mask each other.
    t = _edit(tables, "events", MEETING, "initiator_id", PUTIN)
    events = t["events"].copy()
    events.at[0, "actor_ids"] = [KIM, PUTIN, "actor_ghost"]
    events.at[0, "date_end"] = dt.date(2023, 9, 12)
    t = {**t, "events": events}
    t = _edit(t, "transfers", SHELLS, "quantity_low", 2_000_000)
    t = _edit(t, "actors", USOFF, "n_mentions", 7)
    t = _edit(t, "documents", "doc_b", "n_chars", len(TEXTS["doc_b"]) + 1)
    c = t["citations"]
    extra = c.iloc[[0, 0, 0]].copy()
    extra["citation_id"] = ["c_ghost_target", "c_evidence_untargeted", "c_table_without_id"]
    extra["target_id"] = ["event_ghost", None, None]
    extra["target_table"] = ["events", None, "transfers"]
    extra["kind"] = ["evidence", "evidence", "attribution"]
    citations = pd.concat([c, extra], ignore_index=True)
    citations.loc[citations["target_id"] == FOOD, "sentence"] = "Russia sent food aid to North Korea."
    t = {**t, "citations": citations}

    report = _validate(t)
    assert sorted((f["table"], f["description"]) for f in report.failures) == sorted([
        ("events", "events.initiator_id, where set, is the first of actor_ids."),
        ("events", "Every entry of events.actor_ids is found in actors.actor_id."),
        ("events", "events.date_end is not before date_start where both are set."),
        ("transfers", "transfers.quantity_high is at least quantity_low where both are set."),
        ("actors", "actors.n_mentions equals the number of the actor's rows in mentions."),
        ("documents", "documents.n_chars equals the length of the document's text."),
        ("citations", "Every citations.target_id whose target_table is events is found in events.event_id."),
        ("citations", "Every evidence citation names the row it supports (target_id)."),
        ("citations", "citations.target_id is set wherever target_table is set."),
        ("citations", "citations.sentence equals the document's text[char_start:char_end]."),
    ])
    unresolved = next(f for f in report.failures if "actor_ids" in f["description"])
    assert unresolved["unexpected_examples"] == [{"check_unresolved_actor_ids": "actor_ghost", "event_id": MEETING}]


def test_empty_table_passes(tables):
    # Early runs may find no transfers at all: an empty table is valid, and so are citations without them.
    c = tables["citations"]
    t = {**tables, "transfers": tables["transfers"].iloc[0:0],
         "citations": c[c["target_table"] != "transfers"].reset_index(drop=True)}
    assert _validate(t).failures == []


def test_missing_suite_file_is_named(tmp_path):
    write_suites(tmp_path)
    suite_path(tmp_path, "events").unlink()
    with pytest.raises(SuiteError, match=r"events\.json"):
        validate_tables(build_tables(), tmp_path, derive_text_checks(build_tables(), TEXTS))


def test_committed_suites_match_the_contract(tmp_path):
    written = write_suites(tmp_path)
    assert [p.name for p in written] == [f"{name}.json" for name in TABLES]
    for path in written:
        committed = EXPECTATIONS / path.name
        assert committed.is_file(), f"{committed} is missing: run python -m armsledger.expectation_suites"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} differs from the contract: run python -m armsledger.expectation_suites"
        )


def test_text_checks_of_other_rows_are_refused(tables):
    # Checks derived from one table's rows and set against another's would compare the wrong rows.
    shorter = {name: frame.iloc[1:] if name == "mentions" else frame for name, frame in tables.items()}
    with pytest.raises(ValueError, match="mentions.check_doc_slice"):
        validate_tables(tables, EXPECTATIONS, derive_text_checks(shorter, TEXTS))
