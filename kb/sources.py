"""Where postmortems come from: markdown files found under folders, and the records of a JSON-lines backup."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kb.parse import UNSTORABLE_RE

JSONL_BACKUP = "postmortems.jsonl"  # what `kb export --format jsonl` writes; other *.jsonl only when named


@dataclass
class FileResult:
    path: str
    outcome: str
    slug: str = ""
    reason: str = ""
    warnings: list[str] = field(default_factory=list)


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


def source_path(item: Path | JsonlEntry) -> str:
    if isinstance(item, JsonlEntry):
        return f"{resolve_path(item.path)}#{item.slug}"
    return str(resolve_path(item))
