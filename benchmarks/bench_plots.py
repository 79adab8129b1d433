"""Benchmark: the films stages: joining a films CSV, and plots/second of embed-plot beside its alternatives.

1. the films stage (``films_table``): the films CSV joined to the posters' films, seconds;
2. embed-plot, cold (empty cache), in this process: the text encoder over N plots with
   ``encoder.plot_max_tokens`` 256 (the default: all-MiniLM-L6-v2's whole context), 128 and 77 (the OCR
   text's limit), each in its own cache; the share of plots each limit truncates;
3. warm: the same N plots again (all from the cache), and incremental: N + K plots, K of them new.

The poster path (ocr, embed-image, embed-text) does not read the films table, so it is not re-measured
here: ``bench_pipeline.py`` has it. Writes the report as JSON (``--out``); ``markdown`` renders the
README's table from it.

    .venv/bin/python benchmarks/bench_plots.py --n 512 --k 32 --out benchmarks/plots.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: plot_max_tokens alternatives, the default first
LIMITS = [256, 128, 77]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv): the films to join")
    ap.add_argument("--films", default="../shared/films/films.csv", help="films CSV (the shared format)")
    ap.add_argument("--n", type=int, default=512, help="plots embedded cold")
    ap.add_argument("--k", type=int, default=32, help="plots added for the incremental run")
    ap.add_argument("--encoder", default="offline", help="encoder.name (offline needs no download)")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()

    os.environ["POSTER_GENRES_CACHE"] = tempfile.mkdtemp(prefix="bench-plots-cache-")
    import polars as pl
    import torch

    from pipeline.core.io import read_csv
    from pipeline.core.params import EncoderParams
    from pipeline.data.films import films_table
    from pipeline.features.cache import ArrayCache
    from pipeline.features.encoders import create_text_encoder
    from pipeline.features.store import embed_plots, plot_encoder_params

    posters = read_csv(Path(args.posters) / "labels.csv").select("imdb_id")
    t0 = time.perf_counter()
    table, films_report = films_table(posters, args.films)
    join_seconds = time.perf_counter() - t0
    with_plot = table.filter(pl.col("plot").is_not_null())
    report: dict = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "encoder": args.encoder,
                    "n": args.n, "k": args.k,
                    "films_stage": {"films": films_report["films"], "rows_read": films_report["rows_read"],
                                    "films_with_plot": films_report["films_with_plot"],
                                    "seconds": round(join_seconds, 3)},
                    "stages": []}
    print(f"films: {films_report['films']} films, {films_report['films_with_plot']} with a plot, "
          f"joined in {join_seconds:.2f} s", flush=True)
    sample = with_plot.head(args.n)
    bigger = with_plot.head(args.n + args.k)

    def timed(label, films, encoder, params, cache):
        t0 = time.perf_counter()
        _, _, rep = embed_plots(films, encoder, params.batch_size, cache=cache)
        s = time.perf_counter() - t0
        row = {"step": label, "plots": len(films), "computed": rep["computed"], "seconds": round(s, 3),
               "plots_per_second": round(len(films) / s, 2)}
        print(f"{label:44s} {len(films):5d} plots ({rep['computed']} computed) {s:8.2f} s "
              f"{len(films) / s:8.2f} plots/s", flush=True)
        return row

    for limit in LIMITS:
        params = plot_encoder_params(EncoderParams(name=args.encoder, plot_max_tokens=limit))
        encoder = create_text_encoder(params)
        cache = ArrayCache("plot", encoder.identity)
        tokenizer = getattr(encoder, "tokenizer", None)
        truncated = None
        if callable(getattr(tokenizer, "encode", None)):  # a Hugging Face tokenizer (offline): count wordpieces
            lengths = [len(tokenizer.encode(t)) for t in sample["plot"].to_list()]
            truncated = round(sum(n > encoder.max_tokens for n in lengths) / len(lengths), 4)
        row = timed(f"cold, plot_max_tokens {limit}", sample, encoder, params, cache)
        report["stages"].append({**row, "plot_max_tokens": limit, "truncated_share": truncated})
        if limit == LIMITS[0]:
            report["warm"] = timed("warm, all cached", sample, encoder, params, cache)
            report["incremental"] = timed(f"incremental, {args.k} new plots", bigger, encoder, params, cache)
    print(markdown(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def markdown(report: dict) -> str:
    """The README's table: the films stage, embed-plot cold per limit, warm and incremental."""
    f = report["films_stage"]
    lines = ["| step | items | seconds | items/s | plots truncated |", "|---|---|---|---|---|",
             f"| films stage: join {f['rows_read']} CSV rows to {f['films']} films | {f['films']} | {f['seconds']:.2f} "
             f"| {f['films'] / f['seconds']:.0f} | |"]
    for r in report["stages"]:
        share = "" if r["truncated_share"] is None else f"{100 * r['truncated_share']:.1f}%"
        lines.append(f"| embed-plot, {r['step']} | {r['plots']} | {r['seconds']:.2f} | {r['plots_per_second']:.1f} "
                     f"| {share} |")
    for key in ("warm", "incremental"):
        r = report[key]
        lines.append(f"| embed-plot, {r['step']} ({r['computed']} computed) | {r['plots']} | {r['seconds']:.2f} "
                     f"| {r['plots_per_second']:.1f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
