"""Build a poster folder (``labels.csv`` + ``images/``) from IMDb or from a CSV of poster URLs.

The output has exactly the format the ingest stage reads from a local folder,
so everything downstream is unchanged.

Beside ``labels.csv`` goes ``films.csv``: one row per film of labels.csv whose title
page was fetched, with the descriptive fields of the page's JSON-LD (plot, runtime,
release year, directors, first five actors, certification; columns :data:`FILMS_COLUMNS`,
``""`` = unknown), read from the page already fetched for the poster, so it costs no
request. Films from a CSV of poster URLs have no title page and no row there. Both
files are written atomically, sorted by imdb_id: the same inputs give the same bytes.

Resumable and incremental: every fetched URL is kept in ``<out>/.http-cache``
(keyed by the URL's sha256) and the TSV dumps in ``<out>/.datasets``, so an
interrupted scrape resumes where it stopped and a larger ``data.limit`` fetches
only the new films. Images are saved under the sha256 of their bytes, once.
A download is kept only if it decodes as an image within the size limits (an
HTML error page served as ``image/jpeg`` is refused, and so are decompression
bombs). Every failure is counted by reason in the report.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, seeded_order, sha256_bytes, write_json
from pipeline.core.params import DATA_DEFAULTS, DataParams
from pipeline.core.progress import progress_bar
from pipeline.data.images import PosterError, decode
from pipeline.data.imdb.polite_http import FetchError, PoliteClient, Unreachable
from pipeline.data.imdb.titles import (
    FILM_FIELDS,
    Film,
    balanced_sample,
    candidate_films,
    film_fields_from_title_page,
    image_id,
    poster_source_from_title_page,
    posters_from_gallery,
    sized_image_url,
    with_votes,
)


class ScrapeError(PipelineError):
    pass


@dataclass
class ScrapeSettings:
    """What a scrape reads of the ``data`` params. Their defaults are the params schema's
    (:class:`~pipeline.core.params.DataParams`, where they are written once); the stage builds
    its settings with :meth:`from_params`."""

    genres: list[str]
    limit: int | None = DATA_DEFAULTS.limit
    seed: int = DATA_DEFAULTS.seed
    posters_per_film: int = DATA_DEFAULTS.posters_per_film
    year_min: int | None = DATA_DEFAULTS.year_min
    year_max: int | None = DATA_DEFAULTS.year_max
    min_votes: int = DATA_DEFAULTS.min_votes
    image_width: int = DATA_DEFAULTS.image_width
    datasets_url: str = DATA_DEFAULTS.datasets_url
    title_url: str = DATA_DEFAULTS.title_url
    #: not a parameter: where IMDb keeps a title's poster gallery
    gallery_path: str = "mediaindex/?contentTypes=poster"

    @classmethod
    def from_params(cls, data: DataParams) -> ScrapeSettings:
        """The settings of the validated ``data`` params (every field that is a parameter)."""
        return cls(**{f.name: getattr(data, f.name) for f in fields(cls) if f.name in DataParams.model_fields})


# where a poster URL comes from: the title page's JSON-LD or og:image, the poster gallery, a CSV source
URL_SOURCES = ("csv", "gallery", "json_ld", "og_image")

#: the columns of films.csv: the film, then its title page's fields (:func:`film_fields_from_title_page`)
FILMS_COLUMNS = ("imdb_id", *FILM_FIELDS)


@dataclass
class ScrapeReport:
    films_listed: int = 0
    films_with_posters: int = 0
    pages_fetched: int = 0
    posters_saved: int = 0
    posters_from_cache: int = 0
    url_sources: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    failed: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, imdb_id: str, reason: str, url: str = "") -> None:
        with self.lock:
            self.failures[reason] += 1
            self.failed.append({"imdb_id": imdb_id, "reason": reason, "url": url})

    def to_dict(self, client: PoliteClient) -> dict:
        return {
            "films_listed": self.films_listed,
            "films_with_posters": self.films_with_posters,
            "pages_fetched": self.pages_fetched,
            "posters_saved": self.posters_saved,
            "posters_from_cache": self.posters_from_cache,
            "poster_url_sources": {k: self.url_sources[k] for k in sorted(URL_SOURCES)},
            "requests": client.stats["requests"],
            "retries": client.stats["retries"],
            "failures": dict(sorted(self.failures.items())),
            "failed": sorted(self.failed, key=lambda f: (f["imdb_id"], f["reason"], f["url"])),
        }


class CachedFetcher:
    """``client.get`` with an on-disk cache of successful bodies, keyed by URL."""

    def __init__(self, client: PoliteClient, folder: Path):
        self.client = client
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, url: str) -> tuple[bytes, bool]:
        path = self.folder / sha256_bytes(url.encode())
        if path.exists():
            return path.read_bytes(), True
        body = self.client.get(url).content
        with atomic_path(path) as tmp:
            tmp.write_bytes(body)
        return body, False


def films_from_csv(path: Path, genres: list[str]) -> list[tuple[Film, list[str]]]:
    """Films and poster URLs from a CSV of ``imdb_id,genres,poster_url`` (the public
    "Movie Genre from its Poster" shape: extra columns such as Title are used when present)."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ScrapeError(f"data.source: {path} not found") from None
    out: dict[str, tuple[Film, list[str]]] = {}
    for row in rows:
        norm = {k.strip().lower().replace(" ", "_"): (v or "").strip() for k, v in row.items() if k}
        imdb_id = norm.get("imdb_id") or norm.get("imdbid") or ""
        if imdb_id.isdigit():
            imdb_id = f"tt{int(imdb_id):07d}"
        url = norm.get("poster_url") or norm.get("poster") or ""
        if not imdb_id or not url:
            continue
        film_genres = tuple(g.strip() for g in norm.get("genres", norm.get("genre", "")).split("|") if g.strip())
        title = norm.get("title", "")
        film, urls = out.setdefault(imdb_id, (Film(imdb_id, title, None, film_genres, 0), []))
        if url not in urls:
            urls.append(url)
    if not out:
        raise ScrapeError(f"{path}: no rows with imdb_id and poster_url")
    return [v for _, v in sorted(out.items())]


def list_imdb_films(fetch_client: PoliteClient, settings: ScrapeSettings, folder: Path) -> list[Film]:
    """Download (once) and stream IMDb's TSV dumps; return the balanced sample."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("title.basics.tsv.gz", "title.ratings.tsv.gz"):
        path = folder / name
        if not path.exists():
            fetch_client.download(f"{settings.datasets_url.rstrip('/')}/{name}", path)
        paths[name] = path
    films = candidate_films(paths["title.basics.tsv.gz"], settings.genres, settings.year_min, settings.year_max)
    films = with_votes(films, paths["title.ratings.tsv.gz"], settings.min_votes)
    return balanced_sample(films, settings.genres, settings.limit, settings.seed)


def _poster_urls(fetcher: CachedFetcher, film: Film, settings: ScrapeSettings,
                 report: ScrapeReport, page_fields: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Up to ``posters_per_film`` (url, source) pairs: the title page's poster, then the gallery's.
    When the title page is fetched, its descriptive fields (:func:`film_fields_from_title_page`)
    go into ``page_fields`` if given (left empty when the page could not be fetched)."""
    base = f"{settings.title_url.rstrip('/')}/{film.imdb_id}/"
    try:
        page, _ = fetcher.get(base)
    except FetchError as err:
        report.fail(film.imdb_id, err.reason, base)
        return []
    with report.lock:
        report.pages_fetched += 1
    urls = []
    text = page.decode("utf-8", errors="replace")
    if page_fields is not None:
        page_fields.update(film_fields_from_title_page(text))
    main, source = poster_source_from_title_page(text)
    if main:
        urls.append((main, source))
    else:
        report.fail(film.imdb_id, "no_poster_on_page", base)
    if settings.posters_per_film > 1:
        gallery = base + settings.gallery_path
        try:
            page, _ = fetcher.get(gallery)
            with report.lock:
                report.pages_fetched += 1
            seen = {image_id(u) for u, _ in urls}
            for u in posters_from_gallery(page.decode("utf-8", errors="replace")):
                if image_id(u) not in seen:
                    seen.add(image_id(u))
                    urls.append((u, "gallery"))
        except FetchError as err:
            report.fail(film.imdb_id, f"gallery_{err.reason}", gallery)
    return urls[: settings.posters_per_film]


def scrape(source: str, out: str | Path, settings: ScrapeSettings, client: PoliteClient) -> dict:
    """Fill ``out`` with ``labels.csv`` + ``images/`` and ``films.csv`` (the title pages' fields of
    the films of labels.csv); return the report (also written to ``out``)."""
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    fetcher = CachedFetcher(client, out / ".http-cache")
    report = ScrapeReport()

    try:
        if source == "imdb":
            films = [(f, None) for f in list_imdb_films(client, settings, out / ".datasets")]
        else:
            listed = films_from_csv(Path(source), settings.genres)
            if settings.limit is not None:
                listed = seeded_order(listed, settings.seed, key=lambda fu: fu[0].imdb_id)
                listed = sorted(listed[: settings.limit], key=lambda fu: fu[0].imdb_id)
            films = listed
    except Unreachable as err:
        raise ScrapeError(
            f"IMDb is unreachable ({err}); to use posters already on disk set data.source to a folder "
            f"with labels.csv and images/ (e.g. -S data.source=../shared/posters)"
        ) from None
    report.films_listed = len(films)

    rows: dict[str, list[dict]] = {}
    film_rows: dict[str, dict[str, str]] = {}

    def one(item: tuple[Film, list[str] | None]) -> None:
        film, csv_urls = item
        page_fields: dict[str, str] | None = None
        if csv_urls is None:
            page_fields = {}
            urls = _poster_urls(fetcher, film, settings, report, page_fields)
        else:
            urls = [(u, "csv") for u in csv_urls]
        urls = urls[: settings.posters_per_film]
        with report.lock:
            report.url_sources.update(source for _, source in urls)
        saved = []
        for url, _ in urls:
            sized = sized_image_url(url, settings.image_width)
            try:
                body, cached = fetcher.get(sized)
            except FetchError as err:
                report.fail(film.imdb_id, err.reason, sized)
                continue
            try:
                _, info = decode(body, sized)
            except PosterError as err:
                report.fail(film.imdb_id, f"image_{err.reason}", sized)
                (fetcher.folder / sha256_bytes(sized.encode())).unlink(missing_ok=True)
                continue
            ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}.get(info.format, ".img")
            name = f"images/{info.sha256[:32]}{ext}"
            if not (out / name).exists():
                with atomic_path(out / name) as tmp:
                    tmp.write_bytes(body)
            with report.lock:
                report.posters_saved += 1
                report.posters_from_cache += int(cached)
            saved.append({"imdb_id": film.imdb_id, "title": film.title, "year": film.year or "",
                          "genres": "|".join(film.genres), "image": name, "sha256": info.sha256, "url": sized})
        if saved:
            with report.lock:
                rows[film.imdb_id] = saved
                if page_fields is not None:  # a title page was fetched (its fields may all be empty)
                    film_rows[film.imdb_id] = {**dict.fromkeys(FILM_FIELDS, ""), **page_fields,
                                               "imdb_id": film.imdb_id}

    with progress_bar("films") as bar, ThreadPoolExecutor(client.concurrency) as pool:
        task = bar.add_task("scrape", total=len(films))
        for _ in pool.map(one, films):
            bar.advance(task)

    report.films_with_posters = len(rows)
    buf = io.StringIO()
    # the ingest columns first; sha256 and url record where each poster came from
    writer = csv.DictWriter(buf, ["imdb_id", "title", "year", "genres", "image", "sha256", "url"],
                            lineterminator="\n")
    writer.writeheader()
    for imdb_id in sorted(rows):
        for r in rows[imdb_id]:
            writer.writerow(r)
    with atomic_path(out / "labels.csv") as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, FILMS_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for imdb_id in sorted(film_rows):
        writer.writerow(film_rows[imdb_id])
    with atomic_path(out / "films.csv") as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    result = report.to_dict(client)
    write_json(out / "scrape_report.json", result)
    return result
