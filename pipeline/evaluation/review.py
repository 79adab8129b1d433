"""The review page: posters, the words the OCR read off them and their genres, for a person to judge.

One static folder, no server and no network: ``index.html`` (styles and script inline) and ``thumbs/``
(one JPEG per poster, named by its content hash). Every card is HTML written here, so the page is complete
with JavaScript off: the filters and the sort are the only things the script adds. The OCR boxes and the
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

import numpy as np
import polars as pl
from PIL import Image

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
                genres: list[str], head, ckpt: dict, ocr_params, encoder_params, notes: list[str],
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


def _token_words(encoder_params, ckpt: dict, notes: list[str]):
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


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


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
    """The page's HTML (see the module docstring)."""
    with_truth = any(c.truth is not None for c in cards)
    order = sorted(range(len(cards)), key=lambda i: (-(cards[i].loss() or 0.0), -cards[i].confidence(),
                                                      cards[i].key)) if with_truth else range(len(cards))
    has_attention = any(c.attention for c in cards)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="rule">Predicted genres: <strong>{_e(rule)}</strong>. {len(cards)} poster(s)'
        + (", worst errors first (mean binary cross-entropy over genres)." if with_truth else ".") + "</p>",
        '<p class="legend">' + (" · ".join(f'<span class="{k}">{MARKS[k]} {KINDS[k]}</span>'
                                          for k in ("hit", "false", "missed")) if with_truth else
                                f'{MARKS["pred"]} {KINDS["pred"]}') + "; bold: predicted</p>",
    ]
    parts += [f'<p class="note">{_e(n)}</p>' for n in notes or []]
    parts.append("</header>")
    if not cards:
        parts += ['<main><p class="empty">No posters to show: the page was made for zero posters.</p></main>',
                  "</body>", "</html>"]
        return "\n".join(parts) + "\n"
    parts += _genre_table(cards, genres, thresholds, with_truth)
    parts += [
        # the toggles are check boxes that CSS reads (no script needed); the filters need the script
        '<input type="checkbox" id="show-boxes" class="toggle" checked>',
        '<input type="checkbox" id="show-heat" class="toggle">',
        '<nav class="controls">',
        '<label for="show-boxes" class="switch">OCR boxes</label>',
        '<label for="show-heat" class="switch">attention heat map</label>' if has_attention else "",
        '<span id="filters" hidden>',
        '<label>genre <select id="f-genre"><option value="">any</option>'
        + "".join(f'<option value="{_e(g)}">{_e(g)}</option>' for g in genres) + "</select></label>",
        ('<label>errors <select id="f-error"><option value="">all posters</option>'
         '<option value="any">any error</option><option value="missed">missed genre</option>'
         '<option value="false">false alarm</option><option value="correct">exactly right</option>'
         "</select></label>") if with_truth else "",
        '<label>top probability <input id="f-min" type="number" min="0" max="1" step="0.05" value="0"> to '
        '<input id="f-max" type="number" min="0" max="1" step="0.05" value="1"></label>',
        '<label>sort <select id="f-sort">'
        + ('<option value="loss">loss, worst first</option>' if with_truth else
           '<option value="order">as given</option>')
        + '<option value="conf-desc">confidence, high first</option>'
          '<option value="conf-asc">confidence, low first</option><option value="name">name</option>'
          "</select></label>",
        '<output id="shown"></output>',
        "</span>",
        "<noscript>Filters and sorting need JavaScript; every poster is shown.</noscript>",
        "</nav>",
        '<main id="cards">',
    ]
    parts += [_card(cards[i], genres, thresholds, n) for n, i in enumerate(order)]
    parts += ["</main>", f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _genre_table(cards, genres, thresholds, with_truth) -> list[str]:
    rows = per_genre_rows(cards, genres) if with_truth else [{"genre": g} for g in genres]
    columns = ["genre", "threshold"] + (["precision", "recall", "F1", "posters", "predicted"] if with_truth else [])
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    body = []
    for r in rows:
        tau = "" if thresholds is None or r["genre"] not in thresholds else f"{thresholds[r['genre']]:.2f}"
        cells = f"<td>{_e(r['genre'])}</td><td>{tau}</td>"
        if with_truth:
            cells += "".join(f"<td>{100 * r[k]:.1f}</td>" for k in ("precision", "recall", "f1"))
            cells += f"<td>{r['posters']}</td><td>{r['predicted']}</td>"
        body.append(f"<tr>{cells}</tr>")
    caption = ("Per genre, on these posters: precision, recall and F1 (%) of the predicted genres, and the "
               "decision threshold." if with_truth else "Decision threshold per genre.")
    return ['<section class="genres"><table id="per-genre">', f"<caption>{caption}</caption>", head, *body,
            "</table></section>"]


def _card(card: Card, genres: list[str], thresholds: dict[str, float] | None, position: int) -> str:
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
    head = f'<a href="{_e(card.link)}">{_e(card.name)}</a>' if card.link else _e(card.name)
    out = [f'<article class="card" {" ".join(f"{k}={chr(34)}{_e(v)}{chr(34)}" for k, v in attrs.items())}>',
           f"<h2>{head}</h2>", _figure(card)]
    if card.text:
        out.append(f'<p class="text"><span class="label">text read:</span> {_words(card)}</p>')
    else:
        out.append('<p class="text none">no text read off this poster</p>')
    if card.attention_note:
        out.append(f'<p class="note">{_e(card.attention_note)}</p>')
    if card.rule:
        out.append(f'<p class="decided"><span class="label">decided by:</span> {_e(card.rule)}</p>')
    if truth is not None:
        errors = ([f"missed {', '.join(missed)}"] if missed else []) + (
            [f"false alarm {', '.join(false)}"] if false else [])
        verdict = ", ".join(errors) or "exactly right"
        out.append(f'<p class="verdict {"ok" if not missed and not false else "bad"}">{_e(verdict)}</p>')
    out.append('<ol class="probs">')
    for g in sorted(genres, key=lambda g: -card.probabilities.get(g, 0.0)):
        p = card.probabilities.get(g, 0.0)
        kind = ("hit" if g in predicted and truth is not None and g in truth else
                "false" if g in predicted and truth is not None else
                "pred" if g in predicted else
                "missed" if truth is not None and g in truth else "")
        mark = MARKS.get(kind, "")
        tau = f' title="threshold {thresholds[g]:.2f}"' if thresholds and g in thresholds else ""
        out.append(f'<li class="{kind}"{tau}><span class="g">{_e(g)}</span><span class="track"><span class="bar" '
                   f'style="width:{100 * p:.1f}%"></span></span><span class="p">{p:.2f}</span>'
                   f'<span class="m" title="{KINDS.get(kind, "")}">{_e(mark)}</span></li>')
    out += ["</ol>", "</article>"]
    return "\n".join(out)


#: The mark beside a genre, by what the rule and the truth say of it (the page's legend explains them).
MARKS = {"hit": "✓", "false": "✗", "missed": "○", "pred": "●"}
KINDS = {"hit": "predicted and true", "false": "false alarm: predicted, not true", "missed": "missed: true, not "
         "predicted", "pred": "predicted (truth unknown)"}


def _figure(card: Card) -> str:
    if card.error or card.image is None:
        return f'<div class="thumb missing"><p>{_e(card.error or "no image")}</p></div>'
    w, h = card.size or (THUMB_SIZE, THUMB_SIZE)
    layers = [f'<img src="thumbs/{_e(card.key)}.jpg" alt="poster of {_e(card.name)}" loading="lazy" '
              f'width="180" height="{max(1, round(180 * h / max(w, 1)))}">']
    if card.attention and card.attention.get("regions"):
        layers.append(_heat(card.attention, w, h))
    if card.ocr and card.size:  # the boxes are in the poster's pixels: without its size they cannot be placed
        polys = "".join(f'<polygon points="{" ".join(str(int(v)) for v in box)}"><title>{_e(text)} '
                        f"({conf:.2f})</title></polygon>" for text, box, conf in card.ocr if len(box) >= 6)
        layers.append(f'<svg class="boxes" viewBox="0 0 {w} {h}" preserveAspectRatio="none">{polys}</svg>')
    return f'<div class="thumb">{"".join(layers)}</div>'


def _heat(attention: dict[str, Any], w: int, h: int) -> str:
    """The image tokens' weights as a grid of cells over the region of the poster the encoder saw."""
    rows, cols = attention["grid"]
    shade = _relative(attention["regions"])
    x0, y0, x1, y1 = attention.get("frame") or (0, 0, w, h)
    cw, ch = (x1 - x0) / cols, (y1 - y0) / rows
    cells = "".join(f'<rect x="{x0 + c * cw:.1f}" y="{y0 + r * ch:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                    f'fill-opacity="{0.7 * shade[r * cols + c]:.3f}"><title>attention {weight:.4f}</title></rect>'
                    for r in range(rows) for c in range(cols) for weight in [attention["regions"][r * cols + c]])
    return f'<svg class="heat" viewBox="0 0 {w} {h}" preserveAspectRatio="none">{cells}</svg>'


def _relative(weights) -> np.ndarray:
    """Weights scaled to 0..1 between the poster's least and most attended item: attention spread almost evenly
    differs by little, and the page shows where it is *more* than elsewhere (the title gives the weight)."""
    w = np.asarray(weights, dtype=np.float64)
    if not w.size:
        return w
    span = w.max() - w.min()
    return (w - w.min()) / span if span > 0 else np.zeros_like(w)


def _words(card: Card) -> str:
    """The text, its words highlighted by attention weight where there is one."""
    words = (card.attention or {}).get("words")
    if not words:
        return _e(card.text)
    shade = _relative([wt for _, wt in words])
    return " ".join(f'<mark style="--w:{s:.3f}" title="attention {wt:.3f}">{_e(word)}</mark>'
                    for (word, wt), s in zip(words, shade))


CSS = """
:root{font-family:system-ui,sans-serif;color:#222;background:#f6f6f4}
body{margin:0 1rem 2rem}
header h1{font-size:1.4rem;margin:.8rem 0 .2rem}
.rule,.note{margin:.2rem 0;color:#444}
.empty{font-size:1.2rem;padding:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
caption{text-align:left;color:#555;padding-bottom:.2rem}
th,td{border:1px solid #ccc;padding:.15rem .45rem;text-align:right}
td:first-child,th:first-child{text-align:left}
.toggle{position:absolute;left:-9999px}
.controls{position:sticky;top:0;background:#f6f6f4;padding:.5rem 0;z-index:2;display:flex;gap:.8rem;flex-wrap:wrap;
  align-items:center;border-bottom:1px solid #ddd}
.controls label{font-size:.85rem}
.switch{cursor:pointer;border:1px solid #999;border-radius:1rem;padding:.1rem .6rem;user-select:none}
#show-boxes:checked~.controls label[for=show-boxes],#show-heat:checked~.controls label[for=show-heat]{
  background:#333;color:#fff}
#cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:.8rem;margin-top:.8rem}
.card[hidden]{display:none}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem;display:grid;align-content:start;
  grid-template-columns:180px 1fr;grid-template-areas:"h h" "f p" "t t" "v v" "n n";gap:.3rem .7rem;
  content-visibility:auto;contain-intrinsic-size:auto 320px}
.card h2{grid-area:h;font-size:1rem;margin:0}
.card h2 a{color:inherit}
.thumb{grid-area:f;position:relative;width:180px}
.thumb img{display:block;width:180px;height:auto;background:#ddd}
.thumb svg{position:absolute;inset:0;width:100%;height:100%;pointer-events:none}
.thumb.missing{height:120px;background:#eee;display:flex;align-items:center;font-size:.8rem;color:#a00;
  padding:.3rem;box-sizing:border-box}
svg.boxes polygon{fill:none;stroke:#ff2d55;stroke-width:3;vector-effect:non-scaling-stroke}
svg.heat rect{fill:#ffb000}
svg.boxes,svg.heat{display:none}
#show-boxes:checked~#cards svg.boxes,#show-heat:checked~#cards svg.heat{display:block}
.probs{grid-area:p;list-style:none;margin:0;padding:0;font-size:.8rem}
.probs li{display:grid;grid-template-columns:5.4rem minmax(2rem,1fr) 2.2rem 1rem;align-items:center;gap:.3rem}
.probs .track{height:.55rem;background:#eee;border-radius:2px}
.probs .bar{display:block;height:100%;background:#9ab;border-radius:2px}
.probs .p{text-align:right}
.probs .m{font-size:.8rem;text-align:center}
.legend{font-size:.8rem;color:#444;margin:.2rem 0}
.legend .hit{color:#2a8a3a}.legend .false{color:#d2452b}.legend .missed{color:#b36b00}
.probs li.hit .g,.probs li.pred .g{font-weight:700}
.probs li.hit .bar{background:#2a8a3a}.probs li.hit .m{color:#2a8a3a}
.probs li.false .bar{background:#d2452b}.probs li.false .m,.probs li.false .g{color:#d2452b;font-weight:700}
.probs li.missed .g,.probs li.missed .m{color:#b36b00;font-weight:700}
.probs li.pred .bar{background:#345}
.text{grid-area:t;font-size:.8rem;margin:0;word-break:break-word}
.text.none{color:#888}
.text .label{color:#666}
.text mark{background:rgba(255,176,0,calc(var(--w)*.85));padding:0 1px}
.verdict{grid-area:v;margin:0;font-size:.8rem}
.verdict.ok{color:#2a8a3a}.verdict.bad{color:#b33}
.card .note{grid-area:n;font-size:.75rem;color:#666}
"""

SCRIPT = """
(function(){
  var cards=Array.prototype.slice.call(document.querySelectorAll('#cards .card'));
  var box=document.getElementById('cards'); if(!box){return;}
  document.getElementById('filters').hidden=false;
  function val(id){var el=document.getElementById(id);return el?el.value:'';}
  function apply(){
    var genre=val('f-genre'),err=val('f-error'),lo=parseFloat(val('f-min')),hi=parseFloat(val('f-max'));
    if(isNaN(lo)){lo=0;} if(isNaN(hi)){hi=1;}
    var shown=0;
    cards.forEach(function(c){
      var d=c.dataset,conf=parseFloat(d.conf),m=+d.missed,f=+d.false,ok=true;
      if(genre){ok=(d.pred+'|'+d.true).split('|').indexOf(genre)>=0;}
      if(err&&d.known!=='1'){ok=false;}
      if(ok&&err==='any'){ok=m+f>0;} if(ok&&err==='missed'){ok=m>0;}
      if(ok&&err==='false'){ok=f>0;} if(ok&&err==='correct'){ok=m+f===0;}
      if(ok){ok=conf>=lo-1e-9&&conf<=hi+1e-9;}
      c.hidden=!ok; if(ok){shown++;}
    });
    document.getElementById('shown').textContent=shown+' of '+cards.length+' shown';
  }
  function sort(){
    var how=val('f-sort'),key={
      'loss':function(d){return -parseFloat(d.loss||0);},'conf-desc':function(d){return -parseFloat(d.conf);},
      'conf-asc':function(d){return parseFloat(d.conf);},'name':function(d){return d.name;},
      'order':function(d){return +d.order;}}[how];
    cards.sort(function(a,b){var x=key(a.dataset),y=key(b.dataset);return x<y?-1:x>y?1:
      (a.dataset.key<b.dataset.key?-1:1);});
    cards.forEach(function(c){box.appendChild(c);});
  }
  ['f-genre','f-error','f-min','f-max'].forEach(function(id){var el=document.getElementById(id);
    if(el){el.addEventListener('input',apply);el.addEventListener('change',apply);}});
  document.getElementById('f-sort').addEventListener('change',function(){sort();apply();});
  apply();
})();
"""
