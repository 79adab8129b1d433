"""Benchmark: the per-poster stages in-process and on a local Ray instance.

On the same N real posters (the first N files of the poster folder, by name), each
with a fresh, empty cache, for OCR (``ocr.engine``, default rapidocr) and image
embedding (``encoder.name``, default offline):

* in this process (1 process), and for OCR the stage's pool of worker processes
  (one per core);
* on a local Ray instance with 1 and 2 actors (CPUs shared out as the stage does).

It reports posters/s (wall clock of the stage's function, actor start-up
included), Ray's start-up (``ray.init`` of a local instance) and the cost of one
Ray Data dataset with a job that does nothing (actor pool start and teardown),
and, for the catalogue estimate of the README, the CPU seconds per poster of each
stage in one process and of decoding + preprocessing alone (what stays on the CPU
when the encoder runs on a GPU).

    python benchmarks/bench_executors.py --posters ../shared/posters --n 64 --out benchmarks/executors.json

Numbers depend on the machine and on what else runs; the report records the CPU count.
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


def _posters(folder: str, n: int):
    import polars as pl

    from pipeline.core.io import sha256_file

    files = sorted((Path(folder) / "images").glob("*.jpg"))[:n]
    return pl.DataFrame({"sha256": [sha256_file(f) for f in files], "path": [str(f) for f in files]})


class _Nothing:
    """A job that does nothing: what one Ray Data dataset costs on its own."""

    stage, batch_size, splittable, reads_files = "ocr", 8, True, False

    def worker(self, threads):
        return lambda items: [(i.key, None, None) for i in items]

    def store(self, cache, keys, values):
        pass

    def check_batch(self, n):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posters", default="../shared/posters", help="Poster folder (labels.csv + images/).")
    ap.add_argument("--n", type=int, default=64, help="Posters per measurement.")
    ap.add_argument("--engine", default="rapidocr", help="ocr.engine")
    ap.add_argument("--encoder", default="offline", help="encoder.name")
    ap.add_argument("--out", default="benchmarks/executors.json")
    args = ap.parse_args()

    import torch

    from pipeline.core.params import EncoderParams, OcrParams, RayParams, RayStageParams
    from pipeline.data.images import load_rgb
    from pipeline.features.cache import ArrayCache, RecordCache
    from pipeline.features.encoders import create_image_encoder
    from pipeline.features.encoders.base import to_tensor
    from pipeline.features.executors import Item, ray_data
    from pipeline.features.executors.local import cores
    from pipeline.features.ocr.run import RECORD_SCHEMA, ocr_workers, run_ocr
    from pipeline.features.store import embed_images

    posters = _posters(args.posters, args.n)
    n = posters.height
    ocr = OcrParams(engine=args.engine)
    enc = EncoderParams(name=args.encoder)
    encoder = create_image_encoder(enc)
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-executors-"))

    def record(stage: str, executor: str, seconds: float) -> None:
        rows.append({"stage": stage, "executor": executor, "posters": n, "seconds": round(seconds, 2),
                     "posters_per_second": round(n / seconds, 2)})
        print(f"{stage:12s} {executor:22s} {n / seconds:7.2f} posters/s ({seconds:.1f} s)", flush=True)

    def run(stage: str, executor: str, ray: RayParams | None, workers: int | None = None) -> None:
        root = tmp / f"{stage}-{len(rows)}"
        t0 = time.perf_counter()
        if stage == "ocr":
            params = ocr.model_copy(update={"workers": workers or 1})
            _, rep = run_ocr(posters, params, RecordCache("ocr", {"b": 1}, root=root, schema=RECORD_SCHEMA), ray=ray)
        else:
            _, _, rep = embed_images(posters, encoder, enc.batch_size, ArrayCache("image", encoder.identity, root=root),
                                     ray=ray)
        assert not rep["failed"], rep["failed"]
        record(stage, executor, time.perf_counter() - t0)

    # in this machine
    run("ocr", "1 process", None, 1)
    run("ocr", f"{ocr_workers(ocr)} processes", None, ocr_workers(ocr))
    run("embed_image", "1 process", None)

    # decoding + preprocessing alone (stays on the CPU when the encoder runs on a GPU)
    size = getattr(encoder, "size", 224)
    t0 = time.perf_counter()
    for key, path in zip(posters["sha256"].to_list(), posters["path"].to_list()):
        to_tensor(load_rgb(path, key), size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), enc.image_fit)
    decode_s = (time.perf_counter() - t0) / n

    # on a local Ray instance
    t0 = time.perf_counter()
    ray_data.connect("local")
    ray_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    list(ray_data.run_on_ray(_Nothing(), [Item(str(i), "", "") for i in range(n)], RayParams(address="local")))
    empty_dataset = time.perf_counter() - t0
    for actors in (1, 2):
        ray = RayParams(address="local", ocr=RayStageParams(actors=actors), embed_image=RayStageParams(actors=actors))
        run("ocr", f"ray, {actors} actor{'s' * (actors > 1)}", ray)
        run("embed_image", f"ray, {actors} actor{'s' * (actors > 1)}", ray)

    one = {r["stage"]: r["seconds"] / n for r in rows if r["executor"] == "1 process"}
    report = {
        "cpus": cores(), "torch_threads": torch.get_num_threads(), "ocr_engine": args.engine, "encoder": args.encoder,
        "ray_start_seconds": round(ray_start, 2), "ray_empty_dataset_seconds": round(empty_dataset, 2),
        "seconds_per_poster_one_process": {k: round(v, 4) for k, v in one.items()},
        "decode_preprocess_seconds_per_poster": round(decode_s, 4),
        "rows": rows,
    }
    print(f"ray start-up {ray_start:.1f} s; one empty dataset {empty_dataset:.1f} s; "
          f"decode+preprocess {1000 * decode_s:.1f} ms/poster")
    print(markdown(report))
    print(markdown_catalogue(report))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    os._exit(0)  # Ray's shutdown at exit can take seconds; the report is written


def markdown(report: dict) -> str:
    """The README's table: each stage's posters/s in-process and on Ray."""
    lines = ["| stage | executor | posters/s |", "|---|---|---|"]
    lines += [f"| {r['stage']} | {r['executor']} | {r['posters_per_second']:.2f} |" for r in report["rows"]]
    return "\n".join(lines)


#: posters of the catalogue estimate, Ray's window (ray.window) and the CPU cores of one GPU worker
CATALOGUE, WINDOW, WORKER_CORES = 500_000, 4096, 8


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def markdown_catalogue(report: dict) -> str:
    """The README's catalogue estimate, from this run's per-poster costs in core-seconds: the best
    in-machine rate of each stage on this machine's cores, spread over more cores (no GPU measured)."""
    cores = report["cpus"]
    best = {}
    for r in report["rows"]:
        if not r["executor"].startswith("ray"):
            best[r["stage"]] = max(best.get(r["stage"], 0.0), r["posters_per_second"])
    ocr_cs, image_cs = cores / best["ocr"], cores / best["embed_image"]
    decode = report["decode_preprocess_seconds_per_poster"]
    windows = -(-CATALOGUE // WINDOW)
    workers = (1, 4, 16)
    lines = [f"| {CATALOGUE:,} posters | this machine ({cores} cores) | "
             + " | ".join(f"N = {n} GPU worker{'s' * (n > 1)} x {WORKER_CORES} cores" for n in workers) + " |",
             "|---|---|" + "---|" * len(workers)]

    def row(label: str, core_seconds: float | None, here: bool = True) -> None:
        cells = [_duration(CATALOGUE * core_seconds / cores) if here else "-"]
        cells += [_duration(CATALOGUE * core_seconds / (WORKER_CORES * n)) for n in workers]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row(f"OCR on the CPUs ({ocr_cs:.3f} core-s per poster)", ocr_cs)
    row(f"image embedding, offline encoder on the CPUs ({image_cs:.4f} core-s)", image_cs)
    row(f"image embedding on GPUs: the CPU side only, decode + preprocess ({1000 * decode:.1f} ms)", decode,
        here=False)
    pool = report["ray_empty_dataset_seconds"]
    lines.append(f"| Ray: {windows} windows of {WINDOW:,} posters x {pool:.1f} s pool start, per stage | - | "
                 + " | ".join(_duration(windows * pool) for _ in workers) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
