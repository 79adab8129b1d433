"""Headless Chromium for tests of the static pages, driven by Playwright against the installed browser.

Playwright (its sync API) drives the Chromium already on the machine (``executable_path``: Debian's
``chromium``; no browser download, nothing from the network). This wrapper keeps the few calls the tests
and ``benchmarks/bench_review.py`` use, each bounded by :attr:`Browser.timeout`, and collects what the
page logged as an error (``console.error``, uncaught exceptions, resources that failed to load).

    with Browser() as b:
        b.open(Path("index.html").as_uri())
        b.evaluate("document.title")
        b.screenshot("page.png")
        assert b.console_errors() == []
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

#: Seconds one call (a page load, an evaluation, a click) may take before it fails.
TIMEOUT = 30.0

#: Executables tried, in order, after ``$CHROMIUM`` (Debian's package is ``chromium``, Ubuntu's ``chromium-browser``).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserError(RuntimeError):
    """Chromium could not start, a call failed or timed out, or page code threw."""


def chromium_path() -> str | None:
    """The Chromium (or Chrome) executable: ``$CHROMIUM`` if set, else the first of :data:`CANDIDATES` on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page at a time. Use it as a context manager: :meth:`close` always ends
    the browser. ``width`` x ``height`` is the viewport (CSS pixels); ``timeout`` bounds every call."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = TIMEOUT):
        from playwright.sync_api import Error, sync_playwright

        self.timeout = timeout
        self.width, self.height = width, height
        self._errors: list[str] = []
        self._context = self._page = None
        exe = executable or chromium_path()
        if exe is None:
            raise BrowserError(f"no Chromium found: set $CHROMIUM or put one of {', '.join(CANDIDATES)} on PATH")
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=exe, headless=True, timeout=timeout * 1000,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        except Error as err:
            self._playwright.stop()
            raise BrowserError(f"Chromium ({exe}) did not start: {err.message.splitlines()[0]}") from None
        self._new_page(javascript=True)

    def _new_page(self, javascript: bool) -> None:
        """Page scripts are a context's setting in Playwright: a new context (and page) when it changes."""
        if self._context is not None:
            self._context.close()
        self._javascript = javascript
        self._context = self._browser.new_context(viewport={"width": self.width, "height": self.height},
                                                  java_script_enabled=javascript)
        self._page = self._context.new_page()
        self._page.on("console", self._on_console)
        self._page.on("pageerror", lambda err: self._errors.append(f"uncaught exception: {err}"))
        self._page.on("requestfailed", lambda req: self._errors.append(
            f"network: {req.url} failed ({req.failure})"))

    def _on_console(self, message) -> None:
        if message.type in ("error", "assert"):
            where = message.location.get("url", "")
            self._errors.append(f"console.error: {message.text}" + (f" ({where})" if where else ""))

    def close(self) -> None:
        """End the browser (safe to call twice)."""
        if self._playwright is None:
            return
        try:
            self._browser.close()
        finally:
            self._playwright.stop()
            self._playwright = None

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ms(self) -> float:
        return self.timeout * 1000

    # --- what a test calls ------------------------------------------------------------------------------------

    def open(self, url: str, javascript: bool = True) -> None:
        """Load ``url`` with page scripts on or off and wait for its load event; clears :meth:`console_errors`."""
        from playwright.sync_api import Error

        if javascript != self._javascript:
            self._new_page(javascript)
        self._errors.clear()
        try:
            self._page.goto(url, wait_until="load", timeout=self._ms())
        except Error as err:
            raise BrowserError(f"cannot open {url}: {err.message.splitlines()[0]}") from None

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited; the value comes back as JSON).
        A promise that does not settle within :attr:`timeout` raises :class:`BrowserError`; with page scripts
        off, timers do not run, so keep expressions synchronous there."""
        from playwright.sync_api import Error

        seconds = f"{self.timeout:g}"
        race = ("([expression, ms]) => Promise.race([Promise.resolve().then(() => (0, eval)(expression)), "
                "new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), "
                "ms))])")
        try:
            if self._javascript:
                return self._page.evaluate(race, [expression, self.timeout * 1000])
            return self._page.evaluate(expression)
        except Error as err:
            message = err.message.splitlines()[0]
            if "no answer within" in message:
                raise BrowserError(f"evaluating {expression[:200]!r}: no answer within {seconds} s") from None
            raise BrowserError(f"evaluating {expression[:200]!r} threw: {message}") from None

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching ``selector`` (input events, not
        script: it works with page scripts off)."""
        from playwright.sync_api import Error

        try:
            self._page.locator(selector).first.click(timeout=self._ms())
        except Error as err:
            raise BrowserError(f"click {selector!r}: {err.message.splitlines()[0]}") from None

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Write a PNG of the viewport, or of the whole page (``full_page``), to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._page.screenshot(path=str(path), full_page=full_page, timeout=max(self._ms(), 60_000))
        return path

    def console_errors(self) -> list[str]:
        """Errors the page logged since the last :meth:`open`: ``console.error`` calls, uncaught exceptions and
        requests that failed (a resource that could not load)."""
        self._page.evaluate("0")  # a round trip: events sent before it have been delivered
        return list(self._errors)
