"""The new-postmortem page's preview: POST /api/preview parses and tags markdown without storing anything."""

from __future__ import annotations

from sqlmodel import func, select

from kb.models import Postmortem
from tests.test_web import HOSTILE, csrf_from, sign_in

DRAFT = """---
date: 2024-05-02
severity: SEV2
facets: [people]
---
# Churn model scored everyone as loyal

## Root cause

The input distribution drifted after the pricing change, and nobody retrained the model.
Nobody owned the feature pipeline after the reorg.
"""


def signed_in_csrf(client) -> str:
    sign_in(client)
    return csrf_from(client.get("/new").get_data(as_text=True))


def stored(kb) -> int:
    with kb.session() as db:
        return db.exec(select(func.count(Postmortem.id))).one()


def test_preview_tags_and_renders_without_storing(client, kb, token):
    csrf = signed_in_csrf(client)
    response = client.post("/api/preview", json={"markdown": DRAFT}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    data = response.get_json()
    assert (data["title"], data["date"], data["severity"]) == ("Churn model scored everyone as loyal", "2024-05-02", "SEV2")
    # The front matter's label is the author's own decision; the tagger suggests the others, each with evidence.
    assert data["labels"] == [{"label": "people", "kind": "facet", "source": "human"}]
    suggested = {s["label"]: s for s in data["suggestions"]}
    assert {"data-drift", "structure"} <= set(suggested)
    assert "people" not in suggested
    assert all(s["evidence"] and 0 < s["score"] <= 1 and s["source"] == "auto" for s in data["suggestions"])
    assert "drifted after the pricing change" in suggested["data-drift"]["evidence"][0]
    # The preview highlights the evidence in the rendered body, as the postmortem page will.
    assert '<mark class="evidence"' in data["html"] and "<h2>Root cause</h2>" in data["html"]
    assert stored(kb) == 0


def test_preview_output_is_sanitised(client, token):
    csrf = signed_in_csrf(client)
    data = client.post("/api/preview", json={"markdown": HOSTILE}, headers={"X-CSRF-Token": csrf}).get_json()
    assert "<script" not in data["html"] and "<img" not in data["html"] and "<a " not in data["html"]
    # The title is returned as text; the page sets it with textContent, never as HTML.
    assert data["title"] == "Hostile <script>alert(1)</script> title"


def test_preview_needs_a_signed_in_user_and_the_csrf_header(client, token):
    assert client.post("/api/preview", json={"markdown": DRAFT}).status_code == 401
    sign_in(client)
    assert client.post("/api/preview", json={"markdown": DRAFT}).status_code == 403
    bearer = client.post("/api/preview", json={"markdown": DRAFT}, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200


def test_preview_names_the_line_of_bad_front_matter(client, kb, token):
    csrf = signed_in_csrf(client)
    response = client.post("/api/preview", json={"markdown": "---\ntitle: a: b\n---\nx\n"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 400
    assert response.get_json()["line"] == 2
    assert "front matter is not valid YAML" in response.get_json()["error"]
    bad_shape = client.post("/api/preview", json={"text": "x"}, headers={"X-CSRF-Token": csrf})
    assert bad_shape.status_code == 400 and '"markdown"' in bad_shape.get_json()["error"]
    assert stored(kb) == 0


def test_the_new_page_offers_template_preview_and_suggestions(client, token):
    sign_in(client)
    html = client.get("/new").get_data(as_text=True)
    for part in ('data-template', 'id="preview"', 'id="suggested-tags"', 'data-preview-url="/api/preview"',
                 '<template id="postmortem-template">', "## Root cause", "## Contributing factors",
                 'name="csrf_token"', "editor.js", "Save postmortem"):
        assert part in html, part


def test_the_edit_page_has_the_same_editor_without_the_template(client, kb, token, write_md):
    from kb.ingest import import_paths

    import_paths(kb, [write_md("2024-05-02-churn.md", DRAFT)])
    sign_in(client)
    html = client.get("/postmortems/2024-05-02-churn/edit").get_data(as_text=True)
    for part in ('id="preview"', 'id="suggested-tags"', "data-editor", "editor.js", 'name="csrf_token"',
                 'href="/postmortems/2024-05-02-churn">Cancel</a>'):
        assert part in html, part
    assert "data-template" not in html and 'type="file"' not in html
