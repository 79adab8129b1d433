import time

import pytest

from pipeline.data.imdb.polite_http import (
    FetchError,
    PoliteClient,
    RateLimiter,
    Unreachable,
    parse_retry_after,
)
from tests.http_fixture import LocalServer, stall

OK = (200, {"Content-Type": "text/plain"}, b"ok")


def client(**kw):
    defaults = dict(rate_limit=0, concurrency=4, timeout=2.0, retries=3, backoff=0.01, max_backoff=0.05)
    return PoliteClient(**{**defaults, **kw})


def test_retry_after_429_is_honoured():
    with LocalServer() as srv:
        srv.route("/a", (429, {"Retry-After": "1"}, b"slow down"), OK)
        t0 = time.monotonic()
        assert client().get(srv.url + "/a").content == b"ok"
        t = srv.times("/a")
        assert len(t) == 2 and t[1] - t[0] >= 0.95
        assert time.monotonic() - t0 < 5


def test_503_then_success_and_giving_up():
    with LocalServer() as srv:
        srv.route("/b", (503, {}, b""), (503, {}, b""), OK)
        c = client()
        assert c.get(srv.url + "/b").content == b"ok" and c.stats["retries"] == 2
        srv.route("/c", (500, {}, b""))
        with pytest.raises(FetchError) as err:
            c.get(srv.url + "/c")
        assert err.value.reason == "http_500" and len(srv.times("/c")) == 4  # 1 + 3 retries


def test_stalled_response_times_out():
    with LocalServer() as srv:
        srv.route("/stall", stall(5))
        t0 = time.monotonic()
        with pytest.raises(FetchError) as err:
            client(timeout=0.5, retries=1).get(srv.url + "/stall")
        assert err.value.reason == "timeout" and time.monotonic() - t0 < 4


def test_redirects_followed_loops_and_caps():
    with LocalServer() as srv:
        srv.route("/r1", (302, {"Location": "/r2"}, b""))
        srv.route("/r2", (301, {"Location": srv.url + "/final"}, b""))
        srv.route("/final", OK)
        assert client().get(srv.url + "/r1").url.endswith("/final")
        srv.route("/loop1", (302, {"Location": "/loop2"}, b""))
        srv.route("/loop2", (302, {"Location": "/loop1"}, b""))
        with pytest.raises(FetchError) as err:
            client().get(srv.url + "/loop1")
        assert err.value.reason == "redirect_loop"
        for i in range(10):
            srv.route(f"/chain{i}", (302, {"Location": f"/chain{i + 1}"}, b""))
        with pytest.raises(FetchError) as err:
            client(max_redirects=3).get(srv.url + "/chain0")
        assert err.value.reason == "too_many_redirects"


def test_robots_disallow_is_honoured():
    with LocalServer() as srv:
        srv.route("/robots.txt", (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private\n"))
        srv.route("/private/x", OK)
        srv.route("/public", OK)
        c = client()
        assert c.get(srv.url + "/public").content == b"ok"
        with pytest.raises(FetchError) as err:
            c.get(srv.url + "/private/x")
        assert err.value.reason == "robots_disallowed"
        assert srv.times("/private") == []
        assert len(srv.times("/robots.txt")) == 1  # fetched once per host


def test_rate_limit_holds_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    with LocalServer() as srv:
        for i in range(8):
            srv.route(f"/p{i}", OK)
        c = client(rate_limit=5.0, concurrency=4, respect_robots=False)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: c.get(f"{srv.url}/p{i}"), range(8)))
        t = sorted(srv.times("/p"))
        gaps = [b - a for a, b in zip(t, t[1:])]
        assert min(gaps) >= 0.2 - 0.02, gaps  # measured by the server
        assert t[-1] - t[0] >= 7 * 0.2 - 0.05


def test_body_size_cap():
    with LocalServer() as srv:
        srv.route("/big", (200, {}, b"x" * 5000))
        with pytest.raises(FetchError) as err:
            client(max_bytes=1000).get(srv.url + "/big")
        assert err.value.reason == "too_large"


def test_unreachable_host_fails_fast():
    t0 = time.monotonic()
    with pytest.raises((Unreachable, FetchError)):
        client(retries=0).get("http://no-such-host.invalid/x")
    assert time.monotonic() - t0 < 10


def test_retry_after_parsing_and_limiter():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    lim = RateLimiter(20)
    t0 = time.monotonic()
    for _ in range(5):
        lim.acquire()
    assert time.monotonic() - t0 >= 4 * 0.05 - 0.01
