"""How well posters were read: recall of the film's title words in the OCR text.

A poster almost always prints its film's title, and the title is known (``title``
in ``labels.csv``), so the share of title words found in the text measures an
engine on real posters without hand-made ground truth. A *title word* is a run of
4 or more letters of the title (short words like "the", "of" say little), lower-cased.
Two ways to count a hit, both reported:

* ``word``: the title word is one of the words of the OCR text (strict: a recogniser
  that joins words, "BREAKFASTCLUB", misses);
* ``substring``: the title word appears anywhere in the lower-cased text.

Per poster, ``any`` means at least one title word was found and ``all`` that every
one was; the figures are shares of the posters that have a title word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

_WORD = re.compile(r"[A-Za-z]+")
MIN_LETTERS = 4


def title_words(title: str | None) -> list[str]:
    if not isinstance(title, str):
        return []
    return [w.lower() for w in _WORD.findall(title) if len(w) >= MIN_LETTERS]


def title_recall(titles: Iterable[str | None], texts: Iterable[str]) -> dict[str, float | int]:
    """Title-word recall of OCR ``texts`` against film ``titles`` (one of each per poster)."""
    n = 0
    hits = {"word_any": 0, "word_all": 0, "substring_any": 0, "substring_all": 0}
    for title, text in zip(titles, texts):
        wanted = title_words(title)
        if not wanted:
            continue
        n += 1
        words = {w.lower() for w in _WORD.findall(text or "")}
        lower = (text or "").lower()
        for kind, found in (("word", [w in words for w in wanted]), ("substring", [w in lower for w in wanted])):
            hits[f"{kind}_any"] += any(found)
            hits[f"{kind}_all"] += all(found)
    return {"posters_with_title_words": n, **{k: (round(v / n, 4) if n else None) for k, v in hits.items()}}


def read_quality(posters: pl.DataFrame, ocr_table: pl.DataFrame, split_words: bool = False) -> dict:
    """Quality of one OCR table (``key``, ``texts``, ``confidences``, ``boxes``): share of posters with no text,
    characters per poster and, where ``posters`` (ingest's table: ``sha256``, ``title``) has titles,
    :func:`title_recall` (each poster image once, its first row).

    The text judged is the reading-order text of every line (:func:`poster_text`), with joined
    words split when ``split_words``."""
    from pipeline.features.ocr.text import ocr_records, poster_text

    texts = {key: poster_text(lines, boxes, confidences, 0.0, split_words)
             for key, lines, boxes, confidences in ocr_records(ocr_table)}
    if not texts:
        return {"posters": 0}
    out: dict = {
        "posters": len(texts),
        "no_text": round(sum(not t for t in texts.values()) / len(texts), 4),
        "characters_per_poster": round(sum(len(t) for t in texts.values()) / len(texts), 1),
    }
    if "title" in posters.columns:
        firsts = [(key, title) for key, title in posters.unique("sha256", keep="first", maintain_order=True)
                  .select("sha256", "title").iter_rows() if key in texts]
        recall = title_recall([title for _, title in firsts], [texts[key] for key, _ in firsts])
        if recall["posters_with_title_words"]:
            out["title_recall"] = recall
    return out
