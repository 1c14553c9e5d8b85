"""Stable identifiers derived from content, never from row order or run time."""
from __future__ import annotations

import hashlib

_SEP = "\x1f"


def stable_id(prefix: str, *parts: object) -> str:
    """`prefix_` followed by 16 hex digits of the SHA-256 of the parts."""
    text = _SEP.join(["" if p is None else p if type(p) is str else str(p) for p in parts])
    return f"{prefix}_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
