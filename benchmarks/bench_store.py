"""Benchmark: the paper's head trains from a feature store larger than the memory its process may use.

Builds a synthetic feature store with the shapes of the offline encoders (image tokens 49 x 1280 and text
tokens 77 x 384, float16; random values, OCR-like text lengths, 13 genres) for ``--posters`` posters,
written by the pipeline's own ``write_features``. Then, in a child process whose data segment is limited to
``--limit-gb`` (``RLIMIT_DATA``: the heap and every private writable mapping, which is where numpy and torch
keep arrays; set before torch is imported), it loads the store with the pipeline's loader and trains one
epoch of the paper's head (default ``fusion`` and ``train`` params, one epoch, its validation pass
included). The same child is run again reading the token arrays into memory (``load_features(...,
in_memory=True)``, the loader before the store streamed): under the same limit it must fail.

Reported: store size, the limit, epoch seconds and posters per second, the child's peak resident memory
(``VmHWM``) and its growth over the memory after imports (the model, the optimiser and the batches: fixed),
and the bytes per poster the datasets hold in memory (what grows with the catalogue), per 1,000 posters.

    python benchmarks/bench_store.py --out benchmarks/store.json    # 50,000 posters (9 GiB) under 3 GiB
    python benchmarks/bench_store.py --posters 2000 --workdir /tmp/s      # a quick look

The limit is the data segment, which counts address space a process reserves, not only what it touches:
torch and its thread pools reserve about 0.9 GiB at import and training the paper's head takes it to about
2.7 GiB whatever the store's size, so the limit is 3 GiB and the store three times that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_TOKENS, IMAGE_DIM, TEXT_TOKENS, TEXT_DIM = 49, 1280, 77, 384


def status() -> dict[str, int]:
    """This process's memory from /proc (kB): resident now and at peak, data segment."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM", "VmData")}


def build_store(folder: Path, n: int, seed: int = 0) -> dict:
    """features/image.h5, features/text.h5 (+ indexes), data/posters.parquet and data/split.parquet for ``n``
    synthetic posters (80/10/10 split by film)."""
    import numpy as np
    import polars as pl

    from pipeline.core.io import write_parquet
    from pipeline.core.params import PAPER_GENRES
    from pipeline.features.store import write_features

    rng = np.random.default_rng(seed)
    keys = [f"{i:064x}" for i in range(n)]
    image = np.empty((n, IMAGE_TOKENS, IMAGE_DIM), dtype=np.float16)
    text = np.zeros((n, TEXT_TOKENS, TEXT_DIM), dtype=np.float16)
    # OCR-like: a quarter of posters read nothing, the rest a few to a few dozen tokens
    lengths = np.where(rng.random(n) < 0.25, 0, np.minimum(rng.geometric(1 / 15, n), TEXT_TOKENS))
    mask = np.arange(TEXT_TOKENS)[None, :] < lengths[:, None]
    for start in range(0, n, 4096):
        stop = min(n, start + 4096)
        image[start:stop] = rng.standard_normal((stop - start, IMAGE_TOKENS, IMAGE_DIM), dtype=np.float32)
        text[start:stop] = rng.standard_normal((stop - start, TEXT_TOKENS, TEXT_DIM), dtype=np.float32) \
            * mask[start:stop, :, None]
    features = folder / "features"
    write_features(features / "image.h5", features / "image.parquet", keys,
                   {"tokens": image, "pooled": image.mean(1)}, {"synthetic": "image", "seed": seed})
    del image
    write_features(features / "text.h5", features / "text.parquet", keys,
                   {"tokens": text, "pooled": text.mean(1), "mask": mask, "has_text": lengths > 0},
                   {"synthetic": "text", "seed": seed})
    frequency = np.linspace(0.45, 0.04, len(PAPER_GENRES))
    labels = ["|".join(g for g, p in zip(PAPER_GENRES, frequency) if rng.random() < p) or "Drama" for _ in keys]
    ids = [f"tt{i:08d}" for i in range(n)]
    parts = np.where(np.arange(n) % 10 < 8, "train", np.where(np.arange(n) % 10 == 8, "val", "test"))
    write_parquet(folder / "data" / "posters.parquet", pl.DataFrame({"imdb_id": ids, "sha256": keys,
                                                                     "labels": labels}))
    write_parquet(folder / "data" / "split.parquet", pl.DataFrame({"imdb_id": ids, "split": parts.tolist()}))
    size = sum(p.stat().st_size for p in features.glob("*.h5"))
    return {"posters": n, "store_bytes": size, "bytes_per_poster": round(size / n)}


def child(folder: Path, limit_gb: float, mode: str, threads: int) -> dict:
    """Load the store and train one epoch under the data-segment limit (the measurement itself)."""
    limit = int(limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    import torch

    from pipeline.core.io import read_parquet
    from pipeline.core.params import PAPER_GENRES, FusionParams, LossParams, TrainParams
    from pipeline.features.store import load_features
    from pipeline.models.datasets import build_datasets, feature_dims
    from pipeline.models.train import train_head

    torch.set_num_threads(threads)
    after_imports = status()
    out: dict = {"mode": mode, "limit_gb": limit_gb, "threads": threads, "after_imports_kb": after_imports}
    t0 = time.perf_counter()
    try:
        feats = folder / "features"
        image, text = (load_features(feats / f"{k}.h5", feats / f"{k}.parquet", in_memory=mode == "memory")
                       for k in ("image", "text"))
        datasets, info = build_datasets(read_parquet(folder / "data" / "posters.parquet"),
                                        read_parquet(folder / "data" / "split.parquet"), image, text,
                                        list(PAPER_GENRES))
        loaded = time.perf_counter()
        # what stays in memory per poster (pooled vectors, masks, labels): the part that grows with the catalogue
        held = sum(t.numel() * t.element_size() for d in datasets.values()
                   for t in (*d.tensors.values(), d.labels) if isinstance(t, torch.Tensor))
        out["held_bytes_per_poster"] = round(held / sum(len(d) for d in datasets.values()), 1)
        result = train_head(datasets, feature_dims(image, text), list(PAPER_GENRES), FusionParams(),
                            TrainParams(epochs=1, patience=1), LossParams())
    except MemoryError as err:  # what the limit does to a loader that reads the whole store
        out |= {"ok": False, "error": f"MemoryError {err}".strip(), "seconds": round(time.perf_counter() - t0, 1)}
    else:
        done = time.perf_counter()
        train_posters = info["train_posters"]
        out |= {"ok": True, "load_seconds": round(loaded - t0, 2), "epoch_seconds": round(done - loaded, 1),
                "train_posters": train_posters, "val_posters": info["val_posters"],
                "posters_per_second": round(train_posters / (done - loaded), 1),
                "val_loss": round(result.curve[-1].val_loss, 6)}
    end = status()
    out["peak_rss_kb"] = end["VmHWM"]
    out["growth_kb"] = end["VmHWM"] - after_imports["VmRSS"]
    return out


def markdown(report: dict) -> str:
    """docs/performance.md's table: each way of reading the store under the same limit."""
    store, gib = report["store"], 2**30
    lines = [f"Store: {store['posters']:,} posters, {store['store_bytes'] / gib:.2f} GiB "
             f"({store['bytes_per_poster'] / 1024:.0f} KiB a poster); data limit {report['limit_bytes'] / gib:.1f} GiB "
             f"(the store is {report['store_over_limit']:.1f} times the limit).", "",
             "| token arrays | one epoch (train posters) | posters/s | peak resident memory | held in memory per "
             "1,000 posters |", "|---|---|---|---|---|"]
    per_1000 = report.get("kb_per_1000_posters", {})
    for run in report["runs"]:
        held = f"{per_1000[run['mode']] / 1024:.1f} MiB" if run["mode"] in per_1000 else ""
        how = "read per batch from the file" if run["mode"] == "stream" else "read into memory"
        if run.get("ok"):
            lines.append(f"| {how} | {run['epoch_seconds']:.1f} s ({run['train_posters']:,}) | "
                         f"{run['posters_per_second']:.1f} | {run['peak_rss_kb'] / 1024**2:.2f} GiB | {held} |")
        else:
            lines.append(f"| {how} | refused: {run['error'].split(' for an array')[0]} | | "
                         f"{run['peak_rss_kb'] / 1024**2:.2f} GiB | {held} |" if "peak_rss_kb" in run else
                         f"| {how} | refused: {run['error']} | | | {held} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", type=int, default=50000, help="synthetic posters in the store")
    ap.add_argument("--limit-gb", type=float, default=3.0, help="the training process's data-segment limit (GiB)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--workdir", default=None, help="where the store is built (default: a temporary folder)")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="stream", choices=["stream", "memory"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child), args.limit_gb, args.mode, args.threads)))
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        store = build_store(folder, args.posters)
        store["build_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"store: {store['posters']} posters, {store['store_bytes'] / 2**30:.2f} GiB "
              f"({store['build_seconds']} s); training under a {args.limit_gb} GiB data limit", flush=True)
        runs = []
        for mode in ("stream", "memory"):
            proc = subprocess.run([sys.executable, __file__, "--child", str(folder), "--mode", mode,
                                   "--limit-gb", str(args.limit_gb), "--threads", str(args.threads)],
                                  capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode != 0 and not proc.stdout.strip():
                runs.append({"mode": mode, "ok": False, "error": proc.stderr.strip().splitlines()[-1]})
            else:
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    stream = runs[0]
    report = {
        "benchmark": "bench_store.py", "python": platform.python_version(), "cpus": os.cpu_count(),
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip(),
        "store": store, "limit_bytes": int(args.limit_gb * 2**30),
        "store_over_limit": round(store["store_bytes"] / (args.limit_gb * 2**30), 2), "runs": runs,
    }
    if stream.get("ok"):
        # memory per 1,000 posters: streamed, what the datasets hold; read into memory, the store's bytes besides
        report["kb_per_1000_posters"] = {"stream": round(stream["held_bytes_per_poster"] * 1000 / 1024, 1),
                                         "memory": round((stream["held_bytes_per_poster"] + store["bytes_per_poster"])
                                                         * 1000 / 1024, 1)}
    print(json.dumps(report, indent=2))
    print(markdown(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
