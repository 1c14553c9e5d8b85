"""Publishing a release: typed tables in, a complete, checked release folder out.

A release folder `releases_dir/VERSION/` holds, per table, `TABLE.parquet` and
`TABLE.csv`, plus `datapackage.json`, `CHANGES.md`, `validation.json`,
`rejected.json`, `inputs.json` (what the tables were built from, when the caller
says), `index.html` (the landing page, armsledger.site) and `SHA256SUMS`. It is built in a temporary folder, checked
with frictionless, and renamed into place; `catalog.json` and then
`latest.json` follow. A lock file keeps two publishers from interleaving.
"""
from __future__ import annotations

import datetime
import fcntl
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import frictionless
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from armsledger import schema
from armsledger.releases import (
    CATALOG_FILE,
    LATEST_FILE,
    PAGE_FILE,
    PUBLIC_DIR_MODE,
    PUBLIC_FILE_MODE,
    SUMS_FILE,
    TEMP_PREFIX,
    InvalidReleaseNameError,
    TableDiff,
    diff_tables,
    file_digest,
    fsync_dir,
    latest_version,
    list_releases,
    parse_sha256sums,
    read_release_table,
    version_key,
    write_atomically,
)

LOCK_FILE = ".lock"
# Waiting for the lock: the first retry after this many seconds, doubling up to the maximum.
LOCK_RETRY_FIRST_DELAY = 0.05
LOCK_RETRY_MAX_DELAY = 1.0
PACKAGE_FILE = "datapackage.json"
CHANGES_FILE = "CHANGES.md"
VALIDATION_FILE = "validation.json"
REJECTED_FILE = "rejected.json"
INPUTS_FILE = "inputs.json"
# frictionless reads each CSV's first rows (and the key tables the foreign keys look up); every byte of
# every file is checked against the descriptor's hashes, and every row was checked by the expectations.
# Reading every row in frictionless costs about 1 s per 1,000 documents, the rest of publishing about as much.
PACKAGE_CHECK_ROWS = 1000
PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
# Rows of a CSV turned into Python values at a time.
CSV_ROWS_PER_CHUNK = 10_000

# Every option that affects the bytes is pinned, so that the same table gives the
# same file (the footer still names the pyarrow version, so an upgrade changes it).
PARQUET_OPTIONS: Mapping[str, Any] = MappingProxyType({
    "compression": "zstd",
    "compression_level": 9,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "store_schema": True,
    "row_group_size": 1024 * 1024,
})

# OWASP's list of cell openings that spreadsheets run as formulas (= + - @) plus
# the tab and carriage return that can hide them.
FORMULA_OPENINGS = ("=", "+", "-", "@", "\t", "\r")
# The same openings as a pattern for Arrow's regex kernel (RE2), "-" escaped inside the class.
FORMULA_PATTERN = "^[" + "".join("\\" + c if c in "-]\\^" else c for c in FORMULA_OPENINGS) + "]"
CSV_NOTE = (
    "CSV: UTF-8, one header row, comma-separated; header names and text cells in double quotes. "
    "An empty cell is a null; an empty text is \"\". Dates are ISO 8601 (YYYY-MM-DD). List columns are JSON arrays. "
    "A text cell that would begin with =, +, -, @, a tab or a carriage return is prefixed with a "
    "single quote (') so that spreadsheets do not run it as a formula; the Parquet file keeps the "
    "true value."
)
PACKAGE_TITLE = (
    "armsledger: actors, events, transfers and citations of the Russia–North Korea military relationship"
)
PACKAGE_DESCRIPTION = (
    "Versioned tables of the actors, events, transfers and citations found in news and analysis texts, "
    "each row traceable to the sentence that supports it. Every table is published as CSV (the "
    "resources below) and as Parquet (listed under parquetFiles; the same rows and the true text values)."
)
MAX_KEYS_LISTED = 20


class ReleaseLockedError(RuntimeError):
    """Another publisher holds the releases folder's lock."""


class PackageInvalidError(RuntimeError):
    """The release built does not pass frictionless validation, so it is not published."""


@dataclass(frozen=True)
class PublishResult:
    """What a publish did.

    version, path: the new release and its folder (None when nothing was published).
    published: whether a release was made.
    changes: per table, the number of rows added, removed and changed against the previous release.
    reason: one line for a log.
    """

    version: str | None
    path: Path | None
    published: bool
    changes: dict[str, dict[str, int]]
    reason: str


def publish_release(
    tables: Mapping[str, pd.DataFrame | pa.Table],
    releases_dir: Path,
    *,
    validation: dict,
    rejected: list[dict],
    today: datetime.date | None = None,
    lock_timeout: float = 0.0,
    check_package: bool = True,
    inputs: Mapping[str, Any] | None = None,
    inputs_state_file: Path | None = None,
) -> PublishResult:
    """Input: one frame (or tables_to_arrow table) per contract table, the releases folder, the validation
    results and the rejected files. Output: a new release folder (or none when the tables equal the newest release),
    catalog.json and latest.json updated, and a PublishResult saying what happened.

    `today` (UTC by default) names the version; `lock_timeout` is how long to wait
    for another publisher before ReleaseLockedError; `check_package` runs
    frictionless on the built release before it is moved into place. `inputs`
    (a manifest with a `digest`, see pipeline.describe_inputs) is written into
    a new release as inputs.json; when the tables equal the newest release it
    is written to `inputs_state_file` instead, bound to that release, so that
    release_built_from knows these inputs give that release too.
    """
    releases_dir = Path(releases_dir)
    new_tables = tables_to_arrow(tables)
    check_rejected(rejected)
    releases_dir.mkdir(parents=True, exist_ok=True)
    with release_lock(releases_dir, timeout=lock_timeout):
        remove_leftovers(releases_dir)
        existing = list_releases(releases_dir)
        previous = existing[-1] if existing else None
        temp = new_release_folder(releases_dir)
        try:
            # The data files do not depend on the comparison, and Arrow writes them and compares the tables
            # without holding the interpreter: both run at once, on two cores. Tables equal to the previous
            # release's then cost writing files that are thrown away, a rare case (the inputs changed, the rows
            # did not) against every release that adds a document.
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="release-files") as background:
                written = start_data_files(background, temp, new_tables)
                if previous is None:
                    # A first release's CHANGES.md and page give row counts, no keys: every key of every table,
                    # sorted, took 48 MiB at 20,000 documents, at the start of the publishing peak.
                    diffs, unchanged = {}, False
                    counts = {n: {"added": t.num_rows, "removed": 0, "changed": 0} for n, t in new_tables.items()}
                else:
                    diffs, unchanged = compare_with_release(releases_dir / previous, new_tables)
                    counts = {n: d.counts() for n, d in diffs.items()}
                facts = {name: fact for future in written for name, fact in future.result().items()}
            if unchanged:
                shutil.rmtree(temp)
                # Repairs the indexes if a killed run left them behind the folders.
                write_indexes(releases_dir)
                if inputs is not None and inputs_state_file is not None:
                    record_inputs(inputs_state_file, releases_dir, previous, inputs)
                return PublishResult(None, None, False, counts, f"no change: the tables equal release {previous}")
            version = next_version(today or utc_today(), existing)
            path = build_release(releases_dir, temp, version, new_tables, facts, diffs, previous,
                                 validation=validation, rejected=rejected, check_package=check_package,
                                 inputs=inputs)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        write_indexes(releases_dir)
        first = "first release" if previous is None else f"changes against {previous}"
        return PublishResult(version, path, True, counts, f"published {version} ({first})")


# --- inputs ------------------------------------------------------------------


def tables_to_arrow(tables: Mapping[str, pd.DataFrame | pa.Table]) -> dict[str, pa.Table]:
    """Input: one frame per contract table (or the Arrow tables this function made before). Output: Arrow
    tables of the contract's schema, rows in key order, in contract order."""
    missing = [name for name in schema.TABLES if name not in tables]
    unknown = sorted(set(tables) - set(schema.TABLES))
    if missing or unknown:
        raise ValueError(f"a release needs exactly the tables {list(schema.TABLES)}: missing {missing}, unknown {unknown}")
    return {name: _contract_arrow(name, tables[name]) for name in schema.TABLES}


def _contract_arrow(name: str, table: pd.DataFrame | pa.Table) -> pa.Table:
    if not isinstance(table, pa.Table):
        return schema.to_arrow(name, table)
    if not table.schema.equals(schema.arrow_schema(name)):
        raise ValueError(f"table {name}: an Arrow table must have the contract's schema, got {table.schema}")
    return table


def check_rejected(rejected: list[dict]) -> None:
    """Input: the rejected files. Output: nothing, or ValueError if an item lacks `path` or `reason`."""
    for item in rejected:
        if not isinstance(item, Mapping) or "path" not in item or "reason" not in item:
            raise ValueError(f"each rejected item needs 'path' and 'reason': {item!r}")


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


# --- the lock and the debris ------------------------------------------------------


@contextmanager
def release_lock(releases_dir: Path, timeout: float = 0.0) -> Iterator[Path]:
    """Input: a releases folder and how long to wait. Output: exclusive hold of `releases_dir/.lock`
    for the duration of the block, or ReleaseLockedError naming the lock file.

    The lock file is never deleted: deleting a flock'ed file lets a third
    process lock a new file of the same name while the first still holds the old one.
    """
    lock_path = releases_dir / LOCK_FILE
    deadline = time.monotonic() + timeout
    delay = LOCK_RETRY_FIRST_DELAY
    with open(lock_path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    waited = f" after waiting {timeout:g} s" if timeout > 0 else ""
                    raise ReleaseLockedError(
                        f"another publisher holds {lock_path}{waited}; try again when it has finished"
                    ) from None
                # Back off: poll often at first (a short hold ends soon), then less often.
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, LOCK_RETRY_MAX_DELAY)
        try:
            yield lock_path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_leftovers(releases_dir: Path) -> list[Path]:
    """Input: a releases folder, with its lock held. Output: the temporary files and folders a killed
    run left there, now removed."""
    removed = []
    for entry in releases_dir.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


# --- comparing with the previous release ------------------------------------------


def compare_with_release(release_dir: Path, tables: Mapping[str, pa.Table]) -> tuple[dict[str, TableDiff], bool]:
    """Input: a release folder and the new Arrow tables. Output: each table's diff against the
    release's, and whether the release holds the same tables, columns, types and rows.

    The release's tables are read (hash-checked) and let go of one at a time. Arrow equality rather
    than Parquet bytes, so that an upgrade of pyarrow (which changes the file footer) does not make a
    new release of the same data.
    """
    present = {name for name in schema.TABLES if (release_dir / f"{name}.parquet").exists()}
    same = present == set(tables)
    diffs = {}
    for name, table in tables.items():
        old = read_release_table(release_dir, name) if name in present else None
        diffs[name] = diff_tables(old, table, schema.table(name).primary_key)
        same = same and old is not None and old.equals(table, check_metadata=False)
        del old
    return diffs, same


def next_version(today: datetime.date, existing: list[str]) -> str:
    """Input: the UTC date and the release names so far. Output: `YYYY.MM.DD`, or `YYYY.MM.DD.N`
    for the N-th further release that day."""
    base = today.strftime("%Y.%m.%d")
    if existing and version_key(existing[-1])[:3] > version_key(base):
        raise ValueError(f"release {existing[-1]} is newer than today's date {base}: is the clock right?")
    same_day = [version_key(v) for v in existing if v == base or v.startswith(base + ".")]
    if not same_day:
        return base
    return f"{base}.{max(key[3] if len(key) > 3 else 0 for key in same_day) + 1}"


# --- building the release folder ------------------------------------------------


def new_release_folder(releases_dir: Path) -> Path:
    """Input: a releases folder, with its lock held. Output: an empty, public temporary folder in it, where a
    release is built (remove_leftovers clears one that a killed run left)."""
    temp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}release-", dir=releases_dir))
    # mkdtemp makes the folder private; a release is public, and a web server may run as another user.
    temp.chmod(PUBLIC_DIR_MODE)
    return temp


def start_data_files(background: ThreadPoolExecutor, folder: Path, tables: Mapping[str, pa.Table]) -> list[Future]:
    """Input: two worker threads, a release's temporary folder and its tables. Output: the data files
    (TABLE.parquet on one thread, TABLE.csv on the other) being written, each future giving its files'
    facts by name (write_durably).

    Each file goes straight to disk, a CSV a batch of rows at a time: held in memory together, they took
    more than the tables themselves at 20,000 documents.
    """
    def write_all(extension: str, writer: Callable[[pa.Table], Callable[[HashingWriter], object]]) -> dict:
        return {f"{name}.{extension}": write_durably(folder / f"{name}.{extension}", writer(table))
                for name, table in tables.items()}

    return [background.submit(write_all, "parquet", parquet_writer), background.submit(write_all, "csv", csv_writer)]


def build_release(
    releases_dir: Path,
    temp: Path,
    version: str,
    tables: Mapping[str, pa.Table],
    data_facts: Mapping[str, Mapping[str, Any]],
    diffs: Mapping[str, TableDiff],
    previous: str | None,
    *,
    validation: dict,
    rejected: list[dict],
    check_package: bool,
    inputs: Mapping[str, Any] | None = None,
) -> Path:
    """Input: the temporary folder holding a release's data files (start_data_files) and everything else the
    release holds. Output: `releases_dir/VERSION/`, which appears whole (one rename of a fully written,
    flushed folder) or not at all."""
    write_release_files(temp, version, tables, data_facts, diffs, previous, validation=validation,
                        rejected=rejected, inputs=inputs)
    if check_package:
        validate_package(temp / PACKAGE_FILE)
    final = releases_dir / version
    os.rename(temp, final)
    fsync_dir(releases_dir)
    return final


def write_release_files(
    folder: Path,
    version: str,
    tables: Mapping[str, pa.Table],
    data_facts: Mapping[str, Mapping[str, Any]],
    diffs: Mapping[str, TableDiff],
    previous: str | None,
    *,
    validation: dict,
    rejected: list[dict],
    inputs: Mapping[str, Any] | None = None,
) -> None:
    """Input: a folder holding the release's data files, their facts, and the rest of its contents. Output:
    every other release file in it, flushed, SHA256SUMS last so that it covers all the others."""
    facts: dict[str, dict[str, Any]] = dict(data_facts)
    small = {
        PACKAGE_FILE: json_bytes(package_descriptor(version, facts), sort_keys=False),
        CHANGES_FILE: changes_markdown(version, previous, tables, diffs).encode("utf-8"),
        VALIDATION_FILE: json_bytes(validation),
        REJECTED_FILE: json_bytes(sorted(rejected, key=lambda item: (str(item["path"]), str(item["reason"])))),
    }
    if inputs is not None:
        small[INPUTS_FILE] = json_bytes(dict(inputs))
    for name, data in small.items():
        facts[name] = write_durably(folder / name, bytes_writer(data))
    page = release_page(folder, version, tables, previous, diffs, facts)
    facts[PAGE_FILE] = write_durably(folder / PAGE_FILE, bytes_writer(page))
    write_durably(folder / SUMS_FILE, bytes_writer(sha256sums_text(facts).encode("utf-8")))
    fsync_dir(folder)


def write_durably(path: Path, write: Callable[[HashingWriter], object]) -> dict[str, Any]:
    """Input: a new file's path and what writes its bytes. Output: the file, flushed to disk before the
    folder is renamed, and its `bytes` and `hash` (as file_facts gives them), taken as it is written."""
    with open(path, "xb") as handle:
        os.fchmod(handle.fileno(), PUBLIC_FILE_MODE)
        out = HashingWriter(handle)
        write(out)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": out.size, "hash": "sha256:" + out.sha256.hexdigest()}


class HashingWriter:
    """A binary file that also takes the size and SHA-256 of what is written to it, for Parquet's writer
    and ours alike, so that a release file is never held whole in memory to be hashed."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._handle.flush()

    @property
    def closed(self) -> bool:
        return self._handle.closed


def bytes_writer(data: bytes) -> Callable[[HashingWriter], object]:
    """What writes these bytes (for write_durably)."""
    return functools.partial(HashingWriter.write, data=data)


def parquet_writer(table: pa.Table) -> Callable[[HashingWriter], object]:
    """What writes the table's Parquet file straight to a file (for write_durably): the same bytes for the
    same table, as every option that affects them is pinned in PARQUET_OPTIONS."""
    return functools.partial(pq.write_table, table, **PARQUET_OPTIONS)


def csv_writer(table: pa.Table) -> Callable[[HashingWriter], object]:
    """What writes the table's CSV file (csv_chunks) to a file (for write_durably)."""
    def write(out: HashingWriter) -> None:
        for chunk in csv_chunks(table):
            out.write(chunk)
    return write


def csv_chunks(table: pa.Table, rows_per_chunk: int = CSV_ROWS_PER_CHUNK) -> Iterator[bytes]:
    """Input: an Arrow table. Output: its CSV file (see CSV_NOTE for the conventions) in chunks of rows, the header
    first, so that only one chunk's text is held at a time.

    Arrow's CSV writer turns the cells into text in C++: writing the CSV files of a 5,000-document release
    through Python's csv module, a cell at a time, took 0.7 s. Every text cell is quoted, so that an empty
    text ("") and a null (an empty cell) read back apart.
    """
    sink = io.BytesIO()
    batches = table.to_batches(max_chunksize=rows_per_chunk) or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    for number, batch in enumerate(batches):
        options = pa_csv.WriteOptions(include_header=number == 0, quoting_style="needed")
        pa_csv.write_csv(csv_form(batch), sink, options)
        yield sink.getvalue()
        sink.seek(0)
        sink.truncate()


def csv_form(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Input: a batch of a contract table. Output: the batch as the CSV shows it: list cells as JSON arrays,
    text cells that open like a formula behind a single quote."""
    columns = []
    for field, column in zip(batch.schema, batch.columns):
        if pa.types.is_list(field.type):
            # No Arrow kernel writes JSON; a list column is short per row and only in the small tables.
            column = pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in column.to_pylist()],
                              type=pa.string())
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            opens_like_formula = pc.match_substring_regex(column, FORMULA_PATTERN)
            column = pc.if_else(opens_like_formula, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def json_bytes(value: Any, sort_keys: bool = True) -> bytes:
    """Input: a JSON-able value. Output: its stable, readable JSON text (UTF-8, trailing newline)."""
    return (json.dumps(value, indent=2, sort_keys=sort_keys, ensure_ascii=False, default=json_default) + "\n").encode("utf-8")


def json_default(value: Any) -> Any:
    """Input: a value json cannot write. Output: its JSON form (dates, paths, NumPy scalars), or TypeError."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r}")


def file_facts(data: bytes) -> dict[str, Any]:
    """Input: a file's bytes. Output: the `bytes` and `hash` properties a Data Package resource records."""
    return {"bytes": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}


def file_facts_of(path: Path) -> dict[str, Any]:
    """Input: a file. Output: file_facts of its bytes, read a block at a time."""
    size, sha256 = file_digest(path)
    return {"bytes": size, "hash": "sha256:" + sha256}


def package_descriptor(version: str, facts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Input: the version and each data file's `bytes` and `hash` (file_facts). Output: the datapackage.json descriptor.

    frictionless can check the CSV files (types, keys, foreign keys, bytes,
    hashes) as tabular resources. It reads Parquet only through pandas, where
    list columns fail the array type and the byte count cannot be taken; and a
    tabular-data-package may hold nothing but tabular resources. So the Parquet
    files are listed, with bytes and hashes, under the custom key `parquetFiles`.
    """
    resources = []
    parquet_files = []
    for name in schema.TABLES:
        contract = schema.table(name)
        resources.append({
            "name": name,
            "title": contract.title,
            "description": f"{contract.description} {CSV_NOTE}",
            "profile": "tabular-data-resource",
            "path": f"{name}.csv",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            **facts[f"{name}.csv"],
            "schema": schema.frictionless_schema(name),
        })
        parquet_files.append({
            "name": f"{name}-parquet",
            "table": name,
            "title": contract.title,
            "description": f"{contract.description} Parquet: the same rows as {name}.csv, with Arrow types and the true text values.",
            "path": f"{name}.parquet",
            "format": "parquet",
            "mediatype": PARQUET_MEDIATYPE,
            **facts[f"{name}.parquet"],
        })
    return {
        "profile": "tabular-data-package",
        "name": "armsledger",
        "title": PACKAGE_TITLE,
        "description": PACKAGE_DESCRIPTION,
        "version": version,
        "resources": resources,
        "parquetFiles": parquet_files,
    }


def sha256sums_text(facts: Mapping[str, Mapping[str, Any]]) -> str:
    """Input: file name -> its `hash` fact (write_durably, file_facts). Output: SHA256SUMS text that
    `sha256sum -c` accepts, sorted by name."""
    return "".join(f"{facts[name]['hash'].removeprefix('sha256:')}  {name}\n" for name in sorted(facts))


def changes_markdown(
    version: str,
    previous: str | None,
    tables: Mapping[str, pa.Table],
    diffs: Mapping[str, TableDiff],
) -> str:
    """Input: the version, the previous one (None for the first) and the per-table diffs.
    Output: CHANGES.md: counts per table and, for tables that changed, the keys involved."""
    lines = [f"# Changes in release {version}", ""]
    if previous is None:
        lines += ["First release: there is no earlier release to compare with.", "",
                  "| Table | Rows |", "| --- | ---: |"]
        lines += [f"| {name} | {table.num_rows} |" for name, table in tables.items()]
        return "\n".join(lines) + "\n"
    lines += [f"Compared with release {previous}, row by row on each table's primary key.", "",
              "| Table | Rows | Added | Removed | Changed |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, table in tables.items():
        counts = diffs[name].counts()
        lines.append(f"| {name} | {table.num_rows} | {counts['added']} | {counts['removed']} | {counts['changed']} |")
    for name, diff in diffs.items():
        if not any(diff.counts().values()):
            continue
        lines += ["", f"## {name}", ""]
        lines += [key_line(label, keys) for label, keys in
                  (("Added", diff.added), ("Removed", diff.removed), ("Changed", diff.changed)) if keys]
    return "\n".join(lines) + "\n"


def key_line(label: str, keys: Sequence[str]) -> str:
    """Input: a label and some primary keys. Output: one Markdown list item naming the first few."""
    shown = ", ".join(f"`{key}`" for key in keys[:MAX_KEYS_LISTED])
    more = f" and {len(keys) - MAX_KEYS_LISTED} more" if len(keys) > MAX_KEYS_LISTED else ""
    return f"- {label} ({len(keys)}): {shown}{more}"


def validate_package(descriptor: Path, limit_rows: int | None = PACKAGE_CHECK_ROWS) -> None:
    """Input: a built release's datapackage.json. Output: nothing, or PackageInvalidError with the first errors.

    frictionless checks the descriptor (profile, schemas, keys) and each CSV's
    header and first `limit_rows` rows (None: all) against the field types,
    constraints and keys; then every file the descriptor lists is read whole and
    its size and SHA-256 compared with the descriptor's.
    """
    report = frictionless.validate(str(descriptor), limit_rows=limit_rows)
    if not report.valid:
        errors = report.flatten(["taskName", "rowNumber", "fieldName", "type", "note"])[:10]
        raise PackageInvalidError(f"{descriptor} fails frictionless validation: {errors}")
    mismatched = package_file_mismatches(descriptor)
    if mismatched:
        raise PackageInvalidError(f"{descriptor} does not describe its files: {mismatched[:10]}")


def package_file_mismatches(descriptor: Path) -> list[str]:
    """Input: a datapackage.json. Output: the files it lists (CSV resources and parquetFiles) whose bytes
    or SHA-256 differ from what it records, or that are missing."""
    package = json.loads(Path(descriptor).read_text(encoding="utf-8"))
    mismatched = []
    for entry in [*package.get("resources", []), *package.get("parquetFiles", [])]:
        path = Path(descriptor).parent / entry["path"]
        if not path.is_file():
            mismatched.append(f"{entry['path']}: missing")
        elif file_facts_of(path) != {"bytes": entry.get("bytes"), "hash": entry.get("hash")}:
            mismatched.append(f"{entry['path']}: bytes or hash differ")
    return mismatched


# --- what a release was built from ------------------------------------------------


def release_built_from(releases_dir: Path, digest: str, inputs_state_file: Path | None = None) -> str | None:
    """Input: a releases folder, an input manifest's digest and the state file of record_inputs.
    Output: the release latest.json names if it was built from inputs with this digest (its
    inputs.json) or they were found to rebuild it exactly (the state file), and every file of it
    matches its SHA256SUMS; else None (no release, a missing or changed file, other inputs)."""
    try:
        version = latest_version(releases_dir)
    except (InvalidReleaseNameError, OSError, ValueError):
        return None
    # latest.json behind the newest folder (a publisher killed in between): a full run repairs the indexes.
    if version is None or list_releases(releases_dir)[-1:] != [version]:
        return None
    folder = Path(releases_dir) / version
    if not release_is_whole(folder):
        return None
    known = {_json_object(folder / INPUTS_FILE).get("digest")}
    if inputs_state_file is not None:
        state = _json_object(Path(inputs_state_file))
        if state.get("version") == version and state.get("sha256sums") == _sha256_file(folder / SUMS_FILE):
            known.add(state.get("digest"))
    return version if digest in known else None


def release_is_whole(folder: Path) -> bool:
    """Input: a release folder. Output: whether SHA256SUMS lists every other file in it, and every
    listed file exists with that SHA-256 (what `sha256sum -c` and armsledger.load check)."""
    try:
        sums = parse_sha256sums((folder / SUMS_FILE).read_text(encoding="utf-8"))
        present = {p.name for p in folder.iterdir() if p.name != SUMS_FILE}
    except (OSError, UnicodeDecodeError):
        return False
    if present != set(sums) or not all(f"{name}.parquet" in sums for name in schema.TABLES):
        return False
    return all(_sha256_file(folder / name) == digest for name, digest in sums.items())


def record_inputs(state_file: Path, releases_dir: Path, version: str, inputs: Mapping[str, Any]) -> None:
    """Input: the state file, a release and the inputs just found to rebuild its tables exactly.
    Output: the state file naming them, bound to the release's SHA256SUMS (replaced atomically)."""
    state = {"digest": inputs["digest"], "version": version,
             "sha256sums": _sha256_file(Path(releases_dir) / version / SUMS_FILE)}
    Path(state_file).parent.mkdir(parents=True, exist_ok=True)
    replace_if_changed(Path(state_file), json_bytes(state))


def _sha256_file(path: Path) -> str | None:
    try:
        return file_digest(path)[1]
    except OSError:
        return None


def _json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# --- indexes ---------------------------------------------------------------------


def write_indexes(releases_dir: Path) -> None:
    """Input: a releases folder, with its lock held. Output: catalog.json listing every release folder,
    then latest.json naming the newest; each replaced atomically and only if its content changes."""
    versions = list_releases(releases_dir)
    if not versions:
        return
    catalog = {"releases": [catalog_entry(releases_dir, version) for version in versions]}
    replace_if_changed(releases_dir / CATALOG_FILE, json_bytes(catalog))
    write_releases_page(releases_dir, catalog)  # index.html; see "landing pages" below
    replace_if_changed(releases_dir / LATEST_FILE, json_bytes({"version": versions[-1], "path": versions[-1]}))


def catalog_entry(releases_dir: Path, version: str) -> dict[str, Any]:
    """Input: a release name. Output: its catalog entry: version, created (UTC date), path, rows per table."""
    folder = releases_dir / version
    year, month, day = version_key(version)[:3]
    return {
        "version": version,
        "created": datetime.date(year, month, day).isoformat(),
        "path": version,
        "rows": {name: pq.read_metadata(folder / f"{name}.parquet").num_rows
                 for name in schema.TABLES if (folder / f"{name}.parquet").exists()},
    }


def replace_if_changed(path: Path, data: bytes) -> None:
    """Input: a path and its wanted bytes. Output: the file holding them, rewritten only if it differed."""
    if path.is_file() and path.read_bytes() == data:
        return
    write_atomically(path, data)


# --- landing pages (armsledger.site) ---------------------------------------------------


def release_page(folder: Path, version: str, tables: Mapping[str, pa.Table], previous: str | None,
                 diffs: Mapping[str, TableDiff], facts: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Input: a release folder with every file but the page and SHA256SUMS, the tables its Parquet files
    hold, and the `bytes` and `hash` of its files (write_durably). Output: the bytes of its `index.html`."""
    from armsledger import site

    return site.release_page_bytes(version, folder, previous=previous, diffs=diffs, tables=tables, file_facts=facts)


def write_releases_page(releases_dir: Path, catalog: Mapping[str, Any]) -> None:
    """Input: a releases folder and its catalog. Output: `releases_dir/index.html` listing every release."""
    from armsledger import site

    replace_if_changed(releases_dir / PAGE_FILE, site.releases_index_bytes(releases_dir, catalog))
