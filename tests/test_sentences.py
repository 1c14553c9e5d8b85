"""Extraction on short sentences of the field's language, written for these tests (tests/sentences.yaml).

Each item gives a text (and optionally the document's `published` date), what
the extractor must find in it (`expect`: a subset of its actors, transfers,
events and citations, each matched on the fields given) and what it must not
find (`absent`). Items marked `xfail: "reason"` are known gaps.

Field matching:
- actors: `name` (case-insensitive), `type`, `country`, `role` (case-insensitive substring).
- transfers: `supplier`, `recipient` (actor names), `category`, `status`,
  `quantity_text`, `quantity_low`, `quantity_high`, `unit`, `item_contains`,
  `exchange_for` (fields the linked transfer must match, or `null` for none).
- events: `type`, `participants` (all must take part), `initiator` (the first),
  `status`, `date` (ISO, partial ISO for month/year precision, or null),
  `date_text`, `place`.
- citations: `kind`, `marker`, `source` (actor name, case-insensitive), `hedge`.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from armsledger.config import load_settings
from armsledger.extract import DocumentExtraction, Extractor, load_extractor

SENTENCES = Path(__file__).with_name("sentences.yaml")
ITEMS: list[dict[str, Any]] = yaml.safe_load(SENTENCES.read_text(encoding="utf-8"))
FAMILIES = {
    "reported_speech", "hedges_denials", "quantities", "relative_dates", "passive",
    "quid_pro_quo", "unknown_names", "titles", "stockpile", "third_party_use", "markers",
}


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return load_extractor(load_settings().spacy_model)


def _params() -> list:
    return list(_param_iter())


def _param_iter():
    for item in ITEMS:
        marks = [pytest.mark.xfail(reason=item["xfail"], strict=False)] if item.get("xfail") else []
        yield pytest.param(item, id=item["id"], marks=marks)


def test_sentence_file_is_well_formed():
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids)), "duplicate ids in sentences.yaml"
    assert len(ITEMS) >= 60
    for item in ITEMS:
        assert item["family"] in FAMILIES, f"{item['id']}: unknown family {item['family']!r}"
        assert item.get("expect") or item.get("absent"), f"{item['id']}: nothing to check"


@pytest.mark.parametrize("item", _params())
def test_sentence(extractor: Extractor, item: dict[str, Any]) -> None:
    published = item.get("published")
    precision = item.get("published_precision", "day" if published else None)
    if isinstance(published, (str, int)):
        # partial dates: "2024-05" (month), 2024 (year)
        parts = [int(p) for p in str(published).split("-")]
        published = dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    e = extractor.extract("doc_sentence", item["text"], published, precision)
    view = _view(e)
    problems: list[str] = []
    for table, wanted in (item.get("expect") or {}).items():
        for spec in wanted:
            if not any(_matches(table, spec, row, view) for row in view[table]):
                problems.append(f"missing {table[:-1]} {spec}")
    for table, unwanted in (item.get("absent") or {}).items():
        for spec in unwanted:
            hits = [row for row in view[table] if _matches(table, spec or {}, row, view)]
            if hits:
                problems.append(f"unexpected {table[:-1]} matching {spec}: {hits[0]['_show']}")
    if problems:
        found = "\n".join(f"  {table}: " + "; ".join(r["_show"] for r in rows) for table, rows in view.items() if table != "_by_index")
        pytest.fail(f"{item['id']}: {item['text']!r}\n" + "\n".join(f"- {p}" for p in problems) + f"\nextracted:\n{found}")


def _name(e: DocumentExtraction, key: str | None) -> str | None:
    return e.actors[key].name if key else None


def _view(e: DocumentExtraction) -> dict[str, Any]:
    """The extraction as plain rows, with a short rendering of each for failure messages."""
    actors = [
        {"name": a.name, "type": a.type, "country": a.country, "role": a.role,
         "_show": f"{a.name} ({a.type}, {a.country}, role={a.role})"}
        for a in e.actors.values()
    ]
    transfers = []
    for t in e.transfers:
        transfers.append({
            "supplier": _name(e, t.supplier), "recipient": _name(e, t.recipient), "category": t.category,
            "status": t.status, "quantity_text": t.quantity_text, "quantity_low": t.quantity_low,
            "quantity_high": t.quantity_high, "unit": t.unit, "item": t.item, "exchange_index": t.exchange_for,
            "_show": f"{_name(e, t.supplier)} -> {_name(e, t.recipient)} {t.category} [{t.item}] {t.status}"
                     f" qty={t.quantity_text!r}({t.quantity_low},{t.quantity_high}) exchange_for={t.exchange_for}",
        })
    events = []
    for ev in e.events:
        names = [_name(e, k) for k in ev.actors]
        date = _iso(ev.date.start, ev.date.precision)
        events.append({
            "type": ev.event_type, "participants": names, "status": ev.status, "date": date,
            "date_text": ev.date.text, "place": ev.place,
            "_show": f"{ev.event_type} {names} {ev.status} date={date} ({ev.date.text!r}) place={ev.place}",
        })
    citations = [
        {"kind": c.kind, "marker": c.marker, "source": _name(e, c.source), "hedge": c.hedge,
         "_show": f"{c.kind} marker={c.marker} source={_name(e, c.source)} hedge={c.hedge!r}"}
        for c in e.citations
    ]
    return {"actors": actors, "transfers": transfers, "events": events, "citations": citations, "_by_index": transfers}


def _iso(day: dt.date | None, precision: str | None) -> str | None:
    if day is None:
        return None
    return {"year": f"{day.year}", "month": f"{day.year}-{day.month:02d}"}.get(precision or "day", day.isoformat())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b


def _matches(table: str, spec: dict[str, Any], row: dict[str, Any], view: dict[str, Any]) -> bool:
    for field, want in spec.items():
        if field == "participants":
            if not all(any(_same(w, p) for p in row["participants"]) for w in want):
                return False
        elif field == "initiator":
            if not row["participants"] or not _same(row["participants"][0], want):
                return False
        elif field == "role":
            if not row["role"] or want.casefold() not in row["role"].casefold():
                return False
        elif field == "item_contains":
            if want.casefold() not in row["item"].casefold():
                return False
        elif field == "date":
            if (str(want) if want is not None else None) != row["date"]:
                return False
        elif field == "exchange_for":
            index = row["exchange_index"]
            if want is None:
                if index is not None:
                    return False
            elif index is None or not _matches("transfers", want, view["_by_index"][index], view):
                return False
        elif not _same(want, row.get(field)):
            return False
    return True
