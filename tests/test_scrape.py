import csv
import time
from dataclasses import fields

import pytest

from pipeline.core.params import DATA_DEFAULTS, DataParams, parse_group
from pipeline.data.imdb.polite_http import PoliteClient
from pipeline.data.imdb.scrape import FILMS_COLUMNS, ScrapeError, ScrapeSettings, scrape
from pipeline.data.imdb.titles import FILM_FIELDS, film_fields_from_title_page, poster_source_from_title_page
from pipeline.data.ingest import ingest_folder
from tests.http_fixture import LocalServer
from tests.imdb_fixture import FILMS_CSV_ROWS, fake_imdb

GENRES = ["Action", "Adventure", "Animation", "Biography", "Comedy", "Crime", "Drama", "Fantasy", "Horror",
          "Mystery", "Romance", "Sci-Fi", "Thriller"]


def settings(srv, **kw):
    return ScrapeSettings(genres=GENRES, min_votes=100, year_min=1950, image_width=120,
                          datasets_url=srv.url + "/datasets", title_url=srv.url + "/title", **kw)


def client(rate=0.0, **kw):
    return PoliteClient(rate_limit=rate, concurrency=2, timeout=1.0, retries=2, backoff=0.01, max_backoff=0.05, **kw)


def test_scrape_saves_good_posters_and_reports_every_fault(tmp_path):
    with LocalServer() as srv:
        bodies = fake_imdb(srv)
        # film 1's page as IMDb writes it: entities in the JSON-LD, nested images, an og:image elsewhere
        srv.route("/title/tt0000001/", (200, {}, imdb_title_page(
            image=f"{srv.url}/images/M/one._V1_QL75_UX190_.jpg", og_image=f"{srv.url}/og/one.jpg").encode()))
        report = scrape("imdb", tmp_path, settings(srv, posters_per_film=1), client())
        # films listed: movies, not adult, target genre, votes >= 100, year >= 1950
        assert report["films_listed"] == 10
        rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
        saved = {r["imdb_id"] for r in rows}
        assert saved == {"tt0000001", "tt0000002", "tt0000003", "tt0000010"}
        for r in rows:
            if r["imdb_id"] in bodies:
                assert (tmp_path / r["image"]).read_bytes() == bodies[r["imdb_id"]]
        assert report["failures"] == {
            "image_corrupt": 1, "image_not_an_image": 1, "no_poster_on_page": 1,
            "redirect_loop": 1, "robots_disallowed": 1, "timeout": 1,
        }
        assert report["poster_url_sources"] == {"csv": 0, "gallery": 0, "json_ld": 1, "og_image": 6}
        assert srv.times("/og/") == []
        # every request (dumps, robots.txt, pages, posters, retries) went through the one polite client,
        # whose rate limit, robots.txt, retries and Retry-After are tested in test_polite_http.py; films 2
        # and 3 above were saved after a 503 and a 429, film 9 refused by robots.txt
        assert report["requests"] == len(srv.log) and report["retries"] >= 2
        # the output is what ingest reads
        table, rep = ingest_folder(tmp_path, GENRES)
        assert set(table["imdb_id"]) == saved and rep["skipped_total"] == 0


def test_gallery_gives_more_posters_per_film(tmp_path):
    with LocalServer() as srv:
        fake_imdb(srv)
        report = scrape("imdb", tmp_path, settings(srv, posters_per_film=3, limit=10), client())
        rows = [r for r in csv.DictReader(open(tmp_path / "labels.csv")) if r["imdb_id"] == "tt0000010"]
        assert len(rows) == 3 and len({r["image"] for r in rows}) == 3
        assert report["poster_url_sources"] == {"csv": 0, "gallery": 2, "json_ld": 1, "og_image": 6}


def test_resume_and_incremental_fetch_only_new(tmp_path):
    with LocalServer() as srv:
        fake_imdb(srv)
        first = scrape("imdb", tmp_path, settings(srv, limit=3), client())
        n_first = len(srv.log)
        again = scrape("imdb", tmp_path, settings(srv, limit=3), client())
        # nothing that succeeded is fetched again; only failures are retried (they may be transient)
        failed_ids = {f["imdb_id"] for f in first["failed"]}
        new_requests = [p for _, p in srv.log[n_first:] if p != "/robots.txt"]
        assert all(p.split("/")[2] in failed_ids for p in new_requests), (new_requests, failed_ids)
        assert again["posters_from_cache"] == again["posters_saved"] == first["posters_saved"]
        n_second = len(srv.log)
        more = scrape("imdb", tmp_path, settings(srv, limit=5), client())
        assert more["films_listed"] == 5
        # raising the limit fetches title pages of the 2 new films only (plus retries of failures)
        fetched = {p.split("/")[2] for _, p in srv.log[n_second:] if p.startswith("/title/")} - failed_ids
        assert len(fetched) <= 2, fetched
        assert more["posters_from_cache"] >= first["posters_saved"]


def test_csv_of_urls_source(tmp_path):
    with LocalServer() as srv:
        bodies = fake_imdb(srv)
        urls = tmp_path / "urls.csv"
        urls.write_text("imdbId,Imdb Link,Title,IMDB Score,Genre,Poster\n"
                        f"1,x,Fine Film (1999),7,Action|Drama,{srv.url}/images/M/one._V1_UX182.jpg\n"
                        f"6,x,Html Poster (2005),7,Romance,{srv.url}/images/M/six._V1_UX182.jpg\n")
        out = tmp_path / "out"
        report = scrape(str(urls), out, settings(srv), client())
        rows = list(csv.DictReader(open(out / "labels.csv")))
        assert [r["imdb_id"] for r in rows] == ["tt0000001"] and rows[0]["genres"] == "Action|Drama"
        assert (out / rows[0]["image"]).read_bytes() == bodies["tt0000001"]
        assert report["failures"] == {"image_not_an_image": 1}
        assert report["poster_url_sources"] == {"csv": 2, "gallery": 0, "json_ld": 0, "og_image": 0}


def test_settings_come_from_the_params():
    data = parse_group("data", {"source": "imdb", "genres": ["Drama", "Comedy"], "limit": 7, "seed": 3,
                                "posters_per_film": 2, "year_min": 1990, "year_max": 2000, "min_votes": 5,
                                "image_width": 200, "datasets_url": "http://d.example", "title_url": "http://t.example"})
    s = ScrapeSettings.from_params(data)
    assert (s.genres, s.limit, s.seed, s.posters_per_film, s.year_min, s.year_max, s.min_votes, s.image_width,
            s.datasets_url, s.title_url) == (["Drama", "Comedy"], 7, 3, 2, 1990, 2000, 5, 200, "http://d.example",
                                             "http://t.example")
    # every setting but gallery_path is a parameter, and its default is the schema's (written once, there)
    defaults = ScrapeSettings(genres=["Drama"])
    for f in fields(ScrapeSettings):
        if f.name not in ("genres", "gallery_path"):
            assert getattr(defaults, f.name) == getattr(DATA_DEFAULTS, f.name), f.name
    assert {f.name for f in fields(ScrapeSettings)} - set(DataParams.model_fields) == {"gallery_path"}


def test_offline_fails_fast_with_one_line(tmp_path):
    s = ScrapeSettings(genres=GENRES, datasets_url="http://datasets.invalid", title_url="http://www.invalid/title")
    t0 = time.monotonic()
    with pytest.raises(ScrapeError) as err:
        scrape("imdb", tmp_path, s, client())
    assert time.monotonic() - t0 < 10
    assert "unreachable" in str(err.value) and "data.source" in str(err.value) and "\n" not in str(err.value)


# --- title pages shaped like IMDb's ----------------------------------------------------------

POSTER = "https://m.media-amazon.com/images/M/MV5BN2Y2ZjM4ZjctYjU0Yi00ZDdhLWJhZGMtNDQ4NjVlYzhkNzg5XkEyXkFqcGc@._V1_.jpg"
REVIEWED = "https://m.media-amazon.com/images/M/MV5BReviewedItemImage@._V1_.jpg"
THUMB = "https://m.media-amazon.com/images/M/MV5BTrailerThumbnail@._V1_.jpg"
OG = "https://m.media-amazon.com/images/M/MV5BOgImage@._V1_FMjpg_UX1000_.jpg"


def imdb_title_page(image: str = POSTER, og_image: str | None = OG) -> str:
    """A title page as IMDb serves it (after tt0120731): HTML entities inside the JSON-LD strings,
    a review of the film and a trailer with images of their own, and an og:image of another size."""
    ld = ('{"@context":"https://schema.org","@type":"Movie","url":"https://www.imdb.com/title/tt0120731/",'
          '"name":"La leggenda del pianista sull&apos;oceano",'
          f'"image":"{image}",'
          '"description":"A baby boy is discovered on an ocean liner in 1900 and raised by the crew.",'
          '"review":{"@type":"Review","itemReviewed":{"@type":"Movie","url":"https://www.imdb.com/title/tt0120731/",'
          f'"image":"{REVIEWED}"}},'
          '"author":{"@type":"Person","name":"someone"},"dateCreated":"2005-03-01",'
          '"reviewBody":"Danny Boodman T.D. Lemon 1900 and his &quot;father&quot; never left the ship."},'
          '"trailer":{"@type":"VideoObject","name":"Official Trailer","embedUrl":"https://www.imdb.com/video/imdb/vi1",'
          f'"thumbnail":{{"@type":"ImageObject","contentUrl":"{THUMB}","url":"{THUMB}"}},'
          f'"thumbnailUrl":"{THUMB}","uploadDate":"2019-01-01T00:00:00Z"}},'
          '"genre":["Drama","Music","Romance"],"datePublished":"1998-10-28"}')
    og = f'<meta property="og:image" content="{og_image}"/>' if og_image else ""
    return (f'<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8"/>'
            f'<title>La leggenda del pianista sull&#x27;oceano (1998) - IMDb</title>{og}'
            f'<script type="application/ld+json">{ld}</script></head><body><div id="__next"></div></body></html>')


def test_title_page_poster_is_the_films_json_ld_image():
    assert poster_source_from_title_page(imdb_title_page()) == (POSTER, "json_ld")


def test_title_page_json_ld_variants():
    # entities in the URL value itself are unescaped
    page = imdb_title_page(image="https://img.example/p.jpg?a=1&amp;b=2")
    assert poster_source_from_title_page(page) == ("https://img.example/p.jpg?a=1&b=2", "json_ld")
    # an ImageObject, inside an @graph next to other objects
    ld = ('{"@context":"https://schema.org","@graph":[{"@type":"Organization","image":"https://x/logo.png"},'
          '{"@type":["TVSeries"],"image":{"@type":"ImageObject","contentUrl":"https://x/show.jpg"}}]}')
    page = f'<script type="application/ld+json">{ld}</script><meta property="og:image" content="https://x/og.jpg">'
    assert poster_source_from_title_page(page) == ("https://x/show.jpg", "json_ld")
    # a film without an image of its own never takes its trailer's thumbnail
    ld = '{"@type":"Movie","trailer":{"@type":"VideoObject","thumbnailUrl":"https://x/t.jpg"}}'
    page = f'<script type="application/ld+json">{ld}</script><meta content="https://x/og.jpg" property="og:image">'
    assert poster_source_from_title_page(page) == ("https://x/og.jpg", "og_image")


def test_title_page_og_image_fallback_and_nothing():
    page = imdb_title_page().replace("application/ld+json", "text/plain")
    assert poster_source_from_title_page(page) == (OG, "og_image")
    page = '<meta property="og:image" content="https://x/a.jpg?w=1&amp;h=2"/>'
    assert poster_source_from_title_page(page) == ("https://x/a.jpg?w=1&h=2", "og_image")
    page = imdb_title_page(og_image=None).replace("application/ld+json", "text/plain")
    assert poster_source_from_title_page(page) == (None, None)
    assert poster_source_from_title_page("<html><body>no poster here</body></html>") == (None, None)


# --- films.csv: the descriptive fields of the title pages' JSON-LD -----------------------------------

EMPTY_FIELDS = dict.fromkeys(FILM_FIELDS, "")


def ld_page(*blocks: str) -> str:
    return "<html><head>" + "".join(f'<script type="application/ld+json">{b}</script>' for b in blocks) + "</head>"


def test_film_fields_of_an_imdb_title_page():
    fields_ = film_fields_from_title_page(imdb_title_page())
    assert list(fields_) == list(FILM_FIELDS) == list(FILMS_COLUMNS[1:])
    # the film's own fields, never its review's; JSON-LD has no tagline, language, runtime or people here
    plot = "A baby boy is discovered on an ocean liner in 1900 and raised by the crew."
    assert fields_ == {**EMPTY_FIELDS, "plot": plot, "plot_source": "imdb_json_ld", "release_year": "1998"}


def test_film_fields_shapes():
    # a dict director, entities and runs of whitespace in the texts, the actors cut to five
    ld = ('{"@type":"Movie","description":"  Tom &amp; Jerry&#39;s\\n\\t&quot;big&quot;   day &nbsp;out ",'
          '"duration":"PT1H5M","datePublished":"2001-09-11","contentRating":"R",'
          '"director":{"@type":"Person","name":"Jo&apos;Director"},'
          '"actor":[' + ",".join(f'{{"@type":"Person","name":"A{i}"}}' for i in range(7)) + "]}")
    assert film_fields_from_title_page(ld_page(ld)) == {
        **EMPTY_FIELDS, "plot": "Tom & Jerry's \"big\" day out", "plot_source": "imdb_json_ld", "runtime_min": "65",
        "release_year": "2001", "director": "Jo'Director", "cast": "A0|A1|A2|A3|A4", "certification": "R"}
    # a list of directors, a year alone, hours alone, a series in an @graph beside another object
    ld = ('{"@graph":[{"@type":"Organization","description":"not the film"},{"@type":["TVSeries"],'
          '"duration":"PT2H","datePublished":"1987","director":[{"name":"D1"},{"name":"D2"},{"name":""}],'
          '"actor":{"@type":"Person","name":"Solo"}}]}')
    assert film_fields_from_title_page(ld_page(ld)) == {
        **EMPTY_FIELDS, "runtime_min": "120", "release_year": "1987", "director": "D1|D2", "cast": "Solo"}
    # minutes alone; fields missing or of the wrong type stay empty
    ld = '{"@type":"Movie","duration":"PT45M","description":"   ","contentRating":12,"datePublished":"soon"}'
    assert film_fields_from_title_page(ld_page(ld)) == {**EMPTY_FIELDS, "runtime_min": "45"}
    # unparsable durations
    for duration in ("PT", "45 min", "PT0M", ""):
        ld = f'{{"@type":"Movie","duration":"{duration}"}}'
        assert film_fields_from_title_page(ld_page(ld))["runtime_min"] == "", duration


def test_film_fields_block_choice_and_bad_json():
    movie = '{"@type":"Movie","description":"the film","datePublished":"2010-01-01"}'
    # bad JSON is skipped; the first block of a title type is read, ahead of a lone untyped block
    assert film_fields_from_title_page(ld_page("{not json", '{"description":"lone"}', movie))["plot"] == "the film"
    # with no title type anywhere, a block's lone object is read (as the poster finder does)
    assert film_fields_from_title_page(ld_page('{"description":"lone"}'))["plot"] == "lone"
    # nothing usable: every field empty
    assert film_fields_from_title_page(ld_page("{not json")) == EMPTY_FIELDS
    assert film_fields_from_title_page(ld_page("[1, 2]", '"text"')) == EMPTY_FIELDS
    assert film_fields_from_title_page("<html><body>no JSON-LD</body></html>") == EMPTY_FIELDS
    assert film_fields_from_title_page(imdb_title_page().replace("application/ld+json", "text/plain")) == EMPTY_FIELDS


def test_scrape_writes_films_csv_and_a_rerun_gives_the_same_bytes(tmp_path):
    with LocalServer() as srv:
        fake_imdb(srv)
        scrape("imdb", tmp_path / "a", settings(srv, posters_per_film=1), client())
        text = (tmp_path / "a" / "films.csv").read_text()
        assert text.splitlines()[0] == ",".join(FILMS_COLUMNS) == (
            "imdb_id,plot,plot_source,tagline,runtime_min,release_year,language,director,cast,certification")
        assert "\r" not in text and text.endswith("\n")
        rows = list(csv.DictReader(open(tmp_path / "a" / "films.csv", newline="")))
        labels = list(csv.DictReader(open(tmp_path / "a" / "labels.csv", newline="")))
        # one row per film of labels.csv, in its order; films 2 and 3 have no JSON-LD: only their id
        assert [r["imdb_id"] for r in rows] == sorted({r["imdb_id"] for r in labels}) == [
            "tt0000001", "tt0000002", "tt0000003", "tt0000010"]
        for r in rows:
            assert r == {"imdb_id": r["imdb_id"], **FILMS_CSV_ROWS.get(r["imdb_id"], EMPTY_FIELDS)}
        n_requests = len(srv.log)
        # a rerun in the same folder (title pages from the cache) and one in a new folder: the same bytes
        scrape("imdb", tmp_path / "a", settings(srv, posters_per_film=1), client())
        assert (tmp_path / "a" / "films.csv").read_text() == text
        assert not any(p.startswith(("/title/tt0000001/", "/title/tt0000010/")) for _, p in srv.log[n_requests:])
        scrape("imdb", tmp_path / "b", settings(srv, posters_per_film=1), client())
        assert (tmp_path / "b" / "films.csv").read_bytes() == (tmp_path / "a" / "films.csv").read_bytes()
        assert not list((tmp_path / "a").glob(".films.csv.*"))


def test_films_csv_costs_no_request(tmp_path):
    with LocalServer() as srv:
        fake_imdb(srv)
        scrape("imdb", tmp_path, settings(srv, posters_per_film=1), client())
        # the title page of each film with JSON-LD fields (or none) is asked for once: for its poster
        pages = [p for _, p in srv.log if p.startswith("/title/")]
        assert [p for p in pages if p in ("/title/tt0000001/", "/title/tt0000003/", "/title/tt0000010/")] == sorted(
            {"/title/tt0000001/", "/title/tt0000003/", "/title/tt0000010/"}, key=pages.index)
        assert len(list(csv.DictReader(open(tmp_path / "films.csv")))) == 4


def test_films_csv_of_a_csv_source_has_only_the_header(tmp_path):
    with LocalServer() as srv:
        fake_imdb(srv)
        urls = tmp_path / "urls.csv"
        urls.write_text(f"imdbId,Genre,Poster\n1,Action|Drama,{srv.url}/images/M/one._V1_UX182.jpg\n")
        scrape(str(urls), tmp_path / "out", settings(srv), client())
        assert [r["imdb_id"] for r in csv.DictReader(open(tmp_path / "out" / "labels.csv"))] == ["tt0000001"]
        assert (tmp_path / "out" / "films.csv").read_text() == ",".join(FILMS_COLUMNS) + "\n"
        assert not any(p.startswith("/title/") for _, p in srv.log)
