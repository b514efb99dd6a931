"""Snippet text is the markdown without its markup; the fast pattern matches exactly where the plain one does."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kb.index import MARKUP_RE, plain_text
from tests.conftest import SEED

# The same alternatives without the leading lookahead that lets the engine skip letters quickly.
PLAIN_PATTERN = re.compile(MARKUP_RE.pattern.removeprefix(r"(?=[ \t#*+>|:`_-])"), re.MULTILINE)


def test_markup_is_removed_and_table_cells_stay_apart():
    markdown = ("## Root cause\n- [x] **Stale** `features`\n> quoted _drift_\n"
                "| a | b |\n|---|---|\n| skew | lag |\nsnake_case stays")
    assert plain_text(markdown) == ("Root cause\nStale features\nquoted drift\n a b \n \n skew lag \n"
                                    "snake_case stays")


def test_the_lookahead_changes_no_match_on_the_seed_postmortems():
    assert PLAIN_PATTERN.pattern != MARKUP_RE.pattern
    for path in sorted(SEED.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert MARKUP_RE.sub("<>", text) == PLAIN_PATTERN.sub("<>", text), path.name


@given(st.text(alphabet=" \t\n#*+>|:`_-[]xXab1", max_size=60))
def test_the_lookahead_changes_no_match_on_any_markup(text):
    assert [m.span() for m in MARKUP_RE.finditer(text)] == [m.span() for m in PLAIN_PATTERN.finditer(text)]
