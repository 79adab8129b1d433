"""Stage ``embed-text``: frozen text encoder over each poster's OCR text -> ``features/text.h5`` + index."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import read_parquet, write_json
from pipeline.core.params import load_params
from pipeline.features.encoders import create_text_encoder
from pipeline.features.ocr import ocr_texts
from pipeline.features.store import embed_texts, write_features
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    ocr: Path = typer.Option(Path("features/ocr.parquet"), help="OCR table from the ocr stage."),
    out: Path = typer.Option(Path("features/text.h5"), help="Pooled + token features (float16) and masks."),
    index: Path = typer.Option(Path("features/text.parquet"), help="Poster key -> row, with the embedded text."),
    report: Path = typer.Option(Path("features/text_report.json"), help="Counts of empty and unique texts."),
) -> None:
    """Embed each poster's OCR text with encoder.name (cached by text sha256 + encoder identity)."""
    p = load_params(params, ["encoder", "ocr", "ray"])  # ray: where it runs (no DVC param)
    enc = p["encoder"]
    encoder = create_text_encoder(enc)
    texts = ocr_texts(read_parquet(ocr), p["ocr"])
    keys, arrays, rep = embed_texts(texts, encoder, enc.batch_size, ray=p["ray"])
    write_features(out, index, keys, arrays, encoder.identity, {"text": texts["text"].to_list()})
    print(f"embed-text: {rep['posters']} posters, {rep['unique_texts']} unique texts "
          f"({rep['computed']} computed), {rep['empty_texts']} without text")
    write_json(report, {k: rep[k] for k in ("posters", "unique_texts", "empty_texts")} | {"identity": encoder.identity})


if __name__ == "__main__":
    typer.run(main)
