"""How many evidence sentences the postmortem page can highlight in the rendered text.

    .venv/bin/python bench/evidence_marks.py [PATH ...]      (default: seed_data)

Imports the postmortems into a throw-away knowledge base (rules only, no model), renders each body as the
page does and counts the evidence sentences of its tags that end up inside a <mark>. Sentences taken from
the title are counted apart: the title is shown as the page's heading, not in the body.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import select  # noqa: E402

from kb.config import load_config  # noqa: E402
from kb.context import open_kb  # noqa: E402
from kb.ingest import import_paths  # noqa: E402
from kb.models import Postmortem  # noqa: E402
from kb.storage import tags_for  # noqa: E402
from web.render import mark_evidence, render_markdown  # noqa: E402

MIN_LENGTH = 12  # mark_evidence leaves shorter sentences alone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["seed_data"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["KB_DATA_DIR"] = data_dir
        knowledge_base = open_kb(load_config())
        import_paths(knowledge_base, args.paths)
        with knowledge_base.session() as db:
            rows = db.exec(select(Postmortem)).all()
            tags = tags_for(session=db, postmortem_ids=[row.id for row in rows])
        sentences = marked = in_title = 0
        for row in rows:
            evidence = {tag.label_id: tag.evidence for tag, _kind in tags[row.id] if tag.status != "rejected"}
            body = render_markdown(row.body)
            for sentence in {s for found in evidence.values() for s in found if len(s) >= MIN_LENGTH}:
                if sentence == row.title:
                    in_title += 1
                    continue
                sentences += 1
                marked += "<mark" in str(mark_evidence(body, {"label": [sentence]}))
        knowledge_base.engine.dispose()
    print(f"{len(rows)} postmortems, {sentences} evidence sentences in their bodies ({in_title} more are titles)")
    print(f"highlighted: {marked} ({marked / max(sentences, 1):.0%})")


if __name__ == "__main__":
    main()
