"""Import postmortems in batches: parse, tag, store (one transaction a batch), then index."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from kb.context import KnowledgeBase
from kb.errors import Conflict, KBError, ParseError
from kb.models import Postmortem, PostmortemLabel, PostmortemService
from kb.parse import UNSTORABLE_RE, ParsedPostmortem, parse_bytes, parse_file, slugify
from kb.records import (
    fill_row,
    find_existing,
    merge_tags,
    new_tag_rows,
    service_names,
    set_services,
    store_parsed,
    tag_warnings,
    unknown_label_warnings,
)
from kb.reindex import INDEX_CHUNK, IndexWorker, index_postmortems, index_processes
from kb.sources import FileResult, JsonlEntry, discover_files, expand_sources, source_path

OUTCOMES = ("imported", "updated", "unchanged", "failed")
MANY = 500  # fewer files than this are indexed in this process: starting another costs more than it saves


@dataclass
class ImportReport:
    results: list[FileResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Return how many files ended in each outcome."""
        found = Counter(result.outcome for result in self.results)
        return {outcome: found.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> list[FileResult]:
        return [result for result in self.results if result.outcome == "failed"]


def tagger_input(parsed: ParsedPostmortem) -> list[tuple[str, str]]:
    """Return the (section key, text) pairs the tagger reads: the title, then each section."""
    return [("title", parsed.title)] + [(section.key, section.text) for section in parsed.sections]


def import_paths(
    kb: KnowledgeBase,
    paths: Iterable[str | Path],
    *,
    dry_run: bool = False,
    on_progress: Callable[[FileResult], None] | None = None,
    strict: bool = False,
) -> ImportReport:
    """Import every markdown file under paths; each file succeeds or fails on its own."""
    files, problems = discover_files(paths)
    return import_files(kb, files, problems=problems, dry_run=dry_run, on_progress=on_progress, strict=strict)


def import_files(
    kb: KnowledgeBase,
    files: list[Path],
    *,
    problems: list[FileResult] = (),
    dry_run: bool = False,
    on_progress: Callable[[FileResult], None] | None = None,
    batch_size: int = 64,
    strict: bool = False,
) -> ImportReport:
    """Import these files in batches, reporting each result to on_progress as it is known.

    Stored postmortems stay marked for reindexing until they are in the search index, so an interrupted
    import is healed at the next start. With many files and more than one core, a second process indexes
    what is stored while this one goes on; otherwise they are indexed here at the end. A dry run stores
    every file in one transaction that is rolled back at the end, so files of the same run see each other
    (a slug clash between two of them is reported) and nothing is kept. With strict, a file with any
    warning fails and nothing of it is stored.
    """
    files, unreadable = expand_sources(files)
    report = ImportReport(results=[*problems, *unreadable])
    dry_session = kb.session() if dry_run else None
    in_parallel = not dry_run and len(files) >= MANY and index_processes() > 1
    worker: IndexWorker | None = None  # started by the first stored batch: a re-import may change nothing
    unindexed: list[int] = []
    try:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            results, stored_ids = import_batch(kb, batch, dry_session=dry_session, strict=strict)
            if in_parallel and stored_ids:
                worker = worker or IndexWorker(kb)
                worker.add(stored_ids)
            else:
                unindexed += stored_ids
            for result in results:
                report.results.append(result)
                if on_progress:
                    on_progress(result)
    except BaseException:
        if worker:
            worker.stop()
            worker = None
        raise
    finally:
        if worker:
            worker.finish()
        for start in range(0, len(unindexed), INDEX_CHUNK):
            index_postmortems(kb, unindexed[start : start + INDEX_CHUNK])
        if dry_session is not None:
            dry_session.rollback()
            dry_session.close()
    return report


def stored_hashes(session: Session, source_paths: list[str]) -> dict[str, tuple[str, str]]:
    """Return (content hash, slug) of the postmortems imported from these paths."""
    rows = session.exec(select(Postmortem.source_path, Postmortem.content_hash, Postmortem.slug)
                        .where(Postmortem.source_path.in_(source_paths)))
    return {path: (content_hash, slug) for path, content_hash, slug in rows}


def _read(kb: KnowledgeBase, item: Path | JsonlEntry, stored: tuple[str, str] | None) -> ParsedPostmortem | str:
    """Return the parsed item, or the stored slug when its bytes are the ones stored (neither parsed nor tagged)."""
    limit = kb.config.max_upload_bytes
    if isinstance(item, JsonlEntry):
        raw = item.markdown.encode("utf-8")
    elif stored and item.is_file() and item.stat().st_size <= limit:
        raw = item.read_bytes()
    else:
        return parse_file(item, max_bytes=limit)
    if stored and hashlib.sha256(raw).hexdigest() == stored[0]:
        return stored[1]
    parsed = parse_bytes(raw, path=str(item), max_bytes=limit)
    if isinstance(item, JsonlEntry):
        parsed.slug = slugify(item.slug)  # the backup's own slug, even when its markdown does not repeat it
    return parsed


def read_batch(
    kb: KnowledgeBase, files: list[Path | JsonlEntry], *, session: Session, strict: bool
) -> tuple[dict[Path | JsonlEntry, FileResult], list[tuple[Path | JsonlEntry, ParsedPostmortem]]]:
    """Parse the files that changed since their last import; report the unchanged and the failed ones."""
    results: dict[Path | JsonlEntry, FileResult] = {}
    parsed_files: list[tuple[Path | JsonlEntry, ParsedPostmortem]] = []
    sources = {item: source_path(item) for item in files}
    # A file name that is not UTF-8 cannot be a query parameter; parse_file fails that file with the reason.
    known = stored_hashes(session, [source for source in sources.values() if not UNSTORABLE_RE.search(source)])
    for item in files:
        try:
            try:
                # With strict, unchanged files are parsed too, so that their warnings still fail them.
                parsed = _read(kb, item, None if strict else known.get(sources[item]))
            except OSError:  # vanished or unreadable since it was found: parse_file words the reason
                parsed = parse_file(item, max_bytes=kb.config.max_upload_bytes)
        except ParseError as error:
            results[item] = FileResult(str(item), "failed", reason=_reason(error))
            continue
        if isinstance(parsed, str):
            results[item] = FileResult(str(item), "unchanged", parsed)
            continue
        parsed.source_path = sources[item]
        # Strict failures are decided before anything is written, so a dry run's shared session stays clean.
        warnings = parsed.warnings + unknown_label_warnings(parsed.human_labels, kb.labels)
        if strict and warnings:
            reason = "strict: " + "; ".join(warnings)
            results[item] = FileResult(str(item), "failed", parsed.slug, reason=reason, warnings=warnings)
        else:
            parsed_files.append((item, parsed))
    return results, parsed_files


def import_batch(
    kb: KnowledgeBase, files: list[Path], *, dry_session: Session | None = None, strict: bool = False
) -> tuple[list[FileResult], list[int]]:
    """Parse and tag a batch of files together and store them; return each file's result and the stored ids.

    The batch commits once. Should any file fail to store (a slug clash, a database error), the batch is
    rolled back and stored again one file per transaction, so that only the file at fault fails.
    """
    with kb.session() as session:
        results, parsed_files = read_batch(kb, files, session=dry_session or session, strict=strict)
    work = tag_batch(kb, parsed_files, results)
    if dry_session is not None:
        stored = _store_each(kb, work, results, session=dry_session)
    else:
        session = kb.session()
        try:
            stored = _store_all(kb, work, results, session=session)
            session.commit()
        except (KBError, SQLAlchemyError):
            session.rollback()
            stored = [row_id for item in work for row_id in _store_each(kb, [item], results, session=None)]
        finally:
            session.close()
    return [results[path] for path in files], stored


def tag_batch(
    kb: KnowledgeBase, parsed_files: list[tuple[Path, ParsedPostmortem]], results: dict[Path, FileResult]
) -> list[tuple[tuple[Path, ParsedPostmortem], list]]:
    """Return each parsed file with the tagger's suggestions; a file the tagger refuses fails in results."""
    try:
        suggestions = kb.tagger.tag_many(tagger_input(parsed) for _, parsed in parsed_files)
        return list(zip(parsed_files, suggestions, strict=True))
    except ValueError:
        # spaCy refuses some texts (longer than nlp.max_length): tag one by one so that only those fail.
        work = []
        for path, parsed in parsed_files:
            try:
                work.append(((path, parsed), kb.tagger.tag(tagger_input(parsed))))
            except ValueError as error:
                results[path] = FileResult(str(path), "failed", parsed.slug, reason=_tagger_problem(error))
        return work


def _store_all(kb: KnowledgeBase, work: list, results: dict[Path, FileResult], *, session: Session) -> list[int]:
    """Store a batch in session with a few statements: one query for what is stored, one flush for new rows.

    Raises like store_parsed, for the caller to store the files one by one instead.
    """
    slugs = [parsed.slug for (_, parsed), _ in work]
    rows = {row.slug: row for row in session.exec(select(Postmortem).where(Postmortem.slug.in_(slugs)))}
    changed = []
    with session.no_autoflush:
        for (path, parsed), suggestions in work:
            row = find_existing(session=session, parsed=parsed, rows=rows)
            if row is not None and row.content_hash == parsed.content_hash:
                results[path] = FileResult(str(path), "unchanged", parsed.slug, warnings=parsed.warnings)
                continue
            changed.append((path, parsed, suggestions, row is None))
            rows[parsed.slug] = row = fill_row(row, parsed)
            session.add(row)
    session.flush()  # one INSERT for the new rows, giving them ids for their tags
    tags, services = [], []
    for path, parsed, suggestions, new in changed:
        row = rows[parsed.slug]
        if new:  # nothing to merge with: plain rows, inserted together below
            tags += new_tag_rows(postmortem_id=row.id, parsed=parsed, suggestions=suggestions, labels=kb.labels)
            services += [{"postmortem_id": row.id, "service": name} for name in service_names(row)]
            warnings = tag_warnings(parsed.human_labels, parsed.decisions, kb.labels)
        else:
            set_services(session=session, postmortem=row)
            warnings = merge_tags(session=session, postmortem=row, human_labels=parsed.human_labels,
                                  decisions=parsed.decisions, suggestions=suggestions, labels=kb.labels)
        outcome = "imported" if new else "updated"
        results[path] = FileResult(str(path), outcome, parsed.slug, warnings=parsed.warnings + warnings)
    for model, values in ((PostmortemLabel, tags), (PostmortemService, services)):
        if values:
            session.execute(insert(model), values)
    return [rows[parsed.slug].id for _, parsed, _, _ in changed]


def _store_each(kb: KnowledgeBase, work: list, results: dict[Path, FileResult], *, session: Session | None
                ) -> list[int]:
    """Store each file in a transaction of its own, or all in session (a dry run); return the stored ids."""
    stored = []
    for (path, parsed), suggestions in work:
        own = session or kb.session()
        try:
            outcome, row, warnings = store_parsed(
                session=own, parsed=parsed, suggestions=suggestions, labels=kb.labels
            )
            if session is None:
                own.commit()
                if outcome != "unchanged":
                    stored.append(row.id)
            results[path] = FileResult(str(path), outcome, parsed.slug, warnings=parsed.warnings + warnings)
        except KBError as error:
            # store_parsed raises before it writes anything, so a dry run's transaction stays clean.
            if session is None:
                own.rollback()
            results[path] = FileResult(str(path), "failed", parsed.slug, reason=str(error))
        except SQLAlchemyError as error:
            # A database error leaves the transaction unusable: a dry run loses its earlier files too.
            own.rollback()
            reason = f"could not store: {str(error).splitlines()[0]}"
            results[path] = FileResult(str(path), "failed", parsed.slug, reason=reason)
        finally:
            if session is None:
                own.close()
    return stored


def import_markdown(kb: KnowledgeBase, raw: bytes, *, filename: str = "") -> tuple[FileResult, Postmortem]:
    """Import one postmortem sent through the web UI or API; raise ParseError or Conflict."""
    name = Path(filename).name if filename else ""
    parsed = parse_bytes(raw, path=name or "<input>", max_bytes=kb.config.max_upload_bytes)
    if not name:
        parsed.slug = slugify(f"{parsed.incident_date or ''} {parsed.title}")
    parsed.source_path = ""
    try:
        suggestions = kb.tagger.tag(tagger_input(parsed))
    except ValueError as error:
        raise ParseError(name or "<input>", None, _tagger_problem(error)) from None
    with kb.session() as session:
        existing = session.exec(select(Postmortem).where(Postmortem.slug == parsed.slug)).first()
        if existing is not None:
            raise Conflict(f"a postmortem with slug {parsed.slug!r} already exists")
        outcome, row, warnings = store_parsed(session=session, parsed=parsed, suggestions=suggestions, labels=kb.labels)
        session.commit()
    index_postmortems(kb, [row.id])
    return FileResult(name or "<input>", outcome, row.slug, warnings=parsed.warnings + warnings), row


def preview_markdown(kb: KnowledgeBase, raw: bytes) -> tuple[ParsedPostmortem, list]:
    """Parse and tag one postmortem without storing it, for the editor's preview; raise ParseError.

    Returns the parsed postmortem and the tagger's suggestions, less the labels its front matter already gives.
    """
    parsed = parse_bytes(raw, path="<input>", max_bytes=kb.config.max_upload_bytes)
    try:
        suggestions = kb.tagger.tag(tagger_input(parsed))
    except ValueError as error:
        raise ParseError("<input>", None, _tagger_problem(error)) from None
    given = set(parsed.human_labels["facets"]) | set(parsed.human_labels["categories"])
    return parsed, [suggestion for suggestion in suggestions if suggestion.label not in given]


def _tagger_problem(error: ValueError) -> str:
    # spaCy's messages go on with advice about models this pipeline does not use: keep the first sentence.
    return f"the tagger cannot read this text: {str(error).split('. ')[0]}"


def _reason(error: ParseError) -> str:
    return error.reason if error.line is None else f"line {error.line}: {error.reason}"
