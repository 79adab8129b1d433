"""Stage ``embed-image``: frozen image encoder over every poster -> ``features/image.h5`` + index."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import read_parquet, write_json
from pipeline.core.params import load_params
from pipeline.features.encoders import create_image_encoder
from pipeline.features.store import embed_images, write_features
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    out: Path = typer.Option(Path("features/image.h5"), help="Pooled + token features (float16)."),
    index: Path = typer.Option(Path("features/image.parquet"), help="Poster key -> row."),
    report: Path = typer.Option(Path("features/image_report.json"), help="Failed posters."),
) -> None:
    """Embed poster images with encoder.name (cached by image sha256 + encoder identity)."""
    p = load_params(params, ["encoder", "ray"])  # ray: where it runs, not what it computes (no DVC param)
    enc = p["encoder"]
    encoder = create_image_encoder(enc)
    keys, arrays, rep = embed_images(read_parquet(posters), encoder, enc.batch_size, ray=p["ray"])
    write_features(out, index, keys, arrays, encoder.identity)
    print(f"embed-image: {rep['posters']} posters, {rep['computed']} computed, "
          f"{rep['from_cache']} from cache, {len(rep['failed'])} failed")
    write_json(report, {"posters": rep["posters"], "failed": rep["failed"], "identity": encoder.identity})


if __name__ == "__main__":
    typer.run(main)
