"""armsledger.evaluate against the seed gold and the reference scorer, on small synthetic releases."""
from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from armsledger import schema
from armsledger.evaluate import (
    GoldDocument,
    format_report,
    load_gold,
    normalize,
    score_release,
)
from armsledger.ids import stable_id

GOLD_DIR = Path(__file__).parent / "gold"
# shared/ sits beside the checkout: <root>/main/tests/test_evaluate.py -> <root>/shared
REFERENCE_SCORER = Path(__file__).resolve().parents[2] / "shared" / "tools" / "score.py"
DOC_000 = "000_56b988e99734a4e3"
DOC_001 = "001_84c509f025737b6d"
TABLES = ("actors", "events", "transfers", "citations")

Rows = dict[str, list[dict[str, Any]]]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    if not REFERENCE_SCORER.exists():
        pytest.skip(f"reference scorer not found at {REFERENCE_SCORER} (shared/ sits beside the checkout only in CI)")
    spec = importlib.util.spec_from_file_location("armsledger_reference_score", REFERENCE_SCORER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golds() -> list[GoldDocument]:
    return load_gold(GOLD_DIR)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _gold_date(value: Any) -> tuple[dt.date | None, str | None]:
    """A gold date (`2019`, `2023-09`, `2023-09-13`, `doc`, null) as a start date and its precision."""
    if value is None or value == "doc":
        return None, None
    text = str(value)
    parts = text.split("-")
    if len(parts) == 1:
        return dt.date(int(parts[0]), 1, 1), "year"
    if len(parts) == 2:
        return dt.date(int(parts[0]), int(parts[1]), 1), "month"
    return dt.date.fromisoformat(text), "day"


def _actor_id(name: str) -> str:
    return stable_id("act", name)


def perfect_rows(golds: list[GoldDocument]) -> Rows:
    """A release that says exactly what the gold says (optional items included).

    Event and transfer ids sort in gold order, so the greedy matching pairs
    each gold item with its own row.
    """
    rows: Rows = {t: [] for t in schema.TABLES}
    actors: dict[str, dict[str, Any]] = {}
    for d, gold in enumerate(golds):
        doc_id = stable_id("doc", gold.name)
        rows["documents"].append({"doc_id": doc_id, "path": f"{gold.name}.txt", "sha256": "0" * 64})
        for a in gold.actors:
            actor = actors.setdefault(
                a["name"], {"actor_id": _actor_id(a["name"]), "name": a["name"], "type": a["type"], "country": a.get("country"), "aliases": []}
            )
            actor["aliases"] = list(dict.fromkeys([*actor["aliases"], *(a.get("aliases") or [])]))
            rows["mentions"].append(
                {"mention_id": stable_id("men", doc_id, a["name"]), "doc_id": doc_id, "actor_id": actor["actor_id"], "text": a["name"]}
            )
        for i, e in enumerate(gold.events):
            event_id = f"evt_{d}_{i:02d}"
            start, precision = _gold_date(e.get("date"))
            ids = [_actor_id(n) for n in e["actors"]]
            rows["events"].append(
                {
                    "event_id": event_id,
                    "event_type": e["type"],
                    "initiator_id": ids[0],
                    "actor_ids": ids,
                    "date_start": start,
                    "date_precision": precision,
                    "date_text": e.get("date_text"),
                    "place": e.get("place"),
                    "status": _first(e["status"]),
                    "summary": e.get("summary", ""),
                }
            )
            rows["citations"].append(_evidence(doc_id, "events", event_id))
        for i, t in enumerate(gold.transfers):
            transfer_id = f"trf_{d}_{i:02d}"
            rows["transfers"].append(
                {
                    "transfer_id": transfer_id,
                    "supplier_id": _actor_id(t["supplier"]),
                    "recipient_id": _actor_id(t["recipient"]),
                    "category": _first(t["category"]),
                    "item": t["item"],
                    "quantity_text": t.get("quantity"),
                    "status": _first(t["status"]),
                    "exchange_for": None if t.get("exchange_for") is None else f"trf_{d}_{t['exchange_for']:02d}",
                }
            )
            rows["citations"].append(_evidence(doc_id, "transfers", transfer_id))
        for i, c in enumerate(gold.citations):
            rows["citations"].append(
                {
                    "citation_id": stable_id("cit", doc_id, c["kind"], i),
                    "doc_id": doc_id,
                    "kind": c["kind"],
                    "marker": c.get("marker"),
                    "source_actor_id": _actor_id(c["source"]) if c.get("source") else None,
                    "sentence": c.get("claim", ""),
                }
            )
    rows["actors"] = list(actors.values())
    return rows


def _evidence(doc_id: str, table: str, target_id: str) -> dict[str, Any]:
    return {
        "citation_id": stable_id("cit", doc_id, "evidence", target_id),
        "doc_id": doc_id,
        "kind": "evidence",
        "target_table": table,
        "target_id": target_id,
    }


def _default(field: schema.Field) -> Any:
    if field.nullable:
        return None
    return {"string": "", "int64": 0, "float64": 1.0, "date32": None, "list<string>": []}[field.type]


def write_release(rows: Rows, directory: Path) -> Path:
    """The rows as the six contract tables, in Parquet."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in schema.TABLES:
        table = schema.table(name)
        records = [{f.name: r.get(f.name, _default(f)) for f in table.fields} for r in rows.get(name, [])]
        frame = pd.DataFrame(records, columns=table.columns) if records else schema.empty_frame(name)
        pq.write_table(schema.to_arrow(name, frame), directory / f"{name}.parquet")
    return directory


def _by(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def wrong_rows(golds: list[GoldDocument]) -> Rows:
    """The perfect release with a wrong event status, a wrong transfer status and
    category, a stockpile taken for a quantity, spurious actors and document 000 left out."""
    rows = copy.deepcopy(perfect_rows(golds))
    doc_000 = stable_id("doc", DOC_000)
    doc_001 = stable_id("doc", DOC_001)
    for table in ("documents", "mentions", "citations"):
        rows[table] = [r for r in rows[table] if r["doc_id"] != doc_000]
    _by(rows["events"], event_id="evt_1_00")["status"] = "planned"  # gold: occurred
    _by(rows["transfers"], transfer_id="trf_1_00")["status"] = "confirmed"  # gold: negotiated | expected
    _by(rows["transfers"], transfer_id="trf_1_01")["quantity_text"] = "tens of millions"  # gold: null
    _by(rows["transfers"], transfer_id="trf_1_02")["category"] = "money"  # gold: food | fuel | humanitarian_aid
    for name, kind in (("Elon Musk", "person"), ("Atlantis", "state")):
        rows["actors"].append({"actor_id": _actor_id(name), "name": name, "type": kind})
        rows["mentions"].append({"mention_id": stable_id("men", doc_001, name), "doc_id": doc_001, "actor_id": _actor_id(name)})
    return rows


def documents_only_rows(golds: list[GoldDocument]) -> Rows:
    return {"documents": perfect_rows(golds)["documents"]}


def variant_rows(golds: list[GoldDocument], event_day: dt.date = dt.date(2023, 9, 30)) -> Rows:
    """Spelling variants, a split actor, a duplicated marker, an id with no actor row,
    an attribution named only in source_text, and a `doc` date at the document's precision."""
    rows = perfect_rows(golds)
    doc_000 = stable_id("doc", DOC_000)
    doc_001 = stable_id("doc", DOC_001)
    _by(rows["actors"], name="Kim Jong Un")["name"] = "KIM JONG-UN"
    _by(rows["actors"], name="Vladimir Putin").update(name="Vladímir Putin", aliases=[])
    _by(rows["actors"], name="Russia")["name"] = "the Russia\u2019s"
    rows["actors"].append({"actor_id": "act_kim", "name": "Kim", "type": "person"})
    rows["mentions"].append({"mention_id": "men_kim", "doc_id": doc_001, "actor_id": "act_kim"})
    rows["mentions"].append({"mention_id": "men_ghost", "doc_id": doc_001, "actor_id": "North Korea"})
    marker = _by(rows["citations"], doc_id=doc_001, marker="[citation 1]")
    rows["citations"].append({**marker, "citation_id": "cit_dup"})
    attribution = _by(rows["citations"], doc_id=doc_000, kind="attribution")
    attribution.update(source_actor_id=None, source_text="Defence analysts")
    _by(rows["documents"], doc_id=doc_000).update(published=dt.date(2023, 9, 11), published_precision="month")
    _by(rows["events"], event_id="evt_0_00")["date_start"] = event_day
    return rows


def reordered_rows(golds: list[GoldDocument]) -> Rows:
    """Document 000's undated gold meeting (planned) and its 2019 meeting (occurred), rows swapped in id order."""
    rows = perfect_rows(golds)
    swap = {"evt_0_01": "evt_0_02", "evt_0_02": "evt_0_01"}
    for e in rows["events"]:
        e["event_id"] = swap.get(e["event_id"], e["event_id"])
    for c in rows["citations"]:
        c["target_id"] = swap.get(c.get("target_id"), c.get("target_id"))
    return rows


# --------------------------------------------------------------------------- tests


def test_gold_copy_matches_shared_gold():
    shared = REFERENCE_SCORER.parents[1] / "gold"
    if not shared.exists():
        pytest.skip(f"shared gold not found at {shared}")
    for path in shared.iterdir():
        if path.suffix in {".yaml", ".md"}:
            assert (GOLD_DIR / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), path.name


def test_normalize():
    assert normalize("The Kremlin") == normalize("kremlin")
    assert normalize("Kim Jong-un") == normalize("kim jong un")
    assert normalize("Vladímir PUTIN") == normalize("vladimir putin")
    assert normalize("U.S.") == "us"
    assert normalize("Russia\u2019s") == "russia"
    assert normalize(None) == normalize(float("nan")) == ""


def test_perfect_release_scores_one(tmp_path, golds):
    report = score_release(GOLD_DIR, write_release(perfect_rows(golds), tmp_path / "perfect"))
    for table in TABLES:
        assert report.tables[table].f1 == 1.0, (table, format_report(report))
        assert report.tables[table].gold > 0
    assert report.event_status_accuracy == 1.0
    assert report.transfer_status_accuracy == 1.0
    assert report.transfer_quantity_accuracy == 1.0
    for doc in report.documents:
        assert not doc.missing
        for result in doc.tables.values():
            assert result.unmatched_gold == [] and result.unmatched_pred == []


def test_empty_release(tmp_path):
    report = score_release(GOLD_DIR, write_release({}, tmp_path / "empty"))
    for table in TABLES:
        counts = report.tables[table]
        assert (counts.tp, counts.pred, counts.f1) == (0, 0, 0.0)
        assert counts.gold > 0
    assert report.event_status_accuracy is None
    assert all(d.missing for d in report.documents)
    assert report.documents[0].tables["actors"].unmatched_gold  # the missed gold is listed


def test_documents_without_extractions(tmp_path, golds):
    report = score_release(GOLD_DIR, write_release(documents_only_rows(golds), tmp_path / "docs_only"))
    assert not any(d.missing for d in report.documents)
    assert report.tables["actors"].recall == 0.0
    assert report.tables["actors"].precision == 0.0


def test_wrong_release_scores_lower_where_expected(tmp_path, golds):
    perfect = score_release(GOLD_DIR, write_release(perfect_rows(golds), tmp_path / "perfect"))
    wrong = score_release(GOLD_DIR, write_release(wrong_rows(golds), tmp_path / "wrong"))
    # document 000 is missing: recall falls in every table, its required items listed as missed
    for table in TABLES:
        assert wrong.tables[table].recall < 1.0, table
        assert wrong.tables[table].gold == perfect.tables[table].gold
    doc_000 = next(d for d in wrong.documents if d.name == DOC_000)
    assert doc_000.missing and doc_000.to_dict()["status"] == "document missing from release"
    assert len(doc_000.tables["events"].unmatched_gold) == doc_000.tables["events"].counts.gold
    doc_001 = next(d for d in wrong.documents if d.name == DOC_001)
    # spurious actors count against precision and are named
    assert wrong.tables["actors"].precision < 1.0
    spurious = {i.label for i in doc_001.tables["actors"].unmatched_pred}
    assert spurious == {"Elon Musk (person)", "Atlantis (state)"}
    # the wrong category leaves one gold transfer unmatched and one prediction spurious
    transfers = doc_001.tables["transfers"]
    assert transfers.counts.tp == perfect.documents[1].tables["transfers"].counts.tp - 1
    assert [i.id for i in transfers.unmatched_pred] == ["trf_1_02"]
    assert len(transfers.unmatched_gold) == 1 and "food|fuel|humanitarian_aid" in transfers.unmatched_gold[0].label
    assert wrong.tables["transfers"].precision < 1.0
    # status and quantity: wrong on matched pairs only
    assert wrong.event_status_accuracy < 1.0
    assert wrong.transfer_status_accuracy < 1.0
    assert wrong.transfer_quantity_accuracy < 1.0
    assert {(m.table, m.field) for m in doc_001.mismatches} == {
        ("events", "status"),
        ("transfers", "status"),
        ("transfers", "quantity"),
    }
    # a wrong status does not unmatch: events and citations of document 001 are all found
    assert doc_001.tables["events"].counts.tp == doc_001.tables["events"].counts.gold
    assert wrong.tables["events"].precision == 1.0
    assert wrong.tables["citations"].precision == 1.0


def test_name_variants_and_duplicates(tmp_path, golds):
    report = score_release(GOLD_DIR, write_release(variant_rows(golds), tmp_path / "variants"))
    doc_001 = report.documents[1]
    # spelling variants still match; the split-off "Kim" and the id without an actor row are spurious
    assert doc_001.tables["actors"].unmatched_gold == []
    assert {i.id for i in doc_001.tables["actors"].unmatched_pred} == {"act_kim", "North Korea"}
    # the duplicated marker is spurious; the attribution named in source_text matches
    assert [i.id for i in doc_001.tables["citations"].unmatched_pred] == ["cit_dup"]
    assert report.documents[0].tables["citations"].counts.counts() == {"tp": 1, "pred": 1, "gold": 1}
    # the `doc` date matches at the document's (month) precision, not after it
    assert report.tables["events"].f1 == 1.0
    late = score_release(GOLD_DIR, write_release(variant_rows(golds, event_day=dt.date(2023, 10, 1)), tmp_path / "late"))
    assert late.tables["events"].recall < 1.0


def test_greedy_matching_depends_on_row_order(tmp_path, golds):
    """A dated meeting listed before an undated one is taken by the undated gold meeting,
    which leaves the dated gold meeting unmatched: the matching is greedy, not optimal."""
    report = score_release(GOLD_DIR, write_release(reordered_rows(golds), tmp_path / "reordered"))
    assert report.tables["events"].recall < 1.0
    assert report.event_status_accuracy < 1.0


BUILDERS = {
    "perfect": lambda g: perfect_rows(g),
    "empty": lambda g: {},
    "documents_only": lambda g: documents_only_rows(g),
    "wrong": lambda g: wrong_rows(g),
    "variants": lambda g: variant_rows(g),
    "variants_late": lambda g: variant_rows(g, event_day=dt.date(2023, 10, 1)),
    "reordered": lambda g: reordered_rows(g),
}


@pytest.mark.parametrize("release", sorted(BUILDERS))
def test_agrees_with_reference_scorer(release, tmp_path, golds, reference):
    directory = write_release(BUILDERS[release](golds), tmp_path / release)
    ours = score_release(GOLD_DIR, directory)
    summary, per_doc = reference.score(str(GOLD_DIR), str(directory))
    assert ours.summary() == summary
    assert ours.per_doc_counts() == per_doc


def test_report_outputs(tmp_path, golds):
    report = score_release(GOLD_DIR, write_release(wrong_rows(golds), tmp_path / "wrong"))
    text = format_report(report)
    assert "actors" in text and "spurious: Elon Musk (person)" in text
    assert "document missing from release" in text
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert set(data["summary"]) == {*TABLES, "event_status_accuracy", "transfer_status_accuracy", "transfer_quantity_accuracy"}
    assert data["documents"][DOC_001]["tables"]["actors"]["unmatched_pred"]
