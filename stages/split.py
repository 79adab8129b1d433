"""Stage ``split``: film-grouped, stratified train/val/test -> ``data/split.parquet`` + summary."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import read_parquet, write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.data.split import split_films, split_summary
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    out: Path = typer.Option(Path("data/split.parquet"), help="imdb_id -> train/val/test."),
    summary: Path = typer.Option(Path("data/split_summary.json"), help="Films, posters, genres per split."),
) -> None:
    """Split films 0.8/0.1/0.1 (split.*), or fold split.fold of split.folds, stratified over their genre
    vectors."""
    p = load_params(params, ["split", "data"])
    s, genres = p["split"], p["data"].genres
    table = read_parquet(posters)
    split = split_films(table, genres, (s.train, s.val, s.test), s.seed, s.folds, s.fold)
    write_parquet(out, split)
    rep = split_summary(split, table, genres)
    write_json(summary, rep)
    print("split: " + ", ".join(f"{k} {v['films']} films/{v['posters']} posters" for k, v in rep.items()))


if __name__ == "__main__":
    typer.run(main)
