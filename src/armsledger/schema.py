"""The table contract (data/schema.yaml) as Arrow schemas, Frictionless fields and typed frames."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd
import pyarrow as pa

from armsledger.config import DATA_DIR
from armsledger.yaml_files import load_yaml

TABLES = ("documents", "actors", "mentions", "events", "transfers", "citations")

_ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "date32": pa.date32(),
    "list<string>": pa.list_(pa.string()),
}
# Types whose pandas columns convert without Python values (NaN, None and pd.NA all become null).
_VECTOR_TYPES = frozenset({"string", "int64", "float64"})
_FRICTIONLESS_TYPES = {
    "string": "string",
    "int64": "integer",
    "float64": "number",
    "date32": "date",
    "list<string>": "array",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    nullable: bool
    description: str
    enum: tuple[str, ...] | None
    pattern: str | None
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    description: str
    primary_key: str
    fields: tuple[Field, ...]
    foreign_keys: tuple[dict, ...]

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


@lru_cache(maxsize=1)
def _contract() -> dict:
    return load_yaml((DATA_DIR / "schema.yaml").read_text(encoding="utf-8"))


def vocabularies() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in _contract()["vocabularies"].items()}


@lru_cache(maxsize=None)
def table(name: str) -> Table:
    spec = _contract()["tables"][name]
    vocab = vocabularies()
    fields = tuple(
        Field(
            name=f["name"],
            type=f["type"],
            nullable=bool(f.get("nullable", False)),
            description=f["description"],
            enum=vocab[f["enum"]] if f.get("enum") else None,
            pattern=f.get("pattern"),
            minimum=f.get("minimum"),
            maximum=f.get("maximum"),
        )
        for f in spec["fields"]
    )
    return Table(
        name=name,
        title=spec["title"],
        description=spec["description"],
        primary_key=spec["primary_key"],
        fields=fields,
        foreign_keys=tuple(spec.get("foreign_keys", ())),
    )


def arrow_schema(name: str) -> pa.Schema:
    t = table(name)
    return pa.schema(
        [pa.field(f.name, _ARROW_TYPES[f.type], nullable=f.nullable) for f in t.fields],
        metadata={"armsledger.table": name},
    )


def frictionless_schema(name: str) -> dict[str, Any]:
    """The table's Table Schema descriptor (fields, keys)."""
    t = table(name)
    fields = []
    for f in t.fields:
        desc: dict[str, Any] = {
            "name": f.name,
            "type": _FRICTIONLESS_TYPES[f.type],
            "description": f.description,
        }
        constraints: dict[str, Any] = {}
        if not f.nullable:
            constraints["required"] = True
        if f.enum:
            constraints["enum"] = list(f.enum)
        if f.pattern:
            constraints["pattern"] = f.pattern
        if f.minimum is not None:
            constraints["minimum"] = f.minimum
        if f.maximum is not None:
            constraints["maximum"] = f.maximum
        if constraints:
            desc["constraints"] = constraints
        fields.append(desc)
    schema: dict[str, Any] = {"fields": fields, "primaryKey": [t.primary_key], "missingValues": [""]}
    if t.foreign_keys:
        schema["foreignKeys"] = [
            {
                "fields": [fk["fields"]],
                "reference": {
                    "resource": "" if fk["reference"]["resource"] == name else fk["reference"]["resource"],
                    "fields": [fk["reference"]["fields"]],
                },
            }
            for fk in t.foreign_keys
        ]
    return schema


def to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table of the contract's schema, rows sorted by primary key."""
    t = table(name)
    missing = set(t.columns) - set(frame.columns)
    if missing:
        raise ValueError(f"table {name}: missing columns {sorted(missing)}")
    frame = frame[t.columns]
    # Sorting copies every column: a frame already in key order (as normalise gives them) is used as it is.
    if not frame[t.primary_key].is_monotonic_increasing:
        frame = frame.sort_values(t.primary_key, kind="stable")
    frame = frame.reset_index(drop=True)
    columns = {}
    for f in t.fields:
        if f.type in _VECTOR_TYPES:
            # Straight from the column's buffers: a Python value per cell took more memory than the table.
            columns[f.name] = pa.array(frame[f.name], type=_ARROW_TYPES[f.type], from_pandas=True)
            continue
        values = [None if _is_missing(v) else v for v in frame[f.name].tolist()]
        if f.type == "date32":
            values = [None if v is None else pd.Timestamp(v).date() for v in values]
        elif f.type == "list<string>":
            values = [[] if v is None else [str(x) for x in v] for v in values]
        columns[f.name] = pa.array(values, type=_ARROW_TYPES[f.type])
    return pa.Table.from_pydict(columns, schema=arrow_schema(name))


def empty_frame(name: str) -> pd.DataFrame:
    return arrow_schema(name).empty_table().to_pandas()


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if value is pd.NaT or value is pd.NA:
        return True
    return False
