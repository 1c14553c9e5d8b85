"""What an extraction depends on, as a short digest: the spaCy model and its version, the curated data
files and the rule modules. Computed without importing spaCy, so a run with nothing new never loads it."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

from armsledger.config import DATA_DIR
from armsledger.extract.resources import RESOURCE_FILES

RULES_DIR = Path(__file__).resolve().parent


def fingerprint_of(model: str) -> str:
    """load_extractor(model).fingerprint without loading spaCy's model: the model package's version, the
    curated data files (hashed as load_resources does) and the rule modules."""
    digest = hashlib.sha256()
    for name in RESOURCE_FILES:
        digest.update(name.encode() + b"\0" + (DATA_DIR / name).read_bytes())
    return extractor_fingerprint(model, model_version(model), digest.hexdigest()[:16])


def model_version(model: str) -> str:
    """The version of the spaCy model `model` names, found as spacy.load finds it (an installed package
    first, then a model folder's meta.json), without loading it."""
    try:
        return importlib.metadata.version(model)
    except importlib.metadata.PackageNotFoundError:
        meta = Path(model) / "meta.json"
        if not meta.is_file():
            raise OSError(f"no spaCy model package or model folder named {model!r}") from None
        return str(json.loads(meta.read_text(encoding="utf-8")).get("version", ""))


def extractor_fingerprint(model: str, model_version: str, resources_fingerprint: str) -> str:
    """Changes when the model, the curated data or any rule module changes."""
    digest = hashlib.sha256(f"{model}\0{model_version}\0{resources_fingerprint}".encode())
    for path in sorted(RULES_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
