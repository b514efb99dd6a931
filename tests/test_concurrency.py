"""Several writers and readers on one knowledge base: writers wait for the Whoosh lock instead of failing,
searches are answered meanwhile, and no document is lost."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.synthetic import Generator
from kb.index import SearchIndex

KB = Path(sys.executable).with_name("kb")  # the console script of the venv running the tests
FILES = 500
BATCH = 64  # kb.ingest.import_files indexes this many files per writer
POSTS = 10
MARKER = "quokka"  # a word in every synthetic title and nowhere else


def write_postmortems(folder: Path, count: int) -> list[str]:
    """Write count synthetic postmortems titled with MARKER; return their slugs."""
    folder.mkdir(parents=True)
    generator = Generator(seed=7)
    for i in range(count):
        doc = generator.document(i) | {"title": f"{MARKER} incident {i}"}
        (folder / f"synthetic-{i:06d}.md").write_text(generator.markdown(doc), encoding="utf-8")
    return [f"synthetic-{i:06d}" for i in range(count)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, data: dict | None = None, token: str = "") -> tuple[int, object, float]:
    """Return the status, JSON body and seconds taken of a GET (or a POST of data)."""
    body = json.dumps(data).encode() if data is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"} if data is not None else {}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=120) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(errors="replace"), time.perf_counter() - started


@pytest.fixture
def env(tmp_path):
    """The environment of the `kb` processes: a fresh data folder and no KB_* settings of the caller."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("KB_")}
    return clean | {"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "test-secret"}


@pytest.fixture
def api_token(env):
    """Add a user with `kb user add` (which also creates the database) and return their API token."""
    added = subprocess.run([KB, "user", "add", "writer", "--password", "correct horse"], env=env,
                           capture_output=True, text=True, check=True)
    return added.stdout.split()[-1]


@pytest.fixture
def server(tmp_path, env, api_token):
    """Start `kb serve` and return its URL once it answers searches; kill it afterwards."""
    url = f"http://127.0.0.1:{free_port()}"
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen([KB, "serve", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                try:
                    if request(f"{url}/api/search?q=x")[0] == 200:  # also creates the index
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the server did not answer within 30 s"
                    time.sleep(0.2)
            yield url
        finally:
            process.kill()
            process.wait()


def post_postmortems(url: str, token: str, results: list) -> None:
    """Create POSTS postmortems through the API, one every half second, recording each status."""
    for n in range(POSTS):
        try:
            status, _body, _seconds = request(f"{url}/api/postmortems", {
                "markdown": f"# Served write {n}\n\nWritten through the API while an import ran.\n",
                "filename": f"served-{n}.md"}, token)
        except Exception as error:  # a thread must not raise; the test asserts on what it recorded
            status = repr(error)
        results.append(status)
        time.sleep(0.5)


def imported_titles(url: str) -> int:
    """Return how many synthetic postmortems the server's database lists."""
    _status, body, _seconds = request(f"{url}/api/postmortems?limit=200")
    return sum(MARKER in item["title"] for item in body["postmortems"])


def test_import_and_serve_at_once_lose_nothing(tmp_path, env, api_token, server):
    slugs = write_postmortems(tmp_path / "docs", FILES)
    queries = [f"q={MARKER}", "q=feature+pipeline+drift", "q=&facet=structure", "q=threshold+OR+cache&sort=newest",
               "q=severity:sev1+model"]
    searches, posted = [], []
    # A third writer holds the lock until the import has stored its first batch, so that the import and
    # the server's API writes must both wait for it.
    holder = SearchIndex(tmp_path / "data" / "index").index.writer()
    poster = threading.Thread(target=post_postmortems, args=(server, api_token, posted))
    with (tmp_path / "import.out").open("w+") as out, (tmp_path / "import.err").open("w+") as err:
        started = time.perf_counter()
        importer = subprocess.Popen([KB, "import", str(tmp_path / "docs")], env=env, stdout=out, stderr=err)
        try:
            poster.start()
            while importer.poll() is None:
                if holder is not None and imported_titles(server) >= BATCH:
                    time.sleep(1.0)
                    holder.cancel()
                    holder = None
                searches.append(request(f"{server}/api/search?{queries[len(searches) % len(queries)]}"))
            import_seconds = time.perf_counter() - started
        finally:
            if holder is not None:
                holder.cancel()
            importer.kill()  # a no-op once it has exited; stops it when the test fails halfway
            importer.wait()
            poster.join()
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()

    assert (importer.returncode, output) == (0, "imported: 500  updated: 0  unchanged: 0  failed: 0\n")
    assert ("lock" in errors.lower(), "Traceback" in errors) == (False, False), errors
    assert [(status, type(body)) for status, body, _ in searches if (status, type(body)) != (200, dict)] == []
    assert posted == [201] * POSTS
    found = set()
    for page in range(1, FILES // 100 + 1):
        _status, body, _seconds = request(f"{server}/api/search?q={MARKER}&per_page=100&page={page}")
        found |= {hit["slug"] for hit in body["hits"]}
    assert (body["total"], found) == (FILES, set(slugs))
    doctor = subprocess.run([KB, "doctor", "--format", "json"], env=env, capture_output=True, text=True)
    assert (doctor.returncode, json.loads(doctor.stdout)["found"]) == (0, {
        "postmortems": FILES + POSTS, "documents": FILES + POSTS, "missing": [], "extra": [], "marked": [],
        "stale": [], "ok": True})
    latencies = sorted(seconds for _, _, seconds in searches)
    print(f"\nimport of {FILES} files: {import_seconds:.1f} s; {len(searches)} searches answered meanwhile, "
          f"median {latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")


def test_writers_starting_on_an_empty_folder_together_lose_nothing(tmp_path):
    errors, barrier = [], threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        try:
            SearchIndex(tmp_path / "index").upsert([{"slug": f"doc-{i}", "title": "First"}])
        except Exception as error:  # a thread must not raise; the test asserts on what it recorded
            errors.append(repr(error))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (errors, SearchIndex(tmp_path / "index").slugs()) == ([], {f"doc-{i}" for i in range(8)})


def test_searches_see_the_old_index_until_a_rebuild_commits(tmp_path):
    index, seen = SearchIndex(tmp_path / "index"), []
    index.upsert([{"slug": "old", "title": "Old"}])

    def documents():
        yield {"slug": "new", "title": "New"}
        seen.append(SearchIndex(tmp_path / "index").slugs())  # what another process sees meanwhile

    assert index.rebuild(documents()) == 1
    assert (seen, index.slugs()) == ([{"old"}], {"new"})


def test_reading_the_schema_while_another_writer_commits_never_fails(tmp_path):
    SearchIndex(tmp_path / "index").upsert([{"slug": "doc-0", "title": "First"}])
    done, errors = threading.Event(), []

    def write() -> None:
        writer, n = SearchIndex(tmp_path / "index"), 0
        while not done.is_set():
            try:
                writer.upsert([{"slug": f"doc-{n % 5}", "title": "Again"}])
            except Exception as error:  # a thread must not raise; the test asserts on what it recorded
                errors.append(repr(error))
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    # Each commit deletes the table of contents before it; search reads the schema from the newest one.
    reader, deadline = SearchIndex(tmp_path / "index"), time.monotonic() + 1.5
    try:
        while time.monotonic() < deadline:
            try:
                reader.index.schema.names()
            except OSError as error:
                errors.append(repr(error))
    finally:
        done.set()
        thread.join()
    assert errors == []
