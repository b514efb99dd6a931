"""Render user markdown to sanitised HTML and mark the sentences that justify tags."""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code",
    "em", "strong", "del", "a", "table", "thead", "tbody", "tr", "th", "td", "img", "mark",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "mark": {"class", "title"}}
# The Content-Security-Policy forbids style attributes, so table alignment travels as a class.
ALIGN_RE = re.compile(r'<(th|td) style="text-align:(left|right|center)">')
CELL_CLASSES = {"align-left", "align-right", "align-center"}


def render_markdown(text: str) -> Markup:
    """Return markdown as HTML that keeps only safe tags, attributes and URL schemes."""
    raw = ALIGN_RE.sub(r'<\1 class="align-\2">', _markdown.render(text or ""))
    clean = nh3.clean(raw, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                      allowed_classes={"th": CELL_CLASSES, "td": CELL_CLASSES},
                      url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")
    return Markup(clean)


TAG_RE = re.compile(r"<(/?)([a-z0-9]+)[^>]*>")
EMPHASIS_TAGS = ("code", "em", "strong", "del")  # attribute-free inline tags a mark may widen to take in
INLINE_TAGS = {*EMPHASIS_TAGS, "a"}


def _text_of(markup: str) -> tuple[str, list[int]]:
    """Return the text between the tags of markup, and where each of its characters sits in markup."""
    text, where, last = [], [], 0
    for tag in TAG_RE.finditer(markup):
        text.append(markup[last : tag.start()])
        where.extend(range(last, tag.start()))
        last = tag.end()
    text.append(markup[last:])
    where.extend(range(last, len(markup)))
    return "".join(text), where


def _wraps_whole_tags(segment: str) -> bool:
    """Return whether a stretch of markup only holds inline tags (no block, no mark), each closed within it."""
    open_tags: list[str] = []
    for tag in TAG_RE.finditer(segment):
        closing, name = tag.group(1), tag.group(2)
        if name not in INLINE_TAGS:
            return False
        if not closing:
            open_tags.append(name)
        elif not open_tags or open_tags.pop() != name:
            return False
    return not open_tags


OPENING_AT_END = re.compile(rf"<(?:{'|'.join(EMPHASIS_TAGS)})>$")
CLOSING_AT_START = re.compile(rf"</(?:{'|'.join(EMPHASIS_TAGS)})>")


def _widened(markup: str, start: int, end: int) -> tuple[int, int]:
    """Take in the emphasis or code tags that open right before a sentence and close right after it.

    "**Root cause:** the job" is found from inside <strong>; the mark then starts before <strong>.
    """
    while (opening := OPENING_AT_END.search(markup, 0, start)) and not _wraps_whole_tags(markup[start:end]):
        start = opening.start()
    while (closing := CLOSING_AT_START.match(markup, end)) and not _wraps_whole_tags(markup[start:end]):
        end = closing.end()
    return start, end


def mark_evidence(rendered: Markup, evidence: dict[str, list[str]]) -> Markup:
    """Wrap each evidence sentence found in the rendered HTML in a <mark> naming its labels.

    Sentences are looked for in the text between tags, so one that runs through inline code or emphasis is
    found too; it is marked only when the mark can hold those tags whole, and never where a longer sentence
    is marked already. Evidence sentences have their white space collapsed, so any white space (a hard-wrapped
    line) matches it.
    """
    by_sentence: dict[str, list[str]] = {}
    for label, sentences in evidence.items():
        for sentence in sentences:
            by_sentence.setdefault(sentence, []).append(label)
    markup = str(rendered)
    text, where = _text_of(markup)
    chosen: list[tuple[int, int, str]] = []  # where each mark starts and ends in markup, and its title
    for sentence, labels in sorted(by_sentence.items(), key=lambda item: -len(item[0])):
        escaped = html.escape(sentence, quote=False)
        if len(escaped) < 12:
            continue
        pattern = re.compile(r"\s+".join(re.escape(word) for word in escaped.split()))
        for match in pattern.finditer(text):
            start, end = _widened(markup, where[match.start()], where[match.end() - 1] + 1)
            if any(start < taken_end and taken_start < end for taken_start, taken_end, _ in chosen) \
                    or not _wraps_whole_tags(markup[start:end]):
                continue
            chosen.append((start, end, html.escape("evidence for " + ", ".join(sorted(labels)))))
            break
    out, last = [], 0
    for start, end, title in sorted(chosen):
        out += [markup[last:start], f'<mark class="evidence" title="{title}">', markup[start:end], "</mark>"]
        last = end
    out.append(markup[last:])
    return Markup("".join(out))
