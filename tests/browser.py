"""A small driver of headless Chromium over the Chrome DevTools Protocol, for tests of the static pages.

No Selenium, no Playwright, no driver binary: Chromium is started with ``--remote-debugging-port=0`` (it picks a
free port and writes it to ``DevToolsActivePort`` in its profile folder), the page target's websocket is opened
with aiohttp (already installed: dvc's HTTP filesystem needs it), and protocol commands are sent on it. The
asyncio loop runs in a thread of its own, so the API is plain synchronous calls; every call has a timeout and a
browser that dies or hangs raises :class:`BrowserError` naming what it was doing, never a hung test.

    with Browser() as b:
        b.open(Path("index.html").as_uri())
        b.evaluate("document.title")
        b.screenshot("page.png")
        assert b.console_errors() == []
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seconds one protocol command (or a page load, or the start) may take before the call fails.
TIMEOUT = 30.0

#: Executables tried, in order, after ``$CHROMIUM`` (Debian's package is ``chromium``, Ubuntu's ``chromium-browser``).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class BrowserError(RuntimeError):
    """Chromium could not start, a command failed or timed out, or page code threw."""


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
    """One headless Chromium with one page. Use it as a context manager: :meth:`close` always kills the process.

    ``width`` x ``height`` is the window (CSS pixels); ``timeout`` bounds every command."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = TIMEOUT):
        self.timeout = timeout
        self.width, self.height = width, height
        self._errors: list[str] = []
        self._listeners: list[Callable[[str, dict], None]] = []
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session = self._ws = self._reader = None
        self._closed = False
        exe = executable or chromium_path()
        if exe is None:
            raise BrowserError(f"no Chromium found: set $CHROMIUM or put one of {', '.join(CANDIDATES)} on PATH")
        self._profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self._log = self._profile.parent / f"{self._profile.name}.log"
        try:
            self._start(exe)
        except BaseException:
            self.close()
            raise

    # --- start and stop ---------------------------------------------------------------------------------------

    def _start(self, exe: str) -> None:
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--disable-dev-shm-usage", "--hide-scrollbars", "about:blank"]
        with open(self._log, "wb") as log:
            # a session of its own: close() kills the whole group (zygote, renderers), not just the first process
            self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True)
        port = self._wait_for_port()
        target = self._page_target(port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cdp-loop", daemon=True)
        self._thread.start()
        self._run(self._connect(target["webSocketDebuggerUrl"]), "connecting to the page")
        self._listeners.append(self._collect_errors)
        for domain in ("Page", "Runtime", "Log", "DOM"):
            self.send(f"{domain}.enable")

    def _wait_for_port(self) -> int:
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(f"Chromium exited with status {self._proc.returncode} before it listened; "
                                   f"its output:\n{self._log_tail()}")
            try:
                first = port_file.read_text().splitlines()[0]
                return int(first)
            except (FileNotFoundError, IndexError, ValueError):
                time.sleep(0.05)
        raise BrowserError(f"Chromium wrote no {port_file} within {self.timeout:.0f} s; its output:\n"
                           f"{self._log_tail()}")

    def _page_target(self, port: int) -> dict:
        url = f"http://127.0.0.1:{port}/json/list"
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                    targets = json.load(resp)
            except OSError as err:
                raise BrowserError(f"cannot list Chromium's targets at {url}: {err}") from err
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            if pages:
                return pages[0]
            if time.monotonic() > deadline:
                raise BrowserError(f"Chromium at {url} has no page target: {targets}")
            time.sleep(0.1)

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self._log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no output)"

    def close(self) -> None:
        """Close the connection and kill Chromium (and its children); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(5)
            except Exception:  # noqa: BLE001 - closing: the process is killed below whatever happened here
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()
        if self._proc is not None and self._proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self._proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self._proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._proc is not None:
            try:  # the group's other processes (renderers) may outlive the first one by a moment
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self._profile, ignore_errors=True)
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- the protocol -----------------------------------------------------------------------------------------

    async def _connect(self, ws_url: str) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession()
        # max_msg_size=0: a full-page screenshot arrives as one message of many megabytes
        self._ws = await self._session.ws_connect(ws_url, max_msg_size=0)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _disconnect(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> None:
        import aiohttp

        reason = "the connection to Chromium closed"
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if "id" in data:
                    fut = self._pending.pop(data["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
                    continue
                for listener in list(self._listeners):
                    try:
                        listener(data.get("method", ""), data.get("params", {}))
                    except Exception as err:  # noqa: BLE001 - a broken listener must not stop the reader
                        self._errors.append(f"(test driver) listener failed: {err!r}")
        except Exception as err:  # noqa: BLE001 - reported to every waiting command
            reason = f"reading from Chromium failed: {err!r}"
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(BrowserError(reason))
        self._pending.clear()

    async def _send(self, method: str, params: dict) -> dict:
        if self._reader is None or self._reader.done():
            raise BrowserError(f"{method}: not connected to Chromium")
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await fut
        if "error" in reply:
            err = reply["error"]
            raise BrowserError(f"{method} failed: {err.get('message')} {err.get('data', '')}".rstrip())
        return reply.get("result", {})

    def _run(self, coro, what: str, timeout: float | None = None):
        if self._closed or self._loop is None:
            coro.close()
            raise BrowserError(f"{what}: the browser is closed")
        timeout = self.timeout if timeout is None else timeout
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:  # the builtin TimeoutError only from Python 3.11
            fut.cancel()
            alive = "running" if self._proc.poll() is None else f"exited ({self._proc.returncode})"
            raise BrowserError(f"{what}: no answer within {timeout:.0f} s (Chromium {alive}); its output:\n"
                               f"{self._log_tail(1500)}") from None

    def send(self, method: str, **params) -> dict:
        """Send one protocol command and return its result (raises :class:`BrowserError` on an error reply)."""
        return self._run(self._send(method, params), method)

    def _wait_for(self, method: str, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` (protocol calls) and wait for the event ``method`` it causes; returns the action's value."""
        seen = threading.Event()

        def listener(name: str, _params: dict) -> None:
            if name == method:
                seen.set()

        self._listeners.append(listener)
        try:
            value = action()
            if not seen.wait(self.timeout):
                raise BrowserError(f"{what}: no {method} within {self.timeout:.0f} s")
            return value
        finally:
            self._listeners.remove(listener)

    # --- what a test calls ------------------------------------------------------------------------------------

    def open(self, url: str, javascript: bool = True) -> None:
        """Load ``url`` with page scripts on or off and wait for its load event; clears :meth:`console_errors`."""
        self.send("Emulation.setScriptExecutionDisabled", value=not javascript)
        self._errors.clear()

        def navigate() -> None:
            result = self.send("Page.navigate", url=url)
            if result.get("errorText"):
                raise BrowserError(f"cannot open {url}: {result['errorText']}")

        self._wait_for("Page.loadEventFired", f"opening {url}", navigate)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited; the value comes back as JSON).

        This is the protocol's evaluation, not the page's: it works with page scripts disabled, but then timers
        and events do not run, so a promise waiting on them never settles (the call times out): keep
        expressions synchronous on a page opened with ``javascript=False``."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True,
                           userGesture=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression[:200]!r} threw: {text}")
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the first element matching ``selector``:
        input events, not script, so it works with page scripts disabled."""
        root = self.send("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise BrowserError(f"click: nothing matches {selector!r}")
        self.send("DOM.scrollIntoViewIfNeeded", nodeId=node)
        quad = self.send("DOM.getBoxModel", nodeId=node)["model"]["border"]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Write a PNG of the window, or of the whole page (``full_page``, capped at 16384 px high), to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": max(size["width"], 1), "height": min(max(size["height"], 1), 16384),
                "scale": 1})
        data = self._run(self._send("Page.captureScreenshot", params), "Page.captureScreenshot",
                         timeout=max(self.timeout, 60))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Errors the page logged since the last :meth:`open`: ``console.error`` calls, uncaught exceptions and
        the browser's own error entries (a resource that failed to load, a blocked request)."""
        self.send("Runtime.evaluate", expression="0")  # a round trip: events sent before it have been read
        return list(self._errors)

    def _collect_errors(self, method: str, params: dict) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            self._errors.append("console.error: " + " ".join(
                str(a.get("value", a.get("description", a.get("type")))) for a in args))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self._errors.append(f"uncaught exception: {text} ({details.get('url', '')}:"
                                f"{details.get('lineNumber', '?')})")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self._errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}"
                                .rstrip())
