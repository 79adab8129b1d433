"""The review page in a real browser (headless Chromium driven by Playwright): images load, the filters and
the sort do what they say, nothing logs an error, poster text is shown and never run, and the page works with
JavaScript off. Skipped where no Chromium is installed, except under CI (``$CI`` set), where .ci/run installs it.

A full-page screenshot is left for a person to look at: ``$POSTER_GENRES_ARTIFACTS/review.png``, else
``.artifacts/review.png`` in the repository.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.evaluation.review import Card, write_review
from tests.browser import Browser, BrowserError, chromium_path
from tests.factories import ROOT

pytestmark = pytest.mark.slow  # the fast tier (-m "not slow") leaves these to .ci/run

GENRES = ["Action", "Comedy", "Drama", "Horror"]
THRESHOLDS = {"Action": 0.5, "Comedy": 0.45, "Drama": 0.5, "Horror": 0.55}
RULE = "per-genre thresholds (validation F1)"
PWN = "<script>window.__pwned=1</script>"

#: Every card's key, name, script-free state and computed display, in page order.
CARDS_JS = """Array.from(document.querySelectorAll('#cards .card')).map(c => ({
  key: c.dataset.key, hidden: c.hidden, display: getComputedStyle(c).display}))"""


def _set(control: str, value: str) -> str:
    """JS: set a filter control as a person would and fire the events the page listens to."""
    return (f"(() => {{const el = document.getElementById({json.dumps(control)}); el.value = {json.dumps(value)};"
            "el.dispatchEvent(new Event('input', {bubbles: true}));"
            "el.dispatchEvent(new Event('change', {bubbles: true})); return el.value;})()")


# --- the page under test ---------------------------------------------------------------------------------------


def _poster(path: Path, size: tuple[int, int], seed: int, fmt: str, mode: str = "RGB") -> None:
    """A small poster with some structure (gradient, noise, blocks, a title) so it looks like something."""
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    arr = base * (1 - ramp) + (255 - base) * ramp + rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        draw.rectangle([x0, y0, x0 + w // 3, y0 + h // 5], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw.text((w // 10, h // 12), f"POSTER {seed}", fill=(255, 255, 255))
    img.convert(mode).save(path, fmt)


def _box(x0: int, y0: int, x1: int, y1: int) -> list[int]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _card(key, name, probs, truth, *, image=None, size=None, text="", ocr=()) -> Card:
    probabilities = dict(zip(GENRES, probs))
    predicted = [g for g in GENRES if probabilities[g] >= THRESHOLDS[g]]
    return Card(key=key, name=name, probabilities=probabilities, predicted=predicted, image=image, size=size,
                text=text, ocr=list(ocr), truth=truth)


@pytest.fixture(scope="module")
def review(tmp_path_factory) -> tuple[Path, dict[str, Card]]:
    """A page of six posters: right, missed, false alarm, corrupt file, hostile text, nothing read and all missed."""
    src = tmp_path_factory.mktemp("posters")
    _poster(src / "a1.jpg", (300, 450), 1, "JPEG")
    _poster(src / "b2.png", (200, 300), 2, "PNG")
    _poster(src / "c3.jpg", (640, 360), 3, "JPEG")  # landscape
    good = io.BytesIO()
    _poster(good, (300, 450), 4, "JPEG")
    (src / "d4.jpg").write_bytes(good.getvalue()[:300])  # truncated: the header is there, the picture is not
    _poster(src / "e5.png", (120, 180), 5, "PNG", mode="RGBA")
    _poster(src / "f6.jpg", (1000, 1500), 6, "JPEG")  # larger than a thumbnail by far
    cards = [
        _card("a1-action", "Fast Lane (2019)", (0.92, 0.10, 0.30, 0.05), ["Action"], image=str(src / "a1.jpg"),
              size=(300, 450), text="FAST LANE in cinemas",
              ocr=[("FAST LANE", _box(20, 30, 280, 90), 0.97), ("in cinemas", _box(60, 400, 240, 430), 0.81)]),
        _card("b2-comedy", "Laugh Track", (0.05, 0.81, 0.42, 0.02), ["Comedy", "Drama"],
              image=str(src / "b2.png"), size=(200, 300), text="laugh track",
              ocr=[("laugh track", _box(10, 250, 190, 290), 0.88)]),
        _card("c3-drama", "Quiet Rooms", (0.20, 0.10, 0.77, 0.61), ["Drama"], image=str(src / "c3.jpg"),
              size=(640, 360), text="QUIET ROOMS", ocr=[("QUIET ROOMS", _box(100, 20, 540, 80), 0.93)]),
        _card("d4-corrupt", "Broken File", (0.01, 0.02, 0.30, 0.66), ["Horror"], image=str(src / "d4.jpg"),
              size=(300, 450), text="", ocr=[]),
        _card("e5-script", "<b>x</b>", (0.30, 0.58, 0.20, 0.10), ["Action"], image=str(src / "e5.png"),
              size=(120, 180), text=PWN, ocr=[(PWN, _box(5, 5, 115, 40), 0.5)]),
        _card("f6-big", "Night Shift", (0.48, 0.03, 0.35, 0.52), ["Action", "Horror"], image=str(src / "f6.jpg"),
              size=(1000, 1500), text="", ocr=[]),
    ]
    folder = tmp_path_factory.mktemp("review") / "page"
    counts = write_review(folder, cards, GENRES, title="Review: test split", rule=RULE, thresholds=THRESHOLDS,
                          notes=["a note for the reader"])
    assert counts == {"cards": 6, "thumbnails": 5, "without_thumbnail": 1}
    return folder, {c.key: c for c in cards}


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (starting one takes a second or more on a busy machine)."""
    why = None
    if chromium_path() is None:
        why = "no Chromium on PATH (set $CHROMIUM, or install the 'chromium' package; .ci/run does)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            why = "playwright (the browser driver, a dev extra) is not installed"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; under CI the browser tests must run")
        pytest.skip(why)
    with Browser() as b:
        yield b


@pytest.fixture
def page(browser, review):
    """The review page freshly opened with scripts on; after the test, nothing may have logged an error."""
    folder, _ = review
    browser.open((folder / "index.html").as_uri())
    yield browser
    assert browser.console_errors() == []


def _load_images(b: Browser) -> dict[str, dict | None]:
    """Scroll every card into view (the thumbnails are lazy) and wait for each image to decode."""
    return b.evaluate("""(async () => {
      const out = {};
      for (const c of document.querySelectorAll('#cards .card')) {
        c.scrollIntoView();
        const img = c.querySelector('.thumb img');
        if (!img) { out[c.dataset.key] = null; continue; }
        let error = null;
        const timeout = new Promise((_, no) => setTimeout(() => no(new Error('no load in 10 s')), 10000));
        try { await Promise.race([img.decode(), timeout]); } catch (e) { error = String(e); }
        out[c.dataset.key] = {w: img.naturalWidth, h: img.naturalHeight, complete: img.complete, error: error};
      }
      window.scrollTo(0, 0);
      return out;
    })()""")


def _shown(b: Browser) -> list[str]:
    """Keys of the cards a person sees, in page order."""
    return [c["key"] for c in b.evaluate(CARDS_JS) if c["display"] != "none"]


def _unhidden(b: Browser) -> list[str]:
    """Keys of the cards the script left unhidden, in page order."""
    return [c["key"] for c in b.evaluate(CARDS_JS) if not c["hidden"]]


# --- the tests -------------------------------------------------------------------------------------------------


def test_cards_render_with_their_images(page, review):
    folder, cards = review
    images = _load_images(page)
    assert set(images) == set(cards)
    for key, card in cards.items():
        if card.error:
            continue
        got = images[key]
        assert got is not None, f"{key}: no <img> on the card"
        expected = Image.open(folder / "thumbs" / f"{key}.jpg").size
        assert got["error"] is None and got["w"] > 0, f"{key}: thumbnail did not load: {got}"
        assert (got["w"], got["h"]) == expected, f"{key}: {got} is not the thumbnail's {expected}"
    # the corrupt poster: a card saying why, no <img> to show broken
    bad = cards["d4-corrupt"]
    assert bad.error and bad.error.startswith("no thumbnail")
    state = page.evaluate("""(() => {const c = document.querySelector('.card[data-key="d4-corrupt"]');
      return {img: c.querySelectorAll('img').length, text: c.querySelector('.thumb.missing').textContent,
              display: getComputedStyle(c).display};})()""")
    assert state["img"] == 0
    assert state["text"] == bad.error
    assert state["display"] != "none"


@pytest.mark.parametrize("genre", GENRES)
def test_genre_filter_hides_the_right_cards(page, review, genre):
    _, cards = review
    expected = {k for k, c in cards.items() if genre in c.predicted or genre in (c.truth or [])}
    assert page.evaluate(_set("f-genre", genre)) == genre
    assert set(_unhidden(page)) == expected
    assert page.evaluate("document.getElementById('shown').textContent") == f"{len(expected)} of {len(cards)} shown"
    page.evaluate(_set("f-genre", ""))
    assert set(_unhidden(page)) == set(cards)


def test_error_and_probability_filters(page, review):
    _, cards = review
    missed = {k for k, c in cards.items() if set(c.truth) - set(c.predicted)}
    false = {k for k, c in cards.items() if set(c.predicted) - set(c.truth)}
    assert missed == {"b2-comedy", "e5-script", "f6-big"}  # the cases were built to be varied
    for value, expected in [("missed", missed), ("false", false), ("any", missed | false),
                            ("correct", set(cards) - missed - false)]:
        page.evaluate(_set("f-error", value))
        assert set(_unhidden(page)) == expected, value
    page.evaluate(_set("f-error", ""))
    page.evaluate(_set("f-min", "0.6"))
    assert set(_unhidden(page)) == {k for k, c in cards.items() if c.confidence() >= 0.6}
    page.evaluate(_set("f-max", "0.8"))
    assert set(_unhidden(page)) == {k for k, c in cards.items() if 0.6 <= c.confidence() <= 0.8}


def test_filtered_out_cards_are_not_displayed(page, review):
    """``hidden`` is what the script sets; what a person sees is the computed style (author CSS that gives the
    card a display overrides the hidden attribute's display:none)."""
    _, cards = review
    page.evaluate(_set("f-genre", "Drama"))
    expected = {k for k, c in cards.items() if "Drama" in c.predicted or "Drama" in c.truth}
    assert set(_unhidden(page)) == expected
    still = {c["key"]: c["display"] for c in page.evaluate(CARDS_JS) if c["hidden"] and c["display"] != "none"}
    assert not still, (f"cards the filter hid (hidden=true) are still displayed, computed display {still}: a CSS "
                       "rule giving .card a display overrides [hidden]; fix: .card[hidden]{display:none}")
    assert set(_shown(page)) == expected


def test_sort_by_confidence(page, review):
    _, cards = review
    # the page starts worst errors first (highest loss), as the header says
    assert _unhidden(page) == sorted(cards, key=lambda k: (-cards[k].loss(), -cards[k].confidence(), k))
    page.evaluate(_set("f-sort", "conf-desc"))
    assert _unhidden(page) == sorted(cards, key=lambda k: (-cards[k].confidence(), k))
    page.evaluate(_set("f-sort", "conf-asc"))
    assert _unhidden(page) == sorted(cards, key=lambda k: (cards[k].confidence(), k))
    # sorting keeps the filter: only the Horror cards, low confidence first
    page.evaluate(_set("f-genre", "Horror"))
    horror = [k for k in sorted(cards, key=lambda k: (cards[k].confidence(), k))
              if "Horror" in cards[k].predicted or "Horror" in cards[k].truth]
    assert _unhidden(page) == horror


def test_no_console_errors_and_poster_text_is_not_run(page, review):
    _, cards = review
    _load_images(page)
    for control, value in [("f-genre", "Action"), ("f-error", "any"), ("f-sort", "name"), ("f-min", "0.3"),
                           ("f-max", "0.9"), ("f-sort", "loss"), ("f-genre", ""), ("f-error", ""),
                           ("f-min", "0"), ("f-max", "1")]:
        page.evaluate(_set(control, value))
    page.click('label[for="show-boxes"]')
    page.click('label[for="show-boxes"]')
    assert page.console_errors() == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    hostile = page.evaluate("""(() => {const c = document.querySelector('.card[data-key="e5-script"]');
      return {h2: c.querySelector('h2').textContent, bold: c.querySelectorAll('h2 b').length,
              text: c.querySelector('.text').textContent, box: c.querySelector('svg.boxes title').textContent,
              scripts: document.querySelectorAll('#cards script').length};})()""")
    assert hostile["h2"] == "<b>x</b>" and hostile["bold"] == 0
    assert PWN in hostile["text"] and PWN in hostile["box"]
    assert hostile["scripts"] == 0
    assert page.evaluate("document.getElementById('shown').textContent") == f"{len(cards)} of {len(cards)} shown"


def test_page_without_javascript(browser, review):
    folder, cards = review
    browser.open((folder / "index.html").as_uri(), javascript=False)
    # the protocol's own evaluation still works with page scripts off (the tests below rely on it); the page's
    # script did not run: the count it writes is empty and the filters it un-hides are hidden
    assert browser.evaluate("1 + 1") == 2
    assert browser.evaluate("document.getElementById('shown').textContent") == ""
    state = browser.evaluate("""(() => ({
      filters: getComputedStyle(document.getElementById('filters')).display,
      body: document.body.innerText,
      images: Array.from(document.querySelectorAll('#cards .card')).map(c => {
        const img = c.querySelector('.thumb img'); return [c.dataset.key, img ? img.naturalWidth : null];})}))()""")
    cards_state = browser.evaluate(CARDS_JS)
    assert sorted(c["key"] for c in cards_state) == sorted(cards)
    assert all(not c["hidden"] and c["display"] != "none" for c in cards_state), cards_state
    assert state["filters"] == "none"
    assert "Filters and sorting need JavaScript" in state["body"]
    # without scripts Chromium does not lazy-load: every thumbnail is there at the load event
    assert {k: w for k, w in state["images"] if w is not None} == {k: w for k, w in state["images"]
                                                                  if not cards[k].error}
    assert all(w > 0 for _, w in state["images"] if w is not None), state["images"]

    # the OCR boxes toggle is a label and a check box read by CSS: a real click on the label flips it
    boxes_js = """Array.from(document.querySelectorAll('#cards svg.boxes')).map(s => getComputedStyle(s).display)"""
    checked_js = "document.getElementById('show-boxes').checked"
    shown = browser.evaluate(boxes_js)
    assert len(shown) == sum(bool(c.ocr) and not c.error for c in cards.values())
    assert browser.evaluate(checked_js) is True and set(shown) == {"block"}
    browser.click('label[for="show-boxes"]')
    assert browser.evaluate(checked_js) is False
    assert set(browser.evaluate(boxes_js)) == {"none"}
    browser.click('label[for="show-boxes"]')
    assert browser.evaluate(checked_js) is True
    assert set(browser.evaluate(boxes_js)) == {"block"}
    assert browser.console_errors() == []


def test_page_of_zero_posters(browser, tmp_path):
    counts = write_review(tmp_path / "empty", [], GENRES, title="Review: nothing", rule=RULE, thresholds=THRESHOLDS)
    assert counts == {"cards": 0, "thumbnails": 0, "without_thumbnail": 0}
    browser.open((tmp_path / "empty" / "index.html").as_uri())
    text = browser.evaluate("document.body.innerText")
    assert "No posters to show" in text
    assert browser.evaluate("document.querySelectorAll('.card').length") == 0
    assert browser.console_errors() == []


def test_screenshot_for_a_person(page, review):
    _load_images(page)
    out = Path(os.environ.get("POSTER_GENRES_ARTIFACTS") or ROOT / ".artifacts")
    out.mkdir(parents=True, exist_ok=True)
    path = page.screenshot(out / "review.png")
    assert path.stat().st_size > 10_000
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 800
        assert img.height >= page.evaluate("document.documentElement.scrollHeight") - 1  # the whole page


def test_browser_errors_are_reported(browser, tmp_path):
    """The driver itself: page exceptions and failed loads are caught, and a bad expression raises."""
    (tmp_path / "bad.html").write_text('<!DOCTYPE html><img src="nothing-here.jpg"><script>console.error("one");'
                                       "throw new Error('two')</script>")
    browser.open((tmp_path / "bad.html").as_uri())
    errors = "\n".join(browser.console_errors())
    assert "one" in errors and "two" in errors and "nothing-here.jpg" in errors
    with pytest.raises(BrowserError, match="boom"):
        browser.evaluate("(() => { throw new Error('boom'); })()")
    saved, browser.timeout = browser.timeout, 1.0
    try:  # a promise that never settles is a failure within the timeout, not a hung test
        with pytest.raises(BrowserError, match="no answer within 1 s"):
            browser.evaluate("new Promise(() => {})")
    finally:
        browser.timeout = saved
    assert browser.evaluate("6 * 7") == 42  # and the browser is still usable
