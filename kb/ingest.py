"""Import postmortems: parse, tag, store in one transaction per file, then index."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from kb.context import KnowledgeBase
from kb.errors import Conflict, KBError, ParseError
from kb.models import Postmortem, PostmortemLabel, PostmortemService, seconds_between, utcnow
from kb.parse import ParsedPostmortem, parse_bytes, parse_file, slugify
from kb.reindex import index_postmortems

FRONT_MATTER_DECIDER = "front matter"
OUTCOMES = ("imported", "updated", "unchanged", "failed")


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
                    if name.lower().endswith(".md"):
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
    labels: dict[str, str],
) -> list[str]:
    """Write the machine's suggestions and the file's human labels without undoing human decisions."""
    existing = {tag.label_id: tag for tag in session.exec(
        select(PostmortemLabel).where(PostmortemLabel.postmortem_id == postmortem.id)
    )}
    now = utcnow()
    for kind_key, kind in (("facets", "facet"), ("categories", "category")):
        for label_id in human_labels.get(kind_key, []):
            if labels.get(label_id) != kind:
                continue
            tag = existing.get(label_id)
            if tag is None:
                tag = PostmortemLabel(postmortem_id=postmortem.id, label_id=label_id)
                existing[label_id] = tag
            elif tag.source == "human":
                continue  # a person already decided; the file does not overrule them
            tag.source, tag.status = "human", "confirmed"
            tag.decided_by, tag.decided_at = FRONT_MATTER_DECIDER, now
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
    return unknown_label_warnings(human_labels, labels)


def set_services(*, session: Session, postmortem: Postmortem) -> None:
    """Make the service rows of a postmortem match its services list."""
    wanted = {service.strip()[:200] for service in postmortem.services if service.strip()}
    existing = {row.service: row for row in session.exec(
        select(PostmortemService).where(PostmortemService.postmortem_id == postmortem.id)
    )}
    for service, row in existing.items():
        if service not in wanted:
            session.delete(row)
    for service in wanted - set(existing):
        session.add(PostmortemService(postmortem_id=postmortem.id, service=service))


def find_existing(*, session: Session, parsed: ParsedPostmortem) -> Postmortem | None:
    """Return the stored postmortem this file updates, raising Conflict if its slug is taken."""
    row = session.exec(select(Postmortem).where(Postmortem.slug == parsed.slug)).first()
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
    session.add(row)
    session.flush()  # gives a new row its id for the tags
    set_services(session=session, postmortem=row)
    warnings = merge_tags(session=session, postmortem=row, human_labels=parsed.human_labels,
                          suggestions=suggestions, labels=labels)
    return outcome, row, warnings


def tagger_input(parsed: ParsedPostmortem) -> list[tuple[str, str]]:
    """Return the (section key, text) pairs the tagger reads: the title, then each section."""
    return [("title", parsed.title)] + [(section.key, section.text) for section in parsed.sections]


def import_paths(
    kb: KnowledgeBase,
    paths: Iterable[str | Path],
    *,
    dry_run: bool = False,
    on_progress: Callable[[FileResult], None] | None = None,
) -> ImportReport:
    """Import every markdown file under paths; each file succeeds or fails on its own."""
    files, problems = discover_files(paths)
    return import_files(kb, files, problems=problems, dry_run=dry_run, on_progress=on_progress)


def import_files(
    kb: KnowledgeBase,
    files: list[Path],
    *,
    problems: list[FileResult] = (),
    dry_run: bool = False,
    on_progress: Callable[[FileResult], None] | None = None,
    batch_size: int = 64,
) -> ImportReport:
    """Import these files in batches, reporting each result to on_progress as it is known.

    A dry run stores every file in one transaction that is rolled back at the end, so files of the same
    run see each other (a slug clash between two of them is reported) and nothing is kept.
    """
    report = ImportReport(results=list(problems))
    dry_session = kb.session() if dry_run else None
    try:
        for start in range(0, len(files), batch_size):
            for result in import_batch(kb, files[start : start + batch_size], dry_session=dry_session):
                report.results.append(result)
                if on_progress:
                    on_progress(result)
    finally:
        if dry_session is not None:
            dry_session.rollback()
            dry_session.close()
    return report


def import_batch(kb: KnowledgeBase, files: list[Path], *, dry_session: Session | None = None) -> list[FileResult]:
    """Parse and tag a batch of files together, then store each in its own transaction (or in dry_session)."""
    parsed_files: list[tuple[Path, ParsedPostmortem]] = []
    results: dict[Path, FileResult] = {}
    for path in files:
        try:
            parsed = parse_file(path, max_bytes=kb.config.max_upload_bytes)
            parsed.source_path = str(path.resolve())
            parsed_files.append((path, parsed))
        except ParseError as error:
            results[path] = FileResult(str(path), "failed", reason=_reason(error))
    all_suggestions = kb.tagger.tag_many(tagger_input(parsed) for _, parsed in parsed_files)
    stored_ids = []
    for (path, parsed), suggestions in zip(parsed_files, all_suggestions, strict=True):
        session = dry_session or kb.session()
        try:
            outcome, row, warnings = store_parsed(
                session=session, parsed=parsed, suggestions=suggestions, labels=kb.labels
            )
            if dry_session is None:
                session.commit()
                if outcome != "unchanged":
                    stored_ids.append(row.id)
            results[path] = FileResult(str(path), outcome, parsed.slug, warnings=parsed.warnings + warnings)
        except KBError as error:
            # store_parsed raises before it writes anything, so a dry run's transaction stays clean.
            if dry_session is None:
                session.rollback()
            results[path] = FileResult(str(path), "failed", parsed.slug, reason=str(error))
        finally:
            if dry_session is None:
                session.close()
    if stored_ids:
        index_postmortems(kb, stored_ids)
    return [results[path] for path in files]


def import_markdown(kb: KnowledgeBase, raw: bytes, *, filename: str = "") -> tuple[FileResult, Postmortem]:
    """Import one postmortem sent through the web UI or API; raise ParseError or Conflict."""
    name = Path(filename).name if filename else ""
    parsed = parse_bytes(raw, path=name or "<input>", max_bytes=kb.config.max_upload_bytes)
    if not name:
        parsed.slug = slugify(f"{parsed.incident_date or ''} {parsed.title}")
    parsed.source_path = ""
    suggestions = kb.tagger.tag(tagger_input(parsed))
    with kb.session() as session:
        existing = session.exec(select(Postmortem).where(Postmortem.slug == parsed.slug)).first()
        if existing is not None:
            raise Conflict(f"a postmortem with slug {parsed.slug!r} already exists")
        outcome, row, warnings = store_parsed(session=session, parsed=parsed, suggestions=suggestions, labels=kb.labels)
        session.commit()
    index_postmortems(kb, [row.id])
    return FileResult(name or "<input>", outcome, row.slug, warnings=parsed.warnings + warnings), row


def _reason(error: ParseError) -> str:
    return error.reason if error.line is None else f"line {error.line}: {error.reason}"
