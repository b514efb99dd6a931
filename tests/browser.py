"""A live server on loopback and the distribution's Chromium, for the browser tests."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

# No sandbox: the tests often run as root in a container. The rest keeps Chromium off the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    """Return the Chromium to drive: KB_CHROMIUM, else `chromium` on the PATH, else None."""
    return os.environ.get("KB_CHROMIUM") or shutil.which("chromium")


def copy_seed_sample(seed: Path, folder: Path, *, every: int = 11) -> list[Path]:
    """Copy every nth seed postmortem (in name order) into folder and return the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(path, folder)) for path in sorted(seed.glob("*.md"))[::every]]


class LiveServer:
    """Serve app on a free loopback port from a background thread until stop()."""

    def __init__(self, app: Flask):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="browser-test-server", daemon=True)

    def start(self) -> str:
        """Start serving and return the base URL."""
        self.thread.start()
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
