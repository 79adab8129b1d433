"""Films beside their posters: a plot and metadata per film (``data.films``), joined by ``imdb_id``.

The films CSV has the shared format (``../shared/films/README.md``)::

    imdb_id,plot,plot_source,tagline,runtime_min,release_year,language,director,cast,certification

Only ``imdb_id`` and ``plot`` are required: a real catalogue may have nothing else, and every other
column, when absent, is unknown for every film (as an empty field is). Columns in any order; columns
the format does not know are ignored. An empty field is unknown. :func:`read_films` reads it row by
row with the standard library's csv module (strict quoting), because a bad row must be named by its
line: a wrong encoding or a broken quote stops with one line naming the file and the line; a missing
required column names the file and the column. A row with a bad field is skipped with its reason in
the report, never a crash:

* ``bad_id``: not an IMDb title id (``tt`` and digits);
* ``bad_runtime``: runtime not a whole number of minutes in 1-1000;
* ``bad_year``: release year not a year in 1870-2100;
* ``duplicate_conflict``: the id appears on several rows that disagree: every row of it is skipped
  (which one is right cannot be told), so the film has no plot or metadata;
* ``no_poster``: the id has no poster in the posters table.

Identical repeated rows are counted (``duplicates_identical``) and read once. An empty or whitespace
plot is a *missing* plot (the film keeps its metadata); a plot of any length is kept whole (the text
encoder's tokenizer truncates it).

:func:`films_table` gives one row per film of the posters table, in the posters' order, whether or not
the CSV has it (``film_row`` false), so every later step joins on one table and the split never
depends on which films have a plot.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core.errors import PipelineError

#: Columns of the films CSV, in the shared format's order; all but :data:`REQUIRED` may be absent.
COLUMNS = ["imdb_id", "plot", "plot_source", "tagline", "runtime_min", "release_year", "language", "director",
           "cast", "certification"]
REQUIRED = ["imdb_id", "plot"]
TEXT_FIELDS = ["plot", "tagline", "language", "director", "cast", "certification"]

#: The films table (``data/films.parquet``): one row per film of the posters table.
SCHEMA = {
    "imdb_id": pl.String, "film_row": pl.Boolean, "plot": pl.String, "tagline": pl.String,
    "runtime_min": pl.Int64, "release_year": pl.Int64, "language": pl.String, "director": pl.String,
    "cast": pl.String, "certification": pl.String,
}

IMDB_ID = re.compile(r"^tt\d{5,10}$")
#: Skipped rows listed one by one in the report (the counts cover them all).
MAX_DETAILS = 200


class FilmsError(PipelineError, ValueError):
    """The films CSV as a whole cannot be read (one line naming the file and, where known, the line)."""


@dataclass
class FilmsRead:
    """Good rows of a films CSV (``(line, film)``, one per film, in file order) and what was skipped."""

    films: list[tuple[int, dict[str, Any]]]
    rows_read: int = 0
    duplicates_identical: int = 0
    skipped: Counter = field(default_factory=Counter)
    details: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, line: int, imdb_id: str, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append({"line": line, "imdb_id": imdb_id, "reason": reason, "detail": detail})

    def report(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "duplicates_identical": self.duplicates_identical,
                "skipped": dict(sorted(self.skipped.items())), "skipped_total": int(sum(self.skipped.values())),
                "skipped_rows": sorted(self.details, key=lambda d: d["line"])}


def _text(value: str) -> str | None:
    value = " ".join(value.split())
    return value or None


def _number(value: str, low: int, high: int) -> int | None | str:
    """The whole number in ``value`` (None when empty), or the string ``"bad"``."""
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return "bad"
    if not number.is_integer() or not low <= number <= high:
        return "bad"
    return int(number)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise FilmsError(f"{path}: line {line}: not UTF-8 text ({err.reason}); save the file as UTF-8") from None


def read_films(path: str | Path) -> FilmsRead:
    """Parsed rows of a films CSV (one per film, good rows only) and what was skipped, with reasons."""
    path = Path(path)
    if not path.is_file():
        raise FilmsError(f"data.films: {path} not found (a films CSV, imdb, or null for poster only)")
    reader = csv.reader(io.StringIO(_decode(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise FilmsError(f"{path}: empty file (expected the header {','.join(COLUMNS)})")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise FilmsError(f"{path}: missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)}; "
                             f"optional: {', '.join(c for c in COLUMNS if c not in REQUIRED)})")
        index = {c: header.index(c) for c in COLUMNS if c in header}
        rows: list[tuple[int, dict[str, str]]] = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            values = values + [""] * (len(header) - len(values))
            # an absent optional column reads as an empty (unknown) field
            rows.append((reader.line_num, {c: values[index[c]] if c in index else "" for c in COLUMNS}))
    except csv.Error as err:
        raise FilmsError(f"{path}: line {reader.line_num}: malformed CSV ({err})") from None
    out = FilmsRead([], rows_read=len(rows))
    skip = out.skip
    parsed: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line, raw in rows:
        imdb_id = raw["imdb_id"].strip()
        if not IMDB_ID.match(imdb_id):
            skip(line, imdb_id, "bad_id", f"imdb_id {raw['imdb_id']!r} is not an IMDb title id (tt + digits)")
            continue
        runtime = _number(raw["runtime_min"], 1, 1000)
        if runtime == "bad":
            skip(line, imdb_id, "bad_runtime", f"runtime_min {raw['runtime_min']!r} is not whole minutes in 1-1000")
            continue
        year = _number(raw["release_year"], 1870, 2100)
        if year == "bad":
            skip(line, imdb_id, "bad_year", f"release_year {raw['release_year']!r} is not a year in 1870-2100")
            continue
        film = {"imdb_id": imdb_id, "runtime_min": runtime, "release_year": year,
                **{c: _text(raw[c]) for c in TEXT_FIELDS}}
        parsed.setdefault(imdb_id, []).append((line, film))
    for imdb_id, versions in parsed.items():
        distinct = {tuple(sorted(f.items(), key=lambda kv: kv[0])) for _, f in versions}
        if len(distinct) > 1:
            lines = [line for line, _ in versions]
            for line in lines:
                skip(line, imdb_id, "duplicate_conflict",
                     f"{imdb_id} is on lines {', '.join(map(str, lines))} with different fields; all skipped")
            continue
        out.duplicates_identical += len(versions) - 1
        out.films.append(versions[0])
    out.films.sort(key=lambda lf: lf[0])
    return out


def films_table(posters: pl.DataFrame, films_csv: str | Path | None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per film of ``posters`` with its plot and metadata (``film_row`` false where the CSV has
    none, or ``films_csv`` is None), and the report: films with and without a plot, rows skipped."""
    ids = posters["imdb_id"].unique(maintain_order=True).to_list()
    by_id: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {"source": None if films_csv is None else str(films_csv)}
    if films_csv is not None:
        read = read_films(films_csv)
        known = set(ids)
        for line, film in read.films:
            if film["imdb_id"] in known:
                by_id[film["imdb_id"]] = film
            else:
                read.skip(line, film["imdb_id"], "no_poster", f"{film['imdb_id']} has no poster in the posters table")
        report |= read.report()
    rows = [{"imdb_id": i, "film_row": i in by_id, **{k: by_id.get(i, {}).get(k) for k in SCHEMA
                                                         if k not in ("imdb_id", "film_row")}} for i in ids]
    table = pl.DataFrame(rows, schema=SCHEMA)
    with_plot = int(table["plot"].is_not_null().sum())
    report |= {"films": len(ids), "films_with_row": int(table["film_row"].sum()), "films_with_plot": with_plot,
               "films_without_plot": len(ids) - with_plot,
               "share_with_plot": round(with_plot / len(ids), 4) if ids else 0.0}
    return table, report
