"""armsledger: actors, events, transfers and citations of the Russia–North Korea military relationship."""
from __future__ import annotations

__version__ = "0.1.0"


def load(table: str, version: str = "latest", source=None):
    """A published table as a typed pandas DataFrame, checked against the release's SHA-256."""
    from armsledger.releases import load as _load

    return _load(table, version=version, source=source)


__all__ = ["load", "__version__"]
