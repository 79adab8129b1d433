import socket
import time

import pytest
from requests.structures import CaseInsensitiveDict

from pipeline.core.params import DATA_DEFAULTS, parse_group
from pipeline.data.imdb.polite_http import FetchError, PoliteClient, Response, Unreachable
from tests.http_fixture import LocalServer, stall

OK = (200, {"Content-Type": "text/plain"}, b"ok")


def client(**kw):
    defaults = dict(rate_limit=0, concurrency=4, timeout=2.0, retries=3, backoff=0.01, max_backoff=0.05)
    return PoliteClient(**{**defaults, **kw})


def test_client_settings_come_from_the_params():
    data = parse_group("data", {"rate_limit": 0.5, "concurrency": 3, "timeout": 9.0, "retries": 1, "seed": 5})
    c = PoliteClient.from_params(data)
    assert (c.limiter.interval, c.concurrency, c.timeout, c.retries) == (2.0, 3, 9.0, 1)
    # the defaults are the params schema's (written once, there)
    d = PoliteClient()
    assert (d.limiter.interval, d.concurrency, d.timeout, d.retries) == (
        1 / DATA_DEFAULTS.rate_limit, DATA_DEFAULTS.concurrency, DATA_DEFAULTS.timeout, DATA_DEFAULTS.retries)


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


def test_rate_limit_holds_across_threads_and_request_kinds(tmp_path):
    """One limit for everything a client sends (robots.txt, get() from several threads, download()),
    measured by the server."""
    from concurrent.futures import ThreadPoolExecutor

    with LocalServer() as srv:
        srv.route("/robots.txt", (200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"))
        for i in range(8):
            srv.route(f"/p{i}", OK)
        srv.route("/dump", (200, {}, b"x" * 1000))
        c = client(rate_limit=5.0, concurrency=4)
        with ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(c.get, f"{srv.url}/p{i}") for i in range(8)]
            jobs.append(pool.submit(c.download, srv.url + "/dump", tmp_path / "dump"))
            for job in jobs:
                job.result()
        t = sorted(srv.times())
        assert len(t) == 10  # robots.txt, 8 pages, the download
        gaps = [b - a for a, b in zip(t, t[1:])]
        # the server's clock adds scheduling jitter on a busy machine: no gap may be under half the
        # interval (a broken limiter sends the 4 threads' requests together, gaps ~0), and the span must hold
        assert min(gaps) >= 0.2 / 2, gaps
        assert t[-1] - t[0] >= 9 * 0.2 - 0.05


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


def test_retry_after_in_seconds_or_a_date_is_capped_and_garbage_falls_back_to_the_backoff():
    """urllib3's Retry reads the header (seconds or an HTTP date), capped at max_retry_after; a value it cannot
    read leaves the wait to the backoff."""
    import email.utils

    policy = client(max_retry_after=30).retry
    header = {"Retry-After": email.utils.formatdate(time.time() + 10, usegmt=True)}
    assert policy.get_retry_after(Response("u", 503, CaseInsensitiveDict(header), b"")) == pytest.approx(10, abs=1.1)
    assert policy.get_retry_after(Response("u", 503, CaseInsensitiveDict({"retry-after": "7"}), b"")) == 7
    assert policy.get_retry_after(Response("u", 503, CaseInsensitiveDict({"Retry-After": "86400"}), b"")) == 30
    with LocalServer() as srv:
        srv.route("/soon", (503, {"Retry-After": "soon"}, b""), OK)
        c = client()
        assert c.get(srv.url + "/soon").content == b"ok" and c.stats["retries"] == 1


def test_the_backoff_doubles_from_the_second_retry_and_is_capped():
    c = client(backoff=1.0, max_backoff=5.0, retries=6)
    retry, waits = c.retry.new(), []
    for _ in range(5):
        retry = retry.increment("GET", "u", response=Response("u", 503, CaseInsensitiveDict(), b""))
        waits.append(retry.get_backoff_time())
    assert waits[0] == 0 and 2 <= waits[1] <= 3 and 4 <= waits[2] <= 5 and waits[3] == waits[4] == 5


def test_download_streams_to_a_file_with_the_same_retries(tmp_path):
    with LocalServer() as srv:
        srv.route("/dump.gz", (503, {"Retry-After": "0"}, b""), (200, {}, b"y" * 5000))
        c = client()
        assert c.download(srv.url + "/dump.gz", tmp_path / "d") == 5000
        assert (tmp_path / "d").read_bytes() == b"y" * 5000
        assert c.stats == {"requests": 3, "retries": 1} and len(srv.times("/dump.gz")) == 2  # + robots.txt
        srv.route("/busy", (503, {}, b""))
        with pytest.raises(FetchError) as err:
            c.download(srv.url + "/busy", tmp_path / "b")
        assert err.value.reason == "http_503" and len(srv.times("/busy")) == 4  # 1 + 3 retries
        srv.route("/gone", (404, {}, b""))
        with pytest.raises(FetchError) as err:
            c.download(srv.url + "/gone", tmp_path / "g")
        assert err.value.reason == "http_404" and len(srv.times("/gone")) == 1
        assert not (tmp_path / "b").exists() and not (tmp_path / "g").exists()
    # a refused connection is a connection error, as for get() (the download once called it a timeout)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(FetchError) as err:
        client(retries=0, respect_robots=False).download(f"http://127.0.0.1:{port}/x", tmp_path / "x")
    assert err.value.reason == "connection" and not (tmp_path / "x").exists()
