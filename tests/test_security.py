"""Hostile markup never runs, pages send strict headers, and every write needs a person or a token."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app import create_app
from kb.errors import KBError
from kb.users import hash_password
from tests.test_web import csrf_from, sign_in
from web.auth import MAX_FAILURES
from web.security import SECURITY_HEADERS

API_TOKEN = "settings-token-0123456789"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" style="background:url(javascript:alert(1))">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java&#x09;script:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](javascript:alert(1))",
    '<a href="&#106;avascript:alert(1)">entity</a>',
    '<a href="javascript:alert(1)">raw link</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>svg link</text></a></svg>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<div onclick="alert(1)">raw html block</div>',
    "<details open ontoggle=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://evil.example/">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<style>body{background:url(https://evil.example/x)}</style>",
    "</textarea><script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
]

SCRIPT_URL = re.compile(r"^\s*(javascript|vbscript|data):", re.IGNORECASE)
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "background", "poster"}
DANGEROUS_TAGS = {"iframe", "object", "embed", "svg", "math", "base", "frame", "frameset", "applet"}


class ActiveContent(HTMLParser):
    """Collect everything in a page that a browser would run or that could redirect it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DANGEROUS_TAGS:
            self.found.append(f"<{tag}>")
        if tag == "script" and not (dict(attrs).get("src") or "").startswith("/static/") \
                and dict(attrs).get("type") != "application/json":
            self.found.append("<script> that is not ours")
        if tag == "style":
            self.found.append("<style>")
        if tag == "meta" and dict(attrs).get("http-equiv"):
            self.found.append("<meta http-equiv>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            # Browsers drop tabs, newlines and control characters inside URLs before reading the scheme.
            if name in URL_ATTRIBUTES and value and SCRIPT_URL.match(re.sub(r"[\x00-\x20]", "", value)):
                self.found.append(f"{name}={value!r} on <{tag}>")


def active_content(html: str) -> list[str]:
    parser = ActiveContent()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest.fixture
def app(tmp_path):
    app = create_app({"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "test-secret",
                      "KB_API_TOKEN": API_TOKEN, "KB_ADMIN_PASSWORD_HASH": hash_password("admin password")})
    app.config.update(TESTING=True)
    yield app
    app.extensions["kb"].engine.dispose()


def hostile_markdown(number: int, payload: str) -> str:
    quoted = payload.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'---\ntitle: "Payload {number} {quoted}"\ndate: 2024-02-{number % 28 + 1:02d}\n'
        f'services: ["svc{number} {quoted}"]\nauthors: ["{quoted}"]\nsummary: "Summary {quoted}"\n---\n\n'
        f"## Summary\nThe feature pipeline drifted. {payload}\n\n"
        f"## Root cause\nNobody owned the model and the data drift went unnoticed.\n\n{payload}\n"
    )


def test_no_payload_survives_as_active_html(client):
    slugs = []
    for number, payload in enumerate(XSS_PAYLOADS):
        response = client.post("/api/postmortems", headers=BEARER,
                               json={"markdown": hostile_markdown(number, payload), "filename": f"payload-{number}.md"})
        assert response.status_code == 201, response.get_json()
        slugs.append(response.get_json()["slug"])
    assert len(XSS_PAYLOADS) >= 20
    sign_in_admin(client)  # signed-in pages show more: forms, the edit box with the raw markdown
    pages = ["/", "/search?q=payload", "/search?q=alert", "/search?q=drift&sort=newest", "/trends",
             "/trends?period=month", "/trends/report?period=year&name=2024"]
    pages += [f"/postmortems/{slug}" for slug in slugs] + [f"/postmortems/{slug}/edit" for slug in slugs]
    found = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        if problems := active_content(response.get_data(as_text=True)):
            found[page] = problems
    assert found == {}


def test_the_atom_feed_escapes_titles_and_summaries(client):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": hostile_markdown(1, XSS_PAYLOADS[0])})
    feed = client.get("/search.atom?q=payload").get_data(as_text=True)
    assert "<script>" not in feed and "&lt;script&gt;alert(1)&lt;/script&gt;" in feed


@pytest.mark.parametrize("path", ["/", "/search?q=x", "/trends", "/api/search?q=x", "/no-such-page", "/api/nothing",
                                  "/static/style.css"])
def test_every_response_sends_the_security_headers(client, path):
    response = client.get(path)
    response.close()
    headers = response.headers
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


def test_the_policy_allows_only_our_own_scripts_and_styles():
    policy = dict(part.split(" ", 1) for part in SECURITY_HEADERS["Content-Security-Policy"].split("; "))
    assert (policy["script-src"], policy["style-src"], policy["object-src"], policy["frame-ancestors"]) == (
        "'self'", "'self'", "'none'", "'none'")


def sign_in_admin(client, password="admin password"):
    csrf = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"name": "admin", "password": password, "csrf_token": csrf})


def test_the_admin_signs_in_with_the_password_hash_from_settings(client):
    assert sign_in_admin(client, "wrong password").status_code == 401
    response = sign_in_admin(client)
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert "Sign out" in client.get("/").get_data(as_text=True)


def test_failed_sign_ins_are_rate_limited_per_address_and_name(client, token):
    for _ in range(MAX_FAILURES):
        assert sign_in_admin(client, "guess").status_code == 401
    blocked = sign_in_admin(client)  # even the right password waits now
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.get_data(as_text=True)
    assert sign_in(client).status_code == 302  # another account is not locked by the admin's failures


def test_wrong_tokens_are_rate_limited(client):
    for _ in range(MAX_FAILURES):
        assert client.post("/api/postmortems", headers={"Authorization": "Bearer nope"}, json={}).status_code == 401
    blocked = client.post("/api/postmortems", headers=BEARER, json={"markdown": "x"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0


WRITE_REQUESTS = [
    ("post", "/api/postmortems", {"markdown": "# Title\n\nText"}),
    ("put", "/api/postmortems/kept", {"markdown": "# Title\n\nText"}),
    ("delete", "/api/postmortems/kept", None),
    ("post", "/api/postmortems/kept/tags", {"label": "people", "status": "confirmed"}),
    ("patch", "/api/postmortems/kept/tags", {"label": "people", "status": "rejected"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITE_REQUESTS)
def test_api_writes_need_a_token(client, method, path, body):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": KEPT, "filename": "kept.md"})
    response = getattr(client, method)(path, json=body)
    assert (response.status_code, response.get_json()) == (
        401, {"error": "authentication required: send 'Authorization: Bearer <token>'"})
    wrong = getattr(client, method)(path, json=body, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert client.get("/api/postmortems/kept").get_json()["title"] == "Kept postmortem"


@pytest.mark.parametrize("path", ["/new", "/postmortems/kept/edit"])
def test_page_writes_need_a_sign_in_and_a_csrf_token(client, path):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": KEPT, "filename": "kept.md"})
    anonymous = client.post(path, data={"markdown": "# Changed\n\ntext"})
    assert (anonymous.status_code, anonymous.headers["Location"].startswith("/login")) == (302, True)
    sign_in_admin(client)
    forged = client.post(path, data={"markdown": "# Changed\n\ntext"})
    assert forged.status_code == 400
    assert client.post("/postmortems/kept/delete", data={"confirm": "yes"}).status_code == 400
    assert client.get("/api/postmortems/kept").get_json()["title"] == "Kept postmortem"


KEPT = """---
title: Kept postmortem
date: 2024-05-06
severity: SEV2
services: [ranker]
---

## Summary
The ranking model drifted for a week.

## Root cause
Nobody owned the feature pipeline after the reorg.
"""


def test_editing_keeps_the_slug_and_the_people_s_decisions(client):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": KEPT, "filename": "kept.md"})
    decided = client.post("/api/postmortems/kept/tags", headers=BEARER,
                          json=[{"label": "structure", "status": "rejected"}, {"label": "people", "status": "confirmed"}])
    assert decided.status_code == 200
    sign_in_admin(client)
    page = client.get("/postmortems/kept/edit").get_data(as_text=True)
    assert "title: Kept postmortem\ndate: &#39;2024-05-06&#39;\nseverity: SEV2\nservices:\n- ranker\n---" in page
    edited = KEPT.replace("drifted for a week", "served stale embeddings for a week")
    response = client.post("/postmortems/kept/edit", data={"markdown": edited, "csrf_token": csrf_from(page)})
    assert (response.status_code, response.headers["Location"]) == (302, "/postmortems/kept")
    record = client.get("/api/postmortems/kept").get_json()
    humans = {tag["label"]: (tag["status"], tag["decided_by"]) for tag in record["tags"] if tag["source"] == "human"}
    assert humans == {"structure": ("rejected", "api-token"), "people": ("confirmed", "api-token")}
    assert "served stale embeddings" in record["body"]
    assert client.get("/api/search?q=embeddings").get_json()["total"] == 1
    assert client.get("/api/search?q=drifted").get_json()["total"] == 0


def test_the_api_replaces_and_deletes(client):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": KEPT, "filename": "kept.md"})
    same = client.put("/api/postmortems/kept", headers=BEARER, data=KEPT.encode(), content_type="text/markdown")
    changed = client.put("/api/postmortems/kept", headers=BEARER,
                         json={"markdown": KEPT.replace("SEV2", "SEV1")})
    assert (same.get_json()["outcome"], changed.get_json()["outcome"], changed.get_json()["severity"]) == (
        "unchanged", "updated", "SEV1")
    bad = client.put("/api/postmortems/kept", headers=BEARER, json={"markdown": "---\ntitle: [\n---\ntext"})
    assert (bad.status_code, bad.get_json()["file"], bad.get_json()["line"]) == (400, "kept.md", 2)
    assert client.put("/api/postmortems/missing", headers=BEARER, json={"markdown": KEPT}).status_code == 404
    assert client.delete("/api/postmortems/kept", headers=BEARER).status_code == 204
    assert client.get("/api/postmortems/kept").status_code == 404
    assert client.get("/api/search?q=reorg").get_json()["total"] == 0
    assert client.delete("/api/postmortems/kept", headers=BEARER).status_code == 404


def test_deleting_from_the_page_needs_the_tick(client):
    client.post("/api/postmortems", headers=BEARER, json={"markdown": KEPT, "filename": "kept.md"})
    sign_in_admin(client)
    csrf = csrf_from(client.get("/postmortems/kept").get_data(as_text=True))
    client.post("/postmortems/kept/delete", data={"csrf_token": csrf})
    assert client.get("/api/postmortems/kept").status_code == 200
    gone = client.post("/postmortems/kept/delete", data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=True)
    assert "Deleted postmortem kept." in gone.get_data(as_text=True)
    assert client.get("/postmortems/kept").status_code == 404


@pytest.fixture
def closed(tmp_path):
    app = create_app({"KB_DATA_DIR": str(tmp_path / "closed"), "KB_SECRET_KEY": "k", "KB_PUBLIC_READ": "false",
                      "KB_API_TOKEN": API_TOKEN, "KB_ADMIN_PASSWORD_HASH": hash_password("admin password")})
    yield app.test_client()
    app.extensions["kb"].engine.dispose()


def test_closed_reading_needs_a_sign_in_or_a_token(closed):
    page = closed.get("/search?q=drift")
    assert (page.status_code, page.headers["Location"]) == (302, "/login?next=/search?q%3Ddrift")
    assert closed.get("/api/search?q=drift").status_code == 401
    assert closed.get("/trends.csv").status_code == 302
    style = closed.get("/static/style.css")
    style.close()
    assert (closed.get("/login").status_code, style.status_code) == (200, 200)
    assert closed.get("/api/search?q=drift", headers=BEARER).status_code == 200
    sign_in_admin(closed)
    assert closed.get("/search?q=drift").status_code == 200


def test_a_wrong_setting_is_named(tmp_path):
    with pytest.raises(KBError, match="setting KB_PUBLIC_READ: must be true or false, not 'maybe'"):
        create_app({"KB_DATA_DIR": str(tmp_path), "KB_PUBLIC_READ": "maybe"})


def test_request_bodies_have_a_limit(tmp_path):
    app = create_app({"KB_DATA_DIR": str(tmp_path), "KB_SECRET_KEY": "k", "KB_API_TOKEN": API_TOKEN,
                      "KB_MAX_UPLOAD_BYTES": "1000"})
    try:
        response = app.test_client().post("/api/postmortems", headers=BEARER, data=b"x" * 200_000,
                                          content_type="text/markdown")
        assert response.status_code == 413 and "error" in response.get_json()
    finally:
        app.extensions["kb"].engine.dispose()


def test_the_app_never_runs_in_debug_mode(app):
    assert (app.debug, app.config["PROPAGATE_EXCEPTIONS"]) == (False, None)
