"""Ingest a local poster folder: ``labels.csv`` + images -> a table of films and posters.

The folder has the format of ``../shared/posters``: ``labels.csv`` with columns
``imdb_id,title,year,genres,image`` (genres joined by ``|``, image relative to
the folder). Every poster is decoded in full; its sha256, size and mode are
recorded. Nothing is lost silently: every row that is dropped, and every
conversion or ignored genre, is counted in the report with its reason.

Choices where the format is silent:

* A film may have several posters (several rows with one ``imdb_id`` and
  different images). A row repeating an (imdb_id, image) pair is a duplicate and
  skipped; rows of one film that disagree on genres are skipped after the first
  (``conflicting_genres``), since the label of a film must be one set.
* IMDb genres outside ``data.genres`` (Documentary, Music, ...) are dropped from
  the label; a token that is not an IMDb genre at all (``N/A``, a typo) is
  counted as ``unknown_genre``. A film left with no target genre is skipped.
* ``data.limit`` keeps the films with the smallest ``sha256(seed:imdb_id)``:
  deterministic, and raising the limit only adds films.
* An image path that resolves (symlinks followed) outside the folder -- ``../``,
  an absolute path elsewhere, a link pointing out -- is skipped as
  ``outside_source`` before the file is opened. A symlink loop is ``unreadable``.
* Images under :data:`~pipeline.data.images.MIN_POSTER_SIDE` px a side are ``too_small``.
* ``labels.csv`` is read by Polars as text, field by field as written (no type guessing). Blank lines
  are ignored and fields past the header's are dropped, as Python's csv module does; a quote inside an
  unquoted field (``12" Single``, write ``"12"" Single"``) or an unterminated quote makes the file
  malformed rather than guessed at.

Skip reasons: ``bad_imdb_id``, ``missing_file``, ``outside_source``, ``duplicate_row``,
``no_target_genre``, ``conflicting_genres`` (from ``labels.csv``), then from the
image itself (see :func:`pipeline.data.images.read_poster`): ``missing_file``,
``unreadable``, ``empty_file``, ``not_an_image``, ``corrupt``, ``too_large``,
``too_small``, ``unsupported_mode``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.core.io import CsvError, read_csv, seeded_order
from pipeline.core.progress import track
from pipeline.data.images import PosterError, read_poster
from pipeline.data.split import shared_images

#: IMDb's genre vocabulary (title.basics.tsv), used to tell "not a target genre"
#: from "not a genre at all".
IMDB_GENRES = frozenset({
    "Action", "Adult", "Adventure", "Animation", "Biography", "Comedy", "Crime",
    "Documentary", "Drama", "Family", "Fantasy", "Film-Noir", "Game-Show", "History",
    "Horror", "Music", "Musical", "Mystery", "News", "Reality-TV", "Romance", "Sci-Fi",
    "Short", "Sport", "Talk-Show", "Thriller", "War", "Western",
})

REQUIRED_COLUMNS = ("imdb_id", "genres", "image")
IMDB_ID = re.compile(r"^tt\d{5,10}$")

#: The posters table: columns and their types (``year`` is null when labels.csv has none).
SCHEMA = {
    "imdb_id": pl.String, "title": pl.String, "year": pl.Int64, "imdb_genres": pl.String, "labels": pl.String,
    "image": pl.String, "path": pl.String, "sha256": pl.String, "width": pl.Int64, "height": pl.Int64,
    "mode": pl.String, "converted": pl.Boolean,
}


class IngestError(PipelineError, ValueError):
    """The source as a whole cannot be read (one line naming the file)."""


@dataclass
class IngestReport:
    rows: int = 0
    skipped: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)
    ignored_genres: Counter = field(default_factory=Counter)
    unknown_genres: Counter = field(default_factory=Counter)
    details: list[dict] = field(default_factory=list)

    def skip(self, row: int, imdb_id: str, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        self.details.append({"row": row, "imdb_id": imdb_id, "reason": reason, "detail": detail})

    def to_dict(self, table: pl.DataFrame, genres: list[str]) -> dict:
        per_genre = Counter(g for labels in table["labels"] for g in labels.split("|"))
        return {
            "rows_read": self.rows,
            "films_kept": int(table["imdb_id"].n_unique()) if len(table) else 0,
            "posters_kept": int(len(table)),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": int(sum(self.skipped.values())),
            "converted_modes": dict(sorted(self.converted.items())),
            "ignored_genres": dict(sorted(self.ignored_genres.items())),
            "unknown_genres": dict(sorted(self.unknown_genres.items())),
            "posters_per_genre": {g: int(per_genre.get(g, 0)) for g in genres},
            "skipped_rows": self.details,
            # the same image under two or more films (kept: the split puts them in one split); absent where none
            **({"films_sharing_an_image": shared} if (shared := shared_images(table)) else {}),
        }


def read_labels(source: Path) -> list[dict]:
    labels = source / "labels.csv"
    if not source.is_dir():
        raise IngestError(f"data.source: {source} is not a folder")
    if not labels.is_file():
        raise IngestError(f"{labels}: not found (data.source must hold labels.csv and the images)")
    try:
        table = read_csv(labels)
    except UnicodeDecodeError as err:
        raise IngestError(f"{labels}: not UTF-8 text ({err.reason})") from None
    except CsvError as err:
        raise IngestError(f"{labels}: malformed CSV ({err})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(f"{labels}: missing column(s) {', '.join(missing)}")
    return table.to_dicts()


def _outside(root: Path, image: str) -> tuple[str, str] | None:
    """``(reason, detail)`` if ``root/image`` resolves outside ``root`` (a resolved folder), else None.

    Only the path is resolved (symlinks followed); the file itself is not opened.
    """
    try:
        resolved = (root / image).resolve()
    except (OSError, RuntimeError) as err:  # a symlink loop (RuntimeError before Python 3.13)
        return "unreadable", f"{image}: {err}"
    if not resolved.is_relative_to(root):
        return "outside_source", f"{image} resolves to {resolved}, outside {root}"
    return None


def ingest_folder(
    source: str | Path, genres: list[str], limit: int | None = None, seed: int = 0
) -> tuple[pl.DataFrame, dict]:
    """Read a local poster folder; return the posters table and the JSON report."""
    source = Path(source)
    rows = read_labels(source)
    root = source.resolve()
    report = IngestReport(rows=len(rows))
    target = set(genres)

    # Pass 1 (cheap): ids, genres, duplicates; decides which rows are candidates.
    candidates: list[tuple[int, dict, list[str]]] = []
    film_genres: dict[str, str] = {}
    seen_pairs: set[tuple[str, str]] = set()
    for i, row in enumerate(rows, start=2):  # row 1 is the header
        imdb_id = (row.get("imdb_id") or "").strip()
        image = (row.get("image") or "").strip()
        if not IMDB_ID.match(imdb_id):
            report.skip(i, imdb_id, "bad_imdb_id", f"imdb_id {imdb_id!r} is not like tt0123456")
            continue
        if not image:
            report.skip(i, imdb_id, "missing_file", "no image named")
            continue
        refused = _outside(root, image)
        if refused:
            report.skip(i, imdb_id, *refused)
            continue
        if (imdb_id, image) in seen_pairs:
            report.skip(i, imdb_id, "duplicate_row", f"{imdb_id} {image} listed before")
            continue
        tokens = [g.strip() for g in (row.get("genres") or "").split("|") if g.strip()]
        for g in tokens:
            if g not in IMDB_GENRES:
                report.unknown_genres[g] += 1
            elif g not in target:
                report.ignored_genres[g] += 1
        labels = [g for g in genres if g in tokens]
        if not labels:
            report.skip(i, imdb_id, "no_target_genre", f"genres {row.get('genres')!r}")
            continue
        key = "|".join(labels)
        if film_genres.setdefault(imdb_id, key) != key:
            report.skip(i, imdb_id, "conflicting_genres", f"{key} differs from {film_genres[imdb_id]}")
            continue
        seen_pairs.add((imdb_id, image))
        candidates.append((i, row, labels))

    if limit is not None:
        films = seeded_order({row["imdb_id"].strip() for _, row, _ in candidates}, seed)
        keep = set(films[:limit])
        candidates = [c for c in candidates if c[1]["imdb_id"].strip() in keep]

    # Pass 2 (decodes every image): the expensive part, with a progress bar.
    out = []
    for i, row, labels in track(candidates, len(candidates), "ingest"):
        imdb_id = row["imdb_id"].strip()
        image = row["image"].strip()
        path = source / image
        try:
            _, info = read_poster(path)
        except PosterError as err:
            report.skip(i, imdb_id, err.reason, str(err))
            continue
        if info.converted:
            report.converted[info.mode] += 1
        year = (row.get("year") or "").strip()
        out.append({
            "imdb_id": imdb_id,
            "title": (row.get("title") or "").strip(),
            "year": int(year) if year.isdigit() else None,
            "imdb_genres": (row.get("genres") or "").strip(),
            "labels": "|".join(labels),
            "image": image,
            "path": str(path),
            "sha256": info.sha256,
            "width": info.width,
            "height": info.height,
            "mode": info.mode,
            "converted": info.converted,
        })
    table = pl.DataFrame(out, schema=SCHEMA).sort(["imdb_id", "image"], maintain_order=True)
    return table, report.to_dict(table, genres)
