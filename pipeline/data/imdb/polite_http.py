"""A polite HTTP client for scraping: one global rate limit, a concurrency cap,
robots.txt, timeouts, retries with backoff, Retry-After, and bounded redirects.

Politeness is the default: a descriptive User-Agent, at most ``rate_limit``
requests per second across all threads (robots.txt fetches included), at most
``concurrency`` requests in flight, and nothing fetched that robots.txt
disallows for our User-Agent. The retry policy is urllib3's :class:`~urllib3.util.Retry`:
transient failures (timeouts, connection errors, 429 and 5xx) are retried up to
``retries`` times with its exponential backoff (``backoff * 2**(n-1)`` seconds
before the n-th retry, none before the first, plus up to ``backoff`` of jitter,
at most ``max_backoff``), and a ``Retry-After`` header (seconds or HTTP date) is
honoured up to ``max_retry_after``, so a hostile value cannot stall a scrape for
hours. The loop that asks again is ours, not urllib3's, because every attempt
must pass the rate limiter, a concurrency slot and robots.txt.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.robotparser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util import Retry

from pipeline.core.errors import PipelineError
from pipeline.core.params import DATA_DEFAULTS, DataParams

USER_AGENT = "poster-genres/0.1 (research scraper; +https://github.com/poster-genres/poster-genres)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class FetchError(PipelineError):
    """A URL could not be fetched; ``reason`` is a short code for reports."""

    def __init__(self, reason: str, url: str, detail: str = ""):
        super().__init__(f"{reason}: {url}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.url = url


class Unreachable(PipelineError):
    """The site cannot be reached at all (offline machine, DNS failure)."""


@dataclass
class Response:
    url: str
    status: int
    headers: CaseInsensitiveDict  # what urllib3's Retry reads Retry-After from, by its canonical name
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def get_redirect_location(self) -> bool:
        """What urllib3's Retry asks of a response it counts (redirects never reach it: they are not attempts)."""
        return False


class RateLimiter:
    """At most ``rate`` acquisitions per second, shared by all threads (``rate <= 0``: unlimited)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class PoliteClient:
    """The settings that are ``data`` params (rate_limit, concurrency, timeout, retries) default to the params
    schema's values (:class:`~pipeline.core.params.DataParams`), written there only; the stage builds its
    client with :meth:`from_params`."""

    def __init__(
        self,
        user_agent: str = USER_AGENT,
        rate_limit: float = DATA_DEFAULTS.rate_limit,
        concurrency: int = DATA_DEFAULTS.concurrency,
        timeout: float = DATA_DEFAULTS.timeout,
        retries: int = DATA_DEFAULTS.retries,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 300.0,
        max_redirects: int = 5,
        max_bytes: int = 20_000_000,
        respect_robots: bool = True,
    ):
        self.user_agent = user_agent
        self.limiter = RateLimiter(rate_limit)
        self.concurrency = max(1, concurrency)
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self.timeout = timeout
        # every count is `total`: a timeout, a refused connection and a 503 are each one of `retries` attempts
        self.retry = Retry(total=retries, connect=None, read=None, redirect=None, status=None, other=None,
                           allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
                           backoff_factor=backoff, backoff_max=max_backoff, backoff_jitter=backoff,
                           respect_retry_after_header=True, retry_after_max=max_retry_after,
                           raise_on_status=False, raise_on_redirect=False)
        self.max_redirects = max_redirects
        self.max_bytes = max_bytes
        self.respect_robots = respect_robots
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_lock = threading.Lock()
        self._local = threading.local()
        self.stats = {"requests": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    @property
    def retries(self) -> int:
        return self.retry.total

    @classmethod
    def from_params(cls, data: DataParams) -> PoliteClient:
        """The client the validated ``data`` params describe."""
        return cls(rate_limit=data.rate_limit, concurrency=data.concurrency, timeout=data.timeout,
                   retries=data.retries)

    # -- plumbing -----------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = self.user_agent
            s.trust_env = False  # no proxies from the environment: requests go where the URL says
            self._local.session = s
        return s

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    @contextlib.contextmanager
    def _send(self, url: str, follow_redirects: bool = False) -> Iterator[requests.Response]:
        """One request: rate-limited, in a slot, counted; the body is streamed by the caller."""
        self.limiter.acquire()
        with self.slots:
            self._count("requests")
            # timeout=(connect, read): a stalled response fails after `timeout` seconds of silence
            with self._session().get(url, timeout=(self.timeout, self.timeout), allow_redirects=follow_redirects,
                                     stream=True) as r:
                yield r

    def _raw_get(self, url: str) -> Response:
        """One request, no redirects followed, body read into memory up to ``max_bytes``."""
        with self._send(url) as r:
            chunks, size = [], 0
            for chunk in r.iter_content(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError("too_large", url, f"over {self.max_bytes} bytes")
                chunks.append(chunk)
            return Response(url, r.status_code, CaseInsensitiveDict(r.headers), b"".join(chunks))

    def _wait(self, retry: Retry, response: Response | None) -> None:
        """Before the next attempt: the server's Retry-After (capped), else the policy's backoff."""
        try:
            delay = retry.get_retry_after(response) if response is not None else None
        except InvalidHeader:  # "Retry-After: soon": no usable value, the backoff decides
            delay = None
        self._count("retries")
        time.sleep(retry.get_backoff_time() if delay is None else delay)

    # -- robots.txt ---------------------------------------------------------------------------
    def allowed(self, url: str) -> bool:
        if not self.respect_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            if origin not in self._robots:
                parser: urllib.robotparser.RobotFileParser | None = urllib.robotparser.RobotFileParser()
                try:
                    r = self._retrying(origin + "/robots.txt", self._raw_get, check_robots=False)
                    if r.status == 200:
                        parser.parse(r.text.splitlines())
                    elif r.status in (401, 403):
                        parser.disallow_all = True
                    else:  # 404 and friends: no robots.txt, everything allowed
                        parser = None
                except FetchError:
                    parser = None
                self._robots[origin] = parser
            parser = self._robots[origin]
        return True if parser is None else parser.can_fetch(self.user_agent, url)

    # -- the retry loop (every request goes through it) -----------------------------------------
    def _retrying(self, url: str, once: Callable[[str], Response], check_robots: bool = True) -> Response:
        """``once(url)`` (one request) until it gives a final answer, which is returned (any status but
        a redirect or a :data:`RETRY_STATUSES` one).

        robots.txt is checked before every request. Timeouts, connection errors and
        :data:`RETRY_STATUSES` are retried up to ``retries`` times, after the server's Retry-After or
        a jittered exponential backoff; then they raise :class:`FetchError` (``timeout``,
        ``connection``, ``http_503``...). A failed DNS lookup raises :class:`Unreachable` at once.
        Redirects that ``once`` hands back are followed (at most ``max_redirects``, loops refused)
        and are not attempts.
        """
        seen = [url]
        retry = self.retry.new()
        while True:
            if check_robots and not self.allowed(url):
                raise FetchError("robots_disallowed", url)
            try:
                r = once(url)
            except (requests.Timeout, requests.ConnectionError) as err:
                if isinstance(err, requests.ConnectionError) and _dns_failure(err):
                    raise Unreachable(f"{urlsplit(url).netloc} is unreachable (no network?)") from None
                # a read that stalls mid-body surfaces as a ConnectionError("Read timed out")
                timed_out = isinstance(err, requests.Timeout) or "timed out" in str(err)
                try:
                    retry = retry.increment("GET", url, error=err)
                except MaxRetryError:
                    raise FetchError("timeout" if timed_out else "connection", url) from None
                self._wait(retry, None)
                continue
            if r.status in REDIRECT_STATUSES:
                target = r.headers.get("location")
                if not target:
                    raise FetchError("bad_redirect", url, "no Location")
                url = urljoin(url, target)
                if url in seen:
                    raise FetchError("redirect_loop", seen[0], " -> ".join(seen[-3:] + [url]))
                seen.append(url)
                if len(seen) > self.max_redirects + 1:
                    raise FetchError("too_many_redirects", seen[0])
                continue
            if not retry.is_retry("GET", r.status, "retry-after" in r.headers):
                return r
            try:
                retry = retry.increment("GET", url, response=r)
            except MaxRetryError:
                raise FetchError(f"http_{r.status}", url) from None
            self._wait(retry, r)

    # -- public -------------------------------------------------------------------------------
    def get(self, url: str) -> Response:
        """GET ``url`` politely; non-2xx final answers raise :class:`FetchError` (``http_404``...)."""
        r = self._retrying(url, self._raw_get)
        if not 200 <= r.status < 300:
            raise FetchError(f"http_{r.status}", url)
        return r

    def download(self, url: str, path, chunk: int = 1 << 20) -> int:
        """Stream ``url`` to ``path`` (atomically), never holding it in memory; returns bytes written.

        For large files (IMDb's TSV dumps): retried like :meth:`get` until the body starts;
        redirects are followed by ``requests``.
        """
        from pipeline.core.io import atomic_path

        written = 0

        def once(u: str) -> Response:
            nonlocal written
            with self._send(u, follow_redirects=True) as r:
                if r.status_code in RETRY_STATUSES:  # the body is dropped; _retrying waits and asks again
                    return Response(u, r.status_code, CaseInsensitiveDict(r.headers), b"")
                if not 200 <= r.status_code < 300:
                    raise FetchError(f"http_{r.status_code}", u)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    for block in r.raw.stream(chunk, decode_content=False):
                        fh.write(block)
                        written += len(block)
                return Response(u, r.status_code, CaseInsensitiveDict(r.headers), b"")

        self._retrying(url, once)
        return written


def _dns_failure(err: Exception) -> bool:
    text = str(err)
    return any(s in text for s in ("Name or service not known", "Temporary failure in name resolution",
                                   "nodename nor servname", "getaddrinfo failed", "Network is unreachable"))
