"""Benchmark: scraper throughput against a local fake IMDb, rate limit lifted.

Serves N films (real posters from the poster folder) on 127.0.0.1 and scrapes
them cold (every page and image fetched) and warm (all from the download cache):

    python benchmarks/bench_scrape.py --posters ../shared/posters --n 200 --concurrency 1 2 4 8
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posters", default=str(ROOT / ".." / "shared" / "posters"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from pipeline.core.params import PAPER_GENRES
    from pipeline.data.imdb.polite_http import PoliteClient
    from pipeline.data.imdb.scrape import ScrapeSettings, scrape
    from tests.http_fixture import LocalServer
    from tests.imdb_fixture import serve_films

    posters = Path(args.posters)
    rows = [r for r in csv.DictReader(open(posters / "labels.csv"))
            if set(r["genres"].split("|")) & set(PAPER_GENRES)][: args.n]
    results = []
    with LocalServer() as srv:
        serve_films(srv, rows, posters)
        settings = ScrapeSettings(genres=PAPER_GENRES, datasets_url=srv.url + "/datasets",
                                  title_url=srv.url + "/title", min_votes=0)
        for c in args.concurrency:
            with tempfile.TemporaryDirectory() as out:
                for phase in ("cold", "warm"):
                    client = PoliteClient(rate_limit=0, concurrency=c)
                    t0 = time.perf_counter()
                    rep = scrape("imdb", out, settings, client)
                    s = time.perf_counter() - t0
                    results.append({"concurrency": c, "phase": phase, "films": rep["films_listed"],
                                    "posters": rep["posters_saved"], "requests": rep["requests"],
                                    "seconds": round(s, 3), "films_per_second": round(rep["films_listed"] / s, 1)})
                    print(json.dumps(results[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
