"""Debian's chromium driven by Playwright, for the dashboard's browser tests.

Playwright's own browser download is never used: :func:`launch` starts the system's
``/usr/bin/chromium`` through ``executable_path``, headless, with a fresh profile and
without any of chromium's background traffic (updates, sync, safe browsing), so the
only requests a page makes are the dashboard's own. A :class:`PageWatch` records what
a page did wrong while a test drove it: console errors, uncaught exceptions and
failed requests (a network failure, or an answer of 400 and above that the test did
not expect), so a test can assert that a page drew cleanly::

    with launch() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        watch = PageWatch(page)
        page.goto(url)
        watch.assert_clean()

Without chromium the tests skip and say what to install, unless ``CI`` is set (then
they fail: ``.ci/run`` installs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, ViewportSize

__all__ = ["CHROMIUM", "VIEWPORT", "PageWatch", "chromium_or_skip", "launch"]

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots of the docs are made at this size, so they are the same on every machine.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
FLAGS = (
    "--headless",
    "--no-sandbox",  # a container's root user has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",  # screenshots without a scrollbar of the machine's theme
    "--force-color-profile=srgb",
    "--font-render-hinting=none",
)


def chromium_or_skip() -> Path:
    """The chromium binary, or a skip saying how to install it (a failure when CI is set)."""
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} is missing: apt-get install chromium (Debian's; .ci/run does it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def launch() -> Iterator[Browser]:
    """Debian's chromium, headless, with a fresh profile (one per launch), until the block ends."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh --user-data-dir of its own (a temporary
        # folder it removes on close), and refuses one passed in ``args``.
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            headless=True,
            args=list(FLAGS),
            env={**os.environ, "TZ": "UTC"},
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageWatch:
    """What went wrong on ``page`` since it was watched: console errors, page errors, and
    requests that failed or were answered with an error status.

    ``expected`` holds (status, path) pairs a test provokes on purpose (the 403 of a
    refused action), which are not problems.
    """

    page: Page
    console: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    expected: set[tuple[int, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.console.append((message.text, message.location.get("url", "")))

    def _request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and not self._expected(response.status, response.url):
            self.failed.append(f"{response.request.method} {response.url}: {response.status}")

    def _expected(self, status: int, url: str) -> bool:
        from urllib.parse import urlsplit

        return (status, urlsplit(url).path) in self.expected

    def _console_problem(self, text: str, url: str) -> bool:
        # Chromium also logs every error status it loads to the console; an expected one
        # is not a problem there either.
        return not any(
            text.startswith("Failed to load resource") and f"status of {status} " in text
            for status, _ in self.expected
            if self._expected(status, url)
        )

    def expect(self, status: int, path: str) -> None:
        """Answering ``path`` with ``status`` is what the test wants, not a problem."""
        self.expected.add((status, path))

    def problems(self) -> list[str]:
        """Everything that went wrong, one line each (empty: the page was clean)."""
        return (
            [
                f"console: {text} ({url})"
                for text, url in self.console
                if self._console_problem(text, url)
            ]
            + [f"page error: {line}" for line in self.errors]
            + [f"request: {line}" for line in self.failed]
        )

    def assert_clean(self, origin: str) -> None:
        """No console error, no page error, no failed request, and every request went to
        ``origin`` (nothing from a CDN or anywhere else)."""
        elsewhere = [url for url in self.requests if not url.startswith((origin, "data:", "blob:"))]
        problems = self.problems() + [f"request outside {origin}: {url}" for url in elsewhere]
        assert not problems, "\n".join(problems)
