"""Stage ``ocr``: the engine named by ocr.engine over every ingested poster -> ``features/ocr.parquet`` + report."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.io import read_parquet, write_json, write_parquet
from pipeline.core.params import load_params
from pipeline.features.ocr import ocr_table_arrow, read_quality, run_ocr
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    posters: Path = typer.Option(Path("data/posters.parquet"), help="Posters table from ingest."),
    out: Path = typer.Option(Path("features/ocr.parquet"), help="Text lines, boxes, confidences per poster."),
    report: Path = typer.Option(Path("features/ocr_report.json"), help="Computed / cached / failed counts."),
) -> None:
    """OCR the posters (cached by image sha256 + OCR settings; resumable)."""
    p = load_params(params, ["ocr", "ray"])  # ray: where it runs, not what it reads (no DVC param)
    ocr = p["ocr"]
    table_in = read_parquet(posters)
    table, rep = run_ocr(table_in, ocr, ray=p["ray"])
    write_parquet(out, ocr_table_arrow(table))
    # how well the posters were read: no-text share, characters, film-title recall (when titles are known)
    rep["quality"] = read_quality(table_in, table)
    # Timings vary run to run: keep them out of the report DVC tracks.
    print(f"ocr: {rep['posters']} posters, {rep['computed']} computed in {rep['seconds']} s, "
          f"{rep['from_cache']} from cache, {len(rep['failed'])} failed")
    recall = rep["quality"].get("title_recall")
    if recall:
        print(f"ocr: title words found on {100 * recall['word_any']:.1f}% of posters (every title word on "
              f"{100 * recall['word_all']:.1f}%), {rep['quality']['no_text']:.1%} without text")
    varying = ("seconds", "posters_per_second", "computed", "from_cache", "workers", "executor")
    rep = {k: v for k, v in rep.items() if k not in varying}
    write_json(report, rep)


if __name__ == "__main__":
    typer.run(main)
