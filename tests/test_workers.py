"""Two server processes on one knowledge base: what one stores, the other finds within a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.pgserver import free_port

KB = str(Path(sys.executable).with_name("kb"))
TOKEN = "two-workers-token"
POSTMORTEM = """---
title: Embedding service answered with a stale vocabulary
date: 2025-09-14
severity: SEV2
---

## Summary
After the tokenizer upgrade the embedding service kept a cached vocabulary, so zephyrine queries returned noise.
"""


def request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture
def workers(tmp_path, database_url):
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "data"), "KB_SECRET_KEY": "shared", "KB_API_TOKEN": TOKEN,
           "KB_DATABASE_URL": database_url}
    subprocess.run([KB, "db", "upgrade"], env=env, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"worker-{port}.log").open("w") for port in ports]
    processes = [subprocess.Popen([KB, "serve", "--port", str(port), "--threads", "2"], env=env,
                                  stdout=log, stderr=subprocess.STDOUT) for port, log in zip(ports, logs, strict=True)]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 30
        for url in urls:
            while True:
                try:
                    request(f"{url}/api/labels")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"worker {url} did not start") from None
                    time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_a_postmortem_stored_through_one_worker_is_found_through_the_other(workers):
    first, second = workers
    assert request(f"{second}/api/search?q=zephyrine")[1]["total"] == 0  # the second worker has a searcher open
    status, record = request(f"{first}/api/postmortems", data=POSTMORTEM.encode(),
                             headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/markdown"})
    assert status == 201
    stored = time.monotonic()
    while (found := request(f"{second}/api/search?q=zephyrine")[1])["total"] == 0 and time.monotonic() - stored < 1:
        time.sleep(0.05)
    assert [hit["slug"] for hit in found["hits"]] == [record["slug"]]
    assert time.monotonic() - stored < 1
    assert request(f"{second}/api/postmortems/{record['slug']}")[1]["title"] == record["title"]
