"""The domain (kb) and the tagger (nlp) must import without Flask."""

import subprocess
import sys

BLOCK_FLASK = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "flask" or name.startswith("flask."):
            raise ImportError("flask is blocked in this test")
sys.meta_path.insert(0, Blocker())
import kb.cli, kb.context, kb.ingest, kb.search, kb.trends, kb.reindex, kb.users
import nlp.tagger, nlp.taxonomy, nlp.pipeline
assert "flask" not in sys.modules
print("ok")
"""

NLP_WITHOUT_STORAGE = """
import sys
import nlp.tagger, nlp.taxonomy, nlp.pipeline
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"kb", "sqlmodel", "whoosh", "flask"})
print(bad)
"""


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_kb_and_nlp_import_without_flask():
    assert run(BLOCK_FLASK) == "ok"


def test_nlp_imports_neither_storage_nor_web():
    assert run(NLP_WITHOUT_STORAGE) == "[]"
