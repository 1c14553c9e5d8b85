"""Score a release against gold answer keys: precision, recall and F1 per table.

The matching rules are those of the gold README (tests/gold/README.md) and give
the same numbers as the reference scorer the project is judged with:

- A gold file NAME.yaml is paired with the document whose `path` has the stem
  NAME. A gold file without such a document scores zero recall (its required
  items count as gold, nothing counts as predicted). Documents without a gold
  file are not scored.
- Actors of a document are the actors it has mentions of. An extracted actor
  matches a gold actor when its name, or failing that one of its aliases,
  normalises to the gold name or a gold alias.
- Events and transfers of a document are the rows that a citation of that
  document (of any kind, `evidence` included) targets.
- Citations of a document are its rows of kind marker, attribution or quote
  (whatever they target); `evidence` rows are not scored as citations.
- Matching is greedy and one-to-one: gold items in file order, each taking the
  first unused prediction (in release row order) that fits. An optional gold
  item that is matched takes its prediction out of the precision count; an
  unmatched optional item costs no recall.
- Status and quantity are scored as accuracy over matched pairs (optional gold
  items included).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

SCORED_TABLES: tuple[str, ...] = ("actors", "events", "transfers", "citations")
RELEASE_TABLES: tuple[str, ...] = ("documents", "actors", "mentions", "events", "transfers", "citations")
SCORED_CITATION_KINDS: tuple[str, ...] = ("marker", "attribution", "quote")
MISSING_DOCUMENT = "document missing from release"
_ROUND = 3

Record = Mapping[str, Any]


# --------------------------------------------------------------------------- normalisation


_DASHES = re.compile("[-\u2010-\u2015]")


def normalize(value: Any) -> str:
    """Case-, accent-, dash-, dot- and article-insensitive form of a name or label."""
    if _is_missing(value):
        return ""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _DASHES.sub(" ", text)
    text = text.replace(".", "")
    text = re.sub(r"^the\s+", "", text.strip())
    text = re.sub(r"'s$", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_list(value: Any) -> list[Any]:
    """A scalar, list, array or missing value as a list."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return []
    return [value]


def _accepts(gold_values: Any, predicted: Any) -> bool:
    """Whether the predicted label is the gold value or one of the gold list."""
    return normalize(predicted) in {normalize(v) for v in _as_list(gold_values)}


def _quantity_ok(gold_quantity: Any, predicted_text: Any) -> bool:
    gold, pred = normalize(gold_quantity), normalize(predicted_text)
    if not gold:
        return not pred
    return bool(pred) and (gold in pred or pred in gold)


def _date_ok(gold_date: Any, predicted: Any, published: str | None) -> bool:
    """The predicted start date agrees with the gold date at the gold's precision.

    A null gold date accepts anything; `doc` means the document's own date (at
    its precision) and accepts anything when the document has none.
    """
    if gold_date is None:
        return True
    wanted = str(gold_date)
    if wanted == "doc":
        if not published:
            return True
        wanted = published
    if _is_missing(predicted) or pd.isna(predicted):
        return False
    return str(pd.Timestamp(predicted).date()).startswith(wanted)


def _shown(value: Any) -> str:
    values = _as_list(value)
    if not values:
        return "-"
    return "|".join(str(v) for v in values)


# --------------------------------------------------------------------------- gold


@dataclass(frozen=True)
class GoldDocument:
    """One gold YAML file: the hand reading of one text."""

    name: str
    document: dict[str, Any]
    actors: list[dict[str, Any]]
    events: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    forms: dict[str, str]  # normalised surface form -> gold canonical name

    @classmethod
    def load(cls, path: Path) -> GoldDocument:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        actors = data.get("actors") or []
        forms: dict[str, str] = {}
        for actor in actors:
            for form in [actor["name"], *_as_list(actor.get("aliases"))]:
                forms.setdefault(normalize(form), actor["name"])
        return cls(
            name=Path(path).stem,
            document=data.get("document") or {},
            actors=actors,
            events=data.get("events") or [],
            transfers=data.get("transfers") or [],
            citations=data.get("citations") or [],
            forms=forms,
        )

    def items(self, table: str) -> list[dict[str, Any]]:
        return getattr(self, table)

    def canonical(self, names: Iterable[Any]) -> str | None:
        """The gold actor that the first recognisable name among `names` refers to."""
        for name in names:
            found = self.forms.get(normalize(name))
            if found:
                return found
        return None


def load_gold(gold_dir: Path) -> list[GoldDocument]:
    return [GoldDocument.load(p) for p in sorted(Path(gold_dir).glob("*.yaml"))]


# --------------------------------------------------------------------------- release


@dataclass(frozen=True)
class ExtractedActor:
    actor_id: Any
    name: Any
    type: Any
    aliases: tuple[Any, ...]

    @property
    def forms(self) -> list[Any]:
        return [self.name, *self.aliases]


class Release:
    """The six Parquet tables of a release, with the look-ups scoring needs."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]):
        self.documents = frames["documents"]
        self.mentions = frames["mentions"]
        self.events = frames["events"]
        self.transfers = frames["transfers"]
        self.citations = frames["citations"]
        self.actors: dict[Any, ExtractedActor] = {}
        has_aliases = "aliases" in frames["actors"].columns
        for row in frames["actors"].to_dict("records"):
            self.actors[row["actor_id"]] = ExtractedActor(
                actor_id=row["actor_id"],
                name=row["name"],
                type=row.get("type"),
                aliases=tuple(_as_list(row["aliases"])) if has_aliases else (),
            )
        self._doc_by_stem = {Path(str(p)).stem: d for p, d in zip(self.documents["path"], self.documents["doc_id"])}

    @classmethod
    def read(cls, release_dir: Path) -> Release:
        frames = {}
        for name in RELEASE_TABLES:
            path = Path(release_dir) / f"{name}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"release {release_dir} has no table {path.name}")
            frames[name] = pd.read_parquet(path)
        return cls(frames)

    def doc_id_for(self, stem: str) -> Any | None:
        return self._doc_by_stem.get(stem)

    def forms(self, actor_id: Any) -> list[Any]:
        """Names of an actor; an id with no actor row stands for itself."""
        actor = self.actors.get(actor_id)
        return actor.forms if actor else [actor_id]

    def actor_label(self, actor_id: Any) -> str:
        actor = self.actors.get(actor_id)
        return str(actor.name) if actor else f"?{actor_id}"

    def published(self, doc_id: Any) -> str | None:
        """The document's date as a prefix at its precision (`2023`, `2023-09`, `2023-09-13`)."""
        if "published" not in self.documents.columns:
            return None
        rows = self.documents[self.documents["doc_id"] == doc_id]
        value = rows["published"].iloc[0]
        if value is None or pd.isna(value):
            return None
        day = str(pd.Timestamp(value).date())
        precision = rows["published_precision"].iloc[0] if "published_precision" in rows.columns else None
        return {"day": day, "month": day[:7], "year": day[:4]}.get(precision, day)

    def mentioned_actor_ids(self, doc_id: Any) -> list[Any]:
        return list(dict.fromkeys(self.mentions.loc[self.mentions["doc_id"] == doc_id, "actor_id"]))

    def doc_citations(self, doc_id: Any) -> pd.DataFrame:
        return self.citations[self.citations["doc_id"] == doc_id]

    def cited_rows(self, doc_id: Any, table: str) -> list[dict[str, Any]]:
        """Rows of `events` or `transfers` that a citation of the document targets."""
        cit = self.doc_citations(doc_id)
        targets = set(cit.loc[cit["target_table"] == table, "target_id"])
        frame = self.events if table == "events" else self.transfers
        key = "event_id" if table == "events" else "transfer_id"
        return frame[frame[key].isin(targets)].to_dict("records")

    def scored_citations(self, doc_id: Any) -> list[dict[str, Any]]:
        cit = self.doc_citations(doc_id)
        return cit[cit["kind"].isin(list(SCORED_CITATION_KINDS))].to_dict("records")


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Item:
    """A gold item or a prediction, described for a reader."""

    label: str
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "id": self.id}


@dataclass(frozen=True)
class Mismatch:
    """A matched pair whose status or quantity disagrees with the gold."""

    table: str
    field: str
    gold: Any
    predicted: Any
    item: Item

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "field": self.field,
            "gold": self.gold,
            "predicted": self.predicted,
            "item": self.item.to_dict(),
        }


@dataclass
class Counts:
    """True positives, scored predictions and required gold items."""

    tp: int = 0
    pred: int = 0
    gold: int = 0

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.pred += other.pred
        self.gold += other.gold

    @property
    def precision(self) -> float:
        if self.pred:
            return self.tp / self.pred
        return 1.0 if self.gold == 0 else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.gold if self.gold else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def counts(self) -> dict[str, int]:
        return {"tp": self.tp, "pred": self.pred, "gold": self.gold}

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, _ROUND),
            "recall": round(self.recall, _ROUND),
            "f1": round(self.f1, _ROUND),
            **self.counts(),
        }


@dataclass
class Accuracy:
    correct: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.correct += bool(ok)
        self.total += 1

    def merge(self, other: Accuracy) -> None:
        self.correct += other.correct
        self.total += other.total

    @property
    def value(self) -> float | None:
        return round(self.correct / self.total, _ROUND) if self.total else None


@dataclass
class TableResult:
    """One table of one document: counts and what did not match."""

    counts: Counts
    unmatched_gold: list[Item] = field(default_factory=list)  # required gold items not found
    unmatched_pred: list[Item] = field(default_factory=list)  # predictions that match no gold item

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.counts.counts(),
            "unmatched_gold": [i.to_dict() for i in self.unmatched_gold],
            "unmatched_pred": [i.to_dict() for i in self.unmatched_pred],
        }


@dataclass
class DocumentReport:
    name: str
    doc_id: str | None
    tables: dict[str, TableResult]
    event_status: Accuracy = field(default_factory=Accuracy)
    transfer_status: Accuracy = field(default_factory=Accuracy)
    transfer_quantity: Accuracy = field(default_factory=Accuracy)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return self.doc_id is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "status": MISSING_DOCUMENT if self.missing else "scored",
            "tables": {t: r.to_dict() for t, r in self.tables.items()},
            "event_status": {"correct": self.event_status.correct, "total": self.event_status.total},
            "transfer_status": {"correct": self.transfer_status.correct, "total": self.transfer_status.total},
            "transfer_quantity": {"correct": self.transfer_quantity.correct, "total": self.transfer_quantity.total},
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass
class EvalReport:
    tables: dict[str, Counts]
    event_status: Accuracy
    transfer_status: Accuracy
    transfer_quantity: Accuracy
    documents: list[DocumentReport]

    @property
    def event_status_accuracy(self) -> float | None:
        return self.event_status.value

    @property
    def transfer_status_accuracy(self) -> float | None:
        return self.transfer_status.value

    @property
    def transfer_quantity_accuracy(self) -> float | None:
        return self.transfer_quantity.value

    def summary(self) -> dict[str, Any]:
        """Totals in the reference scorer's shape (rates rounded to 3 places)."""
        out: dict[str, Any] = {t: self.tables[t].to_dict() for t in SCORED_TABLES}
        out["transfer_status_accuracy"] = self.transfer_status_accuracy
        out["transfer_quantity_accuracy"] = self.transfer_quantity_accuracy
        out["event_status_accuracy"] = self.event_status_accuracy
        return out

    def per_doc_counts(self) -> dict[str, Any]:
        """Per-document counts in the reference scorer's shape."""
        return {
            d.name: MISSING_DOCUMENT if d.missing else {t: r.counts.counts() for t, r in d.tables.items()}
            for d in self.documents
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "documents": {d.name: d.to_dict() for d in self.documents}}


# --------------------------------------------------------------------------- matching


def greedy_match(golds: Sequence[Any], preds: Sequence[Any], ok: Callable[[Any, Any], bool]) -> list[tuple[int, int]]:
    """One-to-one pairs (gold index, prediction index): each gold takes the first unused fit."""
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for gi, gold in enumerate(golds):
        for pi, pred in enumerate(preds):
            if pi not in used and ok(gold, pred):
                used.add(pi)
                pairs.append((gi, pi))
                break
    return pairs


def _required(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if not i.get("optional")]


def _table_result(
    golds: Sequence[dict[str, Any]],
    preds: Sequence[Any],
    pairs: Sequence[tuple[int, int]],
    describe_gold: Callable[[dict[str, Any]], Item],
    describe_pred: Callable[[Any], Item],
) -> TableResult:
    matched_gold = {gi for gi, _ in pairs}
    matched_pred = {pi for _, pi in pairs}
    matched_optional = sum(1 for gi in matched_gold if golds[gi].get("optional"))
    counts = Counts(
        tp=len(matched_gold) - matched_optional,
        pred=len(preds) - matched_optional,
        gold=len(_required(golds)),
    )
    return TableResult(
        counts=counts,
        unmatched_gold=[describe_gold(g) for gi, g in enumerate(golds) if gi not in matched_gold and not g.get("optional")],
        unmatched_pred=[describe_pred(p) for pi, p in enumerate(preds) if pi not in matched_pred],
    )


@dataclass
class _Scoring:
    """The pairing of one gold file with its document in the release."""

    gold: GoldDocument
    release: Release
    doc_id: Any
    published: str | None

    def canonical_of(self, actor_id: Any) -> str | None:
        return self.gold.canonical(self.release.forms(actor_id))

    def names(self, actor_ids: Any) -> str:
        return ", ".join(self.release.actor_label(i) for i in _as_list(actor_ids))


def _score_actors(s: _Scoring) -> TableResult:
    ids = s.release.mentioned_actor_ids(s.doc_id)
    pairs = greedy_match(s.gold.actors, ids, lambda g, i: s.canonical_of(i) == g["name"])

    def describe_pred(actor_id: Any) -> Item:
        actor = s.release.actors.get(actor_id)
        kind = actor.type if actor else "no actor row"
        return Item(f"{s.release.actor_label(actor_id)} ({kind})", _id(actor_id))

    return _table_result(s.gold.actors, ids, pairs, _describe_gold_actor, describe_pred)


def _score_events(s: _Scoring, mismatches: list[Mismatch], accuracy: Accuracy) -> TableResult:
    preds = s.release.cited_rows(s.doc_id, "events")

    def ok(g: dict[str, Any], p: Record) -> bool:
        if normalize(p["event_type"]) != normalize(g["type"]):
            return False
        participants = {s.canonical_of(i) for i in _as_list(p.get("actor_ids"))} - {None}
        if not participants & set(_as_list(g.get("actors"))):
            return False
        return _date_ok(g.get("date"), p.get("date_start"), s.published)

    def describe_pred(p: Record) -> Item:
        date = "-" if _is_missing(p.get("date_start")) or pd.isna(p.get("date_start")) else p.get("date_start")
        return Item(f"{p['event_type']} [{s.names(p.get('actor_ids'))}] date={date} status={p.get('status')}", _id(p["event_id"]))

    pairs = greedy_match(s.gold.events, preds, ok)
    for gi, pi in pairs:
        g, p = s.gold.events[gi], preds[pi]
        right = _accepts(g.get("status"), p.get("status"))
        accuracy.add(right)
        if not right:
            mismatches.append(Mismatch("events", "status", g.get("status"), p.get("status"), describe_pred(p)))
    return _table_result(s.gold.events, preds, pairs, _describe_gold_event, describe_pred)


def _score_transfers(s: _Scoring, mismatches: list[Mismatch], status: Accuracy, quantity: Accuracy) -> TableResult:
    preds = s.release.cited_rows(s.doc_id, "transfers")

    def ok(g: dict[str, Any], p: Record) -> bool:
        return (
            s.canonical_of(p["supplier_id"]) == g["supplier"]
            and s.canonical_of(p["recipient_id"]) == g["recipient"]
            and _accepts(g["category"], p["category"])
        )

    def describe_pred(p: Record) -> Item:
        return Item(
            f"{s.release.actor_label(p['supplier_id'])} -> {s.release.actor_label(p['recipient_id'])} "
            f"{p['category']} ({p.get('item')}) status={p.get('status')} quantity={_shown(p.get('quantity_text'))}",
            _id(p["transfer_id"]),
        )

    pairs = greedy_match(s.gold.transfers, preds, ok)
    for gi, pi in pairs:
        g, p = s.gold.transfers[gi], preds[pi]
        right_status = _accepts(g.get("status"), p.get("status"))
        right_quantity = _quantity_ok(g.get("quantity"), p.get("quantity_text"))
        status.add(right_status)
        quantity.add(right_quantity)
        if not right_status:
            mismatches.append(Mismatch("transfers", "status", g.get("status"), p.get("status"), describe_pred(p)))
        if not right_quantity:
            mismatches.append(Mismatch("transfers", "quantity", g.get("quantity"), p.get("quantity_text"), describe_pred(p)))
    return _table_result(s.gold.transfers, preds, pairs, _describe_gold_transfer, describe_pred)


def _score_citations(s: _Scoring) -> TableResult:
    preds = s.release.scored_citations(s.doc_id)

    def source_forms(p: Record) -> list[Any]:
        source = p.get("source_actor_id")
        forms = list(s.release.actors[source].forms) if isinstance(source, str) and source in s.release.actors else []
        if isinstance(p.get("source_text"), str):
            forms.append(p["source_text"])
        return forms

    def ok(g: dict[str, Any], p: Record) -> bool:
        if p["kind"] != g["kind"]:
            return False
        if g["kind"] == "marker":
            return normalize(p.get("marker")) == normalize(g.get("marker"))
        return s.gold.canonical(source_forms(p)) == g.get("source")

    def describe_pred(p: Record) -> Item:
        if p["kind"] == "marker":
            what = p.get("marker")
        else:
            source = p.get("source_actor_id")
            what = s.release.actor_label(source) if isinstance(source, str) else p.get("source_text")
        return Item(f"{p['kind']} {what}", _id(p["citation_id"]))

    pairs = greedy_match(s.gold.citations, preds, ok)
    return _table_result(s.gold.citations, preds, pairs, _describe_gold_citation, describe_pred)


def _id(value: Any) -> str | None:
    return None if _is_missing(value) else str(value)


def _describe_gold_actor(g: dict[str, Any]) -> Item:
    return Item(f"{g['name']} ({g.get('type')})")


def _describe_gold_event(g: dict[str, Any]) -> Item:
    actors = ", ".join(str(a) for a in _as_list(g.get("actors")))
    return Item(f"{g.get('type')} [{actors}] date={g.get('date') or '-'} status={_shown(g.get('status'))}")


def _describe_gold_transfer(g: dict[str, Any]) -> Item:
    return Item(
        f"{g.get('supplier')} -> {g.get('recipient')} {_shown(g.get('category'))} ({g.get('item')}) "
        f"status={_shown(g.get('status'))} quantity={_shown(g.get('quantity'))}"
    )


def _describe_gold_citation(g: dict[str, Any]) -> Item:
    what = g.get("marker") if g.get("kind") == "marker" else g.get("source")
    return Item(f"{g.get('kind')} {what}")


def _describe_gold(table: str) -> Callable[[dict[str, Any]], Item]:
    return {
        "actors": _describe_gold_actor,
        "events": _describe_gold_event,
        "transfers": _describe_gold_transfer,
        "citations": _describe_gold_citation,
    }[table]


# --------------------------------------------------------------------------- entry points


def _missing_document(gold: GoldDocument) -> DocumentReport:
    tables = {}
    for table in SCORED_TABLES:
        required = _required(gold.items(table))
        tables[table] = TableResult(
            counts=Counts(tp=0, pred=0, gold=len(required)),
            unmatched_gold=[_describe_gold(table)(g) for g in required],
        )
    return DocumentReport(name=gold.name, doc_id=None, tables=tables)


def score_document(gold: GoldDocument, release: Release) -> DocumentReport:
    """Score one gold file against the release's document of the same stem."""
    doc_id = release.doc_id_for(gold.name)
    if doc_id is None:
        return _missing_document(gold)
    s = _Scoring(gold=gold, release=release, doc_id=doc_id, published=release.published(doc_id))
    doc = DocumentReport(name=gold.name, doc_id=str(doc_id), tables={})
    doc.tables["actors"] = _score_actors(s)
    doc.tables["events"] = _score_events(s, doc.mismatches, doc.event_status)
    doc.tables["transfers"] = _score_transfers(s, doc.mismatches, doc.transfer_status, doc.transfer_quantity)
    doc.tables["citations"] = _score_citations(s)
    return doc


def score_release(gold_dir: Path, release_dir: Path) -> EvalReport:
    """Score the release in `release_dir` (six Parquet tables) against the gold YAML files in `gold_dir`."""
    release = Release.read(Path(release_dir))
    report = EvalReport(
        tables={t: Counts() for t in SCORED_TABLES},
        event_status=Accuracy(),
        transfer_status=Accuracy(),
        transfer_quantity=Accuracy(),
        documents=[],
    )
    for gold in load_gold(Path(gold_dir)):
        doc = score_document(gold, release)
        report.documents.append(doc)
        for table, result in doc.tables.items():
            report.tables[table].add(result.counts)
        report.event_status.merge(doc.event_status)
        report.transfer_status.merge(doc.transfer_status)
        report.transfer_quantity.merge(doc.transfer_quantity)
    return report


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{str(c):>{w}}" for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def format_report(report: EvalReport, details: bool = True) -> str:
    """The report as plain text: the summary table, then what each document missed or added."""
    header = ("table", "precision", "recall", "F1", "tp", "pred", "gold")
    rows = []
    for table in SCORED_TABLES:
        c = report.tables[table]
        rows.append((table, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.tp), str(c.pred), str(c.gold)))
    lines = _render_table(header, rows)
    lines.append("")
    for name, acc in (
        ("event status accuracy", report.event_status),
        ("transfer status accuracy", report.transfer_status),
        ("transfer quantity accuracy", report.transfer_quantity),
    ):
        lines.append(f"{name}: {_rate(acc.value)} ({acc.correct}/{acc.total})")
    if not details:
        return "\n".join(lines)
    for doc in report.documents:
        lines.append("")
        lines.append(f"== {doc.name}" + (f" ({MISSING_DOCUMENT})" if doc.missing else f" ({doc.doc_id})"))
        for table, result in doc.tables.items():
            c = result.counts
            lines.append(f"  {table}: tp {c.tp}, pred {c.pred}, gold {c.gold}")
            lines.extend(f"    missed:   {i.label}" for i in result.unmatched_gold)
            lines.extend(f"    spurious: {i.label}" + (f"  <{i.id}>" if i.id else "") for i in result.unmatched_pred)
        for m in doc.mismatches:
            lines.append(f"  wrong {m.table} {m.field}: gold {_shown(m.gold)}, got {_shown(m.predicted)}  ({m.item.label})")
    return "\n".join(lines)


__all__ = [
    "Accuracy",
    "Counts",
    "DocumentReport",
    "EvalReport",
    "GoldDocument",
    "Item",
    "Mismatch",
    "Release",
    "TableResult",
    "format_report",
    "greedy_match",
    "load_gold",
    "normalize",
    "score_document",
    "score_release",
]
