"""Read YAML front matter: the mapping at the top of a postmortem, its errors by file line, its values as text."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.reader import ReaderError

from kb.errors import ParseError

SURROGATE_RE = re.compile("[\ud800-\udfff]")

# A few thousand nested brackets make PyYAML's recursive composer raise RecursionError.
YAML_ERRORS = (yaml.YAMLError, RecursionError)


class FrontMatterLoader(yaml.SafeLoader):
    """YAML's safe loader, except that scalars other than null stay the text the author wrote."""


# libyaml's parser, where PyYAML was built with it, reads front matter about ten times faster; the pure
# Python one still reads any block that fails, so that errors are worded (and located) the same way.
FastFrontMatterLoader = type("FastFrontMatterLoader", (getattr(yaml, "CSafeLoader", yaml.SafeLoader),), {})

# So `title: yes` is "yes", not True, and `title: 1e3` not 1000.0; dates are parsed (and warned about) here.
# Explicit tags are read as text too: PyYAML's own constructors raise ValueError, IndexError or
# AttributeError on values such as `!!int` followed by nothing or `!!timestamp 2024-13-45`.
for _tag in ("bool", "int", "float", "timestamp", "binary"):
    for _loader in (FrontMatterLoader, FastFrontMatterLoader):
        _loader.add_constructor(f"tag:yaml.org,2002:{_tag}", yaml.SafeLoader.construct_yaml_str)


def load_front_matter(block: str) -> Any:
    """Return the YAML value of a front matter block; raise one of YAML_ERRORS."""
    # PyYAML refuses control characters that libyaml lets through.
    if not yaml.reader.Reader.NON_PRINTABLE.search(block):
        try:
            return yaml.load(block, Loader=FastFrontMatterLoader)
        except YAML_ERRORS:
            pass
    return yaml.load(block, Loader=FrontMatterLoader)


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, body, line number where the body starts)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text, 1
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            block = "\n".join(lines[1:index])
            try:
                data = load_front_matter(block) if block.strip() else {}
            except YAML_ERRORS as error:
                raise ParseError(path, *_yaml_problem(error, block)) from None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise ParseError(path, 2, "front matter must be a mapping of keys to values")
            return data, "\n".join(lines[index + 1 :]), index + 2
    raise ParseError(path, 1, "front matter opened with '---' is never closed")


def _yaml_problem(error: Exception, block: str) -> tuple[int | None, str]:
    """Return the file line and the reason of an error in a front matter block (which starts on line 2)."""
    if isinstance(error, RecursionError):
        return None, "front matter is nested too deeply"
    if isinstance(error, ReaderError):
        line = block.count("\n", 0, error.position) + 2
        return line, f"front matter is not valid YAML: character {error.character:#06x} is not allowed"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "invalid YAML"
    return (mark.line + 2 if mark is not None else None), f"front matter is not valid YAML: {problem}"


def as_list(value: Any, key: str, warnings: list[str]) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        warnings.append(f"front matter '{key}' should be a list; ignored")
        return []
    items = [item for item in value if item is not None]
    scalars = [_whole_characters(item, key, warnings).strip() for item in items if isinstance(item, str)]
    if len(scalars) < len(items):
        warnings.append(f"front matter '{key}' should be a list of text; nested lists and mappings ignored")
    return [item for item in scalars if item]


def as_text(value: Any, key: str, warnings: list[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        warnings.append(f"front matter '{key}' should be text; ignored")
        return ""
    return _whole_characters(value, key, warnings).strip()


def _whole_characters(value: str, key: str, warnings: list[str]) -> str:
    """Return value with escaped UTF-16 halves joined into characters; a half without its pair becomes U+FFFD."""
    if not SURROGATE_RE.search(value):
        return value
    # YAML, like JSON, may write a character beyond U+FFFF as two escapes ("\ud83d\udd17" is one emoji).
    joined = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if joined.count("\ufffd") > value.count("\ufffd"):
        warnings.append(f"front matter '{key}' holds an escaped half of a character; replaced with U+FFFD")
    return joined
