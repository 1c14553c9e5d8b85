"""Documentation generated from the contract stays in step with it."""
from __future__ import annotations

from pathlib import Path

from armsledger import schema, site

PROJECT = Path(__file__).resolve().parents[1]


def test_the_committed_codebook_is_the_generated_one() -> None:
    committed = (PROJECT / "docs" / "codebook.md").read_text(encoding="utf-8")
    assert committed == site.codebook_markdown(), (
        "docs/codebook.md is out of date: run `armsledger codebook` (or `python -m armsledger.site codebook`)"
    )


def test_the_codebook_names_every_column_and_vocabulary() -> None:
    text = site.codebook_markdown()
    for name in schema.TABLES:
        assert f"\n## {name}\n" in text
        for field in schema.table(name).fields:
            assert f"| `{field.name}` | `{field.type}` |" in text
    for values in schema.vocabularies().values():
        assert all(f"`{value}`" in text for value in values)


def test_codebook_command_writes_and_checks(tmp_path: Path, capsys) -> None:
    stale = tmp_path / "codebook.md"
    stale.write_text("# old\n", encoding="utf-8")
    assert site.main(["codebook", "--check", "--output", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert site.main(["codebook", "--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == site.codebook_markdown()
    assert site.main(["codebook", "--check", "--output", str(stale)]) == 0


def test_architecture_places_every_stage() -> None:
    text = (PROJECT / "docs" / "architecture.md").read_text(encoding="utf-8")
    stages = ["ingest.py", "normalise.py", "validate.py", "publish.py", "site.py", "releases.py", "pipeline.py",
              "schema.py", "cli.py", "document.py", "transfers.py", "citations.py"]
    missing = [m for m in stages if f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not place {missing}"
    for path in ("raw/", "processed/releases/VERSION/", "expectations/", "latest.json", "SHA256SUMS", "index.html"):
        assert path in text


def test_codebook_cli_checks_the_committed_file() -> None:
    from typer.testing import CliRunner

    from armsledger.cli import app

    result = CliRunner().invoke(app, ["codebook", "--check"])
    assert result.exit_code == 0, result.output
