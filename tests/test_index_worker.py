"""Bulk imports index in a second process; whatever it does not finish is indexed afterwards, never lost."""

from __future__ import annotations

import pytest
from sqlmodel import select

import kb.ingest as ingest
from kb.ingest import import_files, import_paths
from kb.models import Postmortem
from kb.reindex import IndexWorker, heal_index


def postmortem_text(number: int) -> str:
    return (f"---\ntitle: Ranking outage {number}\nseverity: SEV2\n---\n## Summary\nThe ranker served stale "
            f"scores after run {number}.\n## Root cause\nA feature job stalled and nobody owned it.\n")


@pytest.fixture
def folder(write_md):
    for number in range(12):
        path = write_md(f"outage-{number:02d}.md", postmortem_text(number))
    return path.parent


def stored(kb) -> tuple[set[str], set[str]]:
    """Return the slugs in the database and the slugs still marked for reindexing."""
    with kb.session() as session:
        rows = list(session.exec(select(Postmortem)))
    return {row.slug for row in rows}, {row.slug for row in rows if row.needs_reindex}


def test_bulk_import_indexes_in_a_second_process(kb, folder, monkeypatch):
    handed = []
    monkeypatch.setattr(ingest, "MANY", 5)
    monkeypatch.setattr(IndexWorker, "add", spy(IndexWorker.add, handed))
    report = import_paths(kb, [folder])
    assert report.counts()["imported"] == 12
    slugs, marked = stored(kb)
    assert sorted(slug for ids in handed for slug in slugs_of(kb, ids)) == sorted(slugs)
    assert marked == set()
    assert kb.index.slugs() == slugs
    assert kb.index.doc_count() == 12


def test_a_worker_that_dies_leaves_its_rows_for_finish(kb, folder, monkeypatch):
    monkeypatch.setattr(ingest, "MANY", 10**9)  # store without indexing in this test's import
    monkeypatch.setattr(ingest, "index_postmortems", lambda *args, **kwargs: True)
    import_paths(kb, [folder])
    slugs, marked = stored(kb)
    assert marked == slugs and kb.index.doc_count() == 0
    worker = IndexWorker(kb)
    worker.stop()  # killed before it indexed anything
    with kb.session() as session:
        ids = list(session.exec(select(Postmortem.id)))
    for _ in range(200):  # more batches than the queue holds: handing them to a dead worker must not hang
        worker.add(ids)
    worker.finish()
    assert stored(kb)[1] == set()
    assert kb.index.slugs() == slugs


def test_an_interrupted_import_leaves_unindexed_rows_marked(kb, folder, monkeypatch):
    monkeypatch.setattr(ingest, "MANY", 5)
    seen = []

    def interrupt(result):
        seen.append(result)
        if len(seen) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_files(kb, sorted(folder.glob("*.md")), on_progress=interrupt, batch_size=4)
    slugs, marked = stored(kb)
    assert len(slugs) == 8  # two batches of four were committed
    assert kb.index.slugs() == slugs - marked  # a row is indexed or still marked, never neither
    assert heal_index(kb) == len(marked)
    assert stored(kb)[1] == set() and kb.index.slugs() == slugs


def spy(function, calls: list):
    def wrapper(self, postmortem_ids):
        calls.append(list(postmortem_ids))
        return function(self, postmortem_ids)
    return wrapper


def slugs_of(knowledge_base, ids: list[int]) -> list[str]:
    with knowledge_base.session() as session:
        return list(session.exec(select(Postmortem.slug).where(Postmortem.id.in_(ids))))
