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
    try:
        # parse the raw text: IMDb writes HTML entities inside the strings (``&quot;``), and
        # unescaping the block before parsing would break the JSON
        data = json.loads(block.strip())
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("@graph"), list):
        tops, single = data["@graph"], False
    elif isinstance(data, list):
        tops, single = data, False
    else:
        tops, single = [data], True
    tops = [o for o in tops if isinstance(o, dict)]
    titles = [o for o in tops if _types(o) & _TITLE_TYPES]
    for obj in titles or (tops if single else []):
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
