"""Reading raw/: which files are documents, their text, and what their sidecars say.

`Document.text` is the text that every offset in the dataset indexes (mentions,
citations). It is the file decoded, reduced to its main text for HTML, with
line breaks as "\\n" (CRLF, lone CR, form feed, vertical tab and NEL all become
one "\\n", as Python's text mode does for CRLF and CR) and with the remaining
C0/C1 control characters removed: they carry no words, and a tokenizer or a CSV
reader downstream should never see them. Tabs, zero-width characters and every
other character are kept as they are: they are text.

A file that cannot be used becomes a `Rejection` with its reason; a problem
that costs only part of a file (a sidecar field, replaced bytes) becomes an
`IngestWarning`. `ingest` never raises for a bad file.
"""
from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import operator
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import charset_normalizer
import pycountry
import trafilatura
import yaml

from armsledger import schema
from armsledger.config import Settings
from armsledger.ids import sha256_hex, stable_id

if TYPE_CHECKING:
    from armsledger.ingest_cache import IngestCache

SIDECAR_SUFFIX = ".meta.yaml"
SIDECAR_KEYS = ("title", "publisher", "author", "published", "url", "license", "language")
HTML_EXTENSIONS = (".html", ".htm")

# A sidecar is a few lines; anything larger is not one, and PyYAML's pure-Python
# loader would take minutes on a multi-megabyte file.
_MAX_SIDECAR_BYTES = 64 * 1024

# Checked before the NUL test: these formats can start without any NUL byte.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"PK\x03\x04", "ZIP archive (or DOCX, XLSX, ODT, EPUB)"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"%PDF-", "PDF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Microsoft Office document"),
    (b"\x7fELF", "ELF executable"),
)

# UTF-32 before UTF-16: the UTF-32-LE mark begins with the UTF-16-LE one.
_BYTE_ORDER_MARKS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Without a byte-order mark, UTF-16/32 text has NUL bytes and is refused as
# binary before detection; a detector "finding" it in NUL-free bytes is noise.
_NOT_DETECTED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le"]

# Above this share of non-ASCII bytes a legacy file is not Western text with a
# few accents (French has about 3 %), so Windows-1252 is not presumed.
_WESTERN_MAX_HIGH_BYTES = 0.25

_LINE_BREAKS = re.compile("\r\n?|[\v\f\x85]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")


@dataclass(frozen=True)
class Rejection:
    """A file under raw/ that was not read, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestWarning:
    """Something ignored or repaired in a file that was otherwise read (or in a stray file)."""

    path: str
    reason: str


class RejectedFile(Exception):
    """The file at `path` (relative to raw/) cannot be a document."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class PartialDate:
    """A date known to a day, a month or a year; `date` is the first day of the period."""

    date: dt.date
    precision: str


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: str
    sha256: str
    # None once IngestResult.take_texts has handed it over.
    text: str | None
    title: str | None
    publisher: str | None
    author: str | None
    url: str | None
    license: str | None
    language: str | None
    published: dt.date | None
    published_precision: str | None
    n_chars: int
    n_words: int

    def __repr__(self) -> str:
        # The text can be megabytes long; a repr is for reading.
        return f"Document(doc_id={self.doc_id!r}, path={self.path!r}, n_chars={self.n_chars})"

    def __reduce__(self) -> tuple:
        # The text is pickled as UTF-8 bytes made here. Pickling the str itself makes CPython keep a UTF-8
        # copy inside every non-ASCII str it writes, for the str's life: after the ingest cache was saved,
        # the run held each text twice (34 MiB more at 20,000 documents, to the end of the run).
        values = list(_document_values(self))
        if self.text is not None:
            values[_TEXT_FIELD] = self.text.encode("utf-8", "surrogatepass")
        return _unpickle_document, tuple(values)

    def without_text(self) -> Document:
        """The same document, its text not held (None)."""
        values = list(_document_values(self))
        values[_TEXT_FIELD] = None
        return Document(*values)

    def row(self) -> dict[str, Any]:
        """The `documents` table row: the contract's columns, in its order."""
        return {name: getattr(self, name) for name in schema.table("documents").columns}


_TEXT_FIELD = [f.name for f in fields(Document)].index("text")
_document_values = operator.attrgetter(*(f.name for f in fields(Document)))


def _unpickle_document(*values: Any) -> Document:
    """Document.__reduce__'s other half: the text comes as UTF-8 bytes."""
    values = list(values)
    if values[_TEXT_FIELD] is not None:
        values[_TEXT_FIELD] = values[_TEXT_FIELD].decode("utf-8", "surrogatepass")
    return Document(*values)


@dataclass(frozen=True)
class IngestResult:
    documents: list[Document]
    rejected: list[Rejection]
    warnings: list[IngestWarning]
    # folder_snapshot of raw/, taken before any file was read.
    snapshot: str | None = None

    def take_texts(self) -> dict[str, str]:
        """Hands over the documents' texts (doc_id -> text): each document of `documents` is replaced by one
        without its text, so that the texts go as soon as the caller lets go of them.

        For the quality gate, the texts' last reader: from there on a run needs only the documents'
        metadata, and at 20,000 documents the texts take 66 MiB. Raises TextsTakenError when they were
        taken before.
        """
        if any(d.text is None for d in self.documents):
            raise TextsTakenError("the documents' texts were handed over already (IngestResult.take_texts)")
        texts = {d.doc_id: d.text for d in self.documents}
        self.documents[:] = [d.without_text() for d in self.documents]
        return texts


class TextsTakenError(RuntimeError):
    """A document's text was asked for after IngestResult.take_texts had handed it over."""


Warn = Callable[[IngestWarning], None]


def discover(raw_dir: Path, extensions: Iterable[str]) -> list[Path]:
    """Every document file under raw_dir, sorted by relative path (code-point order)."""
    wanted = {ext.lower() for ext in extensions}
    return [raw_dir / rel for rel in _document_names(_visible_files(raw_dir), wanted)]


def _document_names(files: Iterable[str], extensions: set[str]) -> Iterator[str]:
    """The relative paths among `files` (a _visible_files listing) that name documents."""
    return (rel for rel in files if _is_document_name(rel, extensions))


def _visible_files(raw_dir: Path) -> list[str]:
    """Relative posix paths of every non-directory entry, hidden ones left out.

    Symlinked folders are not entered (no loops, nothing outside raw/);
    symlinked and broken-symlinked files are listed, so reading can report them.
    """
    if not raw_dir.is_dir():
        # An empty result here would publish an empty dataset: a wrong path must fail.
        raise FileNotFoundError(f"raw folder does not exist or is not a folder: {raw_dir}")
    found: list[str] = []
    # Joined as strings: with a Path per file, ingest of 5,000 cached documents took 0.72 s, 0.33 s so.
    for folder, subfolders, files in os.walk(raw_dir, followlinks=False):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        base = Path(folder).relative_to(raw_dir).as_posix()
        prefix = "" if base == "." else base + "/"
        found.extend(prefix + name for name in files if not name.startswith("."))
    return sorted(found)


def folder_snapshot(raw_dir: Path, files: Sequence[str] | None = None) -> str:
    """A digest of what raw_dir holds as the file system describes it, without opening a file: every
    visible file's relative path, size, modification time, inode and mode (os.lstat).

    Adding, removing, renaming or rewriting a file changes it. Equal snapshots
    do not prove equal contents (a file rewritten in place within one tick of
    the clock keeps its time, a symlink's target is not looked at), so a
    snapshot may save work, never decide what the tables are: see
    armsledger.pipeline.raw_changed_since_latest. `files`: the folder's
    _visible_files, when the caller has listed them already.
    """
    digest = hashlib.sha256()
    for rel in _visible_files(raw_dir) if files is None else files:
        try:
            info = os.lstat(raw_dir / rel)
            entry = f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\0{info.st_mode}\n"
        except OSError as exc:  # gone since the listing, or unreadable: that too is a state of the folder
            entry = f"{rel}\0{type(exc).__name__}\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _is_document_name(rel: str, extensions: set[str]) -> bool:
    return not rel.endswith(SIDECAR_SUFFIX) and _suffix(rel).lower() in extensions


def _suffix(rel: str) -> str:
    """PurePosixPath(rel).suffix, without making a path object (ingest asks it of every file, several times)."""
    name = rel.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _sidecar_stem(rel: str) -> str:
    return rel[: -len(SIDECAR_SUFFIX)]


def _document_stem(rel: str) -> str:
    return rel[: len(rel) - len(_suffix(rel))]


class RawFolder:
    """raw/ and where its files really lie.

    A file must lie inside raw/ once symlinks are followed. Resolving every
    path costs a system call per folder level and file (a third of ingest's
    time at 5,000 documents); here raw/ and each folder are resolved once, and
    a file on its own only when it is a symlink.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.real = path.resolve()
        self._real_folders: dict[Path, Path] = {}

    def real_path(self, path: Path) -> Path:
        """Where `path` leads (OSError or RuntimeError when a symlink on the way cannot be followed)."""
        if path.is_symlink():
            return path.resolve()
        folder = self._real_folders.get(path.parent)
        if folder is None:
            folder = self._real_folders[path.parent] = path.parent.resolve()
        return folder / path.name

    def relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()


def read_document(
    path: Path, raw_dir: Path, settings: Settings, *, on_warning: Warn | None = None, folder: RawFolder | None = None
) -> Document:
    """The document at `path`, or RejectedFile with the reason it cannot be one.

    Warnings (ignored sidecar fields, replaced bytes, a legacy encoding) go to
    `on_warning`; without it they are dropped. `folder`: raw_dir's RawFolder,
    when the caller reads many documents from it.
    """
    warn: Warn = on_warning or (lambda _warning: None)
    folder = folder or RawFolder(raw_dir)
    rel = folder.relative(path)
    _check_name(rel)
    _check_inside(path, folder, rel)
    data = _read_bytes(path, rel, settings.max_file_bytes)
    decoded = _decode(data, rel, warn)
    page: dict[str, Any] = {}
    if path.suffix.lower() in HTML_EXTENSIONS:
        html, decoded = decoded, _html_main_text(decoded, rel)
        page = _page_metadata(html, rel, warn)
    text = normalise_text(decoded)
    _check_text(text, rel, settings.max_text_chars)
    fields = {**page, **_sidecar_fields(path, folder, warn)}
    published: PartialDate | None = fields.get("published")
    return Document(
        doc_id=document_id(text),
        path=rel,
        sha256=sha256_hex(data),
        text=text,
        title=fields.get("title"),
        publisher=fields.get("publisher"),
        author=fields.get("author"),
        url=fields.get("url"),
        license=fields.get("license"),
        language=fields.get("language"),
        published=published.date if published else None,
        published_precision=published.precision if published else None,
        n_chars=len(text),
        n_words=len(text.split()),
    )


def document_id(text: str) -> str:
    """Derived from the text alone: a renamed or moved file keeps its id."""
    return stable_id("doc", sha256_hex(text.encode("utf-8")))


def _printable(rel: str) -> str:
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in rel)


def _check_name(rel: str) -> None:
    """Names become the `path` column and lines in reports: they must be clean UTF-8 text."""
    for ch in rel:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise RejectedFile(_printable(rel), "file name is not valid UTF-8")
        if category == "Cc":
            raise RejectedFile(
                _printable(rel), f"file name contains a control character (U+{ord(ch):04X})"
            )


def _check_inside(path: Path, folder: RawFolder, rel: str) -> None:
    try:
        target = folder.real_path(path)
    except (OSError, RuntimeError) as exc:
        raise RejectedFile(rel, f"symlink cannot be resolved ({exc})") from exc
    if not target.is_relative_to(folder.real):
        raise RejectedFile(rel, f"symlink resolves outside raw/ (to {target})")


def _read_bytes(path: Path, rel: str, limit: int) -> bytes:
    """The file's bytes; its size is checked with stat first, so a huge file is never read."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise RejectedFile(rel, "not a regular file (a folder, pipe or device)")
        if info.st_size > limit:
            raise RejectedFile(
                rel, f"file too large: {info.st_size:,} bytes, limit {limit:,} (max_file_bytes)"
            )
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise RejectedFile(
            rel, "file not found when read (removed after discovery, or a broken symlink)"
        ) from exc
    except OSError as exc:
        raise RejectedFile(
            rel, f"file could not be read: {type(exc).__name__}: {exc.strerror or exc}"
        ) from exc
    if len(data) > limit:
        raise RejectedFile(rel, f"file grew beyond {limit:,} bytes while being read (max_file_bytes)")
    return data


def _decode(data: bytes, rel: str, warn: Warn) -> str:
    if not data:
        raise RejectedFile(rel, "empty file (0 bytes)")
    for mark, codec in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return _decode_marked(data, codec, rel)
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise RejectedFile(rel, f"binary file: starts with the signature of a {kind}")
    if b"\x00" in data:
        raise RejectedFile(rel, f"binary file: NUL byte at offset {data.index(0)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    if _mostly_utf8(data):
        # One damaged byte should not cost a whole article. U+FFFD is one
        # character, so offsets into the kept text stay exact, and it marks
        # the spot for anyone reading the text.
        text = data.decode("utf-8", errors="replace")
        warn(IngestWarning(rel, f"invalid UTF-8 bytes replaced with U+FFFD (first at byte {first_bad})"))
        return text
    return _decode_legacy(data, rel, warn)


def _decode_marked(data: bytes, codec: str, rel: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise RejectedFile(
            rel, f"undecodable: has a {codec} byte-order mark but invalid {codec} at byte {exc.start}"
        ) from exc


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 with a few bad bytes, rather than a legacy single-byte encoding.

    Legacy text almost never forms valid multi-byte UTF-8 sequences by chance,
    so at least as many valid non-ASCII characters as invalid bytes says UTF-8.
    """
    kept = data.decode("utf-8", errors="ignore")
    invalid_bytes = len(data) - len(kept.encode("utf-8"))
    valid_non_ascii = len(kept) - len(kept.encode("ascii", errors="ignore"))
    return valid_non_ascii > 0 and valid_non_ascii >= invalid_bytes


def _decode_legacy(data: bytes, rel: str, warn: Warn) -> str:
    """Windows-1252 for Western text, otherwise what charset-normalizer finds.

    On a short text no detector can tell the single-byte Latin code pages
    apart (charset-normalizer reads French Latin-1 as cp1250, "Déjà" as
    "Déjŕ"). Mostly-ASCII legacy files in an English-language corpus are
    Windows-1252 or Latin-1, which agree on every printable character, so that
    is presumed when the bytes fit it; Cyrillic, Greek or CJK files have mostly
    high bytes and go to the detector.
    """
    if _high_byte_share(data) <= _WESTERN_MAX_HIGH_BYTES:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            pass
        else:
            warn(IngestWarning(rel, "not UTF-8: decoded as Windows-1252"))
            return text
    match = charset_normalizer.from_bytes(data, cp_exclusion=_NOT_DETECTED).best()
    if match is None:
        raise RejectedFile(rel, "undecodable: not UTF-8, and no text encoding fits its bytes")
    warn(IngestWarning(rel, f"not UTF-8: decoded as {match.encoding} (detected)"))
    return str(match)


def _high_byte_share(data: bytes) -> float:
    """Share of non-ASCII bytes among the bytes that are not whitespace."""
    visible = len(data) - sum(data.count(space) for space in (b" ", b"\t", b"\r", b"\n"))
    high = len(data.translate(None, bytes(range(128))))
    return high / max(visible, 1)


def normalise_text(text: str) -> str:
    """Line breaks as "\\n", other control characters removed (see the module docstring)."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))


def _check_text(text: str, rel: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise RejectedFile(
            rel, f"text too long: {len(text):,} characters, limit {max_chars:,} (max_text_chars)"
        )
    if _is_blank(text):
        raise RejectedFile(rel, "empty: no text other than whitespace")


def _is_blank(text: str) -> bool:
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text.strip())


def _html_main_text(html: str, rel: str) -> str:
    try:
        # favor_recall: a page with one short paragraph is still a document.
        text = trafilatura.extract(
            html, include_comments=False, favor_recall=True, include_links=False
        )
    except Exception as exc:  # noqa: BLE001 - a parser on hostile input (RecursionError, lxml errors) must cost one file only
        raise RejectedFile(rel, f"HTML could not be parsed: {type(exc).__name__}: {exc}") from exc
    if not text or not text.strip():
        raise RejectedFile(
            rel, "HTML has no main text (only scripts, styles or markup, or too malformed to parse)"
        )
    return text


def _page_metadata(html: str, rel: str, warn: Warn) -> dict[str, Any]:
    """Title, author, publisher and date as the page declares them."""
    try:
        meta = trafilatura.extract_metadata(html)
    except Exception as exc:  # noqa: BLE001 - metadata is optional, the text may still be good
        warn(IngestWarning(rel, f"page metadata ignored: {type(exc).__name__}: {exc}"))
        return {}
    if meta is None:
        return {}
    found: dict[str, Any] = {
        "title": _clean_string(meta.title),
        "author": _clean_string(meta.author),
        "publisher": _clean_string(meta.sitename),
    }
    if meta.date:
        try:
            found["published"] = parse_published(meta.date)
        except ValueError as exc:
            warn(IngestWarning(rel, f"page date ignored: {exc}"))
    return {key: value for key, value in found.items() if value is not None}


# libyaml's parser when PyYAML was built with it: the pure-Python one spends about 1 ms a sidecar, most of
# the time of reading a raw/ folder of short texts.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SidecarLoader(_SafeLoader):
    """Safe loading in which plain scalars stay text (null aside).

    YAML 1.1 would read `language: no` as false, `title: 1984` as a number,
    and `published: 2024-02-30` as an error that loses the whole file; each
    field is parsed by its own rule instead, so one bad value costs one field.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def sidecar_path(document: Path) -> Path:
    return document.with_name(document.stem + SIDECAR_SUFFIX)


def _sidecar_fields(document: Path, folder: RawFolder, warn: Warn) -> dict[str, Any]:
    """The sidecar's valid fields; a key given as null is kept as None.

    A null says "looked at, not known", so it also overrides what an HTML page
    claims about itself.
    """
    path = sidecar_path(document)
    if not os.path.lexists(path):
        return {}
    rel = folder.relative(path)
    loaded = _load_sidecar(path, folder, rel, warn)
    fields: dict[str, Any] = {}
    unknown = sorted(str(key) for key in loaded if key not in SIDECAR_KEYS)
    if unknown:
        warn(IngestWarning(rel, f"unknown sidecar keys ignored: {', '.join(unknown)}"))
    for key in SIDECAR_KEYS:
        if key not in loaded:
            continue
        try:
            fields[key] = _sidecar_value(key, loaded[key])
        except ValueError as exc:
            warn(IngestWarning(rel, f"sidecar field {key!r} ignored: {exc}"))
    return fields


def _load_sidecar(path: Path, folder: RawFolder, rel: str, warn: Warn) -> dict[Any, Any]:
    """The sidecar as a mapping; {} (with a warning) when it is not a usable one."""
    try:
        if not folder.real_path(path).is_relative_to(folder.real):
            warn(IngestWarning(rel, "sidecar ignored: symlink resolves outside raw/"))
            return {}
        if path.stat().st_size > _MAX_SIDECAR_BYTES:
            warn(IngestWarning(rel, f"sidecar ignored: larger than {_MAX_SIDECAR_BYTES:,} bytes"))
            return {}
        raw = path.read_bytes()
    except (OSError, RuntimeError) as exc:
        warn(IngestWarning(rel, f"sidecar ignored: cannot be read ({type(exc).__name__}: {exc})"))
        return {}
    try:
        loaded = yaml.load(raw.decode("utf-8-sig"), Loader=_SidecarLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError:
        warn(IngestWarning(rel, "sidecar ignored: not UTF-8"))
        return {}
    except (yaml.YAMLError, RecursionError) as exc:
        problem = " ".join(str(exc).split())
        warn(IngestWarning(rel, f"sidecar ignored: not valid YAML ({problem})"))
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        warn(IngestWarning(rel, f"sidecar ignored: not a mapping of keys (it is a {type(loaded).__name__})"))
        return {}
    return loaded


def _sidecar_value(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key == "published":
        return parse_published(value)
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    if key == "language":
        return _language_code(value)
    return _clean_string(value)


def _clean_string(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def _language_code(value: str) -> str | None:
    """ISO 639-1, from a two- or three-letter code ("en", "EN", "eng").

    Names are not looked up: pycountry's fuzzy lookup reads "en" as the En language.
    """
    code = value.strip().lower()
    if not code:
        return None
    language = pycountry.languages.get(alpha_2=code) or pycountry.languages.get(alpha_3=code)
    alpha_2 = getattr(language, "alpha_2", None)
    if alpha_2 is None:
        raise ValueError(f"{value!r} is not a language with an ISO 639-1 code")
    return alpha_2


_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def parse_published(value: Any) -> PartialDate:
    """A publication date: `2024-02-03`, `2024-02` or `2024`, or a date/datetime object.

    ISO forms are parsed exactly; anything else is refused rather than guessed
    ("02/03/2024" has two readings).
    """
    if isinstance(value, dt.datetime):
        return PartialDate(value.date(), "day")
    if isinstance(value, dt.date):
        return PartialDate(value, "day")
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:04d}"
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO date, got {type(value).__name__}")
    text = value.strip()
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        return PartialDate(_iso_datetime(text).date(), "day")
    year, month, day = match.groups()
    try:
        if day is not None:
            return PartialDate(dt.date(int(year), int(month), int(day)), "day")
        if month is not None:
            return PartialDate(dt.date(int(year), int(month), 1), "month")
        return PartialDate(dt.date(int(year), 1, 1), "year")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a possible date ({exc})") from exc


def _iso_datetime(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD, YYYY-MM or YYYY)") from exc


@dataclass(frozen=True)
class FileRead:
    """What reading one document file gave: the document or why it was rejected, and the warnings."""

    document: Document | None
    rejection: Rejection | None
    warnings: tuple[IngestWarning, ...] = ()


def read_file(path: Path, raw_dir: Path, settings: Settings, folder: RawFolder | None = None) -> FileRead:
    """read_document's outcome, a rejection included, with the warnings it gave."""
    warnings: list[IngestWarning] = []
    try:
        return FileRead(read_document(path, raw_dir, settings, on_warning=warnings.append, folder=folder), None,
                        tuple(warnings))
    except RejectedFile as exc:
        return FileRead(None, Rejection(exc.path, exc.reason), tuple(warnings))


def ingest(raw_dir: Path, settings: Settings, cache: IngestCache | None = None) -> IngestResult:
    """Every usable document under raw_dir; every other file reported, none raised.

    `cache` (armsledger.ingest_cache): what an earlier run read from the files
    that are unchanged since, used instead of reading them again.
    """
    files = _visible_files(raw_dir)
    snapshot = folder_snapshot(raw_dir, files)
    extensions = {ext.lower() for ext in settings.extensions}
    warnings: list[IngestWarning] = []
    rejected: list[Rejection] = []
    read: list[Document] = []
    folder = RawFolder(raw_dir)
    for rel in _document_names(files, extensions):
        path = raw_dir / rel
        if cache is None:
            outcome = read_file(path, raw_dir, settings, folder)
        else:
            outcome = cache.read(path, rel, lambda: read_file(path, raw_dir, settings, folder))
        warnings.extend(outcome.warnings)
        if outcome.document is not None:
            read.append(outcome.document)
        else:
            rejected.append(outcome.rejection)
    documents, duplicates = _drop_duplicates(read)
    warnings.extend(_stray_files(files, extensions))
    return IngestResult(
        documents=documents,
        rejected=sorted(rejected + duplicates, key=lambda r: (r.path, r.reason)),
        warnings=sorted(warnings, key=lambda w: (w.path, w.reason)),
        snapshot=snapshot,
    )


def _drop_duplicates(read: Sequence[Document]) -> tuple[list[Document], list[Rejection]]:
    """One document per text: the first path in sorted order wins, whatever the reading order."""
    ordered = sorted(read, key=lambda doc: doc.path)
    kept: dict[str, Document] = {}
    duplicates: list[Rejection] = []
    for doc in ordered:
        first = kept.setdefault(doc.doc_id, doc)
        if first is not doc:
            duplicates.append(
                Rejection(doc.path, f"duplicate: same text as {first.path} ({doc.doc_id})")
            )
    return list(kept.values()), duplicates


def _stray_files(files: Sequence[str], extensions: set[str]) -> list[IngestWarning]:
    """Sidecars without a document, and files that are neither documents nor sidecars."""
    stems = {_document_stem(rel) for rel in files if _is_document_name(rel, extensions)}
    strays: list[IngestWarning] = []
    for rel in files:
        if rel.endswith(SIDECAR_SUFFIX):
            if _sidecar_stem(rel) not in stems:
                strays.append(IngestWarning(_printable(rel), "sidecar without a document of the same stem"))
        elif not _is_document_name(rel, extensions):
            strays.append(
                IngestWarning(
                    _printable(rel),
                    f"not a document (documents are {', '.join(sorted(extensions))}); ignored",
                )
            )
    return strays
