"""Response headers that keep browsers strict, and a brake on password and token guessing."""

from __future__ import annotations

import threading
import time
from collections import deque

from flask import Flask

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class FailureThrottle:
    """Count recent failures per key and refuse a key that failed too often within the window."""

    def __init__(self, max_failures: int, window_s: float, clock=time.monotonic):
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if failures:
            self._failures[key] = failures
        else:
            self._failures.pop(key, None)
        return failures

    def retry_after(self, *keys: str) -> int:
        """Return the seconds to wait before any of keys may try again, 0 when none is blocked."""
        now = self.clock()
        with self._lock:
            waits = [failures[0] + self.window_s - now for key in keys
                     if len(failures := self._recent(key, now)) >= self.max_failures]
        return int(max(waits)) + 1 if waits else 0

    def fail(self, *keys: str) -> None:
        """Record one failure under each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def forget(self, *keys: str) -> None:
        """Clear the failures of keys, after a success."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def init_app(app: Flask) -> None:
    """Send the security headers on every response."""

    @app.after_request
    def add_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
