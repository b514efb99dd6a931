"""kb.ingest: each file is imported, updated, left alone or failed on its own; human decisions survive."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from kb import ingest, records
from kb.errors import KBError
from kb.ingest import import_markdown, import_paths
from kb.models import Postmortem, PostmortemLabel, PostmortemService
from kb.reindex import rebuild_index
from kb.search import search
from kb.storage import get_postmortem, postmortem_record, tags_for

DRIFT = """---
title: Ranking drifted after the spring sale
date: 2024-03-02
severity: SEV2
services: [ranker, feature-store]
facets: [structure]
---
## Root cause
Nobody owned the feature pipeline after the reorg.
The input distribution drifted when buyers changed their habits.
"""
TYPO = """# Fraud threshold typo

Date: 2023-06-01

## Why
A misconfigured threshold declined every order from new customers.
"""
STAMPEDE = "# Cache stampede\n\nLatency rose when the recommendation cache emptied at midnight.\n"
BROKEN = "---\ntitle: Broken\nservices: [a, b\n---\nText.\n"


@pytest.fixture
def docs(write_md):
    """Three good postmortems and one with broken front matter."""
    return [write_md("2024-03-02-drift.md", DRIFT), write_md("threshold-typo.md", TYPO),
            write_md("stampede.md", STAMPEDE), write_md("broken.md", BROKEN)]


def outcomes(report):
    return [(Path(r.path).name, r.outcome, r.slug, r.reason) for r in report.results]


def stored(kb):
    """Return every stored postmortem as plain data, by slug."""
    with kb.session() as session:
        rows = list(session.exec(select(Postmortem)))
        tags = tags_for(session=session, postmortem_ids=[row.id for row in rows])
        return {row.slug: postmortem_record(row, tags[row.id]) for row in rows}


def tag_states(kb, slug):
    with kb.session() as session:
        pm = get_postmortem(session=session, slug=slug)
        return {tag.label_id: (tag.source, tag.status) for tag, _ in tags_for(session=session, postmortem_ids=[pm.id])[pm.id]}


def set_tag(kb, slug, label, **fields):
    """Write a tag's fields straight into the database, as a person's decision would."""
    with kb.session() as session:
        pm = get_postmortem(session=session, slug=slug)
        tag = session.exec(select(PostmortemLabel).where(
            PostmortemLabel.postmortem_id == pm.id, PostmortemLabel.label_id == label)).first()
        tag = tag or PostmortemLabel(postmortem_id=pm.id, label_id=label)
        for name, value in fields.items():
            setattr(tag, name, value)
        session.add(tag)
        session.commit()


def test_each_file_is_counted_and_a_bad_one_fails_with_its_line(kb, docs):
    report = import_paths(kb, [docs[0].parent])
    assert report.counts() == {"imported": 3, "updated": 0, "unchanged": 0, "failed": 1}
    # Files are read in name order.
    assert outcomes(report) == [
        ("2024-03-02-drift.md", "imported", "2024-03-02-drift", ""),
        ("broken.md", "failed", "", "line 3: front matter is not valid YAML: expected ',' or ']', but got '<stream end>'"),
        ("stampede.md", "imported", "stampede", ""),
        ("threshold-typo.md", "imported", "threshold-typo", ""),
    ]
    assert sorted(stored(kb)) == ["2024-03-02-drift", "stampede", "threshold-typo"]
    assert kb.index.slugs() == {"2024-03-02-drift", "stampede", "threshold-typo"}


def test_stored_fields_come_from_the_file(kb, docs):
    import_paths(kb, docs[:2])
    drift, typo = stored(kb)["2024-03-02-drift"], stored(kb)["threshold-typo"]
    assert {k: drift[k] for k in ("title", "date", "severity", "services", "source_path")} == {
        "title": "Ranking drifted after the spring sale", "date": "2024-03-02", "severity": "SEV2",
        "services": ["ranker", "feature-store"], "source_path": str(docs[0].resolve())}
    assert (typo["title"], typo["date"]) == ("Fraud threshold typo", "2023-06-01")
    with kb.session() as session:
        assert sorted(row.service for row in session.exec(select(PostmortemService))) == ["feature-store", "ranker"]


def test_reimporting_unchanged_files_does_nothing(kb, docs):
    import_paths(kb, docs[:3])
    before = stored(kb)
    with kb.session() as session:
        updated_at = {row.slug: row.updated_at for row in session.exec(select(Postmortem))}
    report = import_paths(kb, docs[:3])
    assert report.counts() == {"imported": 0, "updated": 0, "unchanged": 3, "failed": 0}
    assert stored(kb) == before
    with kb.session() as session:
        assert {row.slug: row.updated_at for row in session.exec(select(Postmortem))} == updated_at


def test_a_changed_file_is_updated_and_keeps_human_tags(kb, write_md):
    path = write_md("2024-03-02-drift.md", DRIFT)
    import_paths(kb, [path])
    set_tag(kb, "2024-03-02-drift", "people", source="human", status="confirmed", decided_by="ana")
    path.write_text(DRIFT.replace("facets: [structure]\n", "").replace("spring sale", "summer sale")
                    + "Checkout latency doubled as well.\n", encoding="utf-8")
    report = import_paths(kb, [path])
    assert outcomes(report) == [("2024-03-02-drift.md", "updated", "2024-03-02-drift", "")]
    states = tag_states(kb, "2024-03-02-drift")
    assert (states["structure"], states["people"]) == (("human", "confirmed"), ("human", "confirmed"))
    assert stored(kb)["2024-03-02-drift"]["title"] == "Ranking drifted after the summer sale"
    assert [hit.slug for hit in search(kb, "checkout latency").hits] == ["2024-03-02-drift"]
    assert search(kb, '"spring sale"').total == 0


def test_a_human_rejection_survives_reimport_of_a_changed_file(kb, write_md):
    path = write_md("2024-03-02-drift.md", DRIFT)
    import_paths(kb, [path])
    assert tag_states(kb, "2024-03-02-drift")["data-drift"] == ("auto", "suggested")
    set_tag(kb, "2024-03-02-drift", "data-drift", source="human", status="rejected", decided_by="ana")
    path.write_text(DRIFT + "In April the input distribution drifted again.\n", encoding="utf-8")
    assert import_paths(kb, [path]).counts()["updated"] == 1
    assert tag_states(kb, "2024-03-02-drift")["data-drift"] == ("human", "rejected")
    assert search(kb, "", categories=["data-drift"]).total == 0


def test_a_failed_file_leaves_nothing_behind(kb, docs, monkeypatch):
    # Tags are written by new_tag_rows when a batch is stored together, by merge_tags file by file.
    real_merge, real_rows = records.merge_tags, ingest.new_tag_rows

    def merge_failing_on_stampede(*, postmortem, **kwargs):
        if postmortem.slug == "stampede":
            raise KBError("tag store unavailable")
        return real_merge(postmortem=postmortem, **kwargs)

    def rows_failing_on_stampede(*, parsed, **kwargs):
        if parsed.slug == "stampede":
            raise KBError("tag store unavailable")
        return real_rows(parsed=parsed, **kwargs)

    monkeypatch.setattr(records, "merge_tags", merge_failing_on_stampede)
    monkeypatch.setattr(ingest, "new_tag_rows", rows_failing_on_stampede)
    report = import_paths(kb, docs[:3])
    assert outcomes(report)[2] == ("stampede.md", "failed", "stampede", "tag store unavailable")
    assert sorted(stored(kb)) == ["2024-03-02-drift", "threshold-typo"]
    assert kb.index.slugs() == {"2024-03-02-drift", "threshold-typo"}


def test_dry_run_reports_without_storing(kb, docs):
    report = import_paths(kb, [docs[0].parent], dry_run=True)
    assert report.counts() == {"imported": 3, "updated": 0, "unchanged": 0, "failed": 1}
    assert stored(kb) == {}
    assert kb.index.doc_count() == 0
    import_paths(kb, docs[:1])
    before = stored(kb)
    docs[0].write_text(DRIFT.replace("spring", "summer"), encoding="utf-8")
    assert import_paths(kb, docs[:1], dry_run=True).counts()["updated"] == 1
    assert stored(kb) == before


def test_dry_run_reports_a_slug_clash_between_files_of_the_same_run(kb, tmp_path):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "2024-01-01-outage.md").write_text(f"# Outage in {folder}\n\nText.\n")
    paths = [tmp_path / "one", tmp_path / "two"]
    dry = outcomes(import_paths(kb, paths, dry_run=True))
    assert [outcome for _name, outcome, _slug, _reason in dry] == ["imported", "failed"]
    assert stored(kb) == {}
    assert outcomes(import_paths(kb, paths)) == dry


def test_the_same_slug_from_another_folder_fails_and_leaves_the_first_alone(kb, write_md, tmp_path):
    first = write_md("2024-03-02-drift.md", DRIFT)
    import_paths(kb, [first])
    before = stored(kb)
    other = tmp_path / "elsewhere" / "2024-03-02-drift.md"
    other.parent.mkdir()
    other.write_text("# Someone else's drift\n\nA different incident.\n", encoding="utf-8")
    report = import_paths(kb, [other])
    assert outcomes(report) == [("2024-03-02-drift.md", "failed", "2024-03-02-drift",
                                 f"slug '2024-03-02-drift' already belongs to {first.resolve()}; "
                                 "give this file another name or a 'slug:'")]
    assert stored(kb) == before


def test_a_front_matter_slug_resolves_a_clash(kb, write_md, tmp_path):
    import_paths(kb, [write_md("2024-03-02-drift.md", DRIFT)])
    other = tmp_path / "elsewhere" / "2024-03-02-drift.md"
    other.parent.mkdir()
    other.write_text("---\nslug: Other Drift\n---\n# Other drift\n\nText.\n", encoding="utf-8")
    assert outcomes(import_paths(kb, [other])) == [("2024-03-02-drift.md", "imported", "other-drift", "")]


def test_unknown_front_matter_labels_are_warnings(kb, write_md):
    path = write_md("x.md", "---\nfacets: [structure, vibes]\ncategories: [structure]\n---\n# X\n\nText.\n")
    [result] = import_paths(kb, [path]).results
    assert (result.outcome, result.warnings) == ("imported", [
        "front matter facets: unknown facet 'vibes'; ignored",
        "front matter categories: unknown category 'structure'; ignored",
    ])
    assert tag_states(kb, "x") == {"structure": ("human", "confirmed")}


def test_missing_paths_and_other_files(kb, write_md, tmp_path):
    write_md("notes.txt", "not markdown")
    write_md("nested/deeper/2024-01-01-deep.md", STAMPEDE)
    report = import_paths(kb, [tmp_path / "docs", tmp_path / "nope"])
    assert [(r.outcome, r.slug, r.reason) for r in report.results] == [
        ("failed", "", "no such file or folder"), ("imported", "2024-01-01-deep", "")]


def test_the_search_index_finds_imported_postmortems(kb, docs):
    import_paths(kb, docs)
    assert [hit.slug for hit in search(kb, "misconfigured threshold").hits] == ["threshold-typo"]
    assert [hit.slug for hit in search(kb, "", facets=["structure"]).hits] == ["2024-03-02-drift"]


@pytest.mark.parametrize("processes", [1, 2])
def test_rebuild_index_restores_the_same_postmortems(kb, docs, monkeypatch, processes):
    import_paths(kb, docs)
    slugs = kb.index.slugs()
    before = search(kb, "threshold OR drift", with_counts=True).as_dict()
    kb.index.delete(slugs)
    assert kb.index.slugs() == set()
    # With two processes, each reads its own postmortems from the database and writes a segment.
    monkeypatch.setattr("kb.reindex.PARALLEL_FROM", 0 if processes > 1 else 10**9)
    monkeypatch.setattr("kb.reindex.index_processes", lambda: processes)
    assert rebuild_index(kb) == 3
    with kb.index.searcher() as searcher:
        assert len(searcher.reader().leaf_readers()) == processes
    assert kb.index.slugs() == slugs == set(stored(kb))
    assert [hit.slug for hit in search(kb, "stampede").hits] == ["stampede"]
    assert search(kb, "threshold OR drift", with_counts=True).as_dict() == before


def test_an_impossible_date_is_a_warning_and_does_not_stop_the_import(kb, write_md):
    paths = [write_md("a-bad-date.md", "---\ndate: 2024-02-30\n---\n# Bad date\n\nText.\n"),
             write_md("b-good.md", STAMPEDE)]
    report = import_paths(kb, paths)
    assert [(Path(r.path).name, r.outcome, r.warnings) for r in report.results] == [
        ("a-bad-date.md", "imported", ["front matter 'date' '2024-02-30' is not a date (YYYY-MM-DD); ignored"]),
        ("b-good.md", "imported", []),
    ]
    assert stored(kb)["a-bad-date"]["date"] is None


def test_a_batch_stores_the_tags_a_single_file_would(kb, write_md):
    # New postmortems of a batch get their tags from new_tag_rows; one file at a time uses merge_tags.
    text = DRIFT.replace("facets: [structure]", "facets: [structure]\ncategories: [data-drift]\ndecisions:\n"
                         "  - {label: people, status: rejected, by: ana, at: '2024-03-05T10:00:00+00:00'}")
    assert import_paths(kb, [write_md("batch.md", text)]).counts()["imported"] == 1
    import_markdown(kb, text.encode(), filename="single.md")

    def tags(slug):
        with kb.session() as session:
            pm = get_postmortem(session=session, slug=slug)
            found = tags_for(session=session, postmortem_ids=[pm.id])[pm.id]
        return sorted((tag.label_id, tag.source, tag.status, tag.score, tag.evidence, tag.method, tag.cues,
                       tag.decided_by, tag.decided_at if tag.decided_by == "ana" else None) for tag, _ in found)

    assert tags("batch") == tags("single")
    assert {label for label, source, *_ in tags("batch") if source == "human"} == {"structure", "data-drift", "people"}
