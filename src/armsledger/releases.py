"""Reading published releases: names, the latest pointer, checked tables and differences.

A releases folder (`processed/releases/`, or a static HTTP copy of it) holds one
folder per release named `YYYY.MM.DD` or `YYYY.MM.DD.N`, plus `latest.json` and
`catalog.json`. Every table is read only after its bytes have matched the
release's `SHA256SUMS`.

Types returned by `load` (one rule per Arrow type, so that extra columns of a
newer release read the same way):

- string -> pandas `str` dtype (missing values are NaN);
- int64 -> `int64` when the column is required, pandas nullable `Int64` when
  the contract allows nulls (even if this release has none);
- float64 -> `float64` (missing values are NaN);
- date32 -> `datetime64[ms]`, midnight, no time zone (missing values are NaT);
- list<string> -> Python lists of str (object dtype).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from armsledger import schema
from armsledger.config import load_settings

RELEASE_NAME = re.compile(r"^\d{4}\.\d{2}\.\d{2}(\.\d+)?$")
LATEST_FILE = "latest.json"
CATALOG_FILE = "catalog.json"
SUMS_FILE = "SHA256SUMS"
# Each release folder's landing page, and the releases folder's list of them (armsledger.site).
PAGE_FILE = "index.html"
# Temporary files and folders in a releases folder start with this; anything
# so named is debris of an interrupted write.
TEMP_PREFIX = ".tmp-"
PUBLIC_FILE_MODE = 0o644
PUBLIC_DIR_MODE = 0o755
HTTP_TIMEOUT_SECONDS = 60


class IntegrityError(Exception):
    """A file's bytes do not match the SHA-256 its release records."""


class InvalidReleaseNameError(ValueError):
    """A version that is not a release name (and might point outside the releases folder)."""


class ReleaseNotFoundError(LookupError):
    """No such release, or nothing published yet."""


# --- names -----------------------------------------------------------------


def check_release_name(version: str) -> str:
    """Input: a version string from a caller or a file. Output: the same string, if it is a release name.

    The name becomes part of a path or URL, so anything else (`..`, slashes) is refused.
    """
    if not isinstance(version, str) or not RELEASE_NAME.fullmatch(version):
        raise InvalidReleaseNameError(f"not a release name (YYYY.MM.DD or YYYY.MM.DD.N): {version!r}")
    return version


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a release name: 2024.02.27 < 2024.02.27.1 < 2024.02.27.2 < 2024.02.28."""
    return tuple(int(part) for part in check_release_name(version).split("."))


def check_table_name(table: str) -> str:
    """Input: a table name. Output: the same name, if the contract knows it."""
    if table not in schema.TABLES:
        raise ValueError(f"unknown table {table!r}; tables are {', '.join(schema.TABLES)}")
    return table


# --- local releases folder ---------------------------------------------------


def list_releases(releases_dir: Path) -> list[str]:
    """Input: a local releases folder. Output: its release names, oldest first.

    Read from the folders themselves rather than catalog.json, because a release
    folder is complete once it exists (it appears by an atomic rename).
    """
    releases_dir = Path(releases_dir)
    if not releases_dir.is_dir():
        return []
    names = [p.name for p in releases_dir.iterdir() if p.is_dir() and RELEASE_NAME.fullmatch(p.name)]
    return sorted(names, key=version_key)


def latest_version(releases_dir: Path) -> str | None:
    """Input: a local releases folder. Output: the release latest.json names, or None if there is none."""
    latest = Path(releases_dir) / LATEST_FILE
    if not latest.exists():
        return None
    return version_from_latest(latest.read_text(encoding="utf-8"), where=str(latest))


def version_from_latest(text: str, where: str) -> str:
    """Input: the text of latest.json. Output: the release name it points to, checked.

    latest.json may come from an untrusted host: both its version and its path
    must be the same plain release name.
    """
    try:
        pointer = json.loads(text)
        version = pointer["version"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidReleaseNameError(f"{where} does not name a release: {error}") from None
    check_release_name(version)
    path = pointer.get("path", version)
    if path != version:
        raise InvalidReleaseNameError(f"{where}: path {path!r} is not the release folder {version!r}")
    return version


def parse_sha256sums(text: str) -> dict[str, str]:
    """Input: the text of a SHA256SUMS file (`sha256sum` format). Output: file name -> hex digest."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        # sha256sum writes " " + "*" for binary mode and " " + " " for text mode.
        sums[name[1:]] = digest.lower()
    return sums


def read_release_table(release_dir: Path, table: str) -> pa.Table:
    """Input: a local release folder and a table name. Output: the table's Parquet as Arrow, hash-checked."""
    release_dir = Path(release_dir)
    sums = parse_sha256sums((release_dir / SUMS_FILE).read_text(encoding="utf-8"))
    name = f"{table}.parquet"
    data = (release_dir / name).read_bytes()
    check_sha256(data, sums.get(name), f"{release_dir.name}/{name}")
    return pq.read_table(pa.BufferReader(data))


def require_listed(expected: str | None, name: str) -> None:
    """Input: the digest a release records for a file, or None. Output: nothing, or IntegrityError."""
    if expected is None:
        raise IntegrityError(f"{name} is not listed in the release's {SUMS_FILE}")


def check_sha256(data: bytes, expected: str | None, name: str) -> None:
    """Input: bytes and the digest the release records for them. Output: nothing, or IntegrityError."""
    require_listed(expected, name)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise IntegrityError(f"{name}: SHA-256 is {actual}, the release's {SUMS_FILE} says {expected}")


# --- where a release is read from -------------------------------------------


class LocalReleases:
    """A releases folder on disk."""

    def __init__(self, releases_dir: Path) -> None:
        self.releases_dir = Path(releases_dir)

    def describe(self, relative: str) -> str:
        return str(self.releases_dir / relative)

    def read_text(self, relative: str) -> str:
        path = self.releases_dir / relative
        if not path.is_file():
            raise ReleaseNotFoundError(f"{path} does not exist")
        return path.read_text(encoding="utf-8")

    def read_verified(self, relative: str, sha256: str | None) -> bytes:
        require_listed(sha256, self.describe(relative))
        path = self.releases_dir / relative
        if not path.is_file():
            raise ReleaseNotFoundError(f"{path} does not exist")
        data = path.read_bytes()
        check_sha256(data, sha256, str(path))
        return data


class HttpReleases:
    """A static HTTP(S) copy of a releases folder, with table files cached on disk.

    latest.json, catalog.json and SHA256SUMS are fetched every time (they are
    what says which bytes are right); Parquet files are reused from the cache
    while their SHA-256 still matches.
    """

    def __init__(self, base_url: str, cache_dir: Path) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.cache_dir = Path(cache_dir)

    def describe(self, relative: str) -> str:
        return self.base_url + relative

    def read_text(self, relative: str) -> str:
        return self._download(relative).decode("utf-8")

    def read_verified(self, relative: str, sha256: str | None) -> bytes:
        require_listed(sha256, self.describe(relative))
        cached = self.cache_dir / relative
        if cached.is_file():
            data = cached.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
        data = self._download(relative)
        check_sha256(data, sha256, self.describe(relative))
        write_atomically(cached, data)
        return data

    def _download(self, relative: str) -> bytes:
        url = self.base_url + relative
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                raise ReleaseNotFoundError(f"{url} does not exist (HTTP 404)") from None
            raise


def write_atomically(path: Path, data: bytes) -> None:
    """Input: a path and bytes. Output: the file, which readers see whole or not at all.

    The temporary file starts with TEMP_PREFIX so that a publisher can sweep
    up what a killed run left behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        # mkstemp makes the file private; a release is public, and a web server may run as another user.
        os.fchmod(handle, PUBLIC_FILE_MODE)
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def file_digest(path: Path) -> tuple[int, str]:
    """Input: a file. Output: its size in bytes and its SHA-256 (hex), read a block at a time: a release's
    CSV can be larger than the rest of what a run holds."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    """Input: a folder. Output: its entries (new names, renames) flushed to disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/armsledger`, by default `~/.cache/armsledger`."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "armsledger"


def cache_dir_for(url: str, cache_root: Path) -> Path:
    """Input: a releases URL and the cache root. Output: the folder that caches that URL's files.

    `CACHE_ROOT/HOST[_PORT]/URL-PATH`, with `.` and `..` segments dropped so
    that a URL cannot place files outside the cache.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2].replace(":", "_")
    segments = [s for s in (host, *parts.path.split("/")) if s not in ("", ".", "..")]
    return Path(cache_root, *segments)


def open_releases(source: str | os.PathLike | None, cache_dir: Path | None) -> LocalReleases | HttpReleases:
    """Input: what the caller passed as `source`. Output: the releases folder it names.

    None is the project's processed folder; a local path may be `processed/` or
    `processed/releases/`; a URL must name a copy of `processed/releases/`.
    """
    if source is None:
        return LocalReleases(load_settings().releases_dir)
    text = os.fspath(source)
    scheme = urllib.parse.urlsplit(text).scheme.lower() if isinstance(text, str) else ""
    if scheme in ("http", "https"):
        return HttpReleases(text, cache_dir_for(text, cache_dir or default_cache_dir()))
    path = Path(text).expanduser()
    # Release folders are named by date, so a child called "releases" means this is processed/.
    if (path / "releases").is_dir():
        path = path / "releases"
    return LocalReleases(path)


# --- load ------------------------------------------------------------------


def load(
    table: str,
    version: str = "latest",
    source: str | os.PathLike | None = None,
    *,
    cache_dir: Path | None = None,
) -> pd.DataFrame:
    """Input: a table name, a release name or "latest", and where the releases are.
    Output: the table as a typed DataFrame (see the module docstring for the dtypes).

    The Parquet bytes are checked against the release's SHA256SUMS before they
    are parsed; a mismatch raises IntegrityError naming the file.
    """
    check_table_name(table)
    releases = open_releases(source, cache_dir)
    version = resolve_version(releases, version)
    sums = read_sums(releases, version)
    name = f"{table}.parquet"
    data = releases.read_verified(f"{version}/{name}", sums.get(name))
    return arrow_to_frame(pq.read_table(pa.BufferReader(data)))


def resolve_version(releases: LocalReleases | HttpReleases, version: str) -> str:
    """Input: "latest" or a release name. Output: a checked release name (not yet known to exist)."""
    if version == "latest":
        try:
            text = releases.read_text(LATEST_FILE)
        except ReleaseNotFoundError:
            raise ReleaseNotFoundError(f"nothing published: {releases.describe(LATEST_FILE)} does not exist") from None
        return version_from_latest(text, releases.describe(LATEST_FILE))
    return check_release_name(version)


def read_sums(releases: LocalReleases | HttpReleases, version: str) -> dict[str, str]:
    """Input: a releases source and a release name. Output: that release's SHA256SUMS as name -> digest."""
    try:
        text = releases.read_text(f"{version}/{SUMS_FILE}")
    except ReleaseNotFoundError:
        known = catalog_versions(releases)
        listing = f"; releases are {', '.join(known) or 'none'}" if known is not None else ""
        raise ReleaseNotFoundError(f"no release {version} at {releases.describe(version)}{listing}") from None
    return parse_sha256sums(text)


def catalog_versions(releases: LocalReleases | HttpReleases) -> list[str] | None:
    """Input: a releases source. Output: the release names its catalog.json lists, or None without one."""
    try:
        catalog = json.loads(releases.read_text(CATALOG_FILE))
    except ReleaseNotFoundError:
        return None
    # catalog.json may come from an untrusted host: its names are checked like any other.
    return [check_release_name(entry["version"]) for entry in catalog["releases"]]


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Input: a release table as Arrow. Output: a DataFrame with the dtypes the module docstring lists."""
    columns = {field.name: column_to_series(table.column(field.name), field) for field in table.schema}
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def column_to_series(column: pa.ChunkedArray, field: pa.Field) -> pd.Series:
    """Input: one Arrow column and its field. Output: the pandas column of the documented dtype."""
    if pa.types.is_list(field.type):
        return pd.Series(column.to_pylist(), dtype=object, name=field.name)
    if pa.types.is_integer(field.type) and field.nullable:
        return column.to_pandas(types_mapper={field.type: pd.Int64Dtype()}.get).rename(field.name)
    if pa.types.is_date(field.type):
        return column.to_pandas(date_as_object=False).rename(field.name)
    return column.to_pandas().rename(field.name)


# --- differences -------------------------------------------------------------


class KeyList(Sequence):
    """Primary keys in sorted order, held as an Arrow array: a first release "adds" every key of every
    table, and as Python strings they took more memory than the release's files."""

    def __init__(self, sorted_keys: pa.Array | pa.ChunkedArray) -> None:
        self._keys = sorted_keys.combine_chunks() if isinstance(sorted_keys, pa.ChunkedArray) else sorted_keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._keys[index].to_pylist()
        return self._keys[index].as_py()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._keys), 10_000):
            yield from self._keys.slice(start, 10_000).to_pylist()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (KeyList, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"KeyList({self[:5]}{'...' if len(self) > 5 else ''}, n={len(self)})"


@dataclass(frozen=True, eq=False)
class TableDiff:
    """Primary keys added, removed and changed (same key, different row) between two versions of a table,
    each in sorted order."""

    added: KeyList
    removed: KeyList
    changed: KeyList

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}


def diff_tables(old: pa.Table | None, new: pa.Table | None, primary_key: str) -> TableDiff:
    """Input: two versions of a table (None: absent) and its primary key. Output: their TableDiff.

    Rows are compared as whole records, so a column added or dropped between
    releases marks every row as changed. The comparison runs on Arrow columns:
    a row as a Python dict, for every row of both versions, took more memory
    than the rest of publishing.
    """
    old_keys, new_keys = _keys(old, primary_key), _keys(new, primary_key)
    added = pc.filter(new_keys, pc.invert(pc.is_in(new_keys, value_set=old_keys)))
    removed = pc.filter(old_keys, pc.invert(pc.is_in(old_keys, value_set=new_keys)))
    changed = pa.array([], pa.string())
    if old is not None and new is not None:
        common = pc.filter(new_keys, pc.is_in(new_keys, value_set=old_keys))
        if old.schema.equals(new.schema, check_metadata=False):
            differs = _rows_differ(old, _positions(old, primary_key, common), new, _positions(new, primary_key, common))
            if differs is not None:
                differs = differs.combine_chunks() if isinstance(differs, pa.ChunkedArray) else differs
                changed = pc.filter(common, differs)
        else:
            changed = common
    return TableDiff(added=KeyList(added), removed=KeyList(removed), changed=KeyList(changed))


def _keys(table: pa.Table | None, primary_key: str) -> pa.Array:
    """A table's primary keys, sorted (none for an absent table); a repeated key is an error."""
    if table is None:
        return pa.array([], pa.string())
    keys = table.column(primary_key).combine_chunks()
    keys = keys.take(pc.array_sort_indices(keys))
    # Sorted, a repeated key sits next to itself: no hash table of every key is needed to find it.
    repeated = pc.equal(keys.slice(1), keys.slice(0, max(len(keys) - 1, 0)))
    if pc.any(repeated).as_py():
        raise ValueError(f"duplicate primary key {primary_key}={keys[pc.index(repeated, True).as_py()].as_py()!r}")
    return keys


def _positions(table: pa.Table, primary_key: str, keys: pa.Array) -> pa.Array:
    """The row numbers of `table` whose key is in `keys` (sorted, unique), in key order."""
    positions = pc.indices_nonzero(pc.is_in(table.column(primary_key), value_set=keys))
    return positions.take(pc.sort_indices(table.column(primary_key).take(positions)))


def _rows_differ(before: pa.Table, before_rows: pa.Array, after: pa.Table, after_rows: pa.Array) -> pa.Array | None:
    """Per pair of rows (before_rows[i] of `before`, after_rows[i] of `after`, two tables of the same schema):
    whether any cell differs (a null and a value differ; two nulls do not). None when there are no columns.

    One column of each side is taken at a time: copies of whole rows, on top of both versions of the
    table, had taken a run that added one document to 20,000 a third above the full run's peak.
    """
    differs = None
    for name in after.column_names:
        a, b = before.column(name).take(before_rows), after.column(name).take(after_rows)
        if pa.types.is_list(a.type):
            # Lists compare by their items joined with a separator no text holds, and by their lengths.
            column_differs = pc.or_(
                _cells_differ(*(pc.binary_join(c, "\x1f") for c in (a, b))),
                _cells_differ(pc.list_value_length(a), pc.list_value_length(b)),
            )
        else:
            column_differs = _cells_differ(a, b)
        differs = column_differs if differs is None else pc.or_(differs, column_differs)
    return differs


def _cells_differ(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    unequal = pc.fill_null(pc.not_equal(a, b), False)
    return pc.or_(unequal, pc.not_equal(pc.is_null(a), pc.is_null(b)))


def diff_releases(releases_dir: Path, a: str, b: str) -> dict[str, dict[str, list[str]]]:
    """Input: a local releases folder and two release names. Output: per table, the keys added,
    removed and changed going from release a to release b."""
    folder_a = Path(releases_dir) / check_release_name(a)
    folder_b = Path(releases_dir) / check_release_name(b)
    for folder in (folder_a, folder_b):
        if not folder.is_dir():
            raise ReleaseNotFoundError(f"no release folder {folder}")
    return {
        name: diff_tables(
            read_release_table(folder_a, name) if (folder_a / f"{name}.parquet").exists() else None,
            read_release_table(folder_b, name) if (folder_b / f"{name}.parquet").exists() else None,
            schema.table(name).primary_key,
        ).as_dict()
        for name in schema.TABLES
    }
