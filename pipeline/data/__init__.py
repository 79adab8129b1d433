"""Posters and their labels: a poster folder read into a table (:mod:`.ingest`), safe image
decoding (:mod:`.images`), genre labels (:mod:`.labels`), the film-grouped split (:mod:`.split`),
and IMDb scraping with its polite HTTP client (:mod:`.imdb`)."""
