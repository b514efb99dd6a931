"""kb.parse on arbitrary input: it returns a postmortem or raises ParseError, never anything else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kb.errors import ParseError
from kb.parse import ParsedPostmortem, parse_bytes, parse_text

FAST = settings(max_examples=250, deadline=None, derandomize=True, database=None)

# Pieces of YAML front matter, right and wrong: keys the parser reads, YAML syntax and its tags.
YAML_PIECES = st.sampled_from([
    "title", "date", "severity", "services", "authors", "facets", "categories", "summary", "slug", "started",
    "detected", "resolved", "decisions", "label", "status", "confirmed", "by", "at", ":", ": ", "- ", "  ", "\t", "[", "]", "{", "}", ",", "'", '"', "&a ", "*a", "<<: ",
    "? ", "|", ">", "#", "!!int ", "!!float ", "!!timestamp ", "!!binary ", "!!set ", "!!str ", "!!python/name:x ",
    "2024-02-30", "2024-01-02T10:00:00Z", "yes", "12", "1e3", "null", "~", ".nan", "-1", "“smart”", "é", "\x07",
    "\ufeff", "\u2028", "\x85", "…",
])
YAML_LINES = st.lists(st.one_of(YAML_PIECES, st.text(max_size=8)), max_size=8).map("".join)
BODY = st.sampled_from(["", "Text.\n", "# Title\n\nText.\n", "## Root cause\nA drift.\n", "Date: 2024-01-02\n"])


def parses_or_raises_parse_error(parse, *args, **kwargs) -> None:
    try:
        parsed = parse(*args, **kwargs)
    except ParseError as error:
        assert error.reason and str(error).startswith(error.path)
    else:
        assert isinstance(parsed, ParsedPostmortem)
        assert parsed.title and parsed.slug and "\x00" not in parsed.body


@FAST
@given(st.text())
def test_any_text_parses_or_raises_parse_error(text):
    parses_or_raises_parse_error(parse_text, text, path="x.md")


@FAST
@given(st.text(st.characters() | st.characters(categories=["Cs", "Cc"])))
def test_text_with_surrogates_and_nul_parses_or_raises_parse_error(text):
    parses_or_raises_parse_error(parse_text, text, path="x.md")


@FAST
@given(st.binary())
def test_any_bytes_parse_or_raise_parse_error(raw):
    parses_or_raises_parse_error(parse_bytes, raw, path="x.md", max_bytes=1000)


@FAST
@given(st.lists(YAML_LINES, max_size=10), BODY, st.sampled_from(["\n", "\r\n"]))
def test_any_front_matter_parses_or_raises_parse_error(lines, body, newline):
    text = newline.join(["---", *lines, "---", body])
    parses_or_raises_parse_error(parse_text, text, path="x.md")
    parses_or_raises_parse_error(parse_bytes, text.encode("utf-8", "surrogatepass"), path="x.md")
