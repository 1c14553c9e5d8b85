"""Process-wide defaults for Prefect, decided in one place.

Prefect reads its settings from the environment when it is first imported, so
`configure_environment` must run before that: the `armsledger` CLI calls it
first thing, and importing the `flows` package calls it too. It only fills in
what the environment leaves unset, so an explicit `PREFECT_API_URL`,
`PREFECT_HOME` or `PREFECT_LOCAL_STORAGE_PATH` always wins.

- `DO_NOT_TRACK=1`, `PREFECT_SERVER_ANALYTICS_ENABLED=false`: no telemetry.
- `PREFECT_HOME=<project>/.prefect`: the temporary server's SQLite database and
  Prefect's profiles stay inside the (git-ignored) project folder.
- `PREFECT_LOCAL_STORAGE_PATH=<processed>/cache/prefect`: persisted task results
  (the extraction cache) live beside the releases, never in `raw/`, never in git.
- `PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90`: the temporary server
  takes 4 s on an idle machine but can take far longer on a busy one.
- `MIMALLOC_PURGE_DELAY=0`: pyarrow's allocator (mimalloc) gives freed pages
  back to the system at once rather than after a delay. Building the tables
  frees and allocates Arrow buffers in turn (sorting, resolving citations),
  and the held pages added about 75 MiB to a 20,000-document run's peak.
  mimalloc reads it when pyarrow is first imported, so the CLI imports
  pyarrow only after this has run.

`collector_paused` holds Python's cycle collector off for a block that makes
many objects and little garbage. `limit_malloc_arenas` caps glibc's malloc
arenas for the process (unless MALLOC_ARENA_MAX is set), `release_free_heap`
hands the heap's free pages back to the system, and `keep_heap_between_batches`
undoes an environment that has glibc hand them back at every free: see their
docstrings.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STORAGE_SUBDIR = "prefect"
# glibc's mallopt parameter numbers (malloc.h: M_ARENA_MAX, M_TRIM_THRESHOLD, M_MMAP_THRESHOLD).
_M_ARENA_MAX = -8
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MALLOC_ARENAS = 2
# What a process that parses keeps of glibc's heap between batches (see keep_heap_between_batches).
HEAP_TRIM_THRESHOLD = 64 * 2**20
HEAP_MMAP_THRESHOLD = 4 * 2**20

_FIXED_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "MIMALLOC_PURGE_DELAY": "0",
}


def result_storage_path(processed_dir: Path) -> Path:
    """Where Prefect persists task results for a processed/ folder."""
    return Path(processed_dir).resolve() / "cache" / STORAGE_SUBDIR


def prefect_imported() -> bool:
    """True once Prefect has read its settings: environment changes no longer reach it."""
    return "prefect" in sys.modules


def configure_environment(processed_dir: Path | None = None) -> dict[str, str]:
    """Fill in the Prefect environment defaults above; return the variables it set.

    `processed_dir` chooses the result storage; without it, the project's
    processed/ folder (when the project folder can be found).
    """
    applied: dict[str, str] = {}

    def default(name: str, value: str) -> None:
        if not os.environ.get(name):
            os.environ[name] = value
            applied[name] = value

    for name, value in _FIXED_DEFAULTS.items():
        default(name, value)
    from armsledger.config import _project_root, load_settings

    try:
        root = _project_root()
    except RuntimeError:
        root = None  # an installed package without a checkout: Prefect's own ~/.prefect
    if root is not None:
        default("PREFECT_HOME", str(root / ".prefect"))
    if processed_dir is None:
        try:
            processed_dir = load_settings().processed_dir
        except RuntimeError:
            processed_dir = None
    if processed_dir is not None:
        default("PREFECT_LOCAL_STORAGE_PATH", str(result_storage_path(processed_dir)))
    return applied


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the block runs, back on (as it was) after.

    For blocks that make millions of objects that stay alive: each collection their allocations set off
    walks them all again and finds nothing to free.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Caps glibc's malloc arenas for this process; True when the cap was set.

    Prefect runs tasks on a pool of threads, and glibc gives each thread that
    allocates heavily an arena of its own (up to 8 per core), which it keeps:
    a 2,000-document run peaked at 981 MiB with the default and 829 MiB with
    two arenas. An explicit MALLOC_ARENA_MAX in the environment wins (glibc has
    read it already); other C libraries are left alone.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _glibc_function("mallopt")
    return bool(mallopt and mallopt(_M_ARENA_MAX, arenas))


def release_free_heap() -> bool:
    """Gives the free pages of glibc's heap back to the system (malloc_trim); True when it could.

    glibc returns memory to the system only from the top of its heap, so
    whatever a stage freed below a block still in use stays counted in the
    process's memory until something reuses it. After spaCy had parsed 5,000
    documents and its model was let go of, the process held 389 MiB; once
    trimmed, 230 MiB. Call it where a stage has just let go of what it built.
    """
    malloc_trim = _glibc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def keep_heap_between_batches() -> bool:
    """Lets glibc keep freed memory for the next batch of texts when the environment told it not to;
    True when the thresholds were set.

    spaCy allocates and frees arrays of a few hundred KiB for every batch it
    parses. Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536,
    which also fixes glibc's mmap threshold at 128 KiB: every such array is
    then mapped, faulted in page by page and unmapped again. Parsing 400
    documents took 23.0 s that way, with 1.6 million page faults, against
    19.7 s and 0.26 million once the thresholds are HEAP_TRIM_THRESHOLD and
    HEAP_MMAP_THRESHOLD. A process without such a setting keeps glibc's own
    adaptive thresholds. The memory still goes back after each batch, through
    release_free_heap.
    """
    value = os.environ.get("MALLOC_TRIM_THRESHOLD_", "").strip()
    if not value.isdigit() or int(value) >= HEAP_TRIM_THRESHOLD:
        return False
    mallopt = _glibc_function("mallopt")
    return bool(mallopt and mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))


def _glibc_function(name: str):
    """The C library's function `name` when the process runs on glibc (None on musl, macOS, Windows)."""
    libc = _c_library()
    try:
        return None if libc is None else getattr(libc, name)
    except AttributeError:  # musl and other libcs have neither mallopt nor malloc_trim
        return None


@functools.cache
def _c_library() -> ctypes.CDLL | None:
    """The process's C library on Linux, looked up once: release_free_heap runs after every parse batch."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    if not library:
        return None
    try:
        return ctypes.CDLL(library)
    except OSError:
        return None
