"""Benchmark: posters/second of each stage, and the cost of an incremental re-run.

Runs the library functions the stages call on a sample of real posters with a
fresh, empty feature cache:

1. cold run on N posters: ingest, OCR, embed-image, embed-text (posters/s each),
   then training (seconds per epoch) and evaluation;
2. warm re-run on the same N posters (everything from the cache);
3. incremental run on N + K posters: only the K new ones are OCR'd and embedded.

    python benchmarks/bench_pipeline.py --posters ../shared/posters --n 40 --k 8 --out bench.json

Numbers depend on the machine and on what else runs; the report records the
CPU count and torch threads next to them.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv + images)")
    ap.add_argument("--n", type=int, default=40, help="posters in the cold run")
    ap.add_argument("--k", type=int, default=8, help="posters added for the incremental run")
    ap.add_argument("--encoder", default="offline", help="encoder.name (offline needs no download)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()

    os.environ["POSTER_GENRES_CACHE"] = tempfile.mkdtemp(prefix="bench-cache-")
    import torch

    from pipeline.core.params import (
        PAPER_GENRES,
        EncoderParams,
        FusionParams,
        LossParams,
        OcrParams,
        TrainParams,
    )
    from pipeline.data.ingest import ingest_folder
    from pipeline.features.encoders import create_image_encoder, create_text_encoder
    from pipeline.features.ocr import ocr_texts, run_ocr
    from pipeline.features.store import embed_images, embed_texts

    ocr_p = OcrParams()
    enc_p = EncoderParams(name=args.encoder)
    report: dict = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.is_available(), "n": args.n, "k": args.k, "encoder": args.encoder}

    def timed(name, fn, count):
        t0 = time.perf_counter()
        out = fn()
        s = time.perf_counter() - t0
        report[name] = {"seconds": round(s, 3), "posters": count,
                        "posters_per_second": round(count / s, 2) if s else None}
        rate = count / s if s else float("inf")
        print(f"{name:28s} {count:5d} posters {s:8.2f} s  {rate:8.2f} posters/s", flush=True)
        return out

    t0 = time.perf_counter()
    image_enc = create_image_encoder(enc_p)
    text_enc = create_text_encoder(enc_p)
    report["encoder_load_seconds"] = round(time.perf_counter() - t0, 2)

    def pipeline_once(table, prefix):
        ocr_table, _ = timed(f"{prefix}ocr", lambda: run_ocr(table, ocr_p), len(table))
        texts = ocr_texts(ocr_table, ocr_p)
        timed(f"{prefix}embed_image", lambda: embed_images(table, image_enc, enc_p.batch_size), len(table))
        timed(f"{prefix}embed_text", lambda: embed_texts(texts, text_enc, enc_p.batch_size), len(table))

    table, _ = timed("ingest", lambda: ingest_folder(args.posters, PAPER_GENRES, args.n), args.n)
    pipeline_once(table, "cold_")
    pipeline_once(table, "warm_")
    bigger, _ = ingest_folder(args.posters, PAPER_GENRES, args.n + args.k)
    t0 = time.perf_counter()
    pipeline_once(bigger, f"incremental_plus{args.k}_")
    report["incremental_total_seconds"] = round(time.perf_counter() - t0, 2)

    # training cost per epoch on these features
    from pipeline.data.split import split_films
    from pipeline.features.store import FeatureSet
    from pipeline.models.datasets import build_datasets, feature_dims
    from pipeline.models.train import train_head

    ocr_table, _ = run_ocr(bigger, ocr_p)
    texts = ocr_texts(ocr_table, ocr_p)
    ik, ia, _ = embed_images(bigger, image_enc, enc_p.batch_size)
    tk, ta, _ = embed_texts(texts, text_enc, enc_p.batch_size)
    image = FeatureSet(ik, ia, image_enc.identity, None)
    text = FeatureSet(tk, ta, text_enc.identity, None)
    split = split_films(bigger, PAPER_GENRES)
    data, _ = build_datasets(bigger, split, image, text, PAPER_GENRES)
    result = train_head(data, feature_dims(image, text), PAPER_GENRES, FusionParams(),
                        TrainParams(epochs=args.epochs, patience=args.epochs), LossParams())
    report["train_seconds_per_epoch"] = round(result.summary.seconds / len(result.curve), 3)
    report["train_posters"] = len(data["train"])
    print(f"train: {report['train_seconds_per_epoch']} s/epoch on {len(data['train'])} posters")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
