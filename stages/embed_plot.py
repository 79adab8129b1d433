"""Stage ``embed-plot``: the text encoder over each film's plot -> ``features/plot.h5`` + index (``data.films``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import typer

from pipeline.core.io import read_parquet, write_json
from pipeline.core.params import load_params
from pipeline.features.store import embed_plots, plot_encoder_params, write_features
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    films: Path = typer.Option(Path("data/films.parquet"), help="Films table from the films stage."),
    out: Path = typer.Option(Path("features/plot.h5"), help="Pooled plot embeddings (float16), films with a plot."),
    index: Path = typer.Option(Path("features/plot.parquet"), help="Film imdb_id -> row, with the embedded plot."),
    report: Path = typer.Option(Path("features/plot_report.json"), help="Films with a plot, unique plots."),
) -> None:
    """Embed each film's plot with encoder.name's text encoder (cached by plot sha256 + encoder identity).

    With data.films null (or no film with a plot) it writes empty features without loading the encoder."""
    p = load_params(params, ["encoder", "ray"])  # ray: where it runs (no DVC param)
    table = read_parquet(films)
    if table["plot"].is_null().all():
        write_features(out, index, [], {"pooled": np.zeros((0, 0), np.float16)}, {"plot": None},
                       {"text": []}, allow_empty=True)
        write_json(report, {"films": len(table), "films_with_plot": 0, "identity": None})
        print("embed-plot: no film has a plot (data.films: null?): empty plot features")
        return
    from pipeline.features.encoders import create_text_encoder

    enc = plot_encoder_params(p["encoder"])
    encoder = create_text_encoder(enc)
    ids, arrays, rep = embed_plots(table, encoder, enc.batch_size, ray=p["ray"])
    plots = dict(table.filter(pl.col("plot").is_not_null()).select("imdb_id", "plot").iter_rows())
    write_features(out, index, ids, arrays, encoder.identity, {"text": [plots[i] for i in ids]})
    print(f"embed-plot: {rep['films_with_plot']} of {rep['films']} films have a plot, {rep['unique_plots']} unique "
          f"({rep['computed']} computed)")
    counts = {k: rep[k] for k in ("films", "films_with_plot", "unique_plots")}
    write_json(report, counts | {"identity": encoder.identity})


if __name__ == "__main__":
    typer.run(main)
