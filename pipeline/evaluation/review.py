"""The review page: posters, the words the OCR read off them and their genres, for a person to judge.

One static folder, no server and no network: ``index.html`` (styles and script inline) and ``thumbs/``
(one JPEG per poster, named by its content hash). The page is ``templates/review.html`` (Jinja2, every
value autoescaped) with ``templates/review.css`` and ``templates/review.js`` inlined. Every card is HTML,
so the page is complete with JavaScript off: the filters and the sort are the only things the script adds.
The OCR boxes and the
attention heat map are toggled by check boxes and CSS alone, so they work without the script too.

A card shows the thumbnail with the OCR boxes drawn over it (the recogniser's polygons, in the poster's
pixels), the words as the text encoder received them, every genre's probability with the genres the decision
rule chose (the rule is named), and, where the truth is known, hits, misses and false alarms. For the paper's
head it also shows what MCAM attended to (:mod:`pipeline.models.explain`); for a head without attention it
says so. Thumbnails are lazy-loaded (``loading="lazy"``) and cards off screen are not laid out
(``content-visibility: auto``), so a page of a few thousand posters stays fast.

Everything taken from a poster (names, OCR text, genres) is HTML-escaped: a poster whose OCR reads
``<script>`` shows the text and runs nothing. A poster whose thumbnail cannot be made still gets a card
saying why; a page of zero posters says so.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import polars as pl
from markupsafe import Markup
from PIL import Image

from pipeline.core.checkpoint import HeadCheckpoint
from pipeline.core.io import read_parquet
from pipeline.data.images import PosterError, read_poster
from pipeline.features.encoders import create_text_encoder, same_encoder
from pipeline.features.ocr import ocr_texts
from pipeline.features.ocr.text import ocr_records
from pipeline.models.explain import attention_note, card_attention, dataset_attention
from pipeline.scoring.metrics import per_genre

if TYPE_CHECKING:  # the page reads what predict saw; it never runs predict
    from pipeline.models.predict import Seen

#: Longest side of a thumbnail, in pixels (the card shows it at 180 px wide; 2x for sharp screens is not worth
#: the folder's size on a few thousand posters).
THUMB_SIZE = 240
THUMB_QUALITY = 80


@dataclass
class Card:
    """One poster on the page. ``probabilities`` are the scores the rule decided on (calibrated where the model
    is); ``truth`` is None where the true genres are unknown (predict on new posters)."""

    key: str
    name: str
    probabilities: dict[str, float]
    predicted: list[str]
    image: str | None = None  #: the poster file (None: no image to show; ``error`` says why)
    size: tuple[int, int] | None = None  #: the poster's (width, height) in pixels, the OCR boxes' frame
    ocr: list[tuple[str, list[int], float]] = field(default_factory=list)  #: (line, polygon, confidence)
    text: str = ""  #: the text as the text encoder received it
    truth: list[str] | None = None
    link: str | None = None
    attention: dict[str, Any] | None = None  #: :func:`pipeline.models.explain.attention_maps`' per-poster entry
    attention_note: str | None = None  #: why there is no attention to show
    error: str | None = None  #: why there is no thumbnail
    rule: str | None = None  #: the input pattern and rule that chose ``predicted`` (``with_plot:per_genre``)
    thresholds: dict[str, float] | None = None  #: that rule's per-genre thresholds (else the page's)

    def loss(self) -> float | None:
        """Mean binary cross-entropy over genres (what "worst errors first" sorts by); None without truth."""
        if self.truth is None:
            return None
        truth = set(self.truth)
        total = 0.0
        for g, p in self.probabilities.items():
            p = min(max(float(p), 1e-7), 1 - 1e-7)
            total -= math.log(p) if g in truth else math.log(1 - p)
        return total / max(len(self.probabilities), 1)

    def confidence(self) -> float:
        """The highest genre probability."""
        return max(self.probabilities.values(), default=0.0)


def build_cards(keys: list[str], names: list[str], scores: np.ndarray, predicted: np.ndarray, genres: list[str], *,
                images: list[str | None], sizes: list[tuple[int, int] | None], ocr: dict[str, tuple] | None = None,
                texts: dict[str, str] | None = None, truth: np.ndarray | None = None,
                links: list[str | None] | None = None, attention: list[dict[str, Any]] | None = None,
                attention_note: str | None = None, token_words=None, image_fit: str = "squash",
                rules: list[str] | None = None, thresholds: list[dict[str, float]] | None = None) -> list[Card]:
    """Cards from aligned rows: ``scores`` and ``predicted`` (n, M) and ``truth`` (n, M) or None; ``rules`` and
    ``thresholds`` name each card's decision (its input pattern's rule) and its thresholds; ``ocr`` maps a
    key to its OCR record (texts, boxes, confidences), ``texts`` to the text the encoder received;
    ``attention`` (from :func:`pipeline.models.explain.attention_maps`) with ``token_words(text)``, the text
    encoder's token-to-word map."""
    cards = []
    for i, key in enumerate(keys):
        text = (texts or {}).get(key, "")
        lines, boxes, confidences = (ocr or {}).get(key, ([], [], []))
        card = Card(
            key=key, name=names[i], image=images[i], size=sizes[i], text=text,
            probabilities={g: round(float(scores[i, j]), 4) for j, g in enumerate(genres)},
            predicted=[g for j, g in enumerate(genres) if predicted[i, j]],
            truth=None if truth is None else [g for j, g in enumerate(genres) if truth[i, j]],
            ocr=[(t, list(b), float(c)) for t, b, c in zip(lines, boxes, confidences)],
            link=None if links is None else links[i],
            attention_note=attention_note,
            error=None if images[i] is not None else "no poster file to show",
            rule=None if rules is None else rules[i],
            thresholds=None if thresholds is None else thresholds[i],
        )
        if attention is not None:
            card.attention = card_attention(attention[i], text, token_words(text) if token_words else None,
                                            image_fit, sizes[i])
        cards.append(card)
    return cards


def split_cards(posters_path: str | Path, ocr_path: str | Path, data, scores: np.ndarray, predicted: np.ndarray,
                genres: list[str], head, ckpt: HeadCheckpoint, ocr_params, encoder_params, notes: list[str],
                rules: list[str] | None = None, thresholds: list[dict[str, float]] | None = None) -> list[Card]:
    """The cards of a split (a :class:`pipeline.models.datasets.Dataset` ``data``, its scores and decisions): the
    posters table gives files, names and sizes, the OCR table the lines and boxes (the text as
    :func:`pipeline.features.ocr.ocr_texts` made it for the encoder), the head its attention. ``notes`` gets
    a line when the words cannot be matched to tokens."""
    posters = read_parquet(posters_path).unique("sha256", keep="first", maintain_order=True)
    by_key = {r["sha256"]: r for r in posters.iter_rows(named=True)}
    ocr_table = read_parquet(ocr_path).filter(pl.col("key").is_in(list(data.keys)))
    records = {key: (lines, boxes, conf) for key, lines, boxes, conf in ocr_records(ocr_table)}
    texts = dict(ocr_texts(ocr_table, ocr_params).iter_rows())
    rows = [by_key.get(k, {}) for k in data.keys]
    attention = dataset_attention(head, data)
    token_words = None
    if attention is not None:
        token_words = _token_words(encoder_params, ckpt, notes)
    return build_cards(
        list(data.keys), [_name(r, k) for r, k in zip(rows, data.keys)], scores, predicted, genres,
        images=[r.get("path") for r in rows], sizes=[(r["width"], r["height"]) if r else None for r in rows],
        ocr=records, texts=texts, truth=data.labels.numpy().astype(bool),
        links=[f"https://www.imdb.com/title/{r['imdb_id']}/" if r.get("imdb_id") else None for r in rows],
        attention=attention, attention_note=attention_note(head), token_words=token_words,
        image_fit=ckpt["features"]["image"].get("preprocess", {}).get("fit", "squash"),
        rules=rules, thresholds=thresholds,
    )


def write_predicted(folder: str | Path, seen: Seen, errors: list[str], progress=None) -> dict[str, int]:
    """The review page of ``poster-genres predict``'s posters (:class:`pipeline.models.predict.Seen`): no truth,
    each card decided by its input pattern's rule; every poster that could not be predicted is a line on it."""
    cards = []
    if seen.keys:
        cards = build_cards(
            seen.keys, [Path(p).name for p in seen.paths], seen.probabilities, seen.chosen, seen.genres,
            images=list(seen.paths), sizes=list(seen.sizes), ocr=seen.ocr, texts=seen.texts, attention=seen.attention,
            attention_note=seen.attention_note, token_words=seen.token_words, image_fit=seen.image_fit,
            rules=seen.rules, thresholds=seen.thresholds)
    return write_review(folder, cards, seen.genres, title="Predicted genres", rule=seen.rule, thresholds=None,
                        notes=[f"not shown: {e}" for e in errors], progress=progress)


def _name(row: dict, key: str) -> str:
    if not row:
        return key[:12]
    return f"{row['title']} ({row['year']})" if row.get("title") and row.get("year") else (
        row.get("title") or Path(row.get("path") or key).name)


def _token_words(encoder_params, ckpt: HeadCheckpoint, notes: list[str]):
    """The text encoder's token-to-word map, when it is the encoder the model was trained on."""
    encoder = create_text_encoder(encoder_params)
    if not same_encoder(encoder.identity, ckpt["features"]["text"]):
        notes.append("attention: the text encoder of params is not the model's; words are not highlighted")
        return None
    if encoder.token_words("a") is None:
        notes.append(f"attention: the {encoder.identity.get('encoder')} text tokenizer cannot map tokens to "
                     "words; words are not highlighted")
        return None
    return encoder.token_words


def write_review(folder: str | Path, cards: list[Card], genres: list[str], *, title: str, rule: str,
                 thresholds: dict[str, float] | None = None, notes: list[str] | None = None,
                 progress=None) -> dict[str, int]:
    """Write the page of ``cards`` to ``folder`` (replaced whole, atomically: an interrupted write leaves the
    last good page). ``rule`` names the decision rule that chose the predicted genres, ``thresholds`` its
    per-genre thresholds. Returns counts: cards, thumbnails, cards without one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        (tmp / "thumbs").mkdir()
        made = 0
        for card in (progress(cards) if progress else cards):
            if card.image is not None and card.error is None:
                card.error = _thumbnail(card.image, tmp / "thumbs" / f"{card.key}.jpg")
                made += card.error is None
        (tmp / "index.html").write_text(render_page(cards, genres, title=title, rule=rule, thresholds=thresholds,
                                                    notes=notes), encoding="utf-8")
        for p in [tmp, *tmp.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        old = folder.with_name(f".{folder.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {"cards": len(cards), "thumbnails": made, "without_thumbnail": len(cards) - made}


def _thumbnail(path: str, out: Path) -> str | None:
    """Write ``path``'s thumbnail to ``out``; the reason in one line when it cannot be made."""
    try:
        img, _ = read_poster(path)
        img = img.convert("RGB")
        img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
        img.save(out, "JPEG", quality=THUMB_QUALITY, optimize=True)
        return None
    except PosterError as err:
        return f"no thumbnail: {err}"
    except (OSError, ValueError) as err:
        return f"no thumbnail: {path}: {err}"


def per_genre_rows(cards: list[Card], genres: list[str]) -> list[dict[str, Any]]:
    """Precision, recall and F1 per genre of the cards' decisions against their truth (cards with truth only)."""
    known = [c for c in cards if c.truth is not None]
    if not known:
        return []
    y = np.array([[g in c.truth for g in genres] for c in known], dtype=np.int64)
    pred = np.array([[g in c.predicted for g in genres] for c in known], dtype=np.int64)
    table = per_genre(y, pred)
    return [{"genre": g, "posters": int(y[:, j].sum()), "predicted": int(pred[:, j].sum()),
             **{k: float(table[k][j]) for k in ("precision", "recall", "f1")}} for j, g in enumerate(genres)]


def render_page(cards: list[Card], genres: list[str], *, title: str, rule: str,
                thresholds: dict[str, float] | None = None, notes: list[str] | None = None) -> str:
    """The page's HTML (see the module docstring): ``templates/review.html``, every value autoescaped."""
    with_truth = any(c.truth is not None for c in cards)
    order = sorted(range(len(cards)), key=lambda i: (-(cards[i].loss() or 0.0), -cards[i].confidence(),
                                                      cards[i].key)) if with_truth else range(len(cards))
    rows = per_genre_rows(cards, genres) if with_truth else [{"genre": g} for g in genres]
    genre_rows = []
    for r in rows:
        tau = "" if thresholds is None or r["genre"] not in thresholds else f"{thresholds[r['genre']]:.2f}"
        cells = [r["genre"], tau]
        if with_truth:
            cells += [f"{100 * r[k]:.1f}" for k in ("precision", "recall", "f1")] + [r["posters"], r["predicted"]]
        genre_rows.append(cells)
    return _TEMPLATES.get_template("review.html").render(
        title=title, rule=rule, notes=notes or [], genres=genres, with_truth=with_truth, marks=MARKS, kinds=KINDS,
        css=Markup(_asset("review.css")), script=Markup(_asset("review.js")),
        has_attention=any(c.attention for c in cards),
        columns=["genre", "threshold"] + (["precision", "recall", "F1", "posters", "predicted"] if with_truth else []),
        caption=("Per genre, on these posters: precision, recall and F1 (%) of the predicted genres, and the "
                 "decision threshold." if with_truth else "Decision threshold per genre."),
        genre_rows=genre_rows, cards=[_card_view(cards[i], genres, thresholds, n) for n, i in enumerate(order)])


def _escape(value: Any) -> Markup:
    """The template's autoescape, with the standard library's entities (``&quot;``, ``&#x27;``): a value already
    marked safe (the stylesheet, the script) passes as it is."""
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("pipeline.evaluation", "templates"), autoescape=True, finalize=_escape,
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def _asset(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


def _card_view(card: Card, genres: list[str], thresholds: dict[str, float] | None, position: int) -> dict:
    """What the template shows of one card: its decisions, marks and figures as text."""
    thresholds = card.thresholds or thresholds
    truth = None if card.truth is None else set(card.truth)
    predicted = set(card.predicted)
    missed = sorted(truth - predicted) if truth is not None else []
    false = sorted(predicted - truth) if truth is not None else []
    loss = card.loss()
    attrs = {
        "data-key": card.key, "data-order": str(position), "data-known": "0" if truth is None else "1",
        "data-name": card.name.lower(), "data-conf": f"{card.confidence():.6f}",
        "data-pred": "|".join(g for g in genres if g in predicted),
        "data-true": "" if truth is None else "|".join(g for g in genres if g in truth),
        "data-missed": str(len(missed)), "data-false": str(len(false)),
        "data-loss": "" if loss is None else f"{loss:.6f}",
    }
    view: dict[str, Any] = {"key": card.key, "name": card.name, "link": card.link, "attrs": list(attrs.items()),
                            "missing": None, "text": card.text, "words": None, "note": card.attention_note,
                            "rule": card.rule, "verdict": None}
    if card.error or card.image is None:
        view["missing"] = card.error or "no image"
    else:
        w, h = card.size or (THUMB_SIZE, THUMB_SIZE)
        view.update(w=w, h=h, height=max(1, round(180 * h / max(w, 1))),
                    heat=_heat(card.attention, w, h) if card.attention and card.attention.get("regions") else None,
                    # the boxes are in the poster's pixels: without its size they cannot be placed
                    boxes=[{"points": " ".join(str(int(v)) for v in box), "text": text, "conf": f"{conf:.2f}"}
                           for text, box, conf in card.ocr if len(box) >= 6] if card.ocr and card.size else None)
    words = (card.attention or {}).get("words")
    if card.text and words:
        shade = _relative([wt for _, wt in words])
        view["words"] = [{"word": word, "weight": f"{wt:.3f}", "shade": f"{s:.3f}"}
                         for (word, wt), s in zip(words, shade)]
    if truth is not None:
        errors = ([f"missed {', '.join(missed)}"] if missed else []) + (
            [f"false alarm {', '.join(false)}"] if false else [])
        view["verdict"] = ", ".join(errors) or "exactly right"
        view["verdict_class"] = "ok" if not missed and not false else "bad"
    probs = []
    for g in sorted(genres, key=lambda g: -card.probabilities.get(g, 0.0)):
        p = card.probabilities.get(g, 0.0)
        kind = ("hit" if g in predicted and truth is not None and g in truth else
                "false" if g in predicted and truth is not None else
                "pred" if g in predicted else
                "missed" if truth is not None and g in truth else "")
        probs.append({"genre": g, "kind": kind, "mark": MARKS.get(kind, ""), "kind_title": KINDS.get(kind, ""),
                      "width": f"{100 * p:.1f}", "value": f"{p:.2f}",
                      "threshold": f"{thresholds[g]:.2f}" if thresholds and g in thresholds else None})
    view["probs"] = probs
    return view


#: The mark beside a genre, by what the rule and the truth say of it (the page's legend explains them).
MARKS = {"hit": "✓", "false": "✗", "missed": "○", "pred": "●"}
KINDS = {"hit": "predicted and true", "false": "false alarm: predicted, not true", "missed": "missed: true, not "
         "predicted", "pred": "predicted (truth unknown)"}


def _heat(attention: dict[str, Any], w: int, h: int) -> list[dict]:
    """The image tokens' weights as a grid of cells over the region of the poster the encoder saw."""
    rows, cols = attention["grid"]
    shade = _relative(attention["regions"])
    x0, y0, x1, y1 = attention.get("frame") or (0, 0, w, h)
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    return [{"x": f"{x0 + c * cw:.1f}", "y": f"{y0 + r * ch:.1f}", "width": f"{cw:.1f}", "height": f"{ch:.1f}",
             "opacity": f"{0.7 * shade[r * cols + c]:.3f}", "weight": f"{attention['regions'][r * cols + c]:.4f}"}
            for r in range(rows) for c in range(cols)]


def _relative(weights) -> np.ndarray:
    """Weights scaled to 0..1 between the poster's least and most attended item: attention spread almost evenly
    differs by little, and the page shows where it is *more* than elsewhere (the title gives the weight)."""
    w = np.asarray(weights, dtype=np.float64)
    if not w.size:
        return w
    span = w.max() - w.min()
    return (w - w.min()) / span if span > 0 else np.zeros_like(w)
