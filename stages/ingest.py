"""Stage ``ingest``: a poster folder (``data.source``) -> ``data/posters.parquet`` + report."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.data.ingest import ingest_folder
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    out: Path = typer.Option(Path("data/posters.parquet"), help="Posters table."),
    report: Path = typer.Option(Path("data/ingest_report.json"), help="What was kept, fixed and skipped."),
) -> None:
    """Decode and validate every poster of data.source (or of imdb/ when scraped); map genres onto data.genres."""
    data = load_params(params, ["data"])["data"]
    table, rep = ingest_folder(data.folder, data.genres, data.limit, data.seed)
    write_parquet(out, table)
    write_json(report, rep)
    print(f"ingest: kept {rep['posters_kept']} posters of {rep['films_kept']} films, skipped {rep['skipped_total']}")


if __name__ == "__main__":
    typer.run(main)
