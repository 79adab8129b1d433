"""Stage ``scrape``: posters from IMDb (data.source: imdb) or a CSV of URLs -> ``imdb/`` (labels.csv + images).

With a local folder as data.source there is nothing to fetch: the stage leaves ``imdb/`` as it is
(a previous scrape is kept, it is the download cache).
"""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.core.params import SCRAPE_FOLDER, load_params
from pipeline.data.imdb.polite_http import PoliteClient
from pipeline.data.imdb.scrape import ScrapeSettings, scrape
from stages._command import command


@command
def main(
    params: Path = typer.Option(Path("params.yaml"), help="Parameters file."),
    out: Path = typer.Option(Path(SCRAPE_FOLDER), help="Poster folder to fill (labels.csv + images/)."),
) -> None:
    """Fetch posters politely (robots.txt, rate limit, retries); resumable, incremental."""
    data = load_params(params, ["data"])["data"]
    out.mkdir(parents=True, exist_ok=True)
    if not data.scraped:
        note = out / "README.txt"
        if not note.exists():
            note.write_text("Posters scraped with data.source: imdb (or a CSV of URLs) land here.\n")
        print(f"scrape: data.source is the folder {data.source}; nothing to fetch")
        return
    client = PoliteClient.from_params(data)
    settings = ScrapeSettings.from_params(data)
    report = scrape(data.source, out, settings, client)
    print(f"scrape: {report['films_listed']} films listed, {report['pages_fetched']} pages, "
          f"{report['posters_saved']} posters ({report['posters_from_cache']} cached), "
          f"{sum(report['failures'].values())} failures {report['failures']}")


if __name__ == "__main__":
    typer.run(main)
