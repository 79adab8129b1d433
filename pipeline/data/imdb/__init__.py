"""IMDb as a poster source: the film list and title pages (:mod:`.titles`), the scraper that turns
them into a poster folder (:mod:`.scrape`), and the rate-limited HTTP client (:mod:`.polite_http`)."""
