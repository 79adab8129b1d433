"""Benchmark: posters/second of each stage beside its alternatives, and the cost of an incremental re-run.

Runs the library functions the stages call on a sample of real posters with a
fresh, empty feature cache, in one run:

1. cold run on N posters, every per-poster stage beside its alternatives:
   OCR with each engine / runtime of ``bench_ocr.py`` (the stage's worker processes);
   image embedding with PyTorch and the same network exported to ONNX Runtime (the
   stage's default) and to OpenVINO (f32), on the same decoded and preprocessed batches, with
   how far their features are from PyTorch's and whether each gives the same bytes run
   after run and with 1 or 2 threads; text embedding (PyTorch, the stage);
2. one training epoch of the default head (seconds and posters/s);
3. warm re-run on the same N posters (everything from the cache);
4. incremental run on N + K posters: only the K new ones are OCR'd and embedded.

    python benchmarks/bench_pipeline.py --posters ../shared/posters --n 64 --k 8 --out benchmarks/pipeline.json

With ``--epochs-of RUN`` (a workspace after ``dvc repro``: its ``features/``, ``data/posters.parquet`` and
``data/split.parquet``) it measures instead the paper's head's epoch on those features, one row per
alternative (``EPOCH_ALTERNATIVES``: the default, one torch thread, the token arrays read into memory,
bfloat16 autocast, torch.compile), each trained ``--epochs`` epochs from the same seed: seconds per epoch
(the first apart: compile pays there), the validation loss and macro F1 at 0.5 after the last epoch, and
whether the checkpoint is the default's bytes.

    python benchmarks/bench_pipeline.py --epochs-of /path/to/run --epochs 2 --out benchmarks/epoch.json

With ``--profile-of RUN`` it profiles one epoch (and its validation pass) of the paper's head on those features
with ``torch.profiler``: the operators that take the most CPU time of their own, and their share.

    python benchmarks/bench_pipeline.py --profile-of /path/to/run --out benchmarks/epoch_profile.json

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: the OCR alternatives (rows of bench_ocr.py), the stage's default first
OCR_ALTERNATIVES = ["rapidocr, openvino f32", "rapidocr, openvino bf16", "rapidocr, onnxruntime", "easyocr"]


def image_runtimes(encoder, posters, batch_size: int, workdir: Path) -> list[dict]:
    """The offline image encoder's network on PyTorch, ONNX Runtime (the stage's default) and OpenVINO (f32).

    Every runtime gets the same decoded, preprocessed batches; a row's posters/s counts decoding
    and preprocessing (measured once, the same for all) plus its forward passes. Each row says how
    far its tokens are from PyTorch's and whether it gives the same bytes twice and with 1 or 2
    threads (the cache must not depend on where a poster was embedded)."""
    import numpy as np
    import torch

    from pipeline.data.images import load_rgb
    from pipeline.features.encoders.base import to_tensor
    from pipeline.features.encoders.offline import LITE_MEAN, LITE_STD, _FeatureMap, feature_map_onnx

    t0 = time.perf_counter()
    images = [load_rgb(path, key) for key, path in zip(posters["sha256"], posters["path"])]
    tensors = [to_tensor(im, encoder.size, LITE_MEAN, LITE_STD, encoder.fit) for im in images]
    batches = [torch.stack(tensors[i:i + batch_size]) for i in range(0, len(tensors), batch_size)]
    prep = time.perf_counter() - t0
    threads = torch.get_num_threads()

    net = _FeatureMap(encoder.model).eval()

    def torch_forward(n_threads: int):
        torch.set_num_threads(n_threads)
        with torch.no_grad():
            out = np.concatenate([net(b).numpy() for b in batches])
        torch.set_num_threads(threads)
        return out

    onnx_path = workdir / "efficientnet.onnx"
    onnx_path.write_bytes(feature_map_onnx(encoder.model, encoder.size))

    def ort_forward(n_threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = n_threads
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        return np.concatenate([sess.run(None, {"x": b.numpy()})[0] for b in batches])

    def ov_forward(n_threads: int):
        from openvino.runtime import Core

        core = Core()
        model = core.compile_model(core.read_model(str(onnx_path)), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": str(n_threads), "ENABLE_CPU_PINNING": False})
        request = model.create_infer_request()
        return np.concatenate([request.infer([b.numpy()])[0].copy() for b in batches])

    rows, reference = [], None
    for name, forward in [("pytorch", torch_forward), ("onnxruntime, exported (the stage's default)", ort_forward),
                          ("openvino f32, exported", ov_forward)]:
        forward(threads)  # warm-up: first-call allocations and kernel choices
        t0 = time.perf_counter()
        out = forward(threads)
        seconds = time.perf_counter() - t0
        again, one_thread = forward(threads), forward(1)
        reference = out if reference is None else reference
        rows.append({"alternative": name, "posters": len(images), "seconds": round(prep + seconds, 3),
                     "forward_seconds": round(seconds, 3), "preprocess_seconds": round(prep, 3),
                     "posters_per_second": round(len(images) / (prep + seconds), 2),
                     "max_abs_diff_vs_pytorch": float(np.abs(out - reference).max()),
                     "same_bytes_twice": out.tobytes() == again.tobytes(),
                     "same_bytes_1_and_2_threads": out.tobytes() == one_thread.tobytes()})
        r = rows[-1]
        print(f"embed_image {name:24s} {r['posters_per_second']:8.2f} posters/s (forward {seconds:.2f} s, "
              f"preprocess {prep:.2f} s); max |diff| vs pytorch {r['max_abs_diff_vs_pytorch']:.2e}; "
              f"same bytes twice {r['same_bytes_twice']}, 1 vs {threads} threads {r['same_bytes_1_and_2_threads']}",
              flush=True)
    return rows


#: name -> (TrainParams overrides, torch threads, token arrays read into memory)
EPOCH_ALTERNATIVES = {
    "default (float32, 2 threads, tokens read per batch)": ({}, 2, False),
    "1 torch thread": ({}, 1, False),
    "token arrays in memory": ({}, 2, True),
    "train.precision bfloat16": ({"precision": "bfloat16"}, 2, False),
    "train.compile": ({"compile": True}, 2, False),
}


def epoch_alternatives(run: Path, epochs: int) -> list[dict]:
    """The paper's head trained ``epochs`` epochs on a run's features, once per :data:`EPOCH_ALTERNATIVES`."""
    import numpy as np
    import torch

    from pipeline.core.io import read_parquet
    from pipeline.core.params import PAPER_GENRES, FusionParams, LossParams, TrainParams
    from pipeline.features.store import load_features
    from pipeline.models.checkpoint import head_from_checkpoint, save_checkpoint
    from pipeline.models.datasets import build_datasets, feature_dims, predict_scores
    from pipeline.models.train import train_head
    from pipeline.scoring.thresholds import measure_predictions

    posters, split = read_parquet(run / "data" / "posters.parquet"), read_parquet(run / "data" / "split.parquet")
    rows, reference = [], None
    for name, (overrides, threads, in_memory) in EPOCH_ALTERNATIVES.items():
        torch.set_num_threads(threads)
        image, text = (load_features(run / "features" / f"{k}.h5", run / "features" / f"{k}.parquet",
                                     in_memory=in_memory) for k in ("image", "text"))
        data, _ = build_datasets(posters, split, image, text, list(PAPER_GENRES))
        times: list[float] = []
        t0 = time.perf_counter()
        result = train_head(data, feature_dims(image, text), list(PAPER_GENRES), FusionParams(),
                            TrainParams(epochs=epochs, patience=epochs, **overrides), LossParams(),
                            on_epoch=lambda record, model, scores, times=times: times.append(time.perf_counter()))
        epoch_seconds = [b - a for a, b in zip([t0, *times], times)]
        val = data["val"]
        scores = predict_scores(head_from_checkpoint(result.checkpoint, "cpu"), val, torch.device("cpu"))
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(result.checkpoint, Path(tmp) / "head.pt")
            written = (Path(tmp) / "head.pt").read_bytes()
        reference = reference or written
        f1_macro = measure_predictions(val.labels.numpy(), scores >= 0.5)["f1_macro"]
        rows.append({"alternative": name, "threads": threads, "epochs": epochs, "posters": len(data["train"]),
                     "first_epoch_seconds": round(epoch_seconds[0], 1),
                     "later_epoch_seconds": round(float(np.mean(epoch_seconds[1:])), 1) if epochs > 1 else None,
                     "val_loss": result.curve[-1].val_loss,
                     "val_f1_macro_at_0.5": round(f1_macro, 4), "same_checkpoint_as_default": written == reference})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def epoch_profile(run: Path, top: int = 12) -> dict:
    """Where one epoch of the paper's head goes (default params, 2 threads): torch.profiler over one epoch and its
    validation pass on a run's features, the ``top`` operators by their own CPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from pipeline.core.io import read_parquet
    from pipeline.core.params import PAPER_GENRES, FusionParams, LossParams, TrainParams
    from pipeline.features.store import load_features
    from pipeline.models.datasets import build_datasets, feature_dims
    from pipeline.models.train import train_head

    torch.set_num_threads(2)
    posters, split = read_parquet(run / "data" / "posters.parquet"), read_parquet(run / "data" / "split.parquet")
    image, text = (load_features(run / "features" / f"{k}.h5", run / "features" / f"{k}.parquet") for k in
                   ("image", "text"))
    data, _ = build_datasets(posters, split, image, text, list(PAPER_GENRES))
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_head(data, feature_dims(image, text), list(PAPER_GENRES), FusionParams(),
                   TrainParams(epochs=1, patience=1), LossParams())
    seconds = time.perf_counter() - t0
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops)
    return {"posters": len(data["train"]), "seconds_profiled": round(seconds, 1),
            "self_cpu_seconds": round(total / 1e6, 1),
            "ops": [{"op": e.key, "calls": e.count, "self_cpu_seconds": round(e.self_cpu_time_total / 1e6, 2),
                     "share": round(e.self_cpu_time_total / total, 4)} for e in ops[:top]]}


def markdown_profile(report: dict) -> str:
    """docs/performance.md's table of an epoch's operators by their own CPU time."""
    lines = ["| operator | calls | own CPU time (s) | share |", "|---|---|---|---|"]
    for r in report["profile"]["ops"]:
        lines.append(f"| `{r['op']}` | {r['calls']} | {r['self_cpu_seconds']:.2f} | {r['share']:.1%} |")
    return "\n".join(lines)


def markdown_epochs(report: dict) -> str:
    """docs/performance.md's table of the epoch alternatives."""
    lines = ["| alternative | first epoch (s) | later epochs (s) | validation loss | validation macro F1 at 0.5 | "
             "same checkpoint as the default |", "|---|---|---|---|---|---|"]
    for r in report["epochs"]:
        later = "" if r["later_epoch_seconds"] is None else f"{r['later_epoch_seconds']:.1f}"
        lines.append(f"| {r['alternative']} | {r['first_epoch_seconds']:.1f} | {later} | {r['val_loss']:.5f} | "
                     f"{100 * r['val_f1_macro_at_0.5']:.2f} | {'yes' if r['same_checkpoint_as_default'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv + images)")
    ap.add_argument("--n", type=int, default=64, help="posters in the cold run")
    ap.add_argument("--k", type=int, default=8, help="posters added for the incremental run")
    ap.add_argument("--encoder", default="offline", help="encoder.name (offline needs no download)")
    ap.add_argument("--ocr", nargs="*", default=OCR_ALTERNATIVES, help="OCR alternatives (rows of bench_ocr.py)")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    ap.add_argument("--epochs-of", default=None, type=Path,
                    help="a workspace after dvc repro: measure the paper's head's epoch alternatives on its features")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per alternative (with --epochs-of)")
    ap.add_argument("--profile-of", default=None, type=Path,
                    help="a workspace after dvc repro: profile one epoch of the paper's head on its features")
    args = ap.parse_args()
    if args.profile_of:
        import torch

        report = {"cpus": os.cpu_count(), "run": str(args.profile_of), "torch": torch.__version__,
                  "profile": epoch_profile(args.profile_of)}
        print(markdown_profile(report))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return
    if args.epochs_of:
        import torch

        report = {"cpus": os.cpu_count(), "run": str(args.epochs_of), "cuda": torch.cuda.is_available(),
                  "epochs": epoch_alternatives(args.epochs_of, args.epochs)}
        print(markdown_epochs(report))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return

    cache_root = tempfile.mkdtemp(prefix="bench-cache-")
    os.environ["POSTER_GENRES_CACHE"] = cache_root
    import torch
    from bench_ocr import VARIANTS

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
    from pipeline.features.ocr.run import ocr_workers
    from pipeline.features.store import embed_images, embed_texts

    ocr_p = OcrParams()
    enc_p = EncoderParams(name=args.encoder)
    report: dict = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.is_available(), "n": args.n, "k": args.k, "encoder": args.encoder,
                    "stages": []}

    def timed(name, fn, count, alternative=None):
        t0 = time.perf_counter()
        out = fn()
        s = time.perf_counter() - t0
        row = {"seconds": round(s, 3), "posters": count, "posters_per_second": round(count / s, 2) if s else None}
        if alternative is None:
            report[name] = row
        else:
            report["stages"].append({"stage": name, "alternative": alternative, **row})
        rate = count / s if s else float("inf")
        print(f"{name:28s} {alternative or '':26s} {count:5d} posters {s:8.2f} s  {rate:8.2f} posters/s", flush=True)
        return out

    t0 = time.perf_counter()
    image_enc = create_image_encoder(enc_p)
    text_enc = create_text_encoder(enc_p)
    report["encoder_load_seconds"] = round(time.perf_counter() - t0, 2)

    table, _ = timed("ingest", lambda: ingest_folder(args.posters, PAPER_GENRES, args.n), args.n)
    # 1. every per-poster stage beside its alternatives, cold
    for name in args.ocr:
        params = OcrParams(**VARIANTS[name])
        timed("ocr", lambda p=params: run_ocr(table, p), len(table), f"{name} ({ocr_workers(params)} processes)")
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for row in image_runtimes(image_enc, table, enc_p.batch_size, Path(tmp)):
            report["stages"].append({"stage": "embed_image", **row})
    timed("embed_image", lambda: embed_images(table, image_enc, enc_p.batch_size), len(table),
          f"the stage's own loop ({enc_p.offline_image_runtime})")
    ocr_table, _ = run_ocr(table, ocr_p)  # the default engine's text, from the cache filled above
    texts = ocr_texts(ocr_table, ocr_p)
    timed("embed_text", lambda: embed_texts(texts, text_enc, enc_p.batch_size), len(table), "pytorch (the stage)")

    # 2. one training epoch of the default head on these features
    from pipeline.data.split import split_films
    from pipeline.features.store import FeatureSet
    from pipeline.models.datasets import build_datasets, feature_dims
    from pipeline.models.train import train_head

    ik, ia, _ = embed_images(table, image_enc, enc_p.batch_size)
    tk, ta, _ = embed_texts(texts, text_enc, enc_p.batch_size)
    image = FeatureSet(ik, ia, image_enc.identity, None)
    text = FeatureSet(tk, ta, text_enc.identity, None)
    split = split_films(table, PAPER_GENRES)
    data, _ = build_datasets(table, split, image, text, PAPER_GENRES)
    result = train_head(data, feature_dims(image, text), PAPER_GENRES, FusionParams(),
                        TrainParams(epochs=1, patience=1), LossParams())
    epoch = result.summary.seconds
    report["stages"].append({"stage": "train", "alternative": f"one epoch, {FusionParams().head} head",
                             "posters": len(data["train"]), "seconds": round(epoch, 3),
                             "posters_per_second": round(len(data["train"]) / epoch, 2)})
    print(f"train: one epoch {epoch:.2f} s on {len(data['train'])} posters", flush=True)

    # 3. warm: everything from the cache; 4. incremental: K new posters
    def pipeline_once(posters, prefix):
        ocr_table, _ = timed(f"{prefix}ocr", lambda: run_ocr(posters, ocr_p), len(posters))
        texts = ocr_texts(ocr_table, ocr_p)
        timed(f"{prefix}embed_image", lambda: embed_images(posters, image_enc, enc_p.batch_size), len(posters))
        timed(f"{prefix}embed_text", lambda: embed_texts(texts, text_enc, enc_p.batch_size), len(posters))

    pipeline_once(table, "warm_")
    bigger, _ = ingest_folder(args.posters, PAPER_GENRES, args.n + args.k)
    t0 = time.perf_counter()
    pipeline_once(bigger, f"incremental_plus{args.k}_")
    report["incremental_total_seconds"] = round(time.perf_counter() - t0, 2)
    print(markdown(report))
    print(markdown_warm(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def markdown(report: dict) -> str:
    lines = ["| stage | alternative | posters | seconds | posters/s |", "|---|---|---|---|---|"]
    for r in report["stages"]:
        lines.append(f"| {r['stage']} | {r['alternative']} | {r['posters']} | {r['seconds']:.2f} "
                     f"| {r['posters_per_second']:.2f} |")
    return "\n".join(lines)


def markdown_warm(report: dict) -> str:
    """The README's table of a warm re-run and of an incremental run with K new posters."""
    k = report["k"]
    lines = ["| step | posters | seconds | posters/s |", "|---|---|---|---|"]
    for prefix, label in (("warm_", "warm, all cached"), (f"incremental_plus{k}_", f"incremental, {k} new posters")):
        for stage in ("ocr", "embed_image", "embed_text"):
            r = report[f"{prefix}{stage}"]
            lines.append(f"| {stage}, {label} | {r['posters']} | {r['seconds']:.3f} | {r['posters_per_second']:.0f} |")
    lines.append(f"| incremental run in all ({k} new posters of {report['n'] + k}) | {report['n'] + k} "
                 f"| {report['incremental_total_seconds']:.2f} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
