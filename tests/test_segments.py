"""kb.segments writes the very files Whoosh's own writer writes, and kb.index builds whole indexes with it."""

from __future__ import annotations

import pytest
from whoosh.filedb.filestore import FileStorage
from whoosh.writing import SegmentWriter

from kb import index as kb_index
from kb.index import SearchIndex, make_schema, write_segment
from kb.postings import tune_whoosh
from kb.segments import GroupedWriter
from tests.conftest import SEED

PATHS = sorted(SEED.glob("*.md"))[:60]


def documents(paths=PATHS, prefix="") -> list[dict]:
    found = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        title, _, body = text.partition("\n## ")
        found.append({"slug": prefix + path.stem, "title": title, "body": body, "root_cause": body[:400],
                      "facet": "people,processes" if len(text) % 2 else "strategy", "severity": "sev2"})
    return found


def segment_files(folder) -> dict[str, bytes]:
    """Return the bytes of each file of the index's only segment, by the file's name after the segment's."""
    storage = FileStorage(str(folder))
    index = storage.open_index()
    (segment,) = index._segments()
    name = segment.segment_id()
    return {file[len(name):]: (folder / file).read_bytes() for file in storage.list() if file.startswith(name)}


def build(folder, writer_class, batches: list[list[dict]], **options) -> dict[str, bytes]:
    tune_whoosh()
    folder.mkdir()
    index = FileStorage(str(folder)).create_index(make_schema())
    for number, batch in enumerate(batches):
        writer = writer_class(index, compound=False, **options)
        for document in batch:
            writer.update_document(**document)
        # The last commit merges the earlier segments into its own: postings come back through the pool.
        writer.commit(optimize=number == len(batches) - 1)
    return segment_files(folder)


@pytest.mark.parametrize("case", ["one commit", "spilled to disk", "merged with deletions"])
def test_grouped_writer_writes_the_same_bytes_as_whooshs_writer(tmp_path, case):
    docs = documents()
    if case == "merged with deletions":
        batches, options = [docs[:30], docs[30:], docs[10:20]], {}  # the last batch replaces ten documents
    elif case == "spilled to disk":
        batches, options = [docs], {"limitmb": 1}
    else:
        batches, options = [docs], {}
    ours = build(tmp_path / "ours", GroupedWriter, batches, **options)
    whooshs = build(tmp_path / "whoosh", SegmentWriter, batches, **options)
    assert {".pst", ".trm"} <= set(ours)
    assert ours == whooshs


def test_a_rebuild_writes_segments_of_a_bounded_size_and_publishes_them_together(tmp_path, monkeypatch):
    monkeypatch.setattr(kb_index, "SEGMENT_DOCS", 25)
    index = SearchIndex(tmp_path / "index")
    index.upsert(documents(PATHS[:5], prefix="old-"))
    assert index.rebuild(iter(documents())) == 60
    with index.searcher() as searcher:
        assert [reader.doc_count() for reader, _ in searcher.reader().leaf_readers()] == [25, 25, 10]
    assert index.slugs() == {path.stem for path in PATHS}
    # Files of the replaced index are gone; only the three segments' files and one table of contents remain.
    files = [path.name for path in (tmp_path / "index").iterdir() if "LOCK" not in path.name]
    assert len([name for name in files if name.endswith(".toc")]) == 1
    assert len({name.split(".")[0] for name in files if not name.endswith(".toc")}) == 3, files


def test_a_failed_rebuild_keeps_the_index_as_it_was(tmp_path):
    index = SearchIndex(tmp_path / "index")
    index.upsert(documents(PATHS[:5]))

    def broken():
        yield from documents(PATHS[5:10])
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        index.rebuild(broken())
    assert index.slugs() == {path.stem for path in PATHS[:5]}
    index.upsert(documents(PATHS[5:6]))  # the lock was released
    assert len(index.slugs()) == 6


def test_a_segment_written_elsewhere_is_not_searchable_until_published(tmp_path):
    index = SearchIndex(tmp_path / "index")
    index.upsert(documents(PATHS[:2]))
    segment = write_segment(tmp_path / "index", documents(PATHS[2:4]))
    assert segment.doc_count() == 2
    assert index.slugs() == {path.stem for path in PATHS[:2]}
