"""A real HTTP server on 127.0.0.1 for scraper tests: scripted routes, fault injection, request log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Route:
    """Answers in order: each item is (status, headers, body) or a callable(handler) -> that tuple;
    the last answer repeats."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def next(self, handler):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer(handler) if callable(answer) else answer


class LocalServer:
    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[float, str]] = []  # (monotonic time, path) of every request
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                with server.lock:
                    server.log.append((time.monotonic(), self.path))
                    route = server.routes.get(self.path)
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = route.next(self)
                if status is None:  # the callable already answered (or stalled and gave up)
                    return
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def route(self, path: str, *answers) -> Route:
        r = Route(*answers)
        self.routes[path] = r
        return r

    def times(self, prefix: str = "") -> list[float]:
        with self.lock:
            return [t for t, p in self.log if p.startswith(prefix)]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def stall(seconds: float) -> Callable:
    """Send headers, then go silent for ``seconds`` (a stalled response)."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            handler.wfile.write(b"\xff\xd8")
            handler.wfile.flush()
        except OSError:
            return None, {}, b""
        time.sleep(seconds)
        return None, {}, b""

    return answer
