"""Domain exceptions that the web layer and the CLI turn into messages."""

from __future__ import annotations

from pathlib import Path


class KBError(Exception):
    """Base class of every error the knowledge base raises on purpose."""


class ParseError(KBError):
    """A postmortem file that cannot be read or parsed."""

    def __init__(self, path: str | Path | None, line: int | None, reason: str):
        self.path = str(path) if path is not None else "<input>"
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")


class NotFound(KBError):
    """A postmortem, label or other record that does not exist."""


class InvalidQuery(KBError):
    """A search query or filter that cannot be understood."""


class Conflict(KBError):
    """A write that would overwrite something it must not."""
