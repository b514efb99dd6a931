"""The pages and the JSON API: what loads, what needs signing in, how errors look, and what never reaches HTML."""

from __future__ import annotations

import re

import pytest

from app import create_app
from kb.ingest import import_paths
from kb.users import create_user
from web.render import render_markdown

DRIFT = """---
title: Ranking drifted after the spring sale
date: 2024-03-02
severity: SEV2
services: [ranker]
facets: [people]
---
## Root cause

Nobody owned the feature pipeline after the reorg.
The input distribution drifted when buyers changed their habits.
"""
NEW = "---\ndate: 2024-04-01\n---\n# Cache stampede on the recs API\n\nLatency rose when the cache emptied.\n"
HOSTILE = """# Hostile <script>alert(1)</script> title

[click me](javascript:alert(2)) and <img src=x onerror=alert(3)> and <a href="javascript:alert(4)">raw</a>

<script>alert(5)</script>
"""


@pytest.fixture
def drift(kb, write_md):
    """Import one postmortem and return its slug."""
    import_paths(kb, [write_md("2024-03-02-drift.md", DRIFT)])
    return "2024-03-02-drift"


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, name="ana", password="correct horse"):
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf})


@pytest.mark.parametrize(
    "path",
    ["/", "/search", "/search?q=drift", "/search?q=facet:people&sort=newest", "/search?category=data-drift&page=2",
     "/postmortems/2024-03-02-drift", "/trends", "/trends?period=month", "/trends?period=year&confirmed=1",
     "/search?sort=severity", "/api/search?sort=severity&q=drift", "/trends.csv",
     "/trends/report?period=quarter&name=2024-Q1", "/login", "/api/labels", "/api/trends"],
)
def test_pages_load(client, drift, path):
    assert client.get(path).status_code == 200


def test_pages_load_on_an_empty_knowledge_base(client):
    assert [client.get(path).status_code for path in ("/", "/search", "/trends", "/api/postmortems")] == [200] * 4
    assert "No dated postmortems" in client.get("/trends").get_data(as_text=True)


def test_an_unknown_postmortem_is_a_404_page_that_offers_search(client):
    response = client.get("/postmortems/no-such-thing")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "no postmortem with slug &#39;no-such-thing&#39;" in html
    assert '<form action="/search" role="search"' in html and "browse every postmortem" in html


def test_an_unknown_address_is_a_404_page_written_for_people(client):
    response = client.get("/no/such/page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Nothing at this address" in html and "The page may have moved" in html
    assert "The requested URL was not found" not in html
    assert '<form action="/search" role="search"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [('q="unclosed', 'the query has an unmatched double quote (&#34;)'),
     ("q=drift&after=yesterday", "after: needs a date written YYYY-MM-DD, not &#39;yesterday&#39;")],
)
def test_a_bad_search_is_a_400_page_with_the_reason(client, query, message):
    response = client.get(f"/search?{query}")
    assert response.status_code == 400
    assert f"Your search could not run: {message}" in response.get_data(as_text=True)


def test_api_search_shape(client, drift):
    data = client.get("/api/search?q=drift").get_json()
    assert set(data) == {"total", "page", "per_page", "hits", "counts", "did_you_mean"}
    assert (data["total"], data["page"], data["per_page"]) == (1, 1, 10)
    [hit] = data["hits"]
    assert set(hit) == {"slug", "title", "date", "score", "severity", "facets", "categories", "highlight"}
    assert {k: hit[k] for k in ("slug", "title", "date", "severity")} == {
        "slug": drift, "title": "Ranking drifted after the spring sale", "date": "2024-03-02", "severity": "SEV2"}
    assert hit["score"] > 0 and "people" in hit["facets"] and "data-drift" in hit["categories"]
    assert '<mark class="match term0">drifted</mark>' in hit["highlight"]
    assert data["counts"]["severity"] == {"sev2": 1}


@pytest.mark.parametrize("path", ["/trends.csv?period=week", "/trends.csv?from=soon",
                                  "/trends/report?period=week&name=2024"])
def test_bad_trend_parameters_are_a_400_not_a_500(client, drift, path):
    assert client.get(path).status_code == 400


@pytest.mark.parametrize(
    ("query", "error"),
    [('q="unclosed', 'the query has an unmatched double quote (")'),
     ("before=2024-02-30", "before: needs a date written YYYY-MM-DD, not '2024-02-30'"),
     ("sort=random", "sort must be one of relevance, newest, severity")],
)
def test_api_search_bad_query_is_a_400_with_the_error(client, query, error):
    response = client.get(f"/api/search?{query}")
    assert (response.status_code, response.get_json()) == (400, {"error": error})


def test_api_lists_and_shows_postmortems(client, drift):
    listed = client.get("/api/postmortems").get_json()
    assert (listed["limit"], listed["offset"], [pm["slug"] for pm in listed["postmortems"]]) == (50, 0, [drift])
    assert "body" not in listed["postmortems"][0]
    detail = client.get(f"/api/postmortems/{drift}").get_json()
    assert {k: detail[k] for k in ("slug", "title", "date", "severity", "services", "authors", "summary")} == {
        "slug": drift, "title": "Ranking drifted after the spring sale", "date": "2024-03-02", "severity": "SEV2",
        "services": ["ranker"], "authors": [], "summary": "Nobody owned the feature pipeline after the reorg. "
        "The input distribution drifted when buyers changed their habits."}
    assert detail["body"].startswith("## Root cause\n\nNobody owned")
    tags = {tag["label"]: tag for tag in detail["tags"]}
    assert {k: tags["people"][k] for k in ("kind", "source", "status", "decided_by")} == {
        "kind": "facet", "source": "human", "status": "confirmed", "decided_by": "front matter"}
    assert tags["data-drift"]["source"] == "auto" and tags["data-drift"]["evidence"]
    assert client.get("/api/postmortems/nope").get_json() == {"error": "no postmortem with slug 'nope'"}


def test_api_create_needs_a_token_then_the_postmortem_is_searchable(client, token):
    assert client.post("/api/postmortems", json={"markdown": NEW}).status_code == 401
    wrong = client.post("/api/postmortems", json={"markdown": NEW}, headers={"Authorization": "Bearer wrong"})
    assert (wrong.status_code, wrong.get_json()) == (
        401, {"error": "authentication required: send 'Authorization: Bearer <token>'"})
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/postmortems", json={"markdown": NEW}, headers=headers)
    assert created.status_code == 201
    record = created.get_json()
    assert (record["slug"], record["title"], record["date"], record["warnings"]) == (
        "2024-04-01-cache-stampede-on-the-recs-api", "Cache stampede on the recs API", "2024-04-01", [])
    hits = client.get("/api/search?q=stampede").get_json()["hits"]
    assert [hit["slug"] for hit in hits] == [record["slug"]]
    again = client.post("/api/postmortems", json={"markdown": NEW}, headers=headers)
    assert (again.status_code, again.get_json()) == (
        409, {"error": "a postmortem with slug '2024-04-01-cache-stampede-on-the-recs-api' already exists"})


def test_api_create_takes_raw_markdown_with_a_file_name(client, token):
    created = client.post("/api/postmortems?filename=2024-04-01-stampede.md", data=NEW.encode(),
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "text/markdown"})
    assert (created.status_code, created.get_json()["slug"]) == (201, "2024-04-01-stampede")


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"markdown": "---\ntitle: ok\ndate: [\n---\nText.\n"}, {
            "error": "<input>:3: front matter is not valid YAML: expected the node content, but found '<stream end>'",
            "file": "<input>", "line": 3,
            "reason": "front matter is not valid YAML: expected the node content, but found '<stream end>'"}),
        ({"markdown": ""}, {"error": "<input>: file is empty", "file": "<input>", "line": None,
                            "reason": "file is empty"}),
        ({"text": "no markdown key"}, {"error": 'send JSON {"markdown": "<postmortem text>", "filename": "optional.md"}'}),
    ],
)
def test_api_create_with_bad_markdown_is_a_400_naming_the_line(client, token, payload, body):
    response = client.post("/api/postmortems", json=payload, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()) == (400, body)


def test_api_create_refuses_files_over_the_limit(tmp_path):
    app = create_app({"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "x", "KB_MAX_UPLOAD_BYTES": 1000})
    kb = app.extensions["kb"]
    with kb.session() as session:
        _user, token = create_user(session=session, name="ana", password="correct horse")
        session.commit()
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    too_big = client.post("/api/postmortems", json={"markdown": "# Big\n\n" + "x" * 2000}, headers=headers)
    assert (too_big.status_code, too_big.get_json()["reason"]) == (400, "file is 2,007 bytes, over the 1,000-byte limit")
    huge = client.post("/api/postmortems", data=b"x" * 100_000, headers=headers)
    assert huge.status_code == 413 and "error" in huge.get_json()
    kb.engine.dispose()


def test_the_new_page_needs_sign_in(client):
    response = client.get("/new")
    assert (response.status_code, response.headers["Location"]) == (302, "/login?next=/new?")


def test_sign_in_with_the_csrf_token_then_the_form_creates_a_postmortem(client, token):
    assert sign_in(client, password="wrong password").status_code == 401
    signed_in = sign_in(client)
    assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/")
    csrf = csrf_from(client.get("/new").get_data(as_text=True))
    created = client.post("/new", data={"markdown": NEW, "csrf_token": csrf})
    assert (created.status_code, created.headers["Location"]) == (
        302, "/postmortems/2024-04-01-cache-stampede-on-the-recs-api")
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "Imported “Cache stampede on the recs API”." in page
    assert client.get("/api/search?q=stampede").get_json()["total"] == 1


def test_the_form_shows_why_markdown_was_not_imported(client, token):
    sign_in(client)
    csrf = csrf_from(client.get("/new").get_data(as_text=True))
    response = client.post("/new", data={"markdown": "---\ntitle: a: b\n---\nx\n", "csrf_token": csrf})
    assert response.status_code == 400
    assert ("Not imported: &lt;input&gt;:2: front matter is not valid YAML: mapping values are not allowed here"
            in response.get_data(as_text=True))


def test_posts_without_the_csrf_token_are_rejected(client, token):
    no_token = client.post("/login", data={"name": "ana", "password": "correct horse"})
    assert no_token.status_code == 400 and "The form expired" in no_token.get_data(as_text=True)
    sign_in(client)
    form = client.post("/new", data={"markdown": NEW})
    assert form.status_code == 400 and "The form expired or came from another site" in form.get_data(as_text=True)
    api = client.post("/api/postmortems", json={"markdown": NEW})  # signed in by cookie, no X-CSRF-Token header
    assert (api.status_code, api.get_json()) == (403, {"error": "missing or wrong X-CSRF-Token header"})
    assert client.get("/api/search?q=stampede").get_json()["total"] == 0
    csrf = csrf_from(client.get("/new").get_data(as_text=True))
    assert client.post("/api/postmortems", json={"markdown": NEW}, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_sign_in_only_redirects_to_local_paths(client, token):
    for target, location in (("/trends", "/trends"), ("//evil.example", "/"), ("https://evil.example", "/")):
        csrf = csrf_from(client.get("/login").get_data(as_text=True))
        response = client.post(f"/login?next={target}",
                               data={"name": "ana", "password": "correct horse", "csrf_token": csrf})
        assert (response.status_code, response.headers["Location"]) == (302, location)


def test_user_markdown_is_sanitised_on_the_postmortem_page(client, token):
    created = client.post("/api/postmortems", json={"markdown": HOSTILE},
                          headers={"Authorization": f"Bearer {token}"})
    html = client.get(f"/postmortems/{created.get_json()['slug']}").get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']  # only our own
    assert re.findall(r"<[a-z]+\b[^>]*(?:javascript:|onerror)[^>]*>", html, re.IGNORECASE) == []
    assert "<h1 title=\"Hostile &lt;script&gt;alert(1)&lt;/script&gt; title\">" in html
    assert "<p>&lt;script&gt;alert(5)&lt;/script&gt;</p>" in html


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("[x](JaVaScRiPt:alert(1))", "<p>[x](JaVaScRiPt:alert(1))</p>\n"),
        ("![i](javascript:alert(1))", "<p>![i](javascript:alert(1))</p>\n"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "<p>[x](data:text/html;base64,PHNjcmlwdD4=)</p>\n"),
        ("<div onclick=alert(1)>hi</div>", "<p>&lt;div onclick=alert(1)&gt;hi&lt;/div&gt;</p>\n"),
        ('[x](https://e.com "t\\" onmouseover=\\"alert(1)")',
         '<p><a href="https://e.com" title="t&quot; onmouseover=&quot;alert(1)" rel="noopener noreferrer nofollow">'
         "x</a></p>\n"),
        ("[ok](https://example.com)", '<p><a href="https://example.com" rel="noopener noreferrer nofollow">ok</a></p>\n'),
    ],
)
def test_render_markdown_keeps_only_safe_html(markdown, html):
    assert render_markdown(markdown) == html


def test_evidence_sentences_are_marked_on_the_postmortem_page(client, drift):
    tags = client.get(f"/api/postmortems/{drift}").get_json()["tags"]
    evidence = {sentence for tag in tags for sentence in tag["evidence"]}
    assert "The input distribution drifted when buyers changed their habits." in evidence
    html = client.get(f"/postmortems/{drift}").get_data(as_text=True)
    assert re.search(r'<mark class="evidence" title="evidence for [a-z, -]*data-drift[a-z, -]*">'
                     r"The input distribution drifted when buyers changed their habits\.</mark>", html)
    assert "<li>“The input distribution drifted when buyers changed their habits.”</li>" in html


def test_deciding_a_tag_on_the_page_needs_sign_in_and_is_recorded(client, drift, token):
    anonymous = client.post(f"/postmortems/{drift}/tags", data={"label": "data-drift", "status": "rejected"})
    assert (anonymous.status_code, anonymous.headers["Location"]) == (302, f"/login?next=/postmortems/{drift}/tags?")
    sign_in(client)
    csrf = csrf_from(client.get(f"/postmortems/{drift}").get_data(as_text=True))
    decided = client.post(f"/postmortems/{drift}/tags",
                          data={"label": "data-drift", "status": "rejected", "csrf_token": csrf})
    assert (decided.status_code, decided.headers["Location"]) == (302, f"/postmortems/{drift}#why-tagged")
    tags = {tag["label"]: tag for tag in client.get(f"/api/postmortems/{drift}").get_json()["tags"]}
    assert (tags["data-drift"]["source"], tags["data-drift"]["status"], tags["data-drift"]["decided_by"]) == (
        "human", "rejected", "ana")
    assert client.get("/api/search?category=data-drift").get_json()["total"] == 0
    refused = client.post(f"/postmortems/{drift}/tags", data={"label": "vibes", "status": "confirmed",
                                                              "csrf_token": csrf}, follow_redirects=True)
    assert "Not saved: unknown label &#39;vibes&#39;; see /api/labels" in refused.get_data(as_text=True)


def test_times_out_of_order_are_not_shown_as_negative_durations(client, kb, write_md):
    import_paths(kb, [write_md("x.md", "---\nstarted: 2024-01-05T00:00\ndetected: 2024-01-05T02:00\n"
                                      "resolved: 2024-01-04T00:00\n---\n# X\n\nText.\n")])
    html = client.get("/postmortems/x").get_data(as_text=True)
    assert re.findall(r"<dt>Time to \w+</dt><dd>-", html) == []


def test_evidence_is_marked_across_hard_wrapped_lines_and_never_inside_attributes():
    from web.render import mark_evidence

    body = render_markdown("The feature store fell behind and the model\nscored users on stale features.\n\n"
                           "[the model scored users on stale data](https://example.org \"on stale features\")\n")
    marked = str(mark_evidence(body, {"stale-model": ["The feature store fell behind and the model scored users "
                                                      "on stale features."],
                                      "data-quality": ["on stale features"]}))
    assert ('<mark class="evidence" title="evidence for stale-model">The feature store fell behind and the model\n'
            'scored users on stale features.</mark>') in marked
    # The shorter sentence lies inside the first mark, and its other copy in a title attribute: no mark added.
    assert 'title="on stale features"' in marked and marked.count("<mark") == 1
    # Text that needs escaping matches its escaped form.
    amp = str(mark_evidence(render_markdown("Latency & errors rose after the deploy.\n"),
                            {"serving-infrastructure": ["Latency & errors rose after the deploy."]}))
    assert '<mark class="evidence" title="evidence for serving-infrastructure">Latency &amp; errors rose' in amp


@pytest.mark.parametrize(
    ("markdown", "sentence", "marked"),
    [("**Root cause:** the nightly job dropped rows.\n", "Root cause: the nightly job dropped rows.",
      "<mark {t}><strong>Root cause:</strong> the nightly job dropped rows.</mark>"),
     ("We restarted it with `make deploy`\n", "We restarted it with make deploy",
      "<mark {t}>We restarted it with <code>make deploy</code></mark>"),
     ("The `sme_raw` table lost\nits index.\n", "The sme_raw table lost its index.",
      "<mark {t}>The <code>sme_raw</code> table lost\nits index.</mark>")],
)
def test_evidence_is_marked_through_inline_code_and_emphasis(markdown, sentence, marked):
    from web.render import mark_evidence

    html = str(mark_evidence(render_markdown(markdown), {"x": [sentence]}))
    assert marked.format(t='class="evidence" title="evidence for x"') in html


def test_evidence_spanning_two_list_items_is_not_marked():
    from web.render import mark_evidence

    html = str(mark_evidence(render_markdown("- first item ends here.\n- second item starts here.\n"),
                             {"x": ["first item ends here. second item starts here."]}))
    assert "<mark" not in html
