"""What ingest read from each file of raw/, kept between runs in processed/cache/ingest/reads.pickle.

An entry is used only while the file system reports the document and its
sidecar exactly as they were when they were read: path, size, modification and
change times (nanoseconds), inode and mode, from lstat. The change time (ctime)
cannot be set by a program, unlike the modification time that tar, rsync and
`cp -p` restore, so a rewritten file is read again even when its size and
modification time are put back. A file changed within two seconds of its
reading is not recorded (it could change again within the same clock tick
unseen, git's "racily clean" entries), nor is a symlink or a file with a
symlinked sidecar, whose target can change without the link changing.

The whole cache is dropped when the package's code, the version of a library
that reads files (trafilatura, charset-normalizer, PyYAML, pycountry) or the
reading limits change, since any of them can change what a file reads as. A file that cannot be
read, or holds something else, is an empty cache: every file is then read.

Why not a digest of each file: hashing is reading. Reading 5,000 texts and
their sidecars (decoding, YAML, text normalisation) took 1.5 s of a run that
adds one document; through this cache (an lstat per file, one unpickling) 0.6 s.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
import tempfile
import time
from array import array
from collections.abc import Callable, Mapping
from pathlib import Path

from armsledger.ingest import FileRead, sidecar_path

FILE_NAME = "reads.pickle"
SUBDIR = "ingest"
# A file changed this recently when it was read may change again within the clock's tick, unseen.
RACY_NANOSECONDS = 2_000_000_000
FORMAT = 2
STATE_WIDTH = 10
_NO_SIDECAR = (-1,) * 5

# (size, mtime_ns, ctime_ns, inode, mode) of the document, and of its sidecar (None: it has none).
FileState = tuple[int, int, int, int, int]
ReadState = tuple[FileState, FileState | None]


def reader_digest(
    code_digest: str, libraries: Mapping[str, str | None], max_file_bytes: int, max_text_chars: int
) -> str:
    """Everything besides a file's own bytes that decides what it reads as: the package's code, the
    versions of the libraries that read files, and the reading limits."""
    given = {"format": FORMAT, "code": code_digest, "libraries": dict(libraries), "max_file_bytes": max_file_bytes,
             "max_text_chars": max_text_chars}
    return hashlib.sha256(json.dumps(given, sort_keys=True).encode("utf-8")).hexdigest()


def read_state(document: Path, sidecar: Path) -> ReadState | None:
    """The document's and its sidecar's lstat, or None when either is a symlink or cannot be looked at."""
    try:
        own = os.lstat(document)
        side = os.lstat(sidecar) if os.path.lexists(sidecar) else None
    except OSError:
        return None
    if not stat.S_ISREG(own.st_mode) or (side is not None and not stat.S_ISREG(side.st_mode)):
        return None
    return _file_state(own), (None if side is None else _file_state(side))


def _file_state(info: os.stat_result) -> FileState:
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_mode


class IngestCache:
    """Reads by relative path, as loaded from the last run; `record` collects this run's for `save`.

    Kept compact, because it is built and let go of while the documents it returns stay for the whole
    run: the file states in flat integer arrays rather than tuples, and on disk every text in one UTF-8
    blob, decoded straight into the documents. Small objects made among the documents and freed after
    ingest (tuples of states, a bytes object per text) left the heap's pages pinned: loading and saving
    the cache of 20,000 documents left the process at 253 MiB that way, 217-218 MiB this way (212 MiB
    reading every file without a cache; the heap trimmed each time).
    """

    def __init__(self, path: Path, digest: str, racy_nanoseconds: int = RACY_NANOSECONDS) -> None:
        self.path = Path(path)
        self.digest = digest
        self.racy_nanoseconds = racy_nanoseconds
        self._previous: dict[str, tuple[int, FileRead]] = {}  # rel -> (its row of _previous_states, read)
        self._previous_states = array("q")
        self._paths: list[str] = []
        self._states = array("q")
        self._reads: list[FileRead] = []
        self._recorded = 0  # reads made this run rather than taken from the previous one

    @classmethod
    def under(cls, cache_dir: Path, digest: str) -> IngestCache:
        """The cache inside a run's cache folder (Settings.cache_dir), loaded; empty when unusable."""
        path = Path(cache_dir) / SUBDIR / FILE_NAME
        cache = cls(path, digest)
        try:
            stored = pickle.loads(path.read_bytes())
            if stored["digest"] == digest:  # the digest covers FORMAT, the layout of `stored`
                cache._load(stored)
        except Exception:  # absent, damaged or from another version of the records: read every file
            return cls(path, digest)
        return cache

    def _load(self, stored: dict) -> None:
        texts = memoryview(stored["texts"])
        ends = array("q")
        ends.frombytes(stored["text_ends"])
        start = 0
        for read, end in zip(stored["reads"], ends):
            if read.document is not None:
                # Set on an object nothing else holds yet, as a frozen dataclass's own __init__ does.
                object.__setattr__(read.document, "text", str(texts[start:end], "utf-8", "surrogatepass"))
            start = end
        states = array("q")
        states.frombytes(stored["states"])
        if len(states) != STATE_WIDTH * len(stored["paths"]) or len(stored["reads"]) != len(stored["paths"]):
            raise ValueError("inconsistent ingest cache")
        self._previous = {rel: (row, read) for row, (rel, read) in enumerate(zip(stored["paths"], stored["reads"]))}
        self._previous_states = states

    def read(self, path: Path, rel: str, read_file: Callable[[], FileRead]) -> FileRead:
        """The recorded read of the document at `path` (`rel` under raw/) while it and its sidecar are
        unchanged; otherwise `read_file()`, recorded for the next run."""
        state = read_state(path, sidecar_path(path))  # before reading: a change while it is read shows next time
        outcome = self.lookup(rel, state)
        if outcome is None:
            outcome = read_file()
            self.record(rel, state, outcome)
        return outcome

    def lookup(self, rel: str, state: ReadState | None) -> FileRead | None:
        """The read recorded for `rel` when the file system still reports `state` for it."""
        entry = self._previous.get(rel) if state is not None else None
        if entry is None:
            return None
        row, read = entry
        if tuple(self._previous_states[row * STATE_WIDTH:(row + 1) * STATE_WIDTH]) != _flat(state):
            return None
        self._keep(rel, state, read)
        return read

    def record(self, rel: str, state: ReadState | None, read: FileRead) -> None:
        """Keeps this run's read of `rel` for the next run, unless the file changed too recently to trust."""
        if state is None:
            return
        changed = max(state[0][2], state[1][2] if state[1] is not None else 0)
        if time.time_ns() - changed < self.racy_nanoseconds:
            return
        self._recorded += 1
        self._keep(rel, state, read)

    def _keep(self, rel: str, state: ReadState, read: FileRead) -> None:
        self._paths.append(rel)
        self._states.extend(_flat(state))
        self._reads.append(read)

    def save(self) -> None:
        """Writes this run's entries (files no longer in raw/ are dropped) atomically; nothing when they are
        the previous run's (a run with nothing new rewrote 42 MiB at 20,000 documents)."""
        if not self._recorded and len(self._paths) == len(self._previous) and self.path.is_file():
            return
        texts = bytearray()
        ends = array("q")
        reads = []
        for read in self._reads:
            if read.document is not None:
                texts += read.document.text.encode("utf-8", "surrogatepass")
                read = FileRead(read.document.without_text(), read.rejection, read.warnings)
            ends.append(len(texts))
            reads.append(read)
        stored = {"digest": self.digest, "paths": self._paths, "states": self._states.tobytes(),
                  "reads": reads, "text_ends": ends.tobytes(), "texts": texts}
        data = pickle.dumps(stored, protocol=pickle.HIGHEST_PROTOCOL)
        del stored, reads, texts
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".reads-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _flat(state: ReadState) -> tuple[int, ...]:
    """A ReadState as STATE_WIDTH integers (-1 for the fields of an absent sidecar)."""
    own, side = state
    return own + (side if side is not None else _NO_SIDECAR)
