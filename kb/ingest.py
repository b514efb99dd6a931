"""Import postmortems: parse, tag, store in one transaction per file, then index."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from kb.context import KnowledgeBase
from kb.errors import Conflict, KBError, ParseError
from kb.models import Postmortem, PostmortemLabel, PostmortemService, seconds_between, utcnow
from kb.parse import UNSTORABLE_RE, Decision, ParsedPostmortem, parse_bytes, parse_file, slugify
from kb.reindex import INDEX_CHUNK, IndexWorker, index_postmortems, index_processes

FRONT_MATTER_DECIDER = "front matter"
OUTCOMES = ("imported", "updated", "unchanged", "failed")
JSONL_BACKUP = "postmortems.jsonl"  # what `kb export --format jsonl` writes; other *.jsonl only when named
MANY = 500  # fewer files than this are indexed in this process: starting another costs more than it saves


@dataclass
class FileResult:
    path: str
    outcome: str
    slug: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


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


def discover_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Return the markdown files under paths (recursively) and a failure for each unusable path."""
    files: list[Path] = []
    problems: list[FileResult] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = resolve_path(path)
        if resolved not in seen:
            seen.add(resolved)
            files.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            def on_error(error: OSError) -> None:
                reason = f"cannot read folder: {error.strerror}"
                problems.append(FileResult(str(error.filename), "failed", reason=reason))

            # Links to folders are not followed, so a link loop cannot trap the walk. Broken links, pipes
            # and devices named *.md are kept: parse_file reports them without opening them.
            for folder, dirs, names in os.walk(path, onerror=on_error):
                dirs.sort()
                for name in sorted(names):
                    if name.lower().endswith(".md") or name == JSONL_BACKUP:
                        add(Path(folder) / name)
        elif path.exists() or path.is_symlink():
            add(path)
        else:
            problems.append(FileResult(str(path), "failed", reason="no such file or folder"))
    return files, problems


def resolve_path(path: Path) -> Path:
    """Return the absolute path of a file with links resolved, or just absolute when a link loops."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a symlink loop
        return Path(os.path.abspath(path))


def unknown_label_warnings(human_labels: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    """Return a warning for each front matter facet or category the taxonomy does not have."""
    return [
        f"front matter {kind_key}: unknown {kind} {label_id!r}; ignored"
        for kind_key, kind in (("facets", "facet"), ("categories", "category"))
        for label_id in human_labels.get(kind_key, [])
        if labels.get(label_id) != kind
    ]


def merge_tags(
    *, session: Session, postmortem: Postmortem, human_labels: dict[str, list[str]], suggestions: list,
    labels: dict[str, str], decisions: list[Decision] = (),
) -> list[str]:
    """Write the machine's suggestions and the file's human labels without undoing human decisions.

    decisions (from a backup) say who decided what and when; other front matter labels count as
    confirmed by the file.
    """
    existing = {tag.label_id: tag for tag in session.exec(
        select(PostmortemLabel).where(PostmortemLabel.postmortem_id == postmortem.id)
    )}
    now = utcnow()
    for decision in file_decisions(human_labels, decisions, labels, now):
        tag = existing.get(decision.label)
        if tag is None:
            tag = PostmortemLabel(postmortem_id=postmortem.id, label_id=decision.label)
            existing[decision.label] = tag
        elif tag.source == "human":
            continue  # a person already decided; the file does not overrule them
        tag.source, tag.status = "human", decision.status
        tag.decided_by, tag.decided_at = decision.by or FRONT_MATTER_DECIDER, decision.at or now
        session.add(tag)
    suggested = {suggestion.label: suggestion for suggestion in suggestions}
    for label_id, tag in existing.items():
        if tag.source == "auto" and label_id not in suggested:
            session.delete(tag)
    for label_id, suggestion in suggested.items():
        tag = existing.get(label_id)
        if tag is None:
            tag = PostmortemLabel(
                postmortem_id=postmortem.id, label_id=label_id, source="auto", status="suggested"
            )
        # Score and evidence are the machine's opinion and may change; source and status may not.
        tag.score, tag.evidence, tag.method = suggestion.score, suggestion.evidence, suggestion.method
        tag.cues = suggestion.cues
        session.add(tag)
    return tag_warnings(human_labels, decisions, labels)


def file_decisions(human_labels: dict[str, list[str]], decisions: list[Decision], labels: dict[str, str],
                   now) -> list[Decision]:
    """Return the decisions a file brings: its backup's, then its front matter labels as confirmed."""
    decided = {d.label: d for d in decisions if d.label in labels}
    from_file = [Decision(label_id, "confirmed", FRONT_MATTER_DECIDER, now)
                 for kind_key, kind in (("facets", "facet"), ("categories", "category"))
                 for label_id in human_labels.get(kind_key, [])
                 if labels.get(label_id) == kind and label_id not in decided]
    return [*decided.values(), *from_file]


def tag_warnings(human_labels: dict[str, list[str]], decisions: list[Decision], labels: dict[str, str]) -> list[str]:
    unknown = [f"front matter decisions: unknown label {d.label!r}; ignored"
               for d in decisions if d.label not in labels]
    return unknown_label_warnings(human_labels, labels) + unknown


def new_tag_rows(*, postmortem_id: int, parsed: ParsedPostmortem, suggestions: list, labels: dict[str, str]
                 ) -> list[dict]:
    """Return the tag rows of a new postmortem, as merge_tags would write them, for one bulk INSERT."""
    now = utcnow()
    rows = {decision.label: {
        "postmortem_id": postmortem_id, "label_id": decision.label, "source": "human", "status": decision.status,
        "decided_by": decision.by or FRONT_MATTER_DECIDER, "decided_at": decision.at or now,
        "score": 0.0, "evidence": [], "method": "", "cues": [],
    } for decision in file_decisions(parsed.human_labels, parsed.decisions, labels, now)}
    for suggestion in suggestions:
        row = rows.setdefault(suggestion.label, {
            "postmortem_id": postmortem_id, "label_id": suggestion.label, "source": "auto", "status": "suggested",
            "decided_by": "", "decided_at": None})
        row.update(score=suggestion.score, evidence=suggestion.evidence, method=suggestion.method,
                   cues=suggestion.cues)
    return list(rows.values())


def set_services(*, session: Session, postmortem: Postmortem) -> None:
    """Make the service rows of a postmortem match its services list."""
    wanted = service_names(postmortem)
    existing = {row.service: row for row in session.exec(
        select(PostmortemService).where(PostmortemService.postmortem_id == postmortem.id)
    )}
    for service, row in existing.items():
        if service not in wanted:
            session.delete(row)
    for service in wanted - set(existing):
        session.add(PostmortemService(postmortem_id=postmortem.id, service=service))


def service_names(postmortem: Postmortem) -> set[str]:
    return {service.strip()[:200] for service in postmortem.services if service.strip()}


def find_existing(*, session: Session, parsed: ParsedPostmortem,
                  rows: dict[str, Postmortem] | None = None) -> Postmortem | None:
    """Return the stored postmortem this file updates, raising Conflict if its slug is taken.

    rows, when given, holds the batch's stored postmortems by slug, read beforehand in one query.
    """
    if rows is None:
        row = session.exec(select(Postmortem).where(Postmortem.slug == parsed.slug)).first()
    else:
        row = rows.get(parsed.slug)
    if row is not None and row.source_path != parsed.source_path:
        owner = row.source_path or "a postmortem created in the web UI or API"
        raise Conflict(f"slug {parsed.slug!r} already belongs to {owner}; give this file another name or a 'slug:'")
    return row


def store_parsed(
    *, session: Session, parsed: ParsedPostmortem, suggestions: list, labels: dict[str, str]
) -> tuple[str, Postmortem, list[str]]:
    """Insert or update a parsed postmortem and its tags; the caller commits."""
    row = find_existing(session=session, parsed=parsed)
    if row is not None and row.content_hash == parsed.content_hash:
        return "unchanged", row, []
    outcome = "imported" if row is None else "updated"
    row = fill_row(row, parsed)
    session.add(row)
    session.flush()  # gives a new row its id for the tags
    set_services(session=session, postmortem=row)
    warnings = merge_tags(session=session, postmortem=row, human_labels=parsed.human_labels,
                          decisions=parsed.decisions,
                          suggestions=suggestions, labels=labels)
    return outcome, row, warnings


def fill_row(row: Postmortem | None, parsed: ParsedPostmortem) -> Postmortem:
    """Return row (a new one when None) holding what parsed says, marked for reindexing."""
    row = row or Postmortem(slug=parsed.slug, title=parsed.title)
    row.title, row.summary, row.body = parsed.title, parsed.summary, parsed.body
    row.incident_date, row.severity = parsed.incident_date, parsed.severity
    row.services, row.authors = parsed.services, parsed.authors
    row.sections = parsed.section_texts()
    row.source_path, row.content_hash = parsed.source_path, parsed.content_hash
    row.started_at, row.detected_at, row.resolved_at = parsed.started_at, parsed.detected_at, parsed.resolved_at
    row.detect_seconds = seconds_between(row.started_at, row.detected_at)
    row.resolve_seconds = seconds_between(row.detected_at, row.resolved_at)
    row.updated_at = utcnow()
    row.needs_reindex = True
    return row


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
    worker = IndexWorker(kb) if not dry_run and len(files) >= MANY and index_processes() > 1 else None
    unindexed: list[int] = []
    try:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            results, stored_ids = import_batch(kb, batch, dry_session=dry_session, strict=strict)
            if worker:
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


@dataclass(frozen=True)
class JsonlEntry:
    """One postmortem of a JSON-lines backup written by `kb export --format jsonl`."""

    path: Path
    line: int
    markdown: str
    slug: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


def expand_sources(files: Iterable[Path | JsonlEntry]) -> tuple[list[Path | JsonlEntry], list[FileResult]]:
    """Return the files with each JSON-lines backup replaced by its entries, and a failure per bad line."""
    items: list[Path | JsonlEntry] = []
    problems: list[FileResult] = []
    for item in files:
        if isinstance(item, JsonlEntry) or item.suffix.lower() != ".jsonl":
            items.append(item)
            continue
        if not item.is_file():  # a pipe or device would block the import for ever once opened
            problems.append(FileResult(str(item), "failed", reason="cannot read: not a regular file"))
            continue
        try:
            with item.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError as error:
                        reason = f"line {number}: not JSON ({error})"
                        problems.append(FileResult(f"{item}:{number}", "failed", reason=reason))
                        continue
                    if not isinstance(record, dict) or not isinstance(record.get("markdown"), str):
                        reason = f'line {number}: needs a "markdown" field, as `kb export --format jsonl` writes'
                        problems.append(FileResult(f"{item}:{number}", "failed", reason=reason))
                        continue
                    if UNSTORABLE_RE.search(record["markdown"]):  # JSON may escape what UTF-8 cannot hold
                        reason = f'line {number}: "markdown" holds a NUL character or a lone surrogate'
                        problems.append(FileResult(f"{item}:{number}", "failed", reason=reason))
                        continue
                    items.append(JsonlEntry(item, number, record["markdown"], str(record.get("slug") or number)))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(FileResult(str(item), "failed", reason=f"cannot read: {error}"))
    return items, problems


def _source_path(item: Path | JsonlEntry) -> str:
    if isinstance(item, JsonlEntry):
        return f"{resolve_path(item.path)}#{item.slug}"
    return str(resolve_path(item))


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
    sources = {item: _source_path(item) for item in files}
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


def _tagger_problem(error: ValueError) -> str:
    # spaCy's messages go on with advice about models this pipeline does not use: keep the first sentence.
    return f"the tagger cannot read this text: {str(error).split('. ')[0]}"


def _reason(error: ParseError) -> str:
    return error.reason if error.line is None else f"line {error.line}: {error.reason}"
