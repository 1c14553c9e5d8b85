"""Quality gate: the six contract tables checked against the stored GX suites -> a ValidationReport."""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from armsledger.expectation_suites import (
    CHECK_COLUMNS,
    CITATION_TARGETS,
    REQUIRES_TEXTS,
    suite_name,
    suite_path,
    unknown_key_column,
    unknown_target_column,
)
from armsledger.runtime import release_free_heap
from armsledger.schema import TABLES, table

MAX_EXAMPLES = 5
# Rows whose values become Python values at a time while the check columns are derived.
ROWS_PER_CHUNK = 50_000
# The column whose text a row's char_start:char_end should cut out of its document.
SLICED_COLUMN = {"mentions": "text", "citations": "sentence"}
# The check columns derive_text_checks gives, per table.
_TEXT_CHECK_COLUMNS = {"documents": ("check_text_n_chars",), **{name: ("check_doc_slice",) for name in SLICED_COLUMN}}
# Example values longer than this are cut: a wrong slice can be a whole document.
MAX_EXAMPLE_CHARS = 200
_SKIPPED_NO_TEXTS = "skipped: no document texts were given, so the text slices could not be compared"


class SuiteError(Exception):
    """A stored expectation suite is missing or unreadable."""


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of validate_tables: overall success and one JSON-ready entry per expectation."""

    success: bool
    results: list[dict]

    @property
    def failures(self) -> list[dict]:
        """The entries whose expectation failed (skipped ones are not failures)."""
        return [r for r in self.results if r["success"] is False]

    def to_dict(self) -> dict[str, Any]:
        """The report as a plain dict (success, counts, results)."""
        return {
            "success": self.success,
            "n_expectations": len(self.results),
            "n_failed": len(self.failures),
            "n_skipped": sum(1 for r in self.results if r["success"] is None),
            "results": self.results,
        }

    def to_json(self) -> str:
        """The report as stable JSON text: the same tables give the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def load_suites(expectations_dir: Path) -> dict[str, dict]:
    """expectations/ folder -> {table: suite JSON dict}; a missing or foreign file raises SuiteError."""
    suites = {}
    for name in TABLES:
        path = suite_path(expectations_dir, name)
        if not path.is_file():
            raise SuiteError(
                f"expectation suite for table {name!r} not found: {path} "
                "(regenerate the suites with `python -m armsledger.expectation_suites`)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SuiteError(f"expectation suite {path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or data.get("name") != suite_name(name):
            raise SuiteError(f"expectation suite {path} is not the suite {suite_name(name)!r}")
        suites[name] = data
    return suites


@dataclass(frozen=True)
class _CrossTableFacts:
    """What one table's checks need to know of the others: small lookups, taken once for all six."""

    doc_n_chars: dict
    known_keys: dict[str, set[str]]
    mentions_per_actor: pd.Series
    documents_per_actor: pd.Series
    citations_per_target: dict[str, pd.Series]
    citing_documents_per_target: dict[str, pd.Series]


def _cross_table_facts(tables: Mapping[str, pd.DataFrame]) -> _CrossTableFacts:
    docs, mentions, citations = (tables[n] for n in ("documents", "mentions", "citations"))
    by_actor = _columns(mentions, ["actor_id", "doc_id"])
    supports = _columns(citations, ["target_table", "target_id", "doc_id"])
    targeted = {name: supports[supports["target_table"] == name].groupby("target_id") for name in CITATION_TARGETS}
    return _CrossTableFacts(
        doc_n_chars=dict(zip(_col(docs, "doc_id"), _col(docs, "n_chars"))),
        known_keys={
            name: {str(v) for v in _col(tables[name], table(name).primary_key) if not _missing(v)}
            for name in _referenced_tables()
        },
        mentions_per_actor=by_actor.groupby("actor_id").size(),
        documents_per_actor=by_actor.groupby("actor_id")["doc_id"].nunique(),
        citations_per_target={name: group.size() for name, group in targeted.items()},
        citing_documents_per_target={name: group["doc_id"].nunique() for name, group in targeted.items()},
    )


def _referenced_tables() -> set[str]:
    """The tables whose keys some column refers to (foreign keys, citation targets)."""
    return {fk["reference"]["resource"] for name in TABLES for fk in table(name).foreign_keys} | set(CITATION_TARGETS)


def _checked_frame(
    name: str, frame: pd.DataFrame, facts: _CrossTableFacts, text_checks: Mapping[str, pd.Series] | None
) -> pd.DataFrame:
    """One table (+ its text checks, None when there are none) -> a copy sorted by primary key with its
    derived check_* columns added."""
    # A shallow copy: the check columns are added to it alone, and the table's columns are not copied.
    frame = frame.copy(deep=False)
    # Before sorting: the text checks have the table's own index.
    for column in _TEXT_CHECK_COLUMNS.get(name, ()):
        if text_checks is None:
            frame[column] = _series(frame, [None] * len(frame))
            continue
        given = text_checks[column]
        if not given.index.equals(frame.index):
            raise ValueError(f"{name}.{column}: the text checks were derived from other rows than the table's")
        frame[column] = given
    pk = table(name).primary_key
    # Sorted by key, the examples in the report do not depend on the input's row order.
    if pk in frame.columns and not frame[pk].is_monotonic_increasing:
        frame = frame.sort_values(pk, kind="stable", na_position="last")
    frame = frame.reset_index(drop=True)

    if name == "actors":
        actor_ids = _col(frame, "actor_id")
        frame["check_n_mentions"] = _count(frame, actor_ids, facts.mentions_per_actor)
        frame["check_n_documents"] = _count(frame, actor_ids, facts.documents_per_actor)
    if name in ("mentions", "citations"):
        frame["check_doc_n_chars"] = _looked_up(frame, "doc_id", facts.doc_n_chars)
    if name in CITATION_TARGETS:
        keys = _col(frame, pk)
        frame["check_n_citations"] = _count(frame, keys, facts.citations_per_target[name])
        frame["check_n_citing_documents"] = _count(frame, keys, facts.citing_documents_per_target[name])

    for fk in table(name).foreign_keys:
        known = facts.known_keys[fk["reference"]["resource"]]
        frame[unknown_key_column(fk["fields"])] = _unknown_values(frame, fk["fields"], known)
    if name == "citations":
        for target in CITATION_TARGETS:
            frame[unknown_target_column(target)] = _unknown_values(
                frame, "target_id", facts.known_keys[target], where=_equals(frame, "target_table", target)
            )
        table_set, id_set = _is_set(frame, "target_table"), _is_set(frame, "target_id")
        frame["check_target_id_missing"] = _values_where(frame, "target_table", table_set & ~id_set)
        frame["check_target_table_missing"] = _values_where(frame, "target_id", id_set & ~table_set)
        frame["check_evidence_target_missing"] = _values_where(frame, "kind", _equals(frame, "kind", "evidence") & ~id_set)
    if name == "events":
        known_actors = facts.known_keys["actors"]
        participants = [_as_list(v) for v in _col(frame, "actor_ids")]
        frame["check_initiator_first"] = pd.Series(
            [
                _missing(i) or (len(p) > 0 and str(p[0]) == str(i))
                for i, p in zip(_col(frame, "initiator_id"), participants)
            ],
            index=frame.index,
            dtype=bool,
        )
        frame["check_unresolved_actor_ids"] = _series(
            frame, [", ".join(str(a) for a in p if str(a) not in known_actors) for p in participants]
        )

    # The suites name these columns; deriving a different set is a bug here, not bad data.
    absent = [c for c in CHECK_COLUMNS[name] if c not in frame.columns]
    if absent:
        raise RuntimeError(f"{name}: check columns {absent} were not derived")
    return frame


# Per table, the check columns that read the documents' texts (index-aligned with the table).
TextChecks = dict[str, dict[str, pd.Series]]


def derive_text_checks(tables: Mapping[str, pd.DataFrame], texts: Mapping[str, str]) -> TextChecks:
    """Six contract tables and doc_id -> text -> the check columns that compare rows with the texts.

    Derived apart from the other check columns, before any checkpoint runs, so that a run can let the
    texts go first: Great Expectations' checkpoints are the largest moment of a run.
    """
    _check_tables(tables)
    documents = tables["documents"]
    checks: TextChecks = {
        "documents": {"check_text_n_chars": _series(documents, [
            len(texts[d]) if d in texts else None for d in _col(documents, "doc_id")
        ])},
    }
    for name, column in SLICED_COLUMN.items():
        checks[name] = {"check_doc_slice": _doc_slices(tables[name], column, texts)}
    return checks


def validate_tables(
    tables: dict[str, pd.DataFrame], expectations_dir: Path, text_checks: TextChecks | None = None
) -> ValidationReport:
    """Six contract tables (+ their derive_text_checks) and the suites' folder -> ValidationReport from GX
    checkpoints. Without text_checks, the expectations that need the texts are reported as skipped.

    One table at a time is copied and given its check columns, so that the run holds the
    tables and one checked copy, never six.
    """
    _check_tables(tables)
    suites = load_suites(Path(expectations_dir))
    facts = _cross_table_facts(tables)

    from armsledger.deferred_imports import import_great_expectations

    gx = import_great_expectations()

    results: list[dict] = []
    for name in TABLES:
        own_text_checks = None if text_checks is None else text_checks.get(name, {})
        frame = _checked_frame(name, tables[name], facts, own_text_checks)
        entries = _run_checkpoint(gx, name, frame, suites[name], text_checks is not None, "BASIC")
        if any(entry["success"] is False for entry in entries):
            # Only a failure needs its examples named by key, which SUMMARY's extra metrics give.
            entries = _run_checkpoint(gx, name, frame, suites[name], text_checks is not None, "SUMMARY")
        results += entries
        del frame
        release_free_heap()
    return ValidationReport(success=all(r["success"] is not False for r in results), results=results)


def _run_checkpoint(gx: Any, name: str, frame: pd.DataFrame, spec: dict, texts_given: bool, result_format: str) -> list[dict]:
    """One table's checkpoint in its own in-memory context (a few milliseconds): nothing is written to disk,
    and the context's batch cache, which keeps the last frame it checked, goes with it."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws tqdm bars on stderr otherwise.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("armsledger")
    return _validate_table(gx, context, source, name, frame, spec, texts_given=texts_given,
                           result_format=result_format)


def _validate_table(
    gx: Any,
    context: Any,
    source: Any,
    name: str,
    frame: pd.DataFrame,
    spec: dict,
    texts_given: bool,
    result_format: str = "SUMMARY",
) -> list[dict]:
    """One table through its own checkpoint (a dataframe batch is given per run, so one per table).

    `result_format`: GX's, BASIC or SUMMARY. Both give the same counts and observed values; SUMMARY also
    names the rows an expectation fails on by their key, at about a third more time for the gate.
    """
    stored = spec.get("expectations") or []
    skip = {
        i
        for i, e in enumerate(stored)
        if not texts_given and (e.get("meta") or {}).get("requires") == REQUIRES_TEXTS
    }
    kept = [i for i in range(len(stored)) if i not in skip]
    suite = gx.ExpectationSuite(**{**spec, "expectations": [stored[i] for i in kept]})
    # GX logs and drops an expectation it cannot parse; a gate must not lose checks silently.
    if len(suite.expectations) != len(kept):
        raise SuiteError(f"expectation suite {suite_name(name)!r}: GX could not read all its expectations")
    suite = context.suites.add(suite)

    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name(name), data=batch, suite=suite)
    )
    result_options: dict[str, Any] = {"result_format": result_format, "partial_unexpected_count": MAX_EXAMPLES}
    pk = table(name).primary_key
    if pk in frame.columns and result_format != "BASIC":
        # Examples then name the offending rows by key, not by a row number.
        result_options["unexpected_index_column_names"] = [pk]
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=suite_name(name), validation_definitions=[definition], result_format=result_options)
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    (validation,) = run.run_results.values()

    # GX does not return results in suite order; its (random) ids map them back.
    position = {e.id: i for i, e in zip(kept, suite.expectations)}
    entries = {i: _skipped(name, stored[i]) for i in skip}
    for outcome in validation.results:
        i = position[outcome.expectation_config.id]
        entries[i] = _entry(name, stored[i], outcome)
    if len(entries) != len(stored):
        raise SuiteError(f"{suite_name(name)}: GX returned {len(entries) - len(skip)} results for {len(kept)} expectations")
    return [entries[i] for i in sorted(entries)]


def _base(name: str, spec: dict) -> dict[str, Any]:
    kwargs = spec.get("kwargs") or {}
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    columns += list(kwargs.get("column_list") or [])
    return {
        "table": name,
        "expectation": spec.get("type"),
        "columns": columns,
        "description": (spec.get("meta") or {}).get("description", ""),
        "success": None,
        "observed_value": None,
        "details": None,
        "element_count": None,
        "unexpected_count": None,
        "unexpected_examples": [],
        "note": None,
    }


def _skipped(name: str, spec: dict) -> dict[str, Any]:
    return {**_base(name, spec), "note": _SKIPPED_NO_TEXTS}


def _entry(name: str, spec: dict, outcome: Any) -> dict[str, Any]:
    result = outcome.result or {}
    examples = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
    entry = {
        **_base(name, spec),
        "success": bool(outcome.success),
        "observed_value": _plain(result.get("observed_value")),
        "details": _plain(result.get("details")),
        "element_count": _plain(result.get("element_count")),
        "unexpected_count": _plain(result.get("unexpected_count")),
        "unexpected_examples": _clip(_plain(list(examples)[:MAX_EXAMPLES])),
    }
    errors = sorted(set(_exception_messages(outcome.exception_info)))
    if errors:
        entry["success"] = False
        entry["note"] = "error: " + "; ".join(errors)
    return entry


def _exception_messages(info: Any) -> Iterable[str]:
    """GX nests exception info either flat or per metric; only the messages are stable enough to report."""
    if isinstance(info, dict):
        if info.get("raised_exception"):
            yield str(info.get("exception_message"))
        for value in info.values():
            if isinstance(value, dict):
                yield from _exception_messages(value)


def _plain(value: Any) -> Any:
    """Any value GX returns -> JSON-ready: numpy scalars unwrapped, NaN as null, dates as ISO text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set) else items
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if _missing(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _clip(value: Any) -> Any:
    """Long strings inside a JSON-ready value cut to MAX_EXAMPLE_CHARS, marked with an ellipsis."""
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        return value[:MAX_EXAMPLE_CHARS] + "…"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def _check_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    missing = [n for n in TABLES if n not in tables]
    unknown = sorted(set(tables) - set(TABLES))
    if missing or unknown:
        raise ValueError(f"the quality gate needs the six contract tables: missing {missing}, unknown {unknown}")
    for name in TABLES:
        if not isinstance(tables[name], pd.DataFrame):
            raise TypeError(f"table {name!r} is a {type(tables[name]).__name__}, not a pandas DataFrame")


def _col(frame: pd.DataFrame, column: str) -> list:
    """A column's values, or nulls when the column is missing (the column-set rule reports that)."""
    return frame[column].tolist() if column in frame.columns else [None] * len(frame)


def _rows(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple]:
    """The values of these columns row by row, made Python values one chunk of rows at a time: a whole
    column as a list took more memory than the table at 20,000 documents."""
    for start in range(0, len(frame), ROWS_PER_CHUNK):
        part = frame.iloc[start : start + ROWS_PER_CHUNK]
        yield from zip(*(_col(part, c) for c in columns))


def _doc_slices(frame: pd.DataFrame, sliced_column: str, texts: Mapping[str, str]) -> pd.Series:
    """Each row's document text[char_start:char_end] (null when the document's text is not given).

    Nearly every slice equals the row's own `sliced_column` (the text it claims to quote): there the
    column's own value is taken, so that only slices that differ become new Python strings.
    """
    own = frame[sliced_column] if sliced_column in frame.columns else _series(frame, [None] * len(frame))
    differing: dict[int, str | None] = {}
    for position, (doc_id, start, end, value) in enumerate(_rows(frame, ["doc_id", "char_start", "char_end", sliced_column])):
        text = texts.get(doc_id) if type(doc_id) is str else None
        # The usual row (str id, int offsets of a known text) without _slice's checks and calls.
        if text is not None and type(start) is int and type(end) is int and start >= 0 and end >= 0:
            piece = text[start:end]
        else:
            piece = _slice(texts, doc_id, start, end)
        if piece is None or _missing(value) or piece != value:
            differing[position] = piece
    slices = own.astype(object) if differing and own.dtype != object else own.copy()
    if differing:
        slices.iloc[list(differing)] = list(differing.values())
    return slices


def _looked_up(frame: pd.DataFrame, column: str, lookup: Mapping[Any, Any]) -> pd.Series:
    """Per row: the integer that `lookup` gives for the row's `column` (null when the value is missing or
    not a key), found for all rows at once rather than by a Python lookup per row."""
    keys = [k for k in lookup if not _missing(k)]
    values = np.array([_int_or_none(lookup[k]) for k in keys] + [None], dtype=object)
    if column not in frame.columns:
        return _series(frame, [None] * len(frame))
    positions = pd.Index(keys, dtype=object).get_indexer(frame[column])
    positions[frame[column].isna().to_numpy(dtype=bool)] = -1
    return pd.Series(values[positions], index=frame.index, dtype=object)


def _unknown_values(frame: pd.DataFrame, column: str, known: set[str], where: np.ndarray | None = None) -> pd.Series:
    """Per row: the column's value where it is set, not among `known` (compared as text) and `where` holds;
    null elsewhere."""
    unknown = _is_set(frame, column)
    if column in frame.columns:
        values = frame[column]
        as_text = values if isinstance(values.dtype, pd.StringDtype) else values.astype(str)
        unknown &= ~as_text.isin(known).to_numpy(dtype=bool)
    if where is not None:
        unknown &= where
    return _values_where(frame, column, unknown)


def _values_where(frame: pd.DataFrame, column: str, mask: np.ndarray) -> pd.Series:
    """Per row: the column's value where `mask` holds, null elsewhere; only those values become Python objects."""
    out = np.full(len(frame), None, dtype=object)
    positions = np.flatnonzero(mask)
    if column in frame.columns and len(positions):
        out[positions] = frame[column].iloc[positions].tolist()
    return pd.Series(out, index=frame.index, dtype=object)


def _is_set(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Per row: whether `column` holds a value (False everywhere when there is no such column)."""
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].notna().to_numpy(dtype=bool, copy=True)


def _equals(frame: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """Per row: whether `column` holds `value` (False where it is missing, or there is no such column)."""
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return (frame[column] == value).fillna(False).to_numpy(dtype=bool)


def _columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of the frame (a missing one as nulls), without a Python value per cell when all are there."""
    if all(c in frame.columns for c in columns):
        return frame[columns]
    return pd.DataFrame({c: _col(frame, c) for c in columns})


def _series(frame: pd.DataFrame, values: list) -> pd.Series:
    # object dtype keeps ints as ints and None as None (no float upcast in the report's examples).
    return pd.Series(values, index=frame.index, dtype=object)


def _count(frame: pd.DataFrame, keys: list, counts: pd.Series) -> pd.Series:
    """Per row: the count for the row's key (0 when the key has none)."""
    lookup = counts.to_dict()
    return pd.Series([int(lookup.get(k, 0)) for k in keys], index=frame.index, dtype="int64")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _int_or_none(value: Any) -> int | None:
    if _missing(value):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_list(value: Any) -> list:
    """A list cell (Python list, tuple or numpy array from Arrow) -> a Python list; null -> []."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if _missing(value):
        return []
    raise TypeError(f"expected a list, tuple or numpy array in a list column, got {type(value).__name__}")


def _slice(texts: Mapping[str, str], doc_id: Any, start: Any, end: Any) -> str | None:
    """The document's text[start:end] for non-negative integer offsets, else null."""
    text = None if _missing(doc_id) else texts.get(doc_id)
    start, end = _int_or_none(start), _int_or_none(end)
    if text is None or start is None or end is None or start < 0 or end < 0:
        return None
    return text[start:end]
