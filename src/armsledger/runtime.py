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

`limit_malloc_arenas` caps glibc's malloc arenas for the process (unless
MALLOC_ARENA_MAX is set): see its docstring.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

STORAGE_SUBDIR = "prefect"
# glibc's mallopt parameter number for the arena limit (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2

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


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Caps glibc's malloc arenas for this process; True when the cap was set.

    Prefect runs tasks on a pool of threads, and glibc gives each thread that
    allocates heavily an arena of its own (up to 8 per core), which it keeps:
    a 2,000-document run peaked at 981 MiB with the default and 829 MiB with
    two arenas. An explicit MALLOC_ARENA_MAX in the environment wins (glibc has
    read it already); other C libraries are left alone.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
