"""Turn a markdown postmortem (YAML front matter optional) into a ParsedPostmortem."""

from __future__ import annotations

import hashlib
import re
import reprlib
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kb.errors import ParseError
from kb.frontmatter import as_list, as_text, split_front_matter

DATE_RE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
# Written so that a long run of spaces or hashes has one way to match: the former `(.+?)\s*#*\s*$` tail
# backtracked for minutes on one line of a few thousand spaces.
DATE_LINE_RE = re.compile(r"^\s*(?:[*_]+\s*)?date\s*(?:[*_]+\s*)?:\s*(?:[*_]+\s*)?(\S.*)$", re.IGNORECASE)
HEADING_RE = re.compile(r"^(#{1,6})\s+(\S.*)$")

# Canonical section keys, with the heading words that name them. The first key whose phrase
# occurs in a normalised heading wins, so more specific phrases come first.
SECTION_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contributing_factors", ("contributing", "what went wrong", "factors")),
    ("root_cause", ("root cause", "cause", "why", "trigger", "analysis")),
    ("lessons_learned", ("lesson", "learning", "went well", "got lucky", "takeaway", "reflection")),
    ("action_items", ("action", "follow up", "followup", "next step", "todo", "to do", "remediation items")),
    ("timeline", ("timeline", "sequence of events", "chronology")),
    ("impact", ("impact",)),
    ("detection", ("detection", "detected", "found out", "discovery")),
    ("resolution", ("resolution", "mitigation", "recovery", "fix", "remediation", "response")),
    ("background", ("background", "context")),
    ("summary", ("summary", "overview", "tl;dr", "tldr", "what happened", "description")),
)

# A phrase must start a word: "action" names action items, "extraction" does not.
SECTION_PATTERNS = tuple(
    (key, re.compile("|".join(r"\b" + re.escape(phrase) for phrase in phrases))) for key, phrases in SECTION_NAMES
)

SEVERITY_WORDS = {"critical": "SEV1", "high": "SEV2", "major": "SEV2", "medium": "SEV3",
                  "moderate": "SEV3", "minor": "SEV4", "low": "SEV4"}


# Short reprs for messages, so that a value built from YAML aliases (a "billion laughs") stays cheap.
SHORT = reprlib.Repr()
SHORT.maxstring, SHORT.maxother, SHORT.maxlist, SHORT.maxdict, SHORT.maxlevel = 80, 80, 4, 4, 2

# NUL cannot be stored in PostgreSQL text, and lone surrogates cannot be encoded at all.
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


@dataclass
class Section:
    heading: str
    key: str
    text: str


@dataclass
class Decision:
    label: str
    status: str  # "confirmed" or "rejected"
    by: str
    at: datetime | None


def parse_decisions(value: Any, warnings: list[str]) -> list[Decision]:
    """Return the decisions of a front matter 'decisions:' list, warning about entries that are not one."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        warnings.append("front matter 'decisions' should be a list; ignored")
        return []
    decisions = []
    for number, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str) \
                or entry.get("status") not in ("confirmed", "rejected"):
            warnings.append(f"front matter 'decisions' entry {number} needs a label and a status "
                            "(confirmed or rejected); ignored")
            continue
        at = parse_datetime(entry.get("at")) if entry.get("at") not in (None, "") else None
        by = as_text(entry.get("by"), "decisions: by", warnings)[:100]
        decisions.append(Decision(slugify(entry["label"], 64), entry["status"], by, at))
    return decisions


@dataclass
class ParsedPostmortem:
    slug: str
    title: str
    summary: str
    body: str
    incident_date: date | None
    severity: str
    services: list[str]
    authors: list[str]
    sections: list[Section]
    source_path: str
    content_hash: str
    started_at: datetime | None = None
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    human_labels: dict[str, list[str]] = field(default_factory=lambda: {"facets": [], "categories": []})
    # People's decisions carried by a backup (`kb export`): label, status, who and when.
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Return the title and body, the text the tagger reads."""
        return f"{self.title}\n\n{self.body}"

    def section_texts(self) -> dict[str, str]:
        """Return the text of each canonical section, joined when a key repeats."""
        merged: dict[str, list[str]] = {}
        for section in self.sections:
            merged.setdefault(section.key, []).append(section.text)
        return {key: "\n\n".join(parts).strip() for key, parts in merged.items()}


def slugify(text: str, max_length: int = 120) -> str:
    """Return a lower-case kebab-case slug of text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "postmortem"


def section_key(heading: str) -> str:
    """Return the canonical key of a section heading, or 'other'."""
    words = re.sub(r"[^a-z0-9;]+", " ", heading.lower().replace("-", " ")).strip()
    words = re.sub(r"^\d+\s*", "", words)
    for key, pattern in SECTION_PATTERNS:
        if pattern.search(words):
            return key
    return "other"


def normalise_severity(value: Any) -> str | None:
    """Return SEV1..SEV4 for the many ways people write severity, '' for none, None if unknown."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str | int):
        return None
    text = str(value).strip().lower()
    if text in SEVERITY_WORDS:
        return SEVERITY_WORDS[text]
    match = re.fullmatch(r"(?:sev|severity|s|p|priority)?[\s\-_]*([0-9])", text)
    if match:
        level = int(match.group(1))
        if level == 0:
            return "SEV1"
        if 1 <= level <= 4:
            return f"SEV{level}"
    return None


def decode_bytes(raw: bytes, path: str) -> tuple[str, list[str]]:
    """Decode file bytes as UTF-8 (with or without BOM), falling back to cp1252 with a warning."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ParseError(path, None, "file is UTF-16 text; save it as UTF-8")
    if b"\x00" in raw:
        raise ParseError(path, None, "binary file (contains NUL bytes), not markdown")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as utf8_error:
        try:
            # A UTF-8 byte order mark read as cp1252 would be "ï»¿" and hide the front matter.
            text = raw.removeprefix(b"\xef\xbb\xbf").decode("cp1252")
        except UnicodeDecodeError:
            line = raw[: utf8_error.start].count(b"\n") + 1
            raise ParseError(path, line, "not valid UTF-8 text") from None
        line = raw[: utf8_error.start].count(b"\n") + 1
        return text, [f"line {line}: not valid UTF-8; read as Windows-1252"]


def parse_date(value: Any) -> date | None:
    """Return a date from a date, datetime or ISO-like string, else None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = DATE_RE.search(value)
        if match:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                return None
    return None


def parse_datetime(value: Any) -> datetime | None:
    """Return a UTC datetime from a datetime, date or ISO string (UTC when no zone is given), else None."""
    if isinstance(value, datetime):
        return _to_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return _to_utc(parsed)
    return None


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def heading_name(text: str) -> str:
    """Return a heading's text without its optional closing hashes ("## Impact ##" names "Impact")."""
    name = text.rstrip()
    without = name.rstrip("#")
    if without != name and (not without or without[-1].isspace()):
        name = without.rstrip()
    return name or text.strip()


def split_sections(body: str) -> tuple[str | None, list[Section]]:
    """Return the first level-1 heading and the body's sections (text before any heading is 'summary')."""
    title = None
    sections: list[Section] = []
    heading, key, buffer = "", "summary", []
    in_code = False

    def flush() -> None:
        text = "\n".join(buffer).strip()
        if text:
            sections.append(Section(heading=heading, key=key, text=text))

    for line in body.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        match = None if in_code else HEADING_RE.match(line)
        if match:
            level, name = len(match.group(1)), heading_name(match.group(2))
            if level == 1 and title is None and not sections and not "".join(buffer).strip():
                title = name
                continue
            flush()
            heading, key, buffer = name, section_key(name), []
        else:
            buffer.append(line)
    flush()
    return title, sections


def first_paragraph(text: str, limit: int = 400) -> str:
    """Return the first prose paragraph of markdown text, shortened to limit characters."""
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().split("\n") if not HEADING_RE.match(ln.strip())]
        if not lines or not lines[0] or lines[0].startswith(("|", "#", "```", "---")):
            continue
        if DATE_LINE_RE.match(lines[0]) and len(lines) == 1:
            continue
        paragraph = " ".join(ln.lstrip("-*> ").strip() for ln in lines)
        paragraph = re.sub(r"[*_`]+", "", paragraph).strip()
        if len(paragraph) > limit:
            paragraph = paragraph[:limit].rsplit(" ", 1)[0] + "…"
        if paragraph:
            return paragraph
    return ""


def parse_text(text: str, *, path: str = "<input>", content_hash: str | None = None,
               warnings: list[str] | None = None) -> ParsedPostmortem:
    """Parse postmortem markdown text; path is used for messages, the slug and the date fallback."""
    warnings = list(warnings or [])
    if UNSTORABLE_RE.search(path):
        raise ParseError(path, None, "file name is not valid UTF-8; rename the file")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if bad := UNSTORABLE_RE.search(text):
        what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate, which is not valid Unicode"
        raise ParseError(path, text.count("\n", 0, bad.start()) + 1, f"text holds {what}")
    if not text.strip():
        raise ParseError(path, None, "file is empty")
    meta, body, _body_line = split_front_matter(text, path)
    heading_title, sections = split_sections(body)
    if not body.strip():
        raise ParseError(path, None, "file holds front matter but no postmortem text")

    stem = Path(path).stem if path != "<input>" else ""
    title = as_text(meta.get("title"), "title", warnings) or heading_title
    if not title:
        title = re.sub(r"^\d{4}-\d{2}-\d{2}[-_ ]*", "", stem).replace("-", " ").replace("_", " ").strip()
        title = title[:1].upper() + title[1:] if title else "Untitled postmortem"

    incident_date = None
    if meta.get("date") not in (None, ""):
        incident_date = parse_date(meta["date"])
        if incident_date is None:
            warnings.append(f"front matter 'date' {SHORT.repr(meta['date'])} is not a date (YYYY-MM-DD); ignored")
    if incident_date is None:
        for line in body.split("\n")[:40]:
            match = DATE_LINE_RE.match(line)
            if match and (found := parse_date(match.group(1))):
                incident_date = found
                break
    if incident_date is None and stem:
        incident_date = parse_date(stem)

    severity = normalise_severity(meta.get("severity"))
    if severity is None:
        warnings.append(f"front matter 'severity' {SHORT.repr(meta.get('severity'))} is not SEV1-SEV4; ignored")
        severity = ""

    times = {}
    for key in ("started", "detected", "resolved"):
        raw = meta.get(key)
        times[key] = parse_datetime(raw) if raw not in (None, "") else None
        if raw not in (None, "") and times[key] is None:
            warnings.append(f"front matter '{key}' {SHORT.repr(raw)} is not a date and time; ignored")

    for earlier, later in (("started", "detected"), ("detected", "resolved"), ("started", "resolved")):
        if times[earlier] and times[later] and times[later] < times[earlier]:
            warnings.append(f"front matter '{later}' is earlier than '{earlier}'; that time is not used")
            times[later] = None

    if heading_title and heading_title == title:
        # The heading is the title: drop it so pages do not show the title twice.
        body = re.sub(r"\A\s*#[ \t]+[^\n]*\n?", "", body, count=1)

    slug_source = as_text(meta.get("slug"), "slug", warnings) or stem or title
    summary = as_text(meta.get("summary"), "summary", warnings)
    if not summary:
        summary_sections = [s.text for s in sections if s.key == "summary"]
        summary = first_paragraph(summary_sections[0] if summary_sections else body)

    return ParsedPostmortem(
        slug=slugify(slug_source),
        title=title,
        summary=summary,
        body=body.strip("\n"),
        incident_date=incident_date,
        severity=severity,
        services=as_list(meta.get("services", meta.get("service")), "services", warnings),
        authors=as_list(meta.get("authors", meta.get("author")), "authors", warnings),
        sections=sections,
        source_path=path if path != "<input>" else "",
        content_hash=content_hash or hashlib.sha256(text.encode()).hexdigest(),
        started_at=times["started"],
        detected_at=times["detected"],
        resolved_at=times["resolved"],
        human_labels={
            "facets": [slugify(x, 64) for x in as_list(meta.get("facets"), "facets", warnings)],
            "categories": [slugify(x, 64) for x in as_list(meta.get("categories"), "categories", warnings)],
        },
        decisions=parse_decisions(meta.get("decisions"), warnings),
        warnings=warnings,
    )


def parse_bytes(raw: bytes, *, path: str = "<input>", max_bytes: int | None = None) -> ParsedPostmortem:
    """Parse the bytes of a postmortem file."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise ParseError(path, None, f"file is {len(raw):,} bytes, over the {max_bytes:,}-byte limit")
    text, warnings = decode_bytes(raw, path)
    return parse_text(text, path=path, content_hash=hashlib.sha256(raw).hexdigest(), warnings=warnings)


def read_file(path: Path, *, max_bytes: int | None = None) -> bytes:
    """Return the bytes of a regular file, never opening a FIFO or device and never reading past the limit."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
            raise ParseError(path, None, f"not a regular file but {kind}")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ParseError(path, None, f"file is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit")
        with path.open("rb") as file:
            # One byte more than allowed is enough to tell that a file that grew since stat() is too big.
            return file.read() if max_bytes is None else file.read(max_bytes + 1)
    except OSError as error:
        if path.is_symlink() and not path.exists():
            raise ParseError(path, None, "cannot read file: broken or looping symbolic link") from None
        raise ParseError(path, None, f"cannot read file: {error.strerror or error}") from None


def parse_file(path: str | Path, *, max_bytes: int | None = None) -> ParsedPostmortem:
    """Read and parse a postmortem file."""
    path = Path(path)
    return parse_bytes(read_file(path, max_bytes=max_bytes), path=str(path), max_bytes=max_bytes)
