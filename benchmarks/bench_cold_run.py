"""Benchmark: the README's air-gapped full run, cold, from a fresh clone, stage by stage.

What a new user gets: the committed HEAD of this repository is cloned into a
temporary folder, whose feature cache (``.cache/`` in the clone) is empty, and the
README's command runs there with this environment's packages:

    dvc exp run -S data.source=<posters> -S data.limit=null -S encoder.name=offline

Each stage's wall time is taken from DVC's own output (the time between its
``Running stage`` lines), with the posters it handled and its share of the run.
Then ``poster-genres predict`` runs on ``--predict-n`` posters it has never seen
(a second empty cache), the catalogue team's case: OCR and both embeddings of new
posters, then the trained head.

    python benchmarks/bench_cold_run.py --posters ../shared/posters --out benchmarks/cold_run.json

The clone holds only committed code: commit before measuring. Numbers depend on the
machine and on what else runs; the report records the CPU count and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def run_timed(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, list[tuple[str, float]]]:
    """Run ``cmd``, echo and log its output; return its wall time and when each DVC stage started."""
    starts: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            match = STAGE_LINE.match(line)
            if match:
                starts.append((match.group(1), time.perf_counter() - t0))
                print(f"{starts[-1][1]:8.1f} s  {line.strip()}", flush=True)
        code = proc.wait()
    seconds = time.perf_counter() - t0
    if code:
        sys.exit(f"error: {' '.join(cmd)} failed with exit code {code}; its output: {log}")
    return seconds, starts


def stage_posters(clone: Path) -> dict[str, int]:
    """Posters each per-poster stage handled, from the stages' own reports."""
    def load(path: str) -> dict:
        p = clone / path
        return json.loads(p.read_text()) if p.exists() else {}

    ocr = load("features/ocr_report.json")
    return {"ocr": ocr.get("posters", 0), "ocr_computed": ocr.get("computed", 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv + images)")
    ap.add_argument("--predict-n", type=int, default=1400, help="new posters for poster-genres predict (0: skip)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="further -S overrides")
    ap.add_argument("--keep", default=None, help="clone here and keep it (default: a temporary folder, removed)")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()

    posters = Path(args.posters).resolve()
    work = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="cold-run-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "POSTER_GENRES_CACHE"}  # the clone's own, empty .cache/
    env |= {"PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", "HF_HUB_OFFLINE": "1"}
    overrides = [f"data.source={posters}", "data.limit=null", "encoder.name=offline", *args.set]
    cmd = ["dvc", "exp", "run", *[a for o in overrides for a in ("-S", o)]]
    print(f"{clone}: {' '.join(cmd)}", flush=True)
    total, starts = run_timed(cmd, clone, env, work / "dvc_exp_run.log")

    counts = stage_posters(clone)
    ingested = json.loads((clone / "data" / "ingest_report.json").read_text()).get("posters") \
        if (clone / "data" / "ingest_report.json").exists() else None
    stages = []
    for i, (name, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else total
        stages.append({"stage": name, "seconds": round(end - start, 1), "share": round((end - start) / total, 3)})
    report: dict = {"commit": commit, "cpus": os.cpu_count(), "command": " ".join(cmd),
                    "total_seconds": round(total, 1), "stages": stages, "posters": counts | {"ingested": ingested}}
    for row in stages:
        print(f"{row['stage']:14s} {row['seconds']:8.1f} s  {row['share']:6.1%}")
    print(f"{'total':14s} {total:8.1f} s")

    if args.predict_n:
        files = sorted((posters / "images").glob("*.jpg"))[: args.predict_n]
        predict_env = env | {"POSTER_GENRES_CACHE": str(work / "predict-cache")}  # none of them cached
        seconds, _ = run_timed(["poster-genres", "predict", *map(str, files), "--format", "csv"], clone, predict_env,
                               work / "predict.log")
        report["predict"] = {"posters": len(files), "seconds": round(seconds, 1),
                             "posters_per_second": round(len(files) / seconds, 2)}
        print(f"predict: {len(files)} new posters in {seconds:.1f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
