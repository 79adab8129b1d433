"""A fake IMDb on the local test server: TSV dumps, title pages, galleries, posters, and faults."""

from __future__ import annotations

import gzip
import json

from tests.factories import poster_bytes
from tests.http_fixture import LocalServer, stall

BASICS = [
    # tconst, titleType, primaryTitle, originalTitle, isAdult, startYear, endYear, runtime, genres
    ("tt0000001", "movie", "Fine Film", "Fine Film", "0", "1999", "\\N", "90", "Action,Drama"),
    ("tt0000002", "movie", "Retry Film", "Retry Film", "0", "2001", "\\N", "90", "Comedy"),
    ("tt0000003", "movie", "Busy Film", "Busy Film", "0", "2002", "\\N", "90", "Horror,Mystery"),
    ("tt0000004", "movie", "Stalled Poster", "Stalled Poster", "0", "2003", "\\N", "90", "Drama"),
    ("tt0000005", "movie", "Truncated Poster", "Truncated Poster", "0", "2004", "\\N", "90", "Drama"),
    ("tt0000006", "movie", "Html Poster", "Html Poster", "0", "2005", "\\N", "90", "Romance"),
    ("tt0000007", "movie", "No Image", "No Image", "0", "2006", "\\N", "90", "Thriller"),
    ("tt0000008", "movie", "Loop", "Loop", "0", "2007", "\\N", "90", "Crime"),
    ("tt0000009", "movie", "Secret", "Secret", "0", "2008", "\\N", "90", "Sci-Fi"),
    ("tt0000010", "movie", "Gallery Film", "Gallery Film", "0", "2009", "\\N", "90", "Animation,Comedy"),
    ("tt0000011", "tvSeries", "A Show", "A Show", "0", "2009", "\\N", "30", "Comedy"),
    ("tt0000012", "movie", "Adult", "Adult", "1", "2009", "\\N", "90", "Drama"),
    ("tt0000013", "movie", "Docu", "Docu", "0", "2009", "\\N", "90", "Documentary"),
    ("tt0000014", "movie", "Few Votes", "Few Votes", "0", "2009", "\\N", "90", "Drama"),
    ("tt0000015", "movie", "Too Old", "Too Old", "0", "1920", "\\N", "90", "Drama"),
]
VOTES = {f"tt{i:07d}": 5000 for i in range(1, 16)}
VOTES["tt0000014"] = 10


def gz_tsv(header: list[str], rows: list[tuple]) -> bytes:
    text = "\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows)
    return gzip.compress(text.encode())


def jpeg(color, size=(90, 133)) -> bytes:
    return poster_bytes(color, size, quality=90)


#: the JSON-LD fields of the films that have some (film 1: a dict director, entities in the texts;
#: film 10: a list of directors, seven actors, no certification, its poster from og:image)
FILM_LD = {
    "tt0000001": {"description": "A &quot;fine&quot; film\n  about   fine things &amp; more.",
                  "duration": "PT2H13M", "datePublished": "1999-03-31",
                  "director": {"@type": "Person", "url": "/name/nm1/", "name": "Ann Director"},
                  "actor": [{"@type": "Person", "name": "Bo Actor"}, {"@type": "Person", "name": "Cy O&apos;Actor"}],
                  "contentRating": "PG-13"},
    "tt0000010": {"description": "Posters, posters, posters.", "duration": "PT45M", "datePublished": "2009",
                  "director": [{"@type": "Person", "name": "Di One"}, {"@type": "Person", "name": "Ed Two"}],
                  "actor": [{"@type": "Person", "name": f"Actor {i}"} for i in range(1, 8)]},
}
#: the films.csv rows ``fake_imdb`` gives for the films of labels.csv (1, 2, 3, 10; 2 and 3 have no JSON-LD)
FILMS_CSV_ROWS = {
    "tt0000001": {"plot": 'A "fine" film about fine things & more.', "plot_source": "imdb_json_ld", "tagline": "",
                  "runtime_min": "133", "release_year": "1999", "language": "", "director": "Ann Director",
                  "cast": "Bo Actor|Cy O'Actor", "certification": "PG-13"},
    "tt0000010": {"plot": "Posters, posters, posters.", "plot_source": "imdb_json_ld", "tagline": "",
                  "runtime_min": "45", "release_year": "2009", "language": "", "director": "Di One|Ed Two",
                  "cast": "Actor 1|Actor 2|Actor 3|Actor 4|Actor 5", "certification": ""},
}


def title_page(image_url: str | None, via: str = "og", ld: dict | None = None) -> bytes:
    """A title page with its poster in the JSON-LD (``via="jsonld"``) or in og:image; ``ld``: more
    JSON-LD fields of the Movie (with og:image, a Movie block without an image goes first)."""
    if ld is not None:
        movie = {"@type": "Movie", **({"image": image_url} if via == "jsonld" and image_url else {}), **ld}
        script = f'<script type="application/ld+json">{json.dumps(movie)}</script>'
        meta = f'<meta property="og:image" content="{image_url}"/>' if via != "jsonld" and image_url else ""
        return f"<html><head>{script}{meta}</head></html>".encode()
    if image_url is None:
        return b"<html><head><title>x</title></head><body>no poster here</body></html>"
    if via == "jsonld":
        return (f'<html><head><script type="application/ld+json">{{"@type":"Movie","image":"{image_url}"}}'
                f"</script></head></html>").encode()
    return f'<html><head><meta property="og:image" content="{image_url}"/></head></html>'.encode()


def fake_imdb(srv: LocalServer) -> dict:
    """Register every route; returns the image bytes by film for assertions."""
    u = srv.url
    img = lambda name: f"{u}/images/M/{name}._V1_QL75_UX190_.jpg"  # noqa: E731
    sized = lambda name: f"/images/M/{name}._V1_SX120.jpg"  # noqa: E731
    srv.route("/robots.txt", (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /title/tt0000009/\n"))
    srv.route("/datasets/title.basics.tsv.gz", (200, {}, gz_tsv(
        ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear",
         "runtimeMinutes", "genres"], BASICS)))
    srv.route("/datasets/title.ratings.tsv.gz", (200, {}, gz_tsv(
        ["tconst", "averageRating", "numVotes"], [(k, "7.0", v) for k, v in VOTES.items()])))
    jpg = {"Content-Type": "image/jpeg"}
    bodies = {}
    # 1: fine (JSON-LD)
    srv.route("/title/tt0000001/", (200, {}, title_page(img("one"), via="jsonld", ld=FILM_LD["tt0000001"])))
    bodies["tt0000001"] = jpeg((200, 0, 0))
    srv.route(sized("one"), (200, jpg, bodies["tt0000001"]))
    # 2: title page 503 then fine
    srv.route("/title/tt0000002/", (503, {}, b""), (200, {}, title_page(img("two"))))
    bodies["tt0000002"] = jpeg((0, 200, 0))
    srv.route(sized("two"), (200, jpg, bodies["tt0000002"]))
    # 3: poster 429 with Retry-After, then fine
    srv.route("/title/tt0000003/", (200, {}, title_page(img("three"))))
    bodies["tt0000003"] = jpeg((0, 0, 200))
    srv.route(sized("three"), (429, {"Retry-After": "1"}, b""), (200, jpg, bodies["tt0000003"]))
    # 4: poster stalls forever
    srv.route("/title/tt0000004/", (200, {}, title_page(img("four"))))
    srv.route(sized("four"), stall(30))
    # 5: truncated jpeg
    srv.route("/title/tt0000005/", (200, {}, title_page(img("five"))))
    srv.route(sized("five"), (200, jpg, jpeg((9, 9, 9), (300, 444))[:500]))
    # 6: HTML error page served as image/jpeg
    srv.route("/title/tt0000006/", (200, {}, title_page(img("six"))))
    srv.route(sized("six"), (200, jpg, b"<html><body>Service unavailable</body></html>"))
    # 7: no og:image
    srv.route("/title/tt0000007/", (200, {}, title_page(None)))
    # 8: redirect loop
    srv.route("/title/tt0000008/", (302, {"Location": "/title/tt0000008/x"}, b""))
    srv.route("/title/tt0000008/x", (302, {"Location": "/title/tt0000008/"}, b""))
    # 9: disallowed by robots.txt (never fetched)
    srv.route("/title/tt0000009/", (200, {}, title_page(img("nine"))))
    # 10: gallery with two more posters
    srv.route("/title/tt0000010/", (200, {}, title_page(img("ten"), ld=FILM_LD["tt0000010"])))
    bodies["tt0000010"] = jpeg((100, 100, 0))
    srv.route(sized("ten"), (200, jpg, bodies["tt0000010"]))
    gallery = "".join(f'<img src="{img(n)}"/>' for n in ("ten", "ten-b", "ten-c"))
    srv.route("/title/tt0000010/mediaindex/?contentTypes=poster", (200, {}, f"<html>{gallery}</html>".encode()))
    srv.route(sized("ten-b"), (200, jpg, jpeg((100, 0, 100))))
    srv.route(sized("ten-c"), (200, jpg, jpeg((0, 100, 100))))
    return bodies


def serve_films(srv: LocalServer, rows: list[dict], posters_dir) -> None:
    """A fake IMDb serving real posters: ``rows`` as in labels.csv (imdb_id, title, year, genres, image)."""
    basics = [(r["imdb_id"], "movie", r["title"] or "x", r["title"] or "x", "0", r["year"] or "\\N", "\\N", "90",
               r["genres"].replace("|", ",")) for r in rows]
    srv.route("/datasets/title.basics.tsv.gz", (200, {}, gz_tsv(
        ["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult", "startYear", "endYear",
         "runtimeMinutes", "genres"], basics)))
    srv.route("/datasets/title.ratings.tsv.gz", (200, {}, gz_tsv(
        ["tconst", "averageRating", "numVotes"], [(r["imdb_id"], "7", "5000") for r in rows])))
    for r in rows:
        srv.route(f"/title/{r['imdb_id']}/", (200, {}, title_page(f"{srv.url}/img/{r['imdb_id']}._V1_UX67_.jpg")))
        srv.route(f"/img/{r['imdb_id']}._V1_SX300.jpg",
                  (200, {"Content-Type": "image/jpeg"}, (posters_dir / r["image"]).read_bytes()))
