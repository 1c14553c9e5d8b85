"""Pages people read: each release's index.html, the releases index, and the codebook.

A release page is one self-contained HTML file (inline CSS, inline JavaScript,
inline SVG; no font, image or script from elsewhere, and a Content Security
Policy that forbids fetching any) written into the release folder before
SHA256SUMS, so it is covered by the release's checksums. It shows the counts
per table and the changes against the previous release, the downloads with
sizes and SHA-256, a timeline of events, a graph of transfers, searchable
previews of the tables, the evidence behind every event and transfer (the
sentence with the cited words highlighted, and the document), the validation
results expectation by expectation, and the codebook from datapackage.json.

Every text from the data is untrusted: it is HTML-escaped here, embedded as
JSON with `<`, `>` and `&` escaped, and written by the page's script with
`textContent` only. Only http(s) URLs become links.

Pages are deterministic: the same release files give the same bytes.

Command line: `python -m armsledger.site codebook [--check] [--output PATH]`,
`python -m armsledger.site page RELEASE_DIR OUTPUT`, `python -m armsledger.site index RELEASES_DIR`.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import functools
import hashlib
import html
import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from armsledger import schema
from armsledger.config import PACKAGE_DIR
from armsledger.releases import PAGE_FILE, file_digest

ASSETS_DIR = PACKAGE_DIR / "site_assets"
CODEBOOK_PATH = Path("docs") / "codebook.md"
# Rows of each table embedded in the page for the searchable preview.
# The page stays small and quick to build whatever the corpus size: previews and evidence
# cover the first rows of each table; the downloads hold every row.
PREVIEW_ROWS = 1000
EVIDENCE_PER_ROW = 10
MAX_KEYS_SHOWN = 20
FILE_ORDER = ("datapackage.json", "CHANGES.md", "validation.json", "rejected.json")

EVENT_STATUS_COLORS = {
    "occurred": "#2e7d32", "planned": "#1565c0", "expected": "#6a1b9a",
    "speculated": "#ef6c00", "denied": "#c62828",
}
CATEGORY_COLORS = {
    "munitions": "#b71c1c", "missiles": "#e65100", "weapons_technology": "#6a1b9a",
    "space_technology": "#283593", "nuclear_technology": "#00838f", "food": "#2e7d32",
    "fuel": "#795548", "humanitarian_aid": "#c79100", "diplomatic_support": "#1565c0",
    "money": "#558b2f", "other": "#616161",
}
# Line style of a transfer's edge by its status: solid for what is confirmed, dashes for the less sure.
TRANSFER_STATUS_DASHES = {
    "confirmed": "", "reported": "14 3", "negotiated": "10 4 2 4", "expected": "7 5",
    "speculated": "2 4", "requested": "12 4 2 4 2 4", "denied": "1 7",
}
HIGHLIGHTS = (  # class, label (legend), in order of precedence when spans overlap
    ("hl-item", "item transferred"), ("hl-quantity", "quantity"), ("hl-actor", "actor named"),
    ("hl-date", "date"), ("hl-place", "place"), ("hl-hedge", "hedge"), ("hl-source", "source credited"),
    ("hl-marker", "reference marker"),
)
_PRECEDENCE = {cls: i for i, (cls, _) in enumerate(HIGHLIGHTS)}


def h(value: Any) -> str:
    """Input: any value. Output: its text, HTML-escaped (quotes too); None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def asset(name: str) -> str:
    return (ASSETS_DIR / name).read_text(encoding="utf-8")


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def script_json(value: Any) -> str:
    """Input: a JSON-able value. Output: JSON text safe inside <script type="application/json">."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def page(title: str, body: str, script: str | None = None) -> bytes:
    """Input: the title, the body's HTML and the page's script. Output: a whole HTML document.

    The Content Security Policy allows the page's own inline style and script (by hash)
    and data: images, and nothing else: no request can leave the page.
    """
    style = asset("site.css")
    script_src = csp_hash(script) if script else "'none'"
    policy = (f"default-src 'none'; style-src {csp_hash(style)}; script-src {script_src}; "
              "img-src data:; base-uri 'none'; form-action 'none'")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{h(policy)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<link rel="icon" href="data:,">',
        f"<title>{h(title)}</title>",
        f"<style>{style}</style>",
        "</head>",
        "<body>",
        body,
        f"<script>{script}</script>" if script else "",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts).encode("utf-8")


def safe_url(url: Any) -> str | None:
    """Input: a URL from a document's metadata. Output: it, if it is http(s) (fit for a link), else None."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    return text if re.match(r"^https?://[^\s\"'<>]+$", text, flags=re.IGNORECASE) else None


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def fmt_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if value == int(value) else f"{value:,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --- the release's contents ----------------------------------------------------------


class Release:
    """A release folder's files and tables, with the lookups the page needs.

    The page shows a bounded part of each table, so rows become Python dicts
    only where they are used: whole tables for the small ones the charts draw
    (`rows`, read on first use), the first rows for previews (`head`), and the
    citations and mentions of the rows whose evidence is shown
    (`citations_for`, `mentions_of`). At 20,000 documents, turning every row
    into a dict took more memory than the rest of the run.
    """

    def __init__(self, version: str, folder: Path, tables: Mapping[str, pa.Table] | None = None,
                 file_facts: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """`tables`: the Arrow tables of the folder's Parquet files, when the caller holds them already.
        `file_facts`: file name -> its `bytes` and `hash` ("sha256:..."), for files the caller has just written
        (the others are read and hashed)."""
        self.version = version
        self._file_facts = dict(file_facts or {})
        self.folder = Path(folder)
        self.tables: dict[str, pa.Table] = dict(tables) if tables is not None else {
            name: pq.read_table(self.folder / f"{name}.parquet")
            for name in schema.TABLES if (self.folder / f"{name}.parquet").is_file()
        }
        self.rows = _RowsOnFirstUse(self.tables)
        self.package = self._json("datapackage.json", {})
        self.validation = self._json("validation.json", {})
        self.rejected = self._json("rejected.json", [])
        self.actors = {row["actor_id"]: row for row in self.rows.get("actors", [])}
        self._document_index: dict[str, int] | None = None
        self._mentions_by_doc: dict[str, list[dict]] = {}
        self._evidence_counts: dict[str, int] | None = None

    def _json(self, name: str, default: Any) -> Any:
        path = self.folder / name
        return json.loads(path.read_bytes()) if path.is_file() else default

    def parquet_schema(self, name: str) -> pa.Schema:
        """The Arrow schema of a table's Parquet file, as a reader of the file gets it."""
        return pq.read_schema(self.folder / f"{name}.parquet")

    def has_file(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def file_facts(self, name: str) -> tuple[int, str]:
        """A file's size in bytes and SHA-256."""
        known = self._file_facts.get(name)
        if known is not None:
            return known["bytes"], known["hash"].removeprefix("sha256:")
        return file_digest(self.folder / name)

    def name(self, actor_id: Any) -> str:
        if not actor_id:
            return "?"
        actor = self.actors.get(actor_id)
        return actor["name"] if actor else str(actor_id)

    def head(self, name: str, n: int) -> list[dict]:
        """The first `n` rows of a table (in key order), as dicts."""
        return self.tables[name].slice(0, n).to_pylist() if name in self.tables else []

    def documents(self, doc_ids: Iterable[Any]) -> dict[Any, dict]:
        """The documents rows of these doc_ids, by doc_id (ids not in the release are left out), taken from
        the table at once: taken a row at a time, they had 0.35 s of py-spy's samples of a 5,000-document
        release's page."""
        if "documents" not in self.tables:
            return {}
        if self._document_index is None:
            ids = self.tables["documents"].column("doc_id").to_pylist()
            self._document_index = {d: i for i, d in enumerate(ids)}
        positions = sorted({self._document_index[d] for d in doc_ids if d in self._document_index})
        return {row["doc_id"]: row for row in self.tables["documents"].take(positions).to_pylist()}

    def evidence_counts(self) -> dict[str, int]:
        """Citations per target_id, in the order the targets first appear in the citations table."""
        if self._evidence_counts is None:
            targets = self.tables["citations"].column("target_id").to_pylist() if "citations" in self.tables else []
            self._evidence_counts = dict(Counter(t for t in targets if t))
        return self._evidence_counts

    def citations_for(self, target_ids: Sequence[str], limit: int) -> dict[str, list[dict]]:
        """The first `limit` citations of each of these targets: evidence first, then attributions, quotes
        and markers (evidence_counts has how many there are in all).

        The mentions of the documents they cite are made ready for `mentions_of` at the same time.
        """
        if "citations" not in self.tables or not target_ids:
            return {}
        citations = self.tables["citations"]
        chosen = citations.filter(pc.is_in(citations.column("target_id"), value_set=pa.array(list(target_ids))))
        kind_rank = pc.fill_null(pc.index_in(chosen.column("kind"), value_set=pa.array(list(_KIND_ORDER))), len(_KIND_ORDER))
        order = pc.sort_indices(
            chosen.append_column("kind_rank", kind_rank),
            sort_keys=[("target_id", "ascending"), ("kind_rank", "ascending"), ("doc_id", "ascending"),
                       ("char_start", "ascending"), ("citation_id", "ascending")],
        )
        # A transfer can have tens of thousands of citations: only the first few of each become dicts.
        kept, seen = [], Counter()
        for position, target_id in zip(order.to_pylist(), chosen.column("target_id").take(order).to_pylist()):
            seen[target_id] += 1
            if seen[target_id] <= limit:
                kept.append(position)
        by_target: dict[str, list[dict]] = defaultdict(list)
        for row in chosen.take(pa.array(kept, pa.int64())).to_pylist():
            by_target[row["target_id"]].append(row)
        self._prepare_mentions({row["doc_id"] for cites in by_target.values() for row in cites})
        return by_target

    def mentions_of(self, doc_id: str) -> list[dict]:
        """The mentions rows of a document, in key order."""
        if doc_id not in self._mentions_by_doc:
            self._prepare_mentions({doc_id})
        return self._mentions_by_doc.get(doc_id, [])

    def _prepare_mentions(self, doc_ids: set[str]) -> None:
        wanted = sorted(d for d in doc_ids if d not in self._mentions_by_doc)
        if not wanted or "mentions" not in self.tables:
            return
        mentions = self.tables["mentions"]
        chosen = mentions.filter(pc.is_in(mentions.column("doc_id"), value_set=pa.array(wanted)))
        for doc_id in wanted:
            self._mentions_by_doc[doc_id] = []
        for row in chosen.to_pylist():
            self._mentions_by_doc[row["doc_id"]].append(row)


class _RowsOnFirstUse(Mapping):
    """Table name -> its rows as dicts, made when first asked for."""

    def __init__(self, tables: Mapping[str, pa.Table]) -> None:
        self._tables = tables
        self._rows: dict[str, list[dict]] = {}

    def __getitem__(self, name: str) -> list[dict]:
        if name not in self._rows:
            self._rows[name] = self._tables[name].to_pylist()
        return self._rows[name]

    def __iter__(self):
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


_KIND_ORDER = {"evidence": 0, "attribution": 1, "quote": 2, "marker": 3}


# --- release page ------------------------------------------------------------------


def release_page_bytes(
    version: str,
    folder: Path,
    *,
    previous: str | None = None,
    diffs: Mapping[str, Any] | None = None,
    tables: Mapping[str, pa.Table] | None = None,
    file_facts: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """Input: the version, the folder of the release's files (SHA256SUMS and index.html need not be
    there yet), the previous release's name and the per-table diffs against it (objects with
    added/removed/changed key tuples, as releases.TableDiff) and, when the caller holds them, the tables
    of its Parquet files (read from the folder otherwise), and the sizes and hashes of the files it has
    just written (as Release takes them). Output: the bytes of index.html."""
    release = Release(version, folder, tables, file_facts)
    if previous is None:
        diffs = None  # a first release: every row is new, and there is nothing to compare with
    sections = [
        ("overview", "Overview", overview_section(release, previous, diffs)),
        ("downloads", "Downloads", downloads_section(release)),
        ("timeline", "Timeline", timeline_section(release)),
        ("transfers", "Transfers", transfers_section(release)),
        ("tables", "Tables", tables_section(release)),
        ("evidence", "Evidence", evidence_section(release)),
        ("validation", "Validation", validation_section(release)),
        ("codebook", "Codebook", codebook_section(release)),
    ]
    title = f"armsledger release {version}"
    nav = "".join(f'<a href="#{key}">{h(label)}</a>' for key, label, _ in sections)
    body = "\n".join([
        '<header class="top">',
        f"<h1>{h(title)}</h1>",
        f"<p>{h(release.package.get('title', 'armsledger'))}. "
        f'<a href="../index.html">All releases</a></p>',
        "</header>",
        f'<nav class="sections">{nav}</nav>',
        "<main>",
        *(f'<section id="{key}">\n<h2>{h(label)}</h2>\n{content}\n</section>' for key, label, content in sections),
        "<footer>Every text on this page comes from the release's files. "
        "Load a table with <code>armsledger.load(&quot;transfers&quot;, version=&quot;"
        f"{h(version)}&quot;)</code>.</footer>",
        "</main>",
        f'<script type="application/json" id="preview-data">{script_json(preview_data(release))}</script>',
    ])
    return page(title, body, asset("site.js"))


def write_release_page(release_dir: Path, output: Path | None = None) -> Path:
    """Input: a published release folder. Output: its page written to `output` (default: a
    preview next to it, never into the release, whose SHA256SUMS would no longer hold)."""
    release_dir = Path(release_dir)
    from armsledger.releases import diff_tables, list_releases, read_release_table

    versions = list_releases(release_dir.parent)
    previous = None
    if release_dir.name in versions:
        index = versions.index(release_dir.name)
        previous = versions[index - 1] if index > 0 else None
    diffs = None
    if previous:
        before = release_dir.parent / previous
        diffs = {name: diff_tables(read_release_table(before, name) if (before / f"{name}.parquet").exists() else None,
                                   read_release_table(release_dir, name), schema.table(name).primary_key)
                 for name in schema.TABLES if (release_dir / f"{name}.parquet").exists()}
    data = release_page_bytes(release_dir.name, release_dir, previous=previous, diffs=diffs)
    output = Path(output) if output else release_dir.parent / f"{release_dir.name}.preview.html"
    output.write_bytes(data)
    return output


def overview_section(release: Release, previous: str | None, diffs: Mapping[str, Any] | None) -> str:
    out = ['<div class="cards">']
    for name in schema.TABLES:
        if name not in release.tables:
            continue
        delta = ""
        if diffs and name in diffs:
            c = _diff_counts(diffs[name])
            delta = f'<div class="delta">+{c["added"]} / −{c["removed"]} / ~{c["changed"]}</div>'
        out.append(f'<div class="card"><div class="n">{release.tables[name].num_rows:,}</div>'
                   f'<div class="label">{h(name)}</div>{delta}</div>')
    v = release.validation
    if v:
        ok = v.get("success")
        out.append(f'<div class="card"><div class="n {"ok" if ok else "fail"}">{"passed" if ok else "FAILED"}</div>'
                   f'<div class="label">validation: {h(v.get("n_expectations", 0))} expectations, '
                   f'{h(v.get("n_failed", 0))} failed</div></div>')
    out.append("</div>")
    out.append(f"<p>Release <strong>{h(release.version)}</strong>"
               f"{' (' + h(_created(release.version)) + ', UTC)' if _created(release.version) else ''}. ")
    if previous is None:
        out.append("This is the first release: there is no earlier one to compare with.</p>")
    else:
        out.append(f'Changes since release <a href="../{h(previous)}/index.html">{h(previous)}</a>, '
                   "row by row on each table's primary key "
                   '(<a href="CHANGES.md">CHANGES.md</a>):</p>')
        out.append('<table><thead><tr><th>table</th><th class="num">rows</th><th class="num">added</th>'
                   '<th class="num">removed</th><th class="num">changed</th></tr></thead><tbody>')
        for name in schema.TABLES:
            if name not in release.tables:
                continue
            c = _diff_counts(diffs[name]) if diffs and name in diffs else {"added": 0, "removed": 0, "changed": 0}
            out.append(f'<tr><td>{h(name)}</td><td class="num">{release.tables[name].num_rows:,}</td>'
                       f'<td class="num">{c["added"]}</td><td class="num">{c["removed"]}</td>'
                       f'<td class="num">{c["changed"]}</td></tr>')
        out.append("</tbody></table>")
        for name in schema.TABLES:
            diff = diffs.get(name) if diffs else None
            if diff is None or not any(_diff_counts(diff).values()):
                continue
            items = []
            for label in ("added", "removed", "changed"):
                keys = getattr(diff, label)  # a Sequence: only the first few become Python strings
                if keys:
                    more = f" and {len(keys) - MAX_KEYS_SHOWN} more" if len(keys) > MAX_KEYS_SHOWN else ""
                    items.append(f"<li>{label} ({len(keys)}): "
                                 + ", ".join(f"<code>{h(k)}</code>" for k in keys[:MAX_KEYS_SHOWN]) + more + "</li>")
            out.append(f"<details><summary>{h(name)}: keys that changed</summary><ul>{''.join(items)}</ul></details>")
    rejected = release.rejected
    if rejected:
        out.append(f"<h3>Files in raw/ skipped or read with a warning ({len(rejected)})</h3>")
        out.append("<table><thead><tr><th>file</th><th>kind</th><th>reason</th></tr></thead><tbody>")
        for item in rejected:
            out.append(f"<tr><td><code>{h(item.get('path'))}</code></td><td>{h(item.get('kind', 'rejected'))}</td>"
                       f"<td>{h(item.get('reason'))}</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append('<p class="muted">Every file in raw/ was read.</p>')
    return "\n".join(out)


def _diff_counts(diff: Any) -> dict[str, int]:
    if isinstance(diff, Mapping):
        return {k: (len(diff[k]) if not isinstance(diff[k], int) else diff[k]) for k in ("added", "removed", "changed")}
    return {"added": len(diff.added), "removed": len(diff.removed), "changed": len(diff.changed)}


def _created(version: str) -> str | None:
    parts = version.split(".")
    try:
        return datetime.date(int(parts[0]), int(parts[1]), int(parts[2])).isoformat()
    except (ValueError, IndexError):
        return None


def downloads_section(release: Release) -> str:
    out = ["<p>Each table comes as Parquet (Arrow types, the true values) and CSV (see the data package "
           "for its conventions). Check a download with <code>sha256sum -c SHA256SUMS</code>.</p>",
           '<table><thead><tr><th>file</th><th>what</th><th class="num">size</th><th>SHA-256</th></tr></thead><tbody>']

    def row(name: str, what: str) -> str:
        size, sha256 = release.file_facts(name)
        return (f'<tr><td><a href="{h(name)}" download>{h(name)}</a></td><td>{h(what)}</td>'
                f'<td class="num" title="{size:,} bytes">{h(human_size(size))}</td>'
                f'<td class="hash">{sha256}</td></tr>')

    for name in schema.TABLES:
        rows = release.tables[name].num_rows if name in release.tables else 0
        for ext, label in (("parquet", "Parquet"), ("csv", "CSV")):
            if release.has_file(f"{name}.{ext}"):
                out.append(row(f"{name}.{ext}", f"{name}: {rows:,} rows, {label}"))
    labels = {"datapackage.json": "Frictionless data package: fields, keys, bytes and hashes",
              "CHANGES.md": "rows added, removed and changed since the previous release",
              "validation.json": "every expectation's result", "rejected.json": "files skipped or read with a warning"}
    for name in FILE_ORDER:
        if release.has_file(name):
            out.append(row(name, labels[name]))
    out.append('<tr><td><a href="SHA256SUMS" download>SHA256SUMS</a></td>'
               '<td>checksums of every file in the release, this page included</td><td></td><td></td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


# --- timeline of events ---------------------------------------------------------------


def _to_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return None


def _month_ticks(start: datetime.date, end: datetime.date) -> list[tuple[datetime.date, str]]:
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60, 120) if months / s <= 12), 240)
    first = start.year * 12 + start.month - 1
    first -= first % step
    ticks = []
    m = first
    while True:
        d = datetime.date(m // 12, m % 12 + 1, 1)
        if d > end:
            break
        if d >= start:
            ticks.append((d, str(d.year) if step >= 12 else d.strftime("%b %Y")))
        m += step
    return ticks


def timeline_svg(release: Release) -> tuple[str, list[dict]]:
    """Output: the SVG of dated events (one lane per status, bars spanning start to end) and the undated events."""
    events = release.rows.get("events", [])
    dated, undated = [], []
    for e in events:
        start = _to_date(e.get("date_start"))
        (dated if start else undated).append(e)
    if not dated:
        return "", undated
    spans = []
    for e in dated:
        start = _to_date(e["date_start"])
        end = _to_date(e.get("date_end")) or start
        spans.append((min(start, end), max(start, end), e))
    lo = min(s for s, _, _ in spans)
    hi = max(e for _, e, _ in spans)
    lo = datetime.date(lo.year, lo.month, 1)
    hi = (datetime.date(hi.year + (hi.month // 12), hi.month % 12 + 1, 1))
    total_days = max((hi - lo).days, 1)
    width, left, right = 1100, 110, 20
    plot_w = width - left - right

    def x(d: datetime.date) -> float:
        return left + plot_w * (d - lo).days / total_days

    statuses = [s for s in schema.vocabularies()["event_status"] if any(e["status"] == s for _, _, e in spans)]
    statuses += sorted({e["status"] for _, _, e in spans} - set(statuses))
    row_h, top = 18, 30
    lanes: list[tuple[str, list[list[tuple[float, float, tuple]]]]] = []
    for status in statuses:
        rows: list[list[tuple[float, float, tuple]]] = []
        # Items come in order of start, so each one placed in a row lies right of every item before it: a row
        # is free for an item when the item starts past the row's last end, and an item takes the first free
        # row. (Looking at every item of every row instead took 2 s for a 20,000-document release; the rows'
        # ends one by one in Python, 0.15 s for 5,000 documents, whose busy months fill hundreds of rows.)
        items = sorted((s for s in spans if s[2]["status"] == status), key=lambda s: (s[0], s[1], s[2]["event_id"]))
        row_ends = np.empty(len(items))
        for item in items:
            x0, x1 = x(item[0]), max(x(item[1]), x(item[0]) + 8)
            label_w = 6.4 * len(item[2]["event_type"]) + 6
            # A label goes right of its bar, or left of it when the bar ends near the right edge.
            lo_x, hi_x = (x0, x1 + label_w) if x1 + label_w <= width - 4 else (x0 - label_w, x1)
            free = np.flatnonzero(row_ends[: len(rows)] + 4 < lo_x)
            if len(free):
                i = int(free[0])
                rows[i].append((lo_x, hi_x, item))
            else:
                i = len(rows)
                rows.append([(lo_x, hi_x, item)])
            row_ends[i] = hi_x
        lanes.append((status, rows))
    height = top + sum(max(len(rows), 1) * row_h + 12 for _, rows in lanes) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="timeline-title"><title id="timeline-title">Timeline of {len(dated)} dated events by status</title>']
    axis_y = height - 24
    for d, label in _month_ticks(lo, hi):
        xx = x(d)
        out.append(f'<line x1="{xx:.1f}" y1="{top - 8}" x2="{xx:.1f}" y2="{axis_y}" stroke="#e3e7eb"/>')
        anchor = "end" if xx > width - right - 30 else "middle"
        out.append(f'<text x="{xx:.1f}" y="{axis_y + 16}" font-size="11" text-anchor="{anchor}" fill="#5b6670">{h(label)}</text>')
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#8b949e"/>')
    y = top
    for status, rows in lanes:
        color = EVENT_STATUS_COLORS.get(status, "#555")
        lane_h = max(len(rows), 1) * row_h
        out.append(f'<rect x="0" y="{y - 6}" width="{width}" height="{lane_h + 8}" fill="{color}" fill-opacity="0.05"/>')
        out.append(f'<text x="10" y="{y + lane_h / 2 + 4:.1f}" font-size="13" font-weight="600" fill="{color}">{h(status)}</text>')
        for i, r in enumerate(rows):
            yy = y + i * row_h
            for _, _, (start, end, e) in r:
                x0 = x(start)
                x1 = max(x(end), x0 + 8)
                label_w = 6.4 * len(e["event_type"]) + 6
                label = (f'<text x="{x1 + 5:.1f}" y="{yy + 10}" font-size="11" fill="#1d232a">{h(e["event_type"])}</text>'
                         if x1 + label_w <= width - 4 else
                         f'<text x="{x0 - 5:.1f}" y="{yy + 10}" font-size="11" fill="#1d232a" '
                         f'text-anchor="end">{h(e["event_type"])}</text>')
                tip = (f"{e['event_type']} ({status}), {_date_range(e)}: "
                       f"{e.get('summary') or ''} [{e['event_id']}]")
                out.append(f'<a href="#row/events/{h(e["event_id"])}"><title>{h(tip)}</title>'
                           f'<rect class="mark" x="{x0:.1f}" y="{yy}" width="{x1 - x0:.1f}" height="11" rx="3" '
                           f'fill="{color}" fill-opacity="{0.9 if (e.get("date_precision") == "day") else 0.55}"/>'
                           f'{label}</a>')
        y += lane_h + 12
    out.append("</svg>")
    return "".join(out), undated


def _date_range(e: Mapping[str, Any]) -> str:
    start, end = _to_date(e.get("date_start")), _to_date(e.get("date_end"))
    if not start:
        return e.get("date_text") or "no date"
    precision = e.get("date_precision") or "day"
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}.get(precision, "%Y-%m-%d")
    text = start.strftime(fmt)
    if end and end.strftime(fmt) != text:
        text += " to " + end.strftime(fmt)
    return text


def timeline_section(release: Release) -> str:
    svg, undated = timeline_svg(release)
    out = []
    if svg:
        out.append(f"<figure>{svg}<figcaption>Events by date, one lane per status. A bar runs from the first to "
                   "the last day the date allows (a month, a year); day-precise events are darker. Select one to see "
                   "its row.</figcaption></figure>")
    else:
        out.append('<p class="muted">No event in this release has a date.</p>')
    if undated:
        out.append(f"<details><summary>{len(undated)} events without a date</summary><ul>")
        for e in sorted(undated, key=lambda e: (e["event_type"], e["event_id"])):
            out.append(f'<li><a href="#row/events/{h(e["event_id"])}">{h(e["event_type"])}</a> '
                       f'({h(e["status"])}){": " + h(e.get("date_text")) if e.get("date_text") else ""} — '
                       f'{h(_short(e.get("summary"), 140))}</li>')
        out.append("</ul></details>")
    return "\n".join(out)


def _short(text: Any, n: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


# --- graph of transfers -----------------------------------------------------------------


def transfers_svg(release: Release) -> str:
    """A bipartite graph: suppliers on the left, recipients on the right, one edge per transfer,
    coloured by category and dashed by status, labelled on the right."""
    transfers = release.rows.get("transfers", [])
    if not transfers:
        return ""
    by_id = {t["transfer_id"]: t for t in transfers}

    def order(key: str) -> list[str]:
        counts: dict[str, int] = defaultdict(int)
        for t in transfers:
            counts[t[key]] += 1
        return sorted(counts, key=lambda a: (-counts[a], release.name(a), a))

    suppliers, recipients = order("supplier_id"), order("recipient_id")
    s_rank = {a: i for i, a in enumerate(suppliers)}
    r_rank = {a: i for i, a in enumerate(recipients)}
    cat_rank = {c: i for i, c in enumerate(CATEGORY_COLORS)}
    # Slots on the right: grouped by recipient, then by supplier, so that edges cross little.
    right_order = sorted(transfers, key=lambda t: (r_rank[t["recipient_id"]], s_rank[t["supplier_id"]],
                                                   cat_rank.get(t["category"], 99), t["transfer_id"]))
    left_order = sorted(transfers, key=lambda t: (s_rank[t["supplier_id"]], r_rank[t["recipient_id"]],
                                                  right_order.index(t)))
    slot, gap, top = 26, 18, 34
    width, lx, rx, node_w = 1100, 190, 480, 12
    name_x, label_x = rx + node_w + 8, rx + node_w + 190

    def layout(actors: list[str], ordered: list[dict], key: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
        nodes, slots = {}, {}
        y = top
        for a in actors:
            mine = [t for t in ordered if t[key] == a]
            nodes[a] = (y, y + slot * len(mine))
            for i, t in enumerate(mine):
                slots[t["transfer_id"]] = y + slot * i + slot / 2
            y += slot * len(mine) + gap
        return nodes, slots

    left_nodes, left_slots = layout(suppliers, left_order, "supplier_id")
    right_nodes, right_slots = layout(recipients, right_order, "recipient_id")
    height = int(max(max(b for _, b in left_nodes.values()), max(b for _, b in right_nodes.values())) + 20)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="transfers-title"><title id="transfers-title">{len(transfers)} transfers from '
           f'{len(suppliers)} suppliers to {len(recipients)} recipients</title>',
           f'<text x="{lx + node_w}" y="18" font-size="12" font-weight="600" fill="#5b6670" text-anchor="end">supplier</text>',
           f'<text x="{rx}" y="18" font-size="12" font-weight="600" fill="#5b6670">recipient</text>',
           f'<text x="{label_x}" y="18" font-size="12" font-weight="600" fill="#5b6670">category · status: item (quantity)</text>']
    for t in right_order:
        tid = t["transfer_id"]
        y1, y2 = left_slots[tid], right_slots[tid]
        x1, x2 = lx + node_w, rx
        mid = (x1 + x2) / 2
        color = CATEGORY_COLORS.get(t["category"], "#616161")
        dash = TRANSFER_STATUS_DASHES.get(t["status"], "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        tip = (f"{release.name(t['supplier_id'])} → {release.name(t['recipient_id'])}: {t['item']} "
               f"({t['category']}, {t['status']}, confidence {t['confidence']}) [{tid}]")
        label = f"{t['category']} · {t['status']}: {_short(t['item'], 40)}"
        if t.get("quantity_text"):
            label += f" ({_short(t['quantity_text'], 16)})"
        if t.get("exchange_for") and t["exchange_for"] in by_id:
            label += f" ⇄ {_short(by_id[t['exchange_for']]['item'], 16)}"
        label = _short(label, int((width - label_x - 8) / 6.7))
        out.append(f'<a href="#row/transfers/{h(tid)}"><title>{h(tip)}</title>'
                   f'<path class="edge" d="M{x1},{y1:.1f} C{mid:.1f},{y1:.1f} {mid:.1f},{y2:.1f} {x2},{y2:.1f}" '
                   f'fill="none" stroke="{color}" stroke-width="7" stroke-opacity="0.8"{dash_attr}/>'
                   f'<line x1="{rx + node_w}" y1="{y2:.1f}" x2="{label_x - 6}" y2="{y2:.1f}" stroke="{color}" '
                   f'stroke-width="1" stroke-opacity="0.35"/>'
                   f'<text x="{label_x}" y="{y2 + 4:.1f}" font-size="12" fill="#1d232a">{h(label)}</text></a>')
    for nodes, x, anchor, tx in ((left_nodes, lx, "end", lx - 8), (right_nodes, rx, None, None)):
        for a, (y0, y1) in nodes.items():
            out.append(f'<rect x="{x}" y="{y0}" width="{node_w}" height="{y1 - y0}" fill="#14213d" rx="2"/>')
            if anchor:
                out.append(f'<text x="{tx}" y="{(y0 + y1) / 2 + 4:.1f}" font-size="13" font-weight="600" '
                           f'text-anchor="end" fill="#1d232a">{h(_short(release.name(a), 22))}</text>')
    # Recipient names go right of their node, on a white ground over the guide lines to the labels.
    for a, (y0, y1) in right_nodes.items():
        out.append(f'<text x="{name_x}" y="{(y0 + y1) / 2 + 4:.1f}" font-size="13" font-weight="600" '
                   f'fill="#1d232a" paint-order="stroke" stroke="#fff" stroke-width="5">'
                   f'{h(_short(release.name(a), 22))}</text>')
    out.append("</svg>")
    return "".join(out)


def legend_svg(items: Sequence[tuple[str, str, str]]) -> str:
    """Input: (label, colour, dash) triples. Output: a one-line SVG legend of line samples."""
    width = 18 + sum(40 + 7 * len(label) + 14 for label, _, _ in items)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 22" width="{width}" height="22" '
           'role="img" aria-label="legend">']
    x = 8
    for label, color, dash in items:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="11" x2="{x + 34}" y2="11" stroke="{color}" stroke-width="6"{dash_attr}/>'
                   f'<text x="{x + 40}" y="15" font-size="12" fill="#1d232a">{h(label)}</text>')
        x += 40 + 7 * len(label) + 14
    out.append("</svg>")
    return "".join(out)


def transfers_section(release: Release) -> str:
    svg = transfers_svg(release)
    if not svg:
        return '<p class="muted">This release has no transfers.</p>'
    transfers = release.rows["transfers"]
    categories = [c for c in CATEGORY_COLORS if any(t["category"] == c for t in transfers)]
    statuses = [s for s in TRANSFER_STATUS_DASHES if any(t["status"] == s for t in transfers)]
    return "\n".join([
        f"<figure>{svg}<figcaption>Who sends what to whom: one line per transfer, from supplier to recipient. "
        "Select a line to see its row; its evidence is one click further.</figcaption></figure>",
        '<div class="legend-block"><p class="muted">Colour: category</p>',
        legend_svg([(c, CATEGORY_COLORS[c], "") for c in categories]),
        '<p class="muted">Line: status</p>',
        legend_svg([(s, "#37474f", TRANSFER_STATUS_DASHES[s]) for s in statuses]),
        "</div>",
    ])


# --- previews and evidence --------------------------------------------------------------

PREVIEW_LINKS = {"events": "evidence", "transfers": "evidence", "citations": "target"}
PREVIEW_FIRST = "transfers"


def preview_data(release: Release) -> dict[str, Any]:
    tables = {}
    for name in schema.TABLES:
        if name not in release.tables:
            continue
        table = release.tables[name]
        columns = table.column_names
        rows = [[row[c] for c in columns] for row in release.head(name, PREVIEW_ROWS)]
        tables[name] = {"columns": columns, "rows": rows, "total": table.num_rows,
                        "key": schema.table(name).primary_key, "link": PREVIEW_LINKS.get(name)}
    evidence = release.evidence_counts()
    names = {actor_id: row["name"] for actor_id, row in release.actors.items()}
    first = PREVIEW_FIRST if PREVIEW_FIRST in tables else next(iter(tables), None)
    return {"tables": tables, "evidence": evidence, "names": names, "first": first}


def tables_section(release: Release) -> str:
    out = ["<p>Search any table: every word typed must appear in a row (ids match by the names shown too). "
           "In events and transfers, <em>evidence</em> opens the sentences that support the row.</p>",
           '<noscript><p>The previews need JavaScript; the downloads above hold every row.</p></noscript>',
           '<div class="tabs" role="tablist">']
    for name in schema.TABLES:
        if name in release.tables:
            out.append(f'<button type="button" role="tab" data-table="{h(name)}" aria-selected="false">'
                       f'{h(name)} ({release.tables[name].num_rows:,})</button>')
    out.append("</div>")
    for name in schema.TABLES:
        if name not in release.tables:
            continue
        columns = release.tables[name].column_names
        link = PREVIEW_LINKS.get(name)
        head = ("<th>evidence</th>" if link else "") + "".join(f"<th>{h(c)}</th>" for c in columns)
        out.append(f'<div class="preview" id="panel-{h(name)}" role="tabpanel">'
                   f'<input type="search" placeholder="Search {h(name)}" aria-label="Search {h(name)}">'
                   '<p class="status" aria-live="polite"></p>'
                   f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody></tbody></table></div></div>')
    return "\n".join(out)


def highlight_sentence(sentence: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """Input: a sentence and (start, end, class) spans in it. Output: escaped HTML with the spans
    as <mark>; where spans overlap, the one whose class comes first in HIGHLIGHTS wins."""
    chosen: list[tuple[int, int, str]] = []
    for start, end, cls in sorted(spans, key=lambda s: (_PRECEDENCE.get(s[2], 99), s[0], -(s[1] - s[0]))):
        if 0 <= start < end <= len(sentence) and all(end <= a or start >= b for a, b, _ in chosen):
            chosen.append((start, end, cls))
    out, pos = [], 0
    for start, end, cls in sorted(chosen):
        out.append(h(sentence[pos:start]))
        out.append(f'<mark class="{cls}">{h(sentence[start:end])}</mark>')
        pos = end
    out.append(h(sentence[pos:]))
    return "".join(out)


def _phrase_spans(sentence: str, phrase: Any, cls: str) -> list[tuple[int, int, str]]:
    if not isinstance(phrase, str) or len(phrase.strip()) < 2:
        return []
    needle = phrase.strip()
    if _found_by_lowering(sentence, needle):
        return _lowered_spans(sentence, needle, cls)
    return [(m.start(), m.end(), cls) for m in _phrase_pattern(needle).finditer(sentence)]


# The only characters that `re`'s case-insensitive match pairs with an ASCII letter while str.lower() does not.
_FOLDED_APART = frozenset("\u0130\u0131\u017f")


def _found_by_lowering(sentence: str, needle: str) -> bool:
    """Whether comparing lowered strings finds exactly what _phrase_pattern(needle) finds in `sentence`: an
    ASCII phrase, a sentence that lowers letter for letter, and none of the letters `re` folds otherwise.

    A page highlights thousands of distinct phrases, each a pattern to compile once per run: writing a
    5,000-document release's page took 0.86 s that way, 0.67 s with this common case needing none.
    """
    return (needle.isascii() and len(sentence.lower()) == len(sentence)
            and (sentence.isascii() or _FOLDED_APART.isdisjoint(sentence)))


def _lowered_spans(sentence: str, needle: str, cls: str) -> list[tuple[int, int, str]]:
    """_phrase_pattern(needle).finditer's spans, by str.find on lowered strings (see _found_by_lowering)."""
    haystack, target = sentence.lower(), needle.lower()
    spans = []
    position = haystack.find(target)
    while position >= 0:
        end = position + len(target)
        if not (position > 0 and _is_word_char(sentence[position - 1])) and not (end < len(sentence) and _is_word_char(sentence[end])):
            spans.append((position, end, cls))
            position = haystack.find(target, end)
        else:
            position = haystack.find(target, position + 1)
    return spans


def _is_word_char(char: str) -> bool:
    """What `re`'s \\w matches in a str pattern."""
    return char.isalnum() or char == "_"


@functools.lru_cache(maxsize=65536)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)


def citation_spans(release: Release, citation: Mapping[str, Any], target: Mapping[str, Any] | None,
                   target_table: str | None) -> list[tuple[int, int, str]]:
    """The cited words in a citation's sentence: the target's actors (by the mentions' offsets), item,
    quantity, date and place, and the citation's hedge, source and marker."""
    sentence = citation["sentence"]
    start = citation["char_start"]
    spans: list[tuple[int, int, str]] = []
    actors: set[str] = set()
    phrases: list[tuple[Any, str]] = [(citation.get("hedge"), "hl-hedge"), (citation.get("source_text"), "hl-source"),
                                      (citation.get("marker"), "hl-marker")]
    if target is not None and target_table == "transfers":
        actors = {target["supplier_id"], target["recipient_id"]}
        phrases += [(item, "hl-item") for item in str(target.get("item") or "").split(";")]
        phrases += [(target.get("quantity_text"), "hl-quantity")]
    elif target is not None and target_table == "events":
        actors = set(target.get("actor_ids") or [])
        phrases += [(target.get("date_text"), "hl-date"), (target.get("place"), "hl-place")]
    for m in release.mentions_of(citation["doc_id"]):
        rel = m["char_start"] - start
        text = m["text"] or ""
        if m["actor_id"] in actors and 0 <= rel and sentence[rel:rel + len(text)] == text and text:
            spans.append((rel, rel + len(text), "hl-actor"))
    for phrase, cls in phrases:
        spans += _phrase_spans(sentence, phrase, cls)
    return spans


def document_html(doc: Mapping[str, Any] | None, doc_id: str) -> str:
    if doc is None:
        return f"document <code>{h(doc_id)}</code> (not in this release)"
    title = doc.get("title")
    parts = [f"<strong>{h(title)}</strong>" if title else f"<strong>Untitled</strong> <code>{h(doc.get('path'))}</code>"]
    for key in ("publisher", "author"):
        if doc.get(key):
            parts.append(h(doc[key]))
    if doc.get("published"):
        parts.append(h(_date_range({"date_start": doc["published"], "date_precision": doc.get("published_precision")})))
    url = safe_url(doc.get("url"))
    if url:
        parts.append(f'<a href="{h(url)}" rel="noopener noreferrer nofollow">{h(url)}</a>')
    elif doc.get("url"):
        parts.append(f"<code>{h(doc['url'])}</code>")
    if title:
        parts.append(f"<code>{h(doc.get('path'))}</code>")
    return " · ".join(parts)


def evidence_heading(release: Release, table: str, row: Mapping[str, Any]) -> str:
    if table == "transfers":
        quantity = f", {row['quantity_text']}" if row.get("quantity_text") else ""
        return (f"Transfer: {h(release.name(row['supplier_id']))} → {h(release.name(row['recipient_id']))}: "
                f"{h(row['item'])}{h(quantity)} <span class=\"muted\">({h(row['category'])}, {h(row['status'])}, "
                f"confidence {h(row['confidence'])}, {h(row['n_documents'])} document(s))</span>")
    who = ", ".join(release.name(a) for a in (row.get("actor_ids") or []))
    return (f"Event: {h(row['event_type'])} — {h(who)} <span class=\"muted\">({h(row['status'])}, "
            f"{h(_date_range(row))}{', ' + h(row['place']) if row.get('place') else ''}, "
            f"confidence {h(row['confidence'])})</span>")


def evidence_section(release: Release) -> str:
    legend = "".join(f'<span><mark class="{cls}">{h(label)}</mark></span>' for cls, label in HIGHLIGHTS)
    out = [f'<p id="evidence-hint">Select <em>evidence</em> on a row of events, transfers or citations to see the sentences '
           "that support it here.</p>", f'<div class="legend">Highlighted: {legend}</div>']
    for table in ("transfers", "events"):
        key = schema.table(table).primary_key
        shown = release.head(table, PREVIEW_ROWS)
        cited = release.citations_for([row[key] for row in shown], EVIDENCE_PER_ROW)
        documents = release.documents(c["doc_id"] for cites in cited.values() for c in cites)
        n_cited = release.evidence_counts()
        for row in shown:
            target_id = row[key]
            cites = cited.get(target_id, [])
            items = []
            for c in cites:
                sentence_html = highlight_sentence(c["sentence"], citation_spans(release, c, row, table))
                meta = [f"{h(c['kind'])}"]
                if c.get("marker"):
                    meta.append(f"marker {h(c['marker'])}")
                if c.get("source_text") or c.get("source_actor_id"):
                    meta.append(f"source: {h(c.get('source_text') or release.name(c['source_actor_id']))}")
                if c.get("hedge"):
                    meta.append(f"hedged by “{h(c['hedge'])}”")
                if c.get("status") and c["status"] != row.get("status"):
                    meta.append(f"this text reads it as <strong>{h(c['status'])}</strong>")
                meta.append(f"characters {h(c['char_start'])}–{h(c['char_end'])}")
                quote = f'<div class="meta">Quote: “{h(c["quote"])}”</div>' if c.get("quote") else ""
                items.append(f'<div class="citation" id="{h(c["citation_id"])}"><blockquote>{sentence_html}</blockquote>'
                             f'{quote}<div class="meta">{" · ".join(meta)} · <code>{h(c["citation_id"])}</code></div>'
                             f'<div class="doc">{document_html(documents.get(c["doc_id"]), c["doc_id"])}</div></div>')
            if not items:
                items.append('<p class="fail">No citation supports this row.</p>')
            elif n_cited.get(target_id, 0) > len(cites):
                items.append(f'<p class="muted">and {n_cited[target_id] - len(cites):,} more in citations.csv</p>')
            out.append(f'<article class="evidence" id="ev-{h(target_id)}" data-table="{h(table)}" hidden>'
                       f"<h3>{evidence_heading(release, table, row)}</h3>"
                       f'<p class="muted"><code>{h(target_id)}</code> · '
                       f'<a href="#row/{h(table)}/{h(target_id)}">show the row</a></p>{"".join(items)}</article>')
    return "\n".join(out)


# --- validation and codebook ----------------------------------------------------------------


def validation_section(release: Release) -> str:
    v = release.validation
    if not v:
        return '<p class="muted">This release has no validation results.</p>'
    results = v.get("results", [])
    ok = v.get("success")
    out = [f'<p><span class="badge {"pass" if ok else "fail"}">{"passed" if ok else "FAILED"}</span> '
           f'{h(v.get("n_expectations", len(results)))} expectations (Great Expectations suites in '
           f'<code>expectations/</code>): {h(v.get("n_failed", 0))} failed, {h(v.get("n_skipped", 0))} skipped. '
           'Full results: <a href="validation.json">validation.json</a>.</p>']
    by_table: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_table[r.get("table") or "?"].append(r)
    order = [t for t in schema.TABLES if t in by_table] + sorted(set(by_table) - set(schema.TABLES))
    for table in order:
        rows = by_table[table]
        failed = sum(1 for r in rows if r.get("success") is False)
        skipped = sum(1 for r in rows if r.get("success") is None or r.get("skipped"))
        out.append(f'<details{" open" if failed else ""}><summary>{h(table)}: {len(rows) - failed - skipped} passed, '
                   f"{failed} failed, {skipped} skipped</summary>")
        out.append('<table><thead><tr><th>result</th><th>expectation</th><th>column</th><th>what it checks</th>'
                   '<th class="num">rows</th><th class="num">unexpected</th><th>observed / examples</th></tr></thead><tbody>')
        for r in rows:
            status = "skip" if (r.get("success") is None or r.get("skipped")) else ("pass" if r.get("success") else "fail")
            label = {"pass": "passed", "fail": "failed", "skip": "skipped"}[status]
            observed = r.get("observed_value")
            examples = r.get("unexpected_examples") or []
            detail = []
            if observed is not None and status != "pass":
                detail.append(_short(json.dumps(observed, ensure_ascii=False, default=str), 200))
            if examples:
                detail.append("e.g. " + _short(json.dumps(examples[:5], ensure_ascii=False, default=str), 200))
            if r.get("note"):
                detail.append(str(r["note"]))
            out.append(f'<tr><td><span class="badge {status}">{label}</span></td><td><code>{h(r.get("expectation"))}</code></td>'
                       f'<td>{h(", ".join(r.get("columns") or []))}</td><td>{h(r.get("description"))}</td>'
                       f'<td class="num">{h(fmt_number(r.get("element_count")))}</td>'
                       f'<td class="num">{h(fmt_number(r.get("unexpected_count")))}</td><td>{h(" ".join(detail))}</td></tr>')
        out.append("</tbody></table></details>")
    return "\n".join(out)


def _constraints_text(constraints: Mapping[str, Any] | None) -> str:
    if not constraints:
        return ""
    parts = []
    if constraints.get("enum"):
        parts.append("one of: " + ", ".join(str(v) for v in constraints["enum"]))
    if constraints.get("pattern"):
        parts.append(f"pattern {constraints['pattern']}")
    if constraints.get("minimum") is not None:
        parts.append(f"≥ {constraints['minimum']}")
    if constraints.get("maximum") is not None:
        parts.append(f"≤ {constraints['maximum']}")
    return "; ".join(parts)


def codebook_section(release: Release) -> str:
    resources = release.package.get("resources", [])
    if not resources:
        return '<p class="muted">No datapackage.json in this release.</p>'
    arrow_types = {name: {f.name: str(f.type) for f in release.parquet_schema(name)} for name in release.tables}
    out = ['<p>Every column of every table, from <a href="datapackage.json">datapackage.json</a> '
           "(Frictionless type; the Arrow type is that of the Parquet file).</p>"]
    for res in resources:
        name = res.get("name", "")
        sch = res.get("schema", {})
        keys = ", ".join(sch.get("primaryKey", []))
        fks = "; ".join(f"{', '.join(fk['fields'])} → {fk['reference'].get('resource') or name}."
                        f"{', '.join(fk['reference']['fields'])}" for fk in sch.get("foreignKeys", []))
        out.append(f'<details id="codebook-{h(name)}"><summary>{h(name)} — {h(res.get("title", ""))} '
                   f'({len(sch.get("fields", []))} columns)</summary>')
        out.append(f"<p>{h(str(res.get('description', '')).split(' CSV: ')[0])} Primary key: <code>{h(keys)}</code>."
                   + (f" Foreign keys: {h(fks)}." if fks else "") + "</p>")
        out.append("<table><thead><tr><th>column</th><th>type</th><th>Arrow type</th><th>required</th>"
                   "<th>meaning</th><th>values</th></tr></thead><tbody>")
        for f in sch.get("fields", []):
            constraints = f.get("constraints", {})
            out.append(f'<tr><td><code>{h(f.get("name"))}</code></td><td>{h(f.get("type"))}</td>'
                       f'<td><code>{h(arrow_types.get(name, {}).get(f.get("name"), ""))}</code></td>'
                       f'<td>{"yes" if constraints.get("required") else "no"}</td><td>{h(f.get("description"))}</td>'
                       f"<td>{h(_constraints_text(constraints))}</td></tr>")
        out.append("</tbody></table></details>")
    return "\n".join(out)


# --- the releases index ---------------------------------------------------------------------


def releases_index_bytes(releases_dir: Path, catalog: Mapping[str, Any] | None = None) -> bytes:
    """Input: a releases folder (and its catalog, if the caller has it). Output: the bytes of
    releases/index.html: every release, newest first, with its rows per table and a link to its page."""
    from armsledger.releases import list_releases

    releases_dir = Path(releases_dir)
    if catalog is None:
        from armsledger.publish import catalog_entry

        catalog = {"releases": [catalog_entry(releases_dir, v) for v in list_releases(releases_dir)]}
    entries = list(catalog.get("releases", []))
    latest = entries[-1]["version"] if entries else None
    head = "".join(f'<th class="num">{h(t)}</th>' for t in schema.TABLES)
    rows = []
    for entry in reversed(entries):
        version = entry["version"]
        mark = ' <span class="badge pass">latest</span>' if version == latest else ""
        counts = "".join(f'<td class="num">{h(fmt_number(entry.get("rows", {}).get(t)))}</td>' for t in schema.TABLES)
        folder = entry.get("path", version)
        # Releases published before pages existed have none: link to their folder instead.
        target = f"{folder}/{PAGE_FILE}" if (releases_dir / folder / PAGE_FILE).is_file() else f"{folder}/"
        rows.append(f'<tr><td><a href="{h(target)}">{h(version)}</a>{mark}</td>'
                    f'<td>{h(entry.get("created", ""))}</td>{counts}</tr>')
    body = "\n".join([
        '<header class="top"><h1>armsledger releases</h1>',
        "<p>Versioned tables of the actors, events, transfers and citations in texts about the "
        "Russia–North Korea military relationship, each row traceable to its sentence.</p></header>",
        "<main><section>",
        f"<h2>{len(entries)} release{'s' if len(entries) != 1 else ''}</h2>",
        f'<table><thead><tr><th>version</th><th>created (UTC)</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        if rows else '<p class="muted">Nothing is published yet.</p>',
        '<p>Machine-readable: <a href="catalog.json">catalog.json</a> lists every release, '
        '<a href="latest.json">latest.json</a> names the newest. In Python: '
        "<code>armsledger.load(&quot;transfers&quot;, source=&quot;URL of this folder&quot;)</code>.</p>",
        "</section></main>",
    ])
    return page("armsledger releases", body)


# --- codebook ---------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def codebook_markdown() -> str:
    """The codebook (docs/codebook.md), generated from the contract in data/schema.yaml."""
    from armsledger.publish import CSV_NOTE

    lines = [
        "# Codebook",
        "",
        "<!-- Generated from src/armsledger/data/schema.yaml by `armsledger codebook` "
        "(or `python -m armsledger.site codebook`). Do not edit by hand: tests/test_docs.py checks it. -->",
        "",
        "Every release holds these tables, as `TABLE.parquet` (Arrow types below) and `TABLE.csv`. "
        "Columns marked *nullable* may be empty (null in Parquet, an empty cell in CSV). "
        "IDs are strings derived from content, stable across releases. In CSV, dates are ISO 8601 "
        "(`YYYY-MM-DD`) and list columns are JSON arrays. `armsledger.load(table)` returns a pandas "
        "DataFrame with the dtypes documented in `armsledger.releases`.",
        "",
        CSV_NOTE,
        "",
        "| table | one row per | primary key |",
        "| --- | --- | --- |",
    ]
    for name in schema.TABLES:
        t = schema.table(name)
        lines.append(f"| [`{name}`](#{name}) | {_md(t.description)} | `{t.primary_key}` |")
    for name in schema.TABLES:
        t = schema.table(name)
        lines += ["", f"## {name}", "", f"**{_md(t.title)}.** {_md(t.description)}", "",
                  f"Primary key: `{t.primary_key}`."]
        if t.foreign_keys:
            fks = ", ".join(f"`{fk['fields']}` → `{fk['reference']['resource']}.{fk['reference']['fields']}`"
                            for fk in t.foreign_keys)
            lines.append(f"Foreign keys: {fks}.")
        lines += ["", "| column | type | nullable | meaning | values |", "| --- | --- | --- | --- | --- |"]
        for f in t.fields:
            values = []
            if f.enum:
                values.append(", ".join(f"`{v}`" for v in f.enum))
            if f.pattern:
                values.append(f"pattern `{f.pattern}`")
            if f.minimum is not None:
                values.append(f"≥ {f.minimum}")
            if f.maximum is not None:
                values.append(f"≤ {f.maximum}")
            lines.append(f"| `{f.name}` | `{f.type}` | {'yes' if f.nullable else 'no'} | {_md(f.description)} | "
                         f"{_md('; '.join(values))} |")
    lines += ["", "## Vocabularies", "", "| vocabulary | values |", "| --- | --- |"]
    for name, values in schema.vocabularies().items():
        lines.append(f"| `{name}` | {', '.join(f'`{v}`' for v in values)} |")
    return "\n".join(lines) + "\n"


def project_root() -> Path:
    return PACKAGE_DIR.parents[1]


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m armsledger.site", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cb = sub.add_parser("codebook", help="write docs/codebook.md from the schema")
    cb.add_argument("--output", type=Path, default=None, help="where to write (default: the project's docs/codebook.md; - for stdout)")
    cb.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs from the schema")
    pg = sub.add_parser("page", help="render a release folder's page to a file (releases themselves are never rewritten)")
    pg.add_argument("release_dir", type=Path)
    pg.add_argument("output", type=Path)
    ix = sub.add_parser("index", help="rewrite RELEASES_DIR/index.html from the release folders")
    ix.add_argument("releases_dir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "codebook":
        return write_codebook(args.output, check=args.check)
    if args.command == "page":
        if not (Path(args.release_dir) / "datapackage.json").is_file():
            parser.error(f"{args.release_dir} is not a release folder")
        print(write_release_page(args.release_dir, args.output))
        return 0
    if not Path(args.releases_dir).is_dir():
        parser.error(f"no releases folder {args.releases_dir}")
    path = Path(args.releases_dir) / PAGE_FILE
    path.write_bytes(releases_index_bytes(args.releases_dir))
    print(path)
    return 0


def write_codebook(output: Path | str | None = None, check: bool = False) -> int:
    """Writes (or with check, compares) the codebook. Returns an exit code: 0 fine, 1 out of date."""
    text = codebook_markdown()
    if str(output) == "-":
        sys.stdout.write(text)
        return 0
    path = Path(output) if output else project_root() / CODEBOOK_PATH
    if check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"{path} is out of date: run `armsledger codebook`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
