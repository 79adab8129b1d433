"""Stage ``ocr``: EasyOCR over every ingested poster -> ``features/ocr.parquet`` + report."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.io import read_parquet, write_json, write_parquet
from pipeline.ocr import ocr_table_arrow, run_ocr
from pipeline.params import load_params
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    out: Path = typer.Option(Path("features/ocr.parquet"), help="Text lines, boxes, confidences per poster."),
    report: Path = typer.Option(Path("features/ocr_report.json"), help="Computed / cached / failed counts."),
) -> None:
    """OCR the posters (cached by image sha256 + OCR settings; resumable)."""
    ocr = load_params(params, ["ocr"])["ocr"]
    table, rep = run_ocr(read_parquet(posters), ocr)
    write_parquet(out, ocr_table_arrow(table))
    # Timings vary run to run: keep them out of the report DVC tracks.
    print(f"ocr: {rep['posters']} posters, {rep['computed']} computed in {rep['seconds']} s, "
          f"{rep['from_cache']} from cache, {len(rep['failed'])} failed")
    rep = {k: v for k, v in rep.items() if k not in ("seconds", "posters_per_second", "computed", "from_cache")}
    write_json(report, rep)


if __name__ == "__main__":
    typer.run(main)
