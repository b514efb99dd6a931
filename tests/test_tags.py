"""People decide on tags; the machine never overwrites those decisions, and learns from them."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner
from sqlmodel import select

from kb.cli import cli
from kb.ingest import import_paths
from kb.models import PostmortemLabel
from kb.storage import get_postmortem, tags_for
from kb.training import retag_all, train_tagger
from tests.conftest import SEED

DOC = """---
title: Ranking drifted after the spring sale
date: 2024-03-02
severity: SEV2
facets: [structure]
---
## Root cause
Nobody owned the feature pipeline after the reorg, so the nightly job was never fixed.
The input distribution drifted when buyers changed their habits, and the data drift went unnoticed for weeks.
"""


def tag_states(kb, slug):
    with kb.session() as session:
        pm = get_postmortem(session=session, slug=slug)
        tags = tags_for(session=session, postmortem_ids=[pm.id])[pm.id]
        return {tag.label_id: (tag.source, tag.status) for tag, _ in tags}


def test_front_matter_labels_are_human_and_rules_suggest_the_rest(kb, write_md):
    import_paths(kb, [write_md("2024-03-02-drift.md", DOC)])
    states = tag_states(kb, "2024-03-02-drift")
    assert states["structure"] == ("human", "confirmed")
    assert states["data-drift"] == ("auto", "suggested")


def test_api_decisions_are_recorded_with_who_and_when(client, kb, token, write_md):
    import_paths(kb, [write_md("2024-03-02-drift.md", DOC)])
    response = client.patch(
        "/api/postmortems/2024-03-02-drift/tags",
        json=[{"label": "data-drift", "status": "rejected"}, {"label": "people", "status": "confirmed"}],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    tags = {tag["label"]: tag for tag in response.get_json()["tags"]}
    assert (tags["data-drift"]["source"], tags["data-drift"]["status"], tags["data-drift"]["decided_by"]) == (
        "human", "rejected", "ana")
    assert tags["people"]["status"] == "confirmed" and tags["people"]["decided_at"]
    assert "data-drift" not in response.get_json()["categories"]
    # The index follows the decision: a rejected label no longer finds the postmortem.
    assert client.get("/api/search?category=data-drift").get_json()["total"] == 0
    assert client.get("/api/search?facet=people").get_json()["total"] == 1


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"label": "no-such-label", "status": "confirmed"}, 400, "unknown label 'no-such-label'; see /api/labels"),
        ({"label": "people", "status": "maybe"}, 400, "status must be one of confirmed, rejected, not 'maybe'"),
    ],
)
def test_api_rejects_bad_decisions(client, kb, token, write_md, payload, status, message):
    import_paths(kb, [write_md("2024-03-02-drift.md", DOC)])
    response = client.post("/api/postmortems/2024-03-02-drift/tags", json=payload,
                           headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.get_json()) == (status, {"error": message})


def test_decisions_need_authentication(client, kb, write_md):
    import_paths(kb, [write_md("2024-03-02-drift.md", DOC)])
    response = client.post("/api/postmortems/2024-03-02-drift/tags", json={"label": "people"})
    assert response.status_code == 401


def test_retag_and_reimport_never_overwrite_human_decisions(kb, write_md):
    path = write_md("2024-03-02-drift.md", DOC)
    import_paths(kb, [path])
    with kb.session() as session:
        tag = session.exec(select(PostmortemLabel).where(PostmortemLabel.label_id == "data-drift")).one()
        tag.source, tag.status, tag.decided_by = "human", "rejected", "alice"
        session.add(tag)
        session.commit()
    retag_all(kb)
    path.write_text(DOC + "\nMore drift: the distribution shifted again in April.\n", encoding="utf-8")
    assert import_paths(kb, [path]).counts()["updated"] == 1
    states = tag_states(kb, "2024-03-02-drift")
    assert states["data-drift"] == ("human", "rejected")
    assert states["structure"] == ("human", "confirmed")


def test_train_learns_from_confirmed_labels_and_retag_uses_the_model(kb, tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    for path in sorted(SEED.glob("*.md"))[::4]:  # a quarter of the seed files, from every batch
        shutil.copy(path, seed / path.name)
    report = import_paths(kb, [seed])
    assert report.counts()["failed"] == 0
    summary = train_tagger(kb)
    assert summary.documents == report.counts()["imported"]
    assert kb.tagger.model is not None and kb.config.model_dir.is_dir()
    retag_all(kb)
    with kb.session() as session:
        auto = session.exec(select(PostmortemLabel).where(PostmortemLabel.source == "auto")).all()
    assert auto, "the trained tagger suggests labels beyond the human ones"
    assert all(tag.evidence for tag in auto), "every auto tag has at least one evidence sentence"


def test_kb_train_prints_its_held_out_scores_beside_those_of_the_model_it_replaces(tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    for path in sorted(SEED.glob("*.md"))[:24]:
        shutil.copy(path, seed / path.name)
    runner = CliRunner(env={"KB_DATA_DIR": str(tmp_path / "data")})
    assert runner.invoke(cli, ["import", str(seed)]).exit_code == 0

    first = runner.invoke(cli, ["train"])
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0] == f"trained on 24 postmortems; saved to {tmp_path / 'data' / 'model'}"
    assert re.fullmatch(r"held-out micro-F1: facets 0\.\d\d, categories 0\.\d\d \(.+\)", lines[1]), lines[1]
    assert "replaces" not in first.output

    second = runner.invoke(cli, ["train"])
    assert second.exit_code == 0, second.output
    figures = lines[1].split(" (")[0].removeprefix("held-out micro-F1: ")
    assert f"  the model it replaces: {figures} on 24 postmortems" in second.output.splitlines()
