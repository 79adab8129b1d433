"""Benchmark: the review page with a few thousand posters: writing it, and opening it in Chromium.

1. writing: ``write_review`` over N real posters (thumbnails made from the files, one card each), posters/s, and
   the folder's size beside the posters' own (the page shows thumbnails, not the files);
2. opening (headless Chromium driven by Playwright, ``tests/browser.py``): seconds to the load event and the
   images decoded by then, with the page's lazy loading beside the alternative, every image loaded eagerly;
3. filtering: seconds for the genre filter to hide and show the cards, and for a re-sort.

Probabilities are drawn at random (seeded): this measures the page, not a model. Writes the report as JSON
(``--out``) and prints its table.

    .venv/bin/python benchmarks/bench_review.py --n 2000 --out benchmarks/review.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cards(posters: Path, n: int):
    import numpy as np

    from pipeline.core.io import read_csv
    from pipeline.data.images import read_poster
    from pipeline.evaluation.review import Card

    labels = read_csv(posters / "labels.csv").head(n)
    genres = sorted({g for row in labels["genres"].to_list() for g in row.split("|")})
    rng = np.random.default_rng(0)
    cards = []
    for row in labels.iter_rows(named=True):
        path = posters / row["image"]
        _, info = read_poster(path)
        probs = rng.random(len(genres))
        cards.append(Card(key=info.sha256, name=row["imdb_id"], image=str(path), size=(info.width, info.height),
                          probabilities={g: round(float(p), 4) for g, p in zip(genres, probs)},
                          predicted=[g for g, p in zip(genres, probs) if p > 0.5],
                          truth=row["genres"].split("|"), text="WORDS ON THE POSTER",
                          ocr=[("WORDS", [10, 10, 100, 10, 100, 30, 10, 30], 0.9)]))
    return cards, genres


def _open(folder: Path, eager: bool) -> dict:
    from tests.browser import Browser

    page = folder / "index.html"
    if eager:
        page = folder / "eager.html"
        page.write_text((folder / "index.html").read_text().replace('loading="lazy"', 'loading="eager"'))
    with Browser() as b:
        t0 = time.perf_counter()
        b.open(page.as_uri())
        load = time.perf_counter() - t0
        decoded = b.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
        timing = b.evaluate("(() => { const t = performance.getEntriesByType('navigation')[0];"
                            " return {dom: t.domContentLoadedEventEnd, load: t.loadEventEnd}; })()")
        out = {"load_event_s": round(load, 3), "dom_content_loaded_ms": round(timing["dom"], 1),
               "load_event_ms": round(timing["load"], 1), "images_decoded_at_load": decoded,
               "console_errors": len(b.console_errors())}
        if not eager:
            t0 = time.perf_counter()
            shown = b.evaluate("(() => { const s = document.getElementById('f-genre');"
                               " s.value = s.options[1].value; s.dispatchEvent(new Event('change'));"
                               " return document.querySelectorAll('#cards .card:not([hidden])').length; })()")
            out["genre_filter_s"] = round(time.perf_counter() - t0, 3)
            out["shown_after_filter"] = shown
            t0 = time.perf_counter()
            b.evaluate("(() => { const s = document.getElementById('f-sort'); s.value = 'conf-asc';"
                       " s.dispatchEvent(new Event('change')); return 1; })()")
            out["sort_s"] = round(time.perf_counter() - t0, 3)
    return out


def markdown(report: dict) -> str:
    w, lazy, eager = report["write"], report["open"]["lazy"], report["open"]["eager"]
    return "\n".join([
        "| step | posters | seconds | posters/s | detail |",
        "|---|---|---|---|---|",
        f"| write the page (thumbnails + HTML) | {report['n']} | {w['seconds']:.1f} | {w['posters_per_s']:.1f} | "
        f"folder {w['folder_mb']:.1f} MB (the posters: {w['posters_mb']:.1f} MB), index.html {w['html_mb']:.1f} MB |",
        f"| open in Chromium, lazy thumbnails (the page) | {report['n']} | {lazy['load_event_s']:.2f} | | "
        f"{lazy['images_decoded_at_load']} images decoded at the load event |",
        f"| open in Chromium, every image eager | {report['n']} | {eager['load_event_s']:.2f} | | "
        f"{eager['images_decoded_at_load']} images decoded at the load event |",
        f"| genre filter (hide and count cards) | {report['n']} | {lazy['genre_filter_s']:.3f} | | "
        f"{lazy['shown_after_filter']} shown |",
        f"| re-sort by confidence | {report['n']} | {lazy['sort_s']:.3f} | | |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default="../shared/posters", help="poster folder (labels.csv + images)")
    ap.add_argument("--n", type=int, default=2000, help="posters on the page")
    ap.add_argument("--out", default=None, help="write the report as JSON here")
    args = ap.parse_args()

    from pipeline.evaluation.review import write_review

    posters = Path(args.posters)
    load = os.getloadavg()[0]  # other work on the machine slows every figure: the report says how busy it was
    cards, genres = _cards(posters, args.n)
    work = Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        t0 = time.perf_counter()
        write_review(work / "review", cards, genres, title="bench", rule="random probabilities, threshold 0.5",
                     thresholds=dict.fromkeys(genres, 0.5))
        seconds = time.perf_counter() - t0
        folder = work / "review"
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        report = {"cpus": os.cpu_count(), "n": len(cards), "load_average_at_start": round(load, 2),
                  "write": {"seconds": round(seconds, 2), "posters_per_s": round(len(cards) / seconds, 1),
                            "folder_mb": round(size / 2**20, 2),
                            "posters_mb": round(sum(Path(c.image).stat().st_size for c in cards) / 2**20, 2),
                            "html_mb": round((folder / "index.html").stat().st_size / 2**20, 2)},
                  "open": {"lazy": _open(folder, eager=False), "eager": _open(folder, eager=True)}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
