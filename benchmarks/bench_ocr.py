"""Benchmark: OCR engines side by side on the same real posters, speed and quality in one run.

For each engine / setting variant, on the same N posters that have a title word
(deterministic sample: posters ordered by sha256 of their id), with a fresh,
empty cache and the stage's own worker processes:

* posters/s (wall clock of :func:`run_ocr`, worker start-up included);
* film-title recall (:mod:`pipeline.features.ocr.quality`): share of posters where at least
  one / every title word (4+ letters) was found, as a word of the text and as a
  substring; on the text as read and on the text that reaches the encoder
  (``ocr.split_words``);
* share of posters with no text, characters per poster.

    python benchmarks/bench_ocr.py --posters ../shared/posters --n 300 --out benchmarks/ocr.json

``--whole-set NAME=features/ocr_report.json ...`` adds the title recall of whole runs (the ``ocr`` stage's
report over every poster, one run per setting) beside the sample's rows.

``--variants`` picks rows by name (default: all). Numbers depend on the machine
and on what else runs; the report records the CPU count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: name -> ocr params (the engine's defaults unless named)
VARIANTS: dict[str, dict] = {
    "easyocr": {"engine": "easyocr"},
    "rapidocr, onnxruntime": {"engine": "rapidocr", "rapidocr": {"runtime": "onnxruntime"}},
    "rapidocr, openvino bf16": {"engine": "rapidocr", "rapidocr": {"runtime": "openvino", "precision": "bf16"}},
    "rapidocr, openvino f32": {"engine": "rapidocr", "rapidocr": {"runtime": "openvino", "precision": "f32"}},
    "rapidocr, detector side 480": {"engine": "rapidocr", "rapidocr": {"det_limit_side_len": 480}},
    # the detector sized to the poster: a smaller minimum side, or the poster's own size (a 300 x 444 poster is
    # read as it is: the longer side capped at 960)
    "rapidocr, detector side 736": {"engine": "rapidocr", "rapidocr": {"det_limit_side_len": 736}},
    "rapidocr, detector side 544": {"engine": "rapidocr", "rapidocr": {"det_limit_side_len": 544}},
    "rapidocr, detector side 448": {"engine": "rapidocr", "rapidocr": {"det_limit_side_len": 448}},
    "rapidocr, native size (960, max)": {"engine": "rapidocr",
                                         "rapidocr": {"det_limit_side_len": 960, "det_limit_type": "max"}},
    "rapidocr, angle classifier on": {"engine": "rapidocr", "rapidocr": {"use_cls": True}},
}


def sample(posters_dir: str, n: int):
    """N posters with a title word, in a fixed pseudo-random order (sha256 of the film id)."""
    import polars as pl

    from pipeline.core.params import PAPER_GENRES
    from pipeline.data.ingest import ingest_folder
    from pipeline.features.ocr import title_words

    table, _ = ingest_folder(posters_dir, PAPER_GENRES)
    table = table.filter(pl.Series([bool(title_words(t)) for t in table["title"]], dtype=pl.Boolean))
    table = table.unique("sha256", keep="first", maintain_order=True)
    order = pl.Series("_o", [hashlib.sha256(i.encode()).hexdigest() for i in table["imdb_id"]], dtype=pl.String)
    return table.with_columns(order).sort("_o", maintain_order=True).head(n).drop("_o")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv + images)")
    ap.add_argument("--n", type=int, default=300, help="posters (each with a title word)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), help=f"rows to run, of {list(VARIANTS)}")
    ap.add_argument("--workers", type=int, nargs="*", default=[None],
                    help="ocr.workers, one row per count (default: one per core, the stage's default); 1 = one "
                         "process with the engine's own threads")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    ap.add_argument("--whole-set", nargs="*", default=[], metavar="NAME=OCR_REPORT",
                    help="the ocr stage's reports (features/ocr_report.json) of whole runs, one per setting: their "
                         "title recall over every poster goes into the report beside the sample's rows")
    ap.add_argument("--append", action="store_true",
                    help="add these rows to the --out report (the same posters) instead of replacing it")
    args = ap.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")

    from pipeline.core.params import OcrParams

    posters = sample(args.posters, args.n)
    rows = []
    for name in args.variants:
        for workers in args.workers:
            rows.append(run_variant(name, OcrParams(**VARIANTS[name], workers=workers), posters))
    out = {"cpus": os.cpu_count(), "posters": len(posters), "rows": rows}
    if args.whole_set:
        out["whole_set"] = [whole_set_row(spec) for spec in args.whole_set]
    if args.append and args.out and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        if earlier["posters"] != len(posters):
            ap.error(f"--append: {args.out} has {earlier['posters']} posters, this run {len(posters)}")
        out["rows"] = earlier["rows"] + rows
    print(markdown(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


def whole_set_row(spec: str) -> dict:
    """``NAME=PATH``: a whole run's OCR quality, from its ``ocr`` stage report."""
    name, _, path = spec.partition("=")
    if not path:
        sys.exit(f"error: --whole-set {spec!r}: expected NAME=features/ocr_report.json")
    quality = json.loads(Path(path).read_text())["quality"]
    return {"variant": name, **quality}


def run_variant(name: str, params, posters) -> dict:
    """One row: the variant on ``posters`` with a fresh cache, timed, and its title recall."""
    from pipeline.features.cache import RecordCache
    from pipeline.features.ocr import ocr_identity, read_quality, run_ocr, splits_words

    identity = ocr_identity(params)
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        cache = RecordCache("ocr", identity, root=tmp)
        t0 = time.perf_counter()
        table, report = run_ocr(posters, params, cache)
        seconds = time.perf_counter() - t0
    row = {
        "variant": name, "posters": len(posters), "failed": len(report["failed"]), "workers": report["workers"],
        "threads_per_worker": "engine default (all cores)" if report["workers"] == 1 else 1,
        "precision": identity.get("precision", "f32" if params.engine == "rapidocr" else None),
        "seconds": round(seconds, 1), "posters_per_second": round(len(posters) / seconds, 3),
        "as_read": read_quality(posters, table),
        "to_encoder": read_quality(posters, table, splits_words(params)),
        "split_words": splits_words(params),
    }
    r, e = row["as_read"]["title_recall"], row["to_encoder"]["title_recall"]
    print(f"{name} ({row['workers']} processes): {row['posters_per_second']:.2f} posters/s; title word found (word) "
          f"any {r['word_any']:.1%} all {r['word_all']:.1%}, to encoder any {e['word_any']:.1%} "
          f"all {e['word_all']:.1%}; no text {row['as_read']['no_text']:.1%}, "
          f"{row['as_read']['characters_per_poster']} chars", flush=True)
    return row


def markdown(report: dict) -> str:
    lines = ["| engine, settings | processes | posters/s | title word: any / all (as read) | any / all (to encoder) "
             "| substring any / all | no text | chars/poster |", "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        a, e = r["as_read"]["title_recall"], r["to_encoder"]["title_recall"]
        lines.append(f"| {r['variant']} | {r['workers']} | {r['posters_per_second']:.2f} "
                     f"| {a['word_any']:.1%} / {a['word_all']:.1%} "
                     f"| {e['word_any']:.1%} / {e['word_all']:.1%} | {a['substring_any']:.1%} / "
                     f"{a['substring_all']:.1%} | {r['as_read']['no_text']:.1%} | "
                     f"{r['as_read']['characters_per_poster']} |")
    if report.get("whole_set"):
        lines += ["", "| settings, every poster of a whole run | posters with a title word | title word: any / all "
                  "(as read) | substring any / all | no text | chars/poster |", "|---|---|---|---|---|---|"]
        for r in report["whole_set"]:
            t = r["title_recall"]
            lines.append(f"| {r['variant']} | {t['posters_with_title_words']} | {t['word_any']:.2%} / "
                         f"{t['word_all']:.2%} | {t['substring_any']:.2%} / {t['substring_all']:.2%} | "
                         f"{r['no_text']:.2%} | {r['characters_per_poster']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
