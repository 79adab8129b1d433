"""Stage ``films``: each film's plot and metadata (``data.films``) joined to the posters -> ``data/films.parquet``."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import read_parquet, write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.data.films import films_table
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    out: Path = typer.Option(Path("data/films.parquet"), help="One row per film: plot and metadata (null = unknown)."),
    report: Path = typer.Option(Path("data/films_report.json"), help="Films with and without a plot, rows skipped."),
) -> None:
    """Join data.films (a films CSV, imdb, or null for poster only) to the posters' films by imdb_id."""
    data = load_params(params, ["data"])["data"]
    table, rep = films_table(read_parquet(posters), data.films_csv)
    write_parquet(out, table)
    write_json(report, rep)
    print(f"films: {rep['films']} films, {rep['films_with_plot']} with a plot ({100 * rep['share_with_plot']:.1f}%)"
          + (f", {rep['skipped_total']} CSV rows skipped" if data.films_csv else " (data.films: null, poster only)"))


if __name__ == "__main__":
    typer.run(main)
