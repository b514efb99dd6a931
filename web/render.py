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


def mark_evidence(rendered: Markup, evidence: dict[str, list[str]]) -> Markup:
    """Wrap each evidence sentence found in the rendered HTML in a <mark> naming its labels."""
    by_sentence: dict[str, list[str]] = {}
    for label, sentences in evidence.items():
        for sentence in sentences:
            by_sentence.setdefault(sentence, []).append(label)
    out = str(rendered)
    for sentence, labels in sorted(by_sentence.items(), key=lambda item: -len(item[0])):
        escaped = html.escape(sentence, quote=False)
        if len(escaped) < 12:
            continue
        title = html.escape("evidence for " + ", ".join(sorted(labels)))
        # Only replace text between tags, never inside an attribute or an existing mark.
        pattern = re.compile(r"(>[^<]*?)" + re.escape(escaped))
        replacement = f'<mark class="evidence" title="{title}">{escaped}</mark>'
        out = pattern.sub(lambda m, r=replacement: m.group(1) + r, out, count=1)
    return Markup(out)
