"""Backups: `kb export` then `kb import` into an empty knowledge base gives back the same postmortems and tags."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app import cli, create_app
from kb.export import export_all
from kb.ingest import import_paths
from kb.storage import get_postmortem, list_postmortems, postmortem_record, tags_for
from kb.tags import decide_tag

DOCS = {
    "2024-03-02-drift.md": """---
title: "Ranking drifted: \\"new arrivals\\" sank"
date: 2024-03-02
severity: SEV2
services: [search-ranker, feature-store]
authors: [Ana Lima]
started: 2024-03-01T08:00:00Z
detected: 2024-03-02T09:30:00+01:00
resolved: 2024-03-02T15:00:00Z
facets: [structure]
---

# Ranking drifted

## Summary
The input distribution drifted after the catalogue import, and nobody owned the feature pipeline.

## Root cause
Prices arrived as zero for new products; the model had never seen that. No review gate existed.

| step | owner |
|---:|:---|
| import | nobody |
""",
    "threshold-typo.md": """# Fraud threshold typo

A threshold typo in the YAML config declined good orders for an hour. The on-call engineer was new.

## Action items
- [ ] Add a canary.
""",
}


@pytest.fixture
def source(app, kb, write_md):
    for name, text in DOCS.items():
        write_md(name, text)
    folder = write_md("cache-outage.md", "# Cache outage\n\nThe feature cache emptied; no alert fired.\n").parent
    report = import_paths(kb, [folder])
    assert report.counts()["failed"] == 0
    with kb.session() as session:
        drift = get_postmortem(session=session, slug="2024-03-02-drift")
        decide_tag(session=session, postmortem=drift, label_id="data-drift", status="confirmed",
                   decided_by="ana", labels=kb.labels)
        decide_tag(session=session, postmortem=drift, label_id="people", status="rejected",
                   decided_by="bo", labels=kb.labels)
        session.commit()
    return kb


def snapshot(kb) -> dict:
    """Every stored field of every postmortem and every tag, except where the file was read from."""
    with kb.session() as session:
        rows = list_postmortems(session=session, limit=1000)
        tags = tags_for(session=session, postmortem_ids=[row.id for row in rows])
        found = {}
        for row in rows:
            record = postmortem_record(row, tags[row.id])
            del record["source_path"]
            record.update(sections=row.sections, detect_seconds=row.detect_seconds,
                          resolve_seconds=row.resolve_seconds)
            found[row.slug] = record
        return found


@pytest.mark.parametrize("format", ["markdown", "jsonl"])
def test_a_backup_restores_the_same_postmortems_and_decisions(source, tmp_path, new_database_url, format):
    before = snapshot(source)
    assert export_all(source, tmp_path / "backup", format=format) == 3
    restored_app = create_app({"KB_DATA_DIR": str(tmp_path / "restored"), "KB_SECRET_KEY": "k",
                               "KB_DATABASE_URL": new_database_url()})
    restored = restored_app.extensions["kb"]
    try:
        assert import_paths(restored, [tmp_path / "backup"]).counts() == {
            "imported": 3, "updated": 0, "unchanged": 0, "failed": 0}
        after = snapshot(restored)
        assert after == before
        humans = {(t["label"], t["status"], t["decided_by"]) for t in after["2024-03-02-drift"]["tags"]
                  if t["source"] == "human"}
        assert humans == {("structure", "confirmed", "front matter"), ("data-drift", "confirmed", "ana"),
                          ("people", "rejected", "bo")}
        # Importing the same backup again changes nothing.
        assert import_paths(restored, [tmp_path / "backup"]).counts()["unchanged"] == 3
    finally:
        restored.engine.dispose()


def test_the_cli_exports_and_a_broken_backup_line_is_named(source, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_DATA_DIR", str(source.config.data_dir))
    monkeypatch.setenv("KB_DATABASE_URL", source.config.database_url)
    result = CliRunner().invoke(cli, ["export", "--format", "jsonl", str(tmp_path / "out")])
    assert (result.exit_code, result.output) == (0, f"exported 3 postmortems to {tmp_path / 'out'}/postmortems.jsonl\n")
    backup = tmp_path / "out" / "postmortems.jsonl"
    lines = backup.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["slug"] for line in lines] == ["2024-03-02-drift", "cache-outage", "threshold-typo"]
    backup.write_text("\n".join([lines[0], "{not json", '{"slug": "y"}']) + "\n", encoding="utf-8")
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "other"))
    monkeypatch.delenv("KB_DATABASE_URL")
    result = CliRunner().invoke(cli, ["import", str(backup)])
    assert result.exit_code == 1
    assert "imported: 1  updated: 0  unchanged: 0  failed: 2" in result.output
    assert f"{backup}:2: line 2: not JSON" in result.output
    assert f'{backup}:3: line 3: needs a "markdown" field, as `kb export --format jsonl` writes' in result.output
