"""IMDb as a poster source: the film list from IMDb's non-commercial datasets, and
poster URLs from title pages and poster galleries.

IMDb's datasets (https://developer.imdb.com/non-commercial-datasets/) are for
personal and non-commercial use; fetching title pages is subject to IMDb's
conditions of use. The defaults are polite (1 request/s, 2 in flight, robots.txt).

The TSV dumps are hundreds of MB: they are downloaded to disk in a stream and
parsed line by line from the gzip file, never loaded whole.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.io import seeded_order

NULL = "\\N"


@dataclass(frozen=True)
class Film:
    imdb_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    votes: int


def read_tsv_gz(path: str | Path) -> Iterator[dict[str, str]]:
    """Rows of a gzip TSV as dicts, streamed (IMDb escapes nothing: tabs split, ``\\N`` is null)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            values = line.rstrip("\n").split("\t")
            if len(values) == len(header):
                yield dict(zip(header, values))


def candidate_films(
    basics: str | Path, genres: list[str], year_min: int | None, year_max: int | None
) -> dict[str, Film]:
    """Feature films, not adult, with at least one genre of ``genres``, in the year range."""
    wanted = set(genres)
    out: dict[str, Film] = {}
    for row in read_tsv_gz(basics):
        if row.get("titleType") != "movie" or row.get("isAdult") == "1":
            continue
        g = tuple(x for x in row.get("genres", NULL).split(",") if x and x != NULL)
        if not wanted.intersection(g):
            continue
        year = int(row["startYear"]) if row.get("startYear", NULL).isdigit() else None
        if (year_min is not None or year_max is not None) and year is None:
            continue
        if year_min is not None and year < year_min or year_max is not None and year > year_max:
            continue
        out[row["tconst"]] = Film(row["tconst"], row.get("primaryTitle", ""), year, g, 0)
    return out


def with_votes(films: dict[str, Film], ratings: str | Path, min_votes: int) -> dict[str, Film]:
    """Films with at least ``min_votes`` votes (title.ratings), votes filled in."""
    out = {}
    for row in read_tsv_gz(ratings):
        film = films.get(row.get("tconst", ""))
        if film is None:
            continue
        votes = int(row["numVotes"]) if row.get("numVotes", "").isdigit() else 0
        if votes >= min_votes:
            out[film.imdb_id] = Film(film.imdb_id, film.title, film.year, film.genres, votes)
    if min_votes <= 0:  # films without a ratings row count as 0 votes
        for k, f in films.items():
            out.setdefault(k, f)
    return out


def balanced_sample(films: dict[str, Film], genres: list[str], limit: int | None, seed: int) -> list[Film]:
    """A deterministic, genre-balanced sample of ``limit`` films.

    Genres take turns, rarest first; each picks its next film not taken yet, in the
    order of ``sha256(seed:imdb_id)`` (:func:`~pipeline.core.io.seeded_order`). The picks
    form one fixed sequence for a given film list and seed, and ``limit`` cuts it: raising
    the limit keeps every film already sampled, so only the new films are downloaded.
    """
    by_genre: dict[str, list[Film]] = defaultdict(list)
    for f in seeded_order(films.values(), seed, key=lambda f: f.imdb_id):
        for g in f.genres:
            if g in genres:
                by_genre[g].append(f)
    turn = sorted((g for g in genres if by_genre[g]), key=lambda g: (len(by_genre[g]), g))
    cursor = {g: 0 for g in turn}
    picked: dict[str, Film] = {}
    target = len(films) if limit is None else min(limit, len(films))
    while len(picked) < target and turn:
        for g in list(turn):
            lst = by_genre[g]
            while cursor[g] < len(lst) and lst[cursor[g]].imdb_id in picked:
                cursor[g] += 1
            if cursor[g] >= len(lst):
                turn.remove(g)
                continue
            f = lst[cursor[g]]
            picked[f.imdb_id] = f
            if len(picked) >= target:
                break
    return sorted(picked.values(), key=lambda f: f.imdb_id)


# --- title pages -------------------------------------------------------------------------------

_META_IMAGE = re.compile(
    r"<meta[^>]+(?:property|name)=[\"']og:image[\"'][^>]*content=[\"']([^\"']+)[\"']"
    r"|<meta[^>]+content=[\"']([^\"']+)[\"'][^>]*(?:property|name)=[\"']og:image[\"']",
    re.IGNORECASE,
)
_JSON_LD = re.compile(r"<script[^>]+type=[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_IMG_SRC = re.compile(r"<img[^>]+src=[\"']([^\"']+)[\"']", re.IGNORECASE)


# schema.org types of the thing a title page is about (its top-level JSON-LD object)
_TITLE_TYPES = {"Movie", "TVSeries", "TVMiniSeries", "TVEpisode", "TVMovie", "TVSpecial", "TVShort", "Short",
                "VideoGame", "Video", "MusicVideoObject", "CreativeWork", "CreativeWorkSeries"}


def _types(obj: dict) -> set[str]:
    t = obj.get("@type")
    return {x for x in (t if isinstance(t, list) else [t]) if isinstance(x, str)}


def _image_url(image) -> str | None:
    """An ``image`` value: a URL, an ImageObject (``url``/``contentUrl``), or a list of those."""
    for item in image if isinstance(image, list) else [image]:
        if isinstance(item, dict):
            item = item.get("url") or item.get("contentUrl")
        if isinstance(item, str):
            url = html.unescape(item.strip())
            if url.startswith("http"):
                return url
    return None


def _json_ld_poster(block: str) -> str | None:
    """The ``image`` of the object a JSON-LD block describes; never of nested objects
    (a review's ``itemReviewed``, a trailer's ``thumbnail``)."""
    titles, lone = _json_ld_title_objects(block)
    for obj in titles or lone:
        url = _image_url(obj.get("image"))
        if url:
            return url
    return None


def poster_source_from_title_page(page: str) -> tuple[str | None, str | None]:
    """The poster URL of a title page and where it came from: the JSON-LD ``image`` of the
    film (``"json_ld"``), else ``og:image`` (``"og_image"``); ``(None, None)`` if neither."""
    for block in _JSON_LD.findall(page):
        url = _json_ld_poster(block)
        if url:
            return url, "json_ld"
    m = _META_IMAGE.search(page)
    if m:
        return html.unescape(m.group(1) or m.group(2)), "og_image"
    return None, None


def posters_from_gallery(page: str, base_host_hint: str = "") -> list[str]:
    """Image URLs of a poster gallery page, in page order, de-duplicated by image id."""
    seen, out = set(), []
    for src in _IMG_SRC.findall(page):
        src = html.unescape(src)
        if not src.startswith("http") or (base_host_hint and base_host_hint not in src):
            continue
        key = image_id(src)
        if key not in seen:
            seen.add(key)
            out.append(src)
    return out


_SIZE_SUFFIX = re.compile(r"\._V1_[^/]*?(\.[A-Za-z]+)$")


def image_id(url: str) -> str:
    """An IMDb image URL without its size directives (two sizes of one poster share it)."""
    return _SIZE_SUFFIX.sub(r"\1", url)


def sized_image_url(url: str, width: int) -> str:
    """IMDb image URLs take their size in the name: ``..._V1_SX300.jpg`` is 300 px wide."""
    m = _SIZE_SUFFIX.search(url)
    if m:
        return url[: m.start()] + f"._V1_SX{width}{m.group(1)}"
    m = re.search(r"(\.[A-Za-z]+)$", url)
    if m and "media-amazon" in url:
        return url[: m.start()] + f"._V1_SX{width}{m.group(1)}"
    return url


# --- a film's descriptive fields, from the title page's JSON-LD ------------------------------------

#: the fields :func:`film_fields_from_title_page` returns, in the order films.csv writes them
FILM_FIELDS = ("plot", "plot_source", "tagline", "runtime_min", "release_year", "language", "director", "cast",
               "certification")
#: at most this many ``actor`` names go in ``cast``
CAST_LIMIT = 5

_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
_YEAR = re.compile(r"(\d{4})(?:-\d{2}(?:-\d{2})?)?(?:T.*)?")


def _json_ld_title_objects(block: str) -> tuple[list[dict], list[dict]]:
    """The top-level objects of a JSON-LD block that the poster finder (:func:`_json_ld_poster`)
    would read: the ones of a title type, and, apart, the block's lone object when it is not an
    ``@graph`` or a list and has no title type. ``([], [])`` for bad JSON."""
    try:
        # parse the raw text: IMDb writes HTML entities inside the strings (``&quot;``), and
        # unescaping the block before parsing would break the JSON
        data = json.loads(block.strip())
    except json.JSONDecodeError:
        return [], []
    if isinstance(data, dict) and isinstance(data.get("@graph"), list):
        tops, single = data["@graph"], False
    elif isinstance(data, list):
        tops, single = data, False
    else:
        tops, single = [data], True
    tops = [o for o in tops if isinstance(o, dict)]
    titles = [o for o in tops if _types(o) & _TITLE_TYPES]
    return titles, ([] if titles or not single else tops)


def _text(value) -> str:
    """A JSON-LD string as plain text: HTML entities unescaped, whitespace collapsed; ``""`` if not a string."""
    if not isinstance(value, str):
        return ""
    return " ".join(html.unescape(value).split())


def _names(value, limit: int | None = None) -> str:
    """The ``name`` of a Person or a list of them (plain strings are taken as names), ``|``-joined,
    in order, each once, at most ``limit``."""
    names: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        name = _text(item.get("name") if isinstance(item, dict) else item)
        if name and name not in names:
            names.append(name)
    return "|".join(names[:limit])


def duration_minutes(value) -> str:
    """An ISO-8601 duration (``PT2H13M``, ``PT45M``, ``PT2H``) in whole minutes, as text; ``""``
    if absent, unparsable or zero (seconds are rounded)."""
    if not isinstance(value, str):
        return ""
    m = _ISO_DURATION.fullmatch(value.strip().upper())
    if not m or not any(m.groups()):
        return ""
    days, hours, minutes, seconds = m.groups()
    total = int(days or 0) * 1440 + int(hours or 0) * 60 + int(minutes or 0) + round(float(seconds or 0) / 60)
    return str(total) if total > 0 else ""


def release_year(value) -> str:
    """The year of a ``datePublished`` (``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``) as text; ``""`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 9999:
        return str(value)
    m = _YEAR.fullmatch(value.strip()) if isinstance(value, str) else None
    return m.group(1) if m else ""


def film_fields_from_title_page(page: str) -> dict[str, str]:
    """A film's descriptive fields (:data:`FILM_FIELDS`, every value a string, ``""`` = unknown)
    from the JSON-LD of its title page.

    The object read is the one the poster finder reads: the first top-level object of a title type
    (Movie, TVSeries, ...) in page order, else the lone object of a block, never a nested one (a
    review's ``itemReviewed``). Bad JSON is skipped. IMDb writes HTML entities inside the JSON
    strings, so every text is unescaped after parsing. JSON-LD has no tagline nor language: those
    stay empty.
    """
    out = dict.fromkeys(FILM_FIELDS, "")
    typed: dict | None = None
    lone: dict | None = None
    for block in _JSON_LD.findall(page):
        titles, fallback = _json_ld_title_objects(block)
        if titles:
            typed = titles[0]
            break
        if fallback and lone is None:
            lone = fallback[0]
    obj = typed if typed is not None else lone
    if obj is None:
        return out
    out["plot"] = _text(obj.get("description"))
    out["plot_source"] = "imdb_json_ld" if out["plot"] else ""
    out["runtime_min"] = duration_minutes(obj.get("duration"))
    out["release_year"] = release_year(obj.get("datePublished"))
    out["director"] = _names(obj.get("director"))
    out["cast"] = _names(obj.get("actor"), CAST_LIMIT)
    out["certification"] = _text(obj.get("contentRating"))
    return out
