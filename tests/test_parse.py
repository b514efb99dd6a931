"""kb.parse: front matter, titles, dates, severities, sections, human labels and files that cannot be read."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime

import pytest
import yaml

from kb.errors import ParseError
from kb.frontmatter import FastFrontMatterLoader, FrontMatterLoader
from kb.parse import (
    ParsedPostmortem,
    Section,
    normalise_severity,
    parse_bytes,
    parse_file,
    parse_text,
    section_key,
)
from tests.conftest import SEED

FULL = b"""---
title: Fraud scores drifted after the spring sale
date: 2024-03-02
severity: sev-2
services: [fraud-scorer, checkout]
author: Ana Lima
started: 2024-03-01T22:00:00+02:00
detected: 2024-03-02 06:30
facets: [Structure, people]
categories: data drift, Stale Model
---
Fraud scores rose for *new* customers.

## Root causes
Nobody owned the retraining job after the reorg.

## Follow-ups
- Give the job an owner.
"""


def test_a_full_file_parses_into_every_field(tmp_path):
    path = tmp_path / "2024-03-02-fraud-drift.md"
    path.write_bytes(FULL)
    assert parse_file(path) == ParsedPostmortem(
        slug="2024-03-02-fraud-drift",
        title="Fraud scores drifted after the spring sale",
        summary="Fraud scores rose for new customers.",
        body="Fraud scores rose for *new* customers.\n\n## Root causes\nNobody owned the retraining job after the reorg."
             "\n\n## Follow-ups\n- Give the job an owner.",
        incident_date=date(2024, 3, 2),
        severity="SEV2",
        services=["fraud-scorer", "checkout"],
        authors=["Ana Lima"],
        sections=[
            Section(heading="", key="summary", text="Fraud scores rose for *new* customers."),
            Section(heading="Root causes", key="root_cause", text="Nobody owned the retraining job after the reorg."),
            Section(heading="Follow-ups", key="action_items", text="- Give the job an owner."),
        ],
        source_path=str(path),
        content_hash=hashlib.sha256(FULL).hexdigest(),
        started_at=datetime(2024, 3, 1, 20, 0, tzinfo=UTC),
        detected_at=datetime(2024, 3, 2, 6, 30, tzinfo=UTC),
        resolved_at=None,
        human_labels={"facets": ["structure", "people"], "categories": ["data-drift", "stale-model"]},
        warnings=[],
    )


def test_front_matter_is_optional():
    parsed = parse_text("# Cache stampede\n\nLatency rose when the cache emptied.\n", path="notes/cache.md")
    assert (parsed.title, parsed.slug, parsed.summary, parsed.body, parsed.severity, parsed.services) == (
        "Cache stampede", "cache", "Latency rose when the cache emptied.", "Latency rose when the cache emptied.", "", [])
    assert parsed.human_labels == {"facets": [], "categories": []}
    assert parsed.warnings == []


@pytest.mark.parametrize(
    ("text", "path", "title"),
    [
        ("---\ntitle: From front matter\n---\n# From the heading\n\nText.\n", "2024-01-02-from-file.md", "From front matter"),
        ("# From the heading ##\n\nText.\n", "2024-01-02-from-file.md", "From the heading"),
        ("## Summary\nText.\n", "2024-01-02-from-file_name.md", "From file name"),
        ("Text first.\n\n# A heading after text\n", "from-file.md", "From file"),
        ("Text.\n", "<input>", "Untitled postmortem"),
    ],
    ids=["front-matter", "first-h1", "file-name", "h1-not-first", "nothing"],
)
def test_title_comes_from_front_matter_then_first_heading_then_file_name(text, path, title):
    assert parse_text(text, path=path).title == title


def test_a_heading_used_as_title_is_not_repeated_in_the_body():
    assert parse_text("# The title\n\nText.\n").body == "Text."
    assert parse_text("---\ntitle: Other\n---\n# The title\n\nText.\n").body == "# The title\n\nText."


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("---\ndate: 2023-07-08\n---\nDate: 2022-01-01\n", "2021-05-06-x.md", date(2023, 7, 8)),
        ('---\ndate: "2023-07-08"\n---\nText.\n', "x.md", date(2023, 7, 8)),
        ("# T\n\n**Date:** 2022-01-01\n\nText.\n", "2021-05-06-x.md", date(2022, 1, 1)),
        ("# T\n\nDate: 2022-01-01 10:00 UTC\n", "x.md", date(2022, 1, 1)),
        ("# T\n\nText.\n", "a-2021-05-06-x.md", date(2021, 5, 6)),
        ("# T\n\nText.\n", "2021-13-06-x.md", None),
        ("# T\n\nText.\n", "x.md", None),
        ("# T\n\nText.\n", "<input>", None),
    ],
    ids=["front-matter", "quoted", "date-line", "date-line-with-time", "file-name", "impossible-file-date",
         "none", "none-without-path"],
)
def test_date_comes_from_front_matter_then_date_line_then_file_name_and_is_never_guessed(text, path, expected):
    assert parse_text(text, path=path).incident_date == expected


def test_a_front_matter_date_that_is_not_a_date_is_a_warning_and_falls_back():
    parsed = parse_text("---\ndate: last spring\n---\nText.\n", path="2021-05-06-x.md")
    assert (parsed.incident_date, parsed.warnings) == (
        date(2021, 5, 6), ["front matter 'date' 'last spring' is not a date (YYYY-MM-DD); ignored"])


def test_an_impossible_front_matter_date_is_a_warning_not_a_crash():
    parsed = parse_text("---\ndate: 2024-13-45\n---\nText.\n", path="2021-05-06-x.md")
    assert (parsed.incident_date, parsed.warnings) == (
        date(2021, 5, 6), ["front matter 'date' '2024-13-45' is not a date (YYYY-MM-DD); ignored"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("SEV1", "SEV1"), ("sev-2", "SEV2"), ("Sev 3", "SEV3"), ("P2", "SEV2"), ("p0", "SEV1"), ("high", "SEV2"),
     ("low", "SEV4"), ("critical", "SEV1"), ("4", "SEV4"), (2, "SEV2"), ("", ""), (None, ""), ("12", None),
     ("5", None), ("urgent", None)],
)
def test_severity_is_normalised(raw, expected):
    assert normalise_severity(raw) == expected


def test_an_unknown_severity_is_a_warning_and_left_empty():
    parsed = parse_text('---\nseverity: "12"\n---\nText.\n')
    assert (parsed.severity, parsed.warnings) == ("", ["front matter 'severity' '12' is not SEV1-SEV4; ignored"])


@pytest.mark.parametrize(
    ("heading", "key"),
    [
        ("Root causes", "root_cause"), ("Root Cause Analysis", "root_cause"), ("Why it happened", "root_cause"),
        ("Contributing Factors", "contributing_factors"), ("What went wrong", "contributing_factors"),
        ("Lessons learned", "lessons_learned"), ("What went well", "lessons_learned"),
        ("Follow-ups", "action_items"), ("Action items", "action_items"), ("Next steps", "action_items"),
        ("What happened", "summary"), ("TL;DR", "summary"), ("Timeline", "timeline"), ("Customer impact", "impact"),
        ("Detection", "detection"), ("Mitigation", "resolution"), ("Background", "background"),
        ("3. Root cause", "root_cause"), ("Appendix", "other"),
    ],
)
def test_section_headings_map_to_canonical_keys(heading, key):
    assert parse_text(f"## {heading}\nSome text.\n").sections == [Section(heading=heading, key=key, text="Some text.")]


@pytest.mark.parametrize(("heading", "key"), [("Feature extraction", "other"), ("Transactions affected", "other"),
                                             ("Actions taken", "action_items"), ("Causes", "root_cause")])
def test_section_phrases_start_a_word(heading, key):
    assert section_key(heading) == key


def test_sections_repeat_merge_and_ignore_headings_in_code():
    parsed = parse_text("Intro.\n\n## Root cause\nOne.\n\n```\n# not a heading\n```\n\n## Why\nTwo.\n")
    assert parsed.sections == [
        Section(heading="", key="summary", text="Intro."),
        Section(heading="Root cause", key="root_cause", text="One.\n\n```\n# not a heading\n```"),
        Section(heading="Why", key="root_cause", text="Two."),
    ]
    assert parsed.section_texts() == {"summary": "Intro.", "root_cause": "One.\n\n```\n# not a heading\n```\n\nTwo."}


def test_summary_is_found_when_headings_are_not_followed_by_a_blank_line():
    assert parse_text("# T\n## Root cause\nThe model drifted.\n").summary == "The model drifted."


@pytest.mark.parametrize(
    ("front_matter", "labels", "warnings"),
    [
        ("facets: [Structure, people]\ncategories: [Data Drift]", {"facets": ["structure", "people"],
                                                                   "categories": ["data-drift"]}, []),
        ("facets: structure, Rewards\ncategories: ''", {"facets": ["structure", "rewards"], "categories": []}, []),
        ("facets: {people: yes}", {"facets": [], "categories": []}, ["front matter 'facets' should be a list; ignored"]),
        ("title: none", {"facets": [], "categories": []}, []),
    ],
    ids=["lists", "comma-text", "mapping", "absent"],
)
def test_front_matter_facets_and_categories_become_human_labels(front_matter, labels, warnings):
    parsed = parse_text(f"---\n{front_matter}\n---\nText.\n")
    assert (parsed.human_labels, parsed.warnings) == (labels, warnings)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("---\ntitle: a: b\n---\nText.\n", 2, "front matter is not valid YAML: mapping values are not allowed here"),
        ("---\ntitle: ok\nfacets: [a]\n  indented: x\n---\nText.\n", 4,
         "front matter is not valid YAML: expected <block end>, but found '<block mapping start>'"),
        ("---\ntitle: ok\nauthors: x\n\tseverity: 1\n---\nText.\n", 4,
         "front matter is not valid YAML: found character '\\t' that cannot start any token"),
        ("---\n- a list\n---\nText.\n", 2, "front matter must be a mapping of keys to values"),
        ("---\ntitle: never closed\n\nText.\n", 1, "front matter opened with '---' is never closed"),
    ],
    ids=["mapping-in-value", "indentation", "tab", "not-a-mapping", "unclosed"],
)
def test_broken_front_matter_raises_parse_error_with_the_line(text, line, reason):
    with pytest.raises(ParseError) as caught:
        parse_text(text, path="broken.md")
    assert (caught.value.path, caught.value.line, caught.value.reason) == ("broken.md", line, reason)
    assert str(caught.value) == f"broken.md:{line}: {reason}"


@pytest.mark.parametrize(
    ("raw", "line", "reason"),
    [
        (b"", None, "file is empty"),
        (b"  \n\n\t\n", None, "file is empty"),
        (b"---\ntitle: Only front matter\n---\n\n", None, "file holds front matter but no postmortem text"),
        (b"# Title\x00\x01\x02", None, "binary file (contains NUL bytes), not markdown"),
        (b"# Fine\nline two \x81 is neither UTF-8 nor Windows-1252\n", 2, "not valid UTF-8 text"),
    ],
    ids=["empty", "blank", "front-matter-only", "nul-bytes", "undecodable"],
)
def test_files_without_a_postmortem_raise_parse_error(raw, line, reason):
    with pytest.raises(ParseError) as caught:
        parse_bytes(raw, path="bad.md")
    assert (caught.value.line, caught.value.reason) == (line, reason)


def test_invalid_utf8_falls_back_to_windows_1252_with_a_warning():
    parsed = parse_bytes(b"# Caf\xe9 outage\n\nThe \x93menu\x94 model drifted.\n", path="cafe.md")
    assert (parsed.title, parsed.summary) == ("Café outage", "The “menu” model drifted.")
    assert parsed.warnings == ["line 1: not valid UTF-8; read as Windows-1252"]


def test_a_utf8_byte_order_mark_does_not_hide_the_front_matter():
    assert parse_bytes(b"\xef\xbb\xbf---\ntitle: With BOM\n---\nText.\n").title == "With BOM"


def test_crlf_and_lf_files_parse_the_same():
    lf = b"---\ntitle: T\ndate: 2024-01-02\n---\n## Root cause\nThe join broke.\n\n## Timeline\n- 10:00 alert\n"
    crlf = lf.replace(b"\n", b"\r\n")
    from_crlf = parse_bytes(crlf, path="x.md")
    assert "\r" not in from_crlf.body
    assert dataclasses.replace(from_crlf, content_hash="") == dataclasses.replace(parse_bytes(lf, path="x.md"),
                                                                                   content_hash="")


def test_files_over_the_size_limit_are_refused(tmp_path):
    raw = b"# Big\n\n" + b"x" * 93  # exactly 100 bytes
    assert parse_bytes(raw, max_bytes=100).title == "Big"
    with pytest.raises(ParseError, match="^big.md: file is 101 bytes, over the 100-byte limit$"):
        parse_bytes(raw + b"x", path="big.md", max_bytes=100)
    path = tmp_path / "big.md"
    path.write_bytes(b"x" * 2001)
    with pytest.raises(ParseError) as caught:
        parse_file(path, max_bytes=2000)
    assert (caught.value.line, caught.value.reason) == (None, "file is 2,001 bytes, over the 2,000-byte limit")


def test_a_missing_file_is_a_parse_error(tmp_path):
    with pytest.raises(ParseError) as caught:
        parse_file(tmp_path / "gone.md")
    assert caught.value.reason == "cannot read file: No such file or directory"


FRONT_MATTER_CASES = [
    "title: yes\nseverity: 1e3\ndate: 2024-01-02\nservices: [a, 'b', \"c\"]",
    "title: |\n  two\n  lines\nauthors:\n  - Ana\n  - {name: Bo}\nfacets: []",
    "a: &x [1, 2]\nb: *x\nc: ~\nd: !!int 7\ne: 0x1F\nf: 'it''s'\ng: \"tab\\there\"",
    "title: caf\u00e9 \u2014 \u201cquoted\u201d\nstarted: 2024-05-01T10:00:00Z",
] + [
    path.read_text(encoding="utf-8").split("---\n")[1] for path in sorted(SEED.glob("*.md"))[::7]
]


@pytest.mark.parametrize("block", FRONT_MATTER_CASES)
def test_libyaml_and_pure_python_loaders_read_front_matter_alike(block):
    assert yaml.load(block, Loader=FastFrontMatterLoader) == yaml.load(block, Loader=FrontMatterLoader)


def test_escaped_utf16_halves_in_front_matter_become_whole_characters():
    text = ('---\ntitle: "\\ud83d\\udd17 link spam"\nservices: ["pay\\ud83d\\udcb0", "\\ud800x"]\n---\n'
            "## Summary\nSpam links got through.\n")
    parsed = parse_text(text)
    assert parsed.title == "\U0001f517 link spam"
    assert parsed.services == ["pay\U0001f4b0", "\ufffdx"]
    assert parsed.warnings == ["front matter 'services' holds an escaped half of a character; replaced with U+FFFD"]
