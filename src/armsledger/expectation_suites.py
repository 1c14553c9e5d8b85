"""The table contract (schema.yaml) as Great Expectations suites, written as static JSON under expectations/."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from armsledger.schema import TABLES, Table, table

if TYPE_CHECKING:  # GX takes seconds to import: only the functions that need it pay for it.
    import great_expectations as gx

SUITE_PREFIX = "armsledger."

# Meta flag on expectations that compare against the documents' texts; the
# validation step skips them (with a note) when it is not given the texts.
REQUIRES_TEXTS = "texts"

# Derived columns other than the foreign-key checks, per table: column -> what it holds.
_DERIVED_COLUMNS: dict[str, dict[str, str]] = {
    "documents": {
        "check_text_n_chars": "Length of the document's text in characters (null when the text is not given).",
    },
    "actors": {
        "check_n_mentions": "Number of mentions rows of the actor.",
        "check_n_documents": "Number of distinct documents among the actor's mentions.",
    },
    "mentions": {
        "check_doc_n_chars": "n_chars of the mention's document (null when the document is unknown).",
        "check_doc_slice": "The document's text[char_start:char_end] (null when the text is not given).",
    },
    "events": {
        "check_n_citations": "Number of citations whose target is the event.",
        "check_n_citing_documents": "Number of distinct documents among those citations.",
        "check_initiator_first": "True when initiator_id is null or equals actor_ids[0].",
        "check_unresolved_actor_ids": "Entries of actor_ids that are not actors, comma-separated ('' when all resolve).",
    },
    "transfers": {
        "check_n_citations": "Number of citations whose target is the transfer.",
        "check_n_citing_documents": "Number of distinct documents among those citations.",
    },
    "citations": {
        "check_doc_n_chars": "n_chars of the citation's document (null when the document is unknown).",
        "check_doc_slice": "The document's text[char_start:char_end] (null when the text is not given).",
        "check_target_id_missing": "target_table where it is set and target_id is not (else null).",
        "check_target_table_missing": "target_id where it is set and target_table is not (else null).",
        "check_evidence_target_missing": "kind where the citation is evidence and target_id is null (else null).",
    },
}
# Tables a citation can support: target_table names one, target_id a row of it.
CITATION_TARGETS = ("events", "transfers")


def unknown_key_column(column: str) -> str:
    """The check column that holds a foreign key's value where the referenced table lacks it."""
    return f"check_unknown_{column}"


def unknown_target_column(target: str) -> str:
    """The citations check column that holds target_id where target_table is `target` and it has no such row."""
    return f"check_unknown_{target[:-1]}_target"


def _unknown_key_columns(name: str) -> dict[str, str]:
    columns = {
        unknown_key_column(fk["fields"]):
        f"{fk['fields']} when it is set and not found in {fk['reference']['resource']}.{fk['reference']['fields']} (else null)."
        for fk in table(name).foreign_keys
    }
    if name == "citations":
        columns.update({
            unknown_target_column(target): f"target_id when target_table is {target} and no {target[:-1]} has that id (else null)."
            for target in CITATION_TARGETS
        })
    return columns


# GX cannot join tables, so the validation step adds these derived columns to a
# copy of each frame before validating; the suites refer to them by name.
# This mapping is the one declaration both sides follow: column -> what it holds.
CHECK_COLUMNS: dict[str, dict[str, str]] = {
    name: {**_DERIVED_COLUMNS[name], **_unknown_key_columns(name)} for name in TABLES
}


def suite_name(name: str) -> str:
    """A table name -> its suite's name."""
    return SUITE_PREFIX + name


def suite_path(expectations_dir: Path, name: str) -> Path:
    """expectations/ folder and table name -> the suite's JSON file."""
    return Path(expectations_dir) / f"{name}.json"


def build_suite(name: str) -> "gx.ExpectationSuite":
    """A table name -> its ExpectationSuite, derived from the contract, in a stable order."""
    import great_expectations as gx

    t = table(name)
    expectations = (
        _column_set(t)
        + _primary_key(t)
        + [e for f in t.fields for e in _field_rules(t, f.name)]
        + _foreign_keys(t)
        + _TABLE_RULES[name]()
    )
    return gx.ExpectationSuite(
        name=suite_name(name),
        expectations=expectations,
        meta={
            "armsledger": {
                "table": name,
                "check_columns": CHECK_COLUMNS[name],
                "generated_by": "python -m armsledger.expectation_suites (from src/armsledger/data/schema.yaml)",
            }
        },
    )


def suite_dict(name: str) -> dict[str, Any]:
    """A table name -> its suite as a JSON-ready dict without GX's random ids."""
    return _strip_ids(build_suite(name).to_json_dict())


def suite_json(name: str) -> str:
    """A table name -> the suite's JSON text, byte-stable (sorted keys, no ids, trailing newline)."""
    return json.dumps(suite_dict(name), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_suites(expectations_dir: Path) -> list[Path]:
    """expectations/ folder -> one TABLE.json per contract table written there; returns the paths."""
    expectations_dir = Path(expectations_dir)
    expectations_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in TABLES:
        path = suite_path(expectations_dir, name)
        text = suite_json(name)
        # Rewrite only on change, so an unchanged contract leaves the files untouched.
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


# --- builders -----------------------------------------------------------------


def _exp(cls_name: str, description: str, requires: str | None = None, **kwargs: Any) -> Any:
    """An expectation of the named GX class whose meta carries the human sentence reports show."""
    import great_expectations.expectations as gxe

    meta: dict[str, Any] = {"description": description}
    if requires:
        meta["requires"] = requires
    return getattr(gxe, cls_name)(meta=meta, **kwargs)


def _column_set(t: Table) -> list:
    checks = list(CHECK_COLUMNS[t.name])
    return [
        _exp(
            "ExpectTableColumnsToMatchSet",
            f"The {t.name} table has exactly the contract's columns ({', '.join(t.columns)})"
            + (" plus the validation's derived check columns." if checks else "."),
            column_set=t.columns + checks,
            exact_match=True,
        )
    ]


def _primary_key(t: Table) -> list:
    pk = t.primary_key
    return [
        _exp("ExpectColumnValuesToNotBeNull", f"{t.name}.{pk} (primary key) is never null.", column=pk),
        _exp("ExpectColumnValuesToBeUnique", f"{t.name}.{pk} (primary key) is unique: no two rows share one.", column=pk),
    ]


def _field_rules(t: Table, column: str) -> list:
    f = t.field(column)
    rules = []
    if not f.nullable and column != t.primary_key:
        rules.append(_exp("ExpectColumnValuesToNotBeNull", f"{t.name}.{column} is never null.", column=column))
    if f.enum:
        rules.append(
            _exp(
                "ExpectColumnValuesToBeInSet",
                f"{t.name}.{column} is one of: {', '.join(f.enum)}" + (" (or null)." if f.nullable else "."),
                column=column,
                value_set=list(f.enum),
            )
        )
    if f.pattern:
        rules.append(
            _exp(
                "ExpectColumnValuesToMatchRegex",
                f"{t.name}.{column} matches {f.pattern}" + (" where set." if f.nullable else "."),
                column=column,
                regex=f.pattern,
            )
        )
    if f.minimum is not None or f.maximum is not None:
        bounds = _bounds_text(f.minimum, f.maximum)
        rules.append(
            _exp(
                "ExpectColumnValuesToBeBetween",
                f"{t.name}.{column} is {bounds}" + (" where set." if f.nullable else "."),
                column=column,
                min_value=f.minimum,
                max_value=f.maximum,
            )
        )
    return rules


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f"at least {minimum:g}"
    return f"at most {maximum:g}"


def _foreign_keys(t: Table) -> list:
    # GX cannot look into another table, so the validation step derives, per foreign key, a column holding
    # the value wherever the referenced table lacks it. (The referenced keys as a run-time suite parameter
    # would do the same, but GX copies a parameter's whole list into the expectation at every step: at
    # 5,000 documents that was half of the gate's time.)
    rules = []
    for fk in t.foreign_keys:
        column, ref = fk["fields"], fk["reference"]
        nullable = t.field(column).nullable
        rules.append(
            _exp(
                "ExpectColumnValuesToBeNull",
                f"Every {t.name}.{column}" + (" that is set" if nullable else "")
                + f" is found in {ref['resource']}.{ref['fields']}.",
                column=unknown_key_column(column),
            )
        )
    return rules


def _offset_rules(name: str, text_column: str) -> list:
    """Offsets index the document's text, and the row's words are that slice of it."""
    return [
        _exp("ExpectColumnValuesToBeBetween", f"{name}.char_start is at least 0.", column="char_start", min_value=0),
        _exp(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            f"{name}.char_end is greater than char_start.",
            column_A="char_end",
            column_B="char_start",
            or_equal=False,
            ignore_row_if="either_value_is_missing",
        ),
        _exp(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            f"{name}.char_end is within the document: at most its n_chars.",
            column_A="check_doc_n_chars",
            column_B="char_end",
            or_equal=True,
            # An unknown document is the foreign-key rule's failure, not this one's.
            ignore_row_if="either_value_is_missing",
        ),
        _exp(
            "ExpectColumnPairValuesToBeEqual",
            f"{name}.{text_column} equals the document's text[char_start:char_end].",
            requires=REQUIRES_TEXTS,
            column_A=text_column,
            column_B="check_doc_slice",
            ignore_row_if="neither",
        ),
    ]


def _citation_support_rules(name: str) -> list:
    singular = name[:-1]
    return [
        _exp(
            "ExpectColumnValuesToBeBetween",
            f"Every {singular} has at least one citation (no row without its evidence).",
            column="check_n_citations",
            min_value=1,
        ),
        _exp(
            "ExpectColumnPairValuesToBeEqual",
            f"{name}.n_documents equals the number of documents whose citations support the {singular}.",
            column_A="n_documents",
            column_B="check_n_citing_documents",
            ignore_row_if="neither",
        ),
    ]


def _documents_rules() -> list:
    return [
        _exp(
            "ExpectColumnPairValuesToBeEqual",
            "documents.n_chars equals the length of the document's text.",
            requires=REQUIRES_TEXTS,
            column_A="n_chars",
            column_B="check_text_n_chars",
            ignore_row_if="neither",
        )
    ]


def _actors_rules() -> list:
    return [
        _exp(
            "ExpectColumnPairValuesToBeEqual",
            "actors.n_mentions equals the number of the actor's rows in mentions.",
            column_A="n_mentions",
            column_B="check_n_mentions",
            ignore_row_if="neither",
        ),
        _exp(
            "ExpectColumnPairValuesToBeEqual",
            "actors.n_documents equals the number of documents that mention the actor.",
            column_A="n_documents",
            column_B="check_n_documents",
            ignore_row_if="neither",
        ),
    ]


def _mentions_rules() -> list:
    return _offset_rules("mentions", "text")


def _events_rules() -> list:
    return [
        _exp(
            "ExpectColumnValuesToBeInSet",
            "Every entry of events.actor_ids is found in actors.actor_id.",
            column="check_unresolved_actor_ids",
            value_set=[""],
        ),
        _exp(
            "ExpectColumnValuesToBeInSet",
            "events.initiator_id, where set, is the first of actor_ids.",
            column="check_initiator_first",
            value_set=[True],
        ),
        _exp(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            "events.date_end is not before date_start where both are set.",
            column_A="date_end",
            column_B="date_start",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ] + _citation_support_rules("events")


def _transfers_rules() -> list:
    return [
        _exp(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            "transfers.quantity_high is at least quantity_low where both are set.",
            column_A="quantity_high",
            column_B="quantity_low",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
    ] + _citation_support_rules("transfers")


def _citations_rules() -> list:
    # Rules that hold on some rows only are check columns rather than GX row conditions: a row condition
    # has GX copy every column of the rows it selects, for each metric (on 20,000 documents' citations,
    # 26 to 44 MiB more at the checkpoint's peak, validate_tables alone).
    rules = [
        _exp(
            "ExpectColumnValuesToBeNull",
            f"Every citations.target_id whose target_table is {target} is found in {target}.{target[:-1]}_id.",
            column=unknown_target_column(target),
        )
        for target in CITATION_TARGETS
    ]
    rules += [
        _exp(
            "ExpectColumnValuesToBeNull",
            "citations.target_id is set wherever target_table is set.",
            column="check_target_id_missing",
        ),
        _exp(
            "ExpectColumnValuesToBeNull",
            "citations.target_table is set wherever target_id is set.",
            column="check_target_table_missing",
        ),
        _exp(
            "ExpectColumnValuesToBeNull",
            "Every evidence citation names the row it supports (target_id).",
            column="check_evidence_target_missing",
        ),
    ]
    return rules + _offset_rules("citations", "sentence")


_TABLE_RULES = {
    "documents": _documents_rules,
    "actors": _actors_rules,
    "mentions": _mentions_rules,
    "events": _events_rules,
    "transfers": _transfers_rules,
    "citations": _citations_rules,
}


def _strip_ids(suite: dict[str, Any]) -> dict[str, Any]:
    # GX gives suites and expectations random UUIDs once they enter a context;
    # the stored suites are reviewed data and must not change from run to run.
    suite = {k: v for k, v in suite.items() if k != "id"}
    suite["expectations"] = [{k: v for k, v in e.items() if k != "id"} for e in suite["expectations"]]
    return suite


def main(argv: list[str] | None = None) -> int:
    """Command line [DIR] -> the suites written to DIR (default: the settings' expectations/)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        target = Path(args[0])
    else:
        from armsledger.config import load_settings

        target = load_settings().expectations_dir
    for path in write_suites(target):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
